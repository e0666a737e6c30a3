import type { StreamingContext } from 'sluice';
import { buildGraph, defineJob, type JobOptions } from '../../lib/api/job.ts';
import { Coordinator, type CoordinatorRuntime } from '../../lib/engine/coordinator.ts';
import { Worker } from '../../lib/engine/worker.ts';
import { ManualClock } from '../../lib/node/clock.ts';
import { InProcessInvoker } from '../../lib/local/inProcessInvoker.ts';
import { memoryLog } from '../../lib/local/log.ts';
import { MemoryBlobStore } from '../../lib/local/memoryBlobStore.ts';
import { MemoryMetaStore } from '../../lib/local/memoryMetaStore.ts';
import { localSinks } from '../../lib/local/sinks.ts';
import { localSources } from '../../lib/local/sourceFactory.ts';
import type { Invoker } from '../../lib/ports/index.ts';

/** A coordinator wired to in-memory stores, a manual clock and an in-process worker; pieces exposed for tests. */
export function testCoordinator(
  options: Partial<JobOptions> & { batchInterval: JobOptions['batchInterval'] },
  build: (ctx: StreamingContext) => void,
  overrides: Partial<CoordinatorRuntime> & { wrapInvoker?: (inner: Invoker) => Invoker; outDir?: string } = {},
) {
  // The engine tests drive tasks through the invoker (and intercept them there): batches run in the
  // coordinator only in the tests that set coordinatorBatchRecords.
  const job = defineJob({ name: 'engine-test', coordinatorBatchRecords: 0, ...options }, build);
  const graph = buildGraph(job);
  const blobs = overrides.blobs ?? new MemoryBlobStore();
  const meta = overrides.meta ?? new MemoryMetaStore();
  const base = { blobs, sources: overrides.sources ?? localSources(), sinks: overrides.sinks ?? localSinks(overrides.outDir ?? process.cwd()) };
  const worker = new Worker(graph, base);
  const inner = new InProcessInvoker(worker);
  const invoker = overrides.wrapInvoker ? overrides.wrapInvoker(inner) : inner;
  const clock = new ManualClock(0);
  const log = memoryLog();
  const coordinator = new Coordinator(graph, job.options, {
    ...base,
    meta,
    invoker,
    clock,
    log,
    owner: 'test-coordinator',
    retryBackoffMs: 1,
    ...overrides,
  });
  /** Runs `n` batches, moving the manual clock to each batch time. */
  const run = async (n: number) => {
    for (let i = 0; i < n; i++) {
      await coordinator.start();
      clock.set(coordinator.nextBatchTime);
      await coordinator.runNextBatch();
    }
  };
  return { job, graph, blobs, meta, clock, log, coordinator, run, worker };
}

/** An invoker that runs `inner` but lets a test fail or alter chosen tasks. */
export function interceptInvoker(inner: Invoker, hook: (task: Record<string, any>, run: () => Promise<unknown>) => Promise<unknown>): Invoker {
  return {
    parallelism: inner.parallelism,
    invoke: (task) => hook(task as Record<string, any>, () => inner.invoke(task)),
    close: () => inner.close(),
  };
}
