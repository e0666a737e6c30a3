import { describe, expect, it } from 'vitest';
import { buildGraph, defineJob } from '../../lib/api/job.ts';
import { createCoordinatorHandler } from '../../lib/aws/handlers.ts';
import type { CoordinatorRuntime } from '../../lib/engine/coordinator.ts';
import { Worker } from '../../lib/engine/worker.ts';
import { ManualClock } from '../../lib/node/clock.ts';
import { InProcessInvoker } from '../../lib/local/inProcessInvoker.ts';
import { memoryLog } from '../../lib/local/log.ts';
import { MemoryBlobStore } from '../../lib/local/memoryBlobStore.ts';
import { MemoryMetaStore } from '../../lib/local/memoryMetaStore.ts';
import { localSinks } from '../../lib/local/sinks.ts';
import { localSources } from '../../lib/local/sourceFactory.ts';

describe('the coordinator handler’s time budget', () => {
  it('stops starting batches when the clock passes its deadline, even when batch times are still behind it', async () => {
    // Prepare: batches every 100 ms that each take 1 s (the manual clock moves on inside the output).
    const clock = new ManualClock(1_000_000);
    const seen: number[] = [];
    const job = defineJob({ name: 'slow', batchInterval: 100 }, (ctx) =>
      ctx.queueStream([[1], [2], [3]], { default: [0] }).foreachRDD((_batch, time) => {
        seen.push(time);
        clock.advance(1000);
      }),
    );
    const meta = new MemoryMetaStore();
    const blobs = new MemoryBlobStore();
    const handler = createCoordinatorHandler(
      async () => job,
      (): CoordinatorRuntime => {
        const base = { blobs, sources: localSources(), sinks: localSinks(process.cwd()) };
        return { ...base, meta, invoker: new InProcessInvoker(new Worker(buildGraph(job), base), 1), clock, log: memoryLog(), owner: 'test' };
      },
      { marginMs: 0 },
    );

    // Act: an invocation with 3 s left.
    const run = await handler({}, { getRemainingTimeInMillis: () => 3000 });

    // Assess: about three batches (3 s of a clock that moves 1 s per batch), not thirty (3 s of batch times).
    expect(run.batches).toBe(seen.length);
    expect(run.batches).toBeGreaterThanOrEqual(3);
    expect(run.batches).toBeLessThanOrEqual(4);
    expect(run.skipped).toBeUndefined();
  });
});
