import { describe, it, expect } from 'vitest';
import { runBatches } from 'sluice/testing';
describe('smoke', () => {
  it('word count', async () => {
    const out = await runBatches({ batchInterval: 1000, batches: 3 }, (ctx) =>
      ctx.queueStream([['a b', 'b'], ['c'], []], { numPartitions: 2 }).flatMap((l) => l.split(' ')).countByValue());
    console.log(JSON.stringify(out));
    expect(out.length).toBe(3);
  });
});
