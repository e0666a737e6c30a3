import { describe, expect, it } from 'vitest';
import { runSeed } from '../../sim/run.ts';
import { expectSeedsPass } from './seeds.ts';

describe('deterministic simulation of the batch protocol (sim/), seeds 101-200', () => {
  it('every committed batch equals the fault-free run over its sealed input; no name written twice with different content; no false fencing; the job catches up', async () => {
    await expectSeedsPass(101, 200);
  }, 120_000);

  it('replays a seed exactly: the same events in the same order, the same batches and findings', async () => {
    const [a, b] = [await runSeed(42), await runSeed(42)];
    expect(b.trace).toBe(a.trace);
    expect(b.steps).toBe(a.steps);
    expect(b.batches).toBe(a.batches);
    expect(b.failures).toEqual(a.failures);
    // A different seed is a different run.
    expect((await runSeed(43)).trace).not.toBe(a.trace);
  }, 30_000);
});
