import { describe, it } from 'vitest';
import { expectSeedsPass } from './seeds.ts';

// The seeds are split over two files so that two workers run them at once.
describe('deterministic simulation of the batch protocol (sim/), seeds 1-100', () => {
  it('every committed batch equals the fault-free run over its sealed input; no name written twice with different content; no false fencing; the job catches up', async () => {
    await expectSeedsPass(1, 100);
  }, 120_000);
});
