import type { StreamingContext } from '../api/context.ts';
import { DStream } from '../api/dstream.ts';
import type { Duration } from '../api/duration.ts';
import { buildGraph, defineJob, type OnRecordError } from '../api/job.ts';
import { Coordinator, type ProtocolStep } from '../engine/coordinator.ts';
import { Worker } from '../engine/worker.ts';
import { ManualClock } from '../node/clock.ts';
import { InProcessInvoker } from '../local/inProcessInvoker.ts';
import { memoryLog } from '../local/log.ts';
import { MemoryBlobStore } from '../local/memoryBlobStore.ts';
import { MemoryMetaStore } from '../local/memoryMetaStore.ts';
import { localSinks } from '../local/sinks.ts';
import { localSources } from '../local/sourceFactory.ts';
import type { BlobStore, MetaStore, OutputLog, SinkResolver } from '../ports/index.ts';

/**
 * Options of {@link runBatches}.
 * @example
 * ```ts
 * await runBatches({ batchInterval: '1s', batches: 3, defaultParallelism: 4, onRecordError: 'dead-letter' }, build);
 * ```
 */
export interface RunBatchesOptions {
  /** The batch interval of the test job. */
  readonly batchInterval: Duration;
  /** How many batches to run. */
  readonly batches: number;
  /** Job name. @default 'test' */
  readonly name?: string;
  /** Partitions of shuffles without `numPartitions`. */
  readonly defaultParallelism?: number;
  /** Attempts per task before the batch fails, as the job option. @default 4 */
  readonly maxTaskAttempts?: number;
  /** What a record the decoder or a user function rejects does, as the job option. @default 'fail' */
  readonly onRecordError?: OnRecordError;
  /** A task running longer than this is failed and retried. @default '15m' */
  readonly taskTimeout?: Duration;
  /** How often stateful nodes write a full checkpoint instead of a delta. @default 10 × batchInterval */
  readonly checkpointInterval?: Duration;
  /** Whether a batch without records writes empty parts and `_SUCCESS` for `saveAs*` outputs, as the job option. @default false */
  readonly writeEmptyBatches?: boolean;
  /** Where `print()` blocks and warnings go. @default kept in memory */
  readonly log?: OutputLog;
  /** Output locations of `saveAs*Files`. @default the local file system, relative to the working directory */
  readonly sinks?: SinkResolver;
  /** Blob store (shuffle, state, lineage); pass the same one to a second run to test resuming. @default a fresh in-memory store */
  readonly blobs?: BlobStore;
  /** Meta store (lease, commits); pass the same one to a second run to test resuming. @default a fresh in-memory store */
  readonly meta?: MetaStore;
  /** Called after each step of the batch protocol. */
  readonly onStep?: (step: ProtocolStep, time: number) => void | Promise<void>;
  /** Parallel task lanes of the in-process invoker. @default 1 */
  readonly parallelism?: number;
  /** Map outputs up to this size travel inline. @default 64 KiB */
  readonly inlineLimit?: number;
}

/**
 * What {@link runBatches} returns for each batch at which the stream produced one.
 * @example
 * ```ts
 * const [first] = await runBatches({ batchInterval: 1000, batches: 1 }, (ctx) => ctx.queueStream([[1, 2]]).count());
 * first; // { time: 1000, data: [2], partitions: [[2]] }
 * ```
 */
export interface BatchOutput<T> {
  /** Batch time in ms: batch i of a queueStream is at `(i + 1) × batchInterval`. */
  readonly time: number;
  /** All records, partitions in order. */
  readonly data: T[];
  /** Records per partition. */
  readonly partitions: T[][];
}

/**
 * Runs a job for a number of batches on a manual clock, in memory, through the real coordinator
 * and worker code, and returns what the stream returned by `build` produced at each batch. The
 * deterministic way to test a job (like RxJS's virtual-time scheduler).
 *
 * @example
 * ```ts
 * import { runBatches } from 'sluice/testing';
 * const out = await runBatches({ batchInterval: 1000, batches: 2 }, (ctx) =>
 *   ctx.queueStream([['a b', 'b'], ['c']]).flatMap((l) => l.split(' ')).countByValue());
 * // [{ time: 1000, data: [['a', 1], ['b', 2]], ... }, { time: 2000, data: [['c', 1]], ... }]
 * ```
 */
export async function runBatches<T>(
  options: RunBatchesOptions,
  build: (ctx: StreamingContext) => DStream<T> | undefined | void,
): Promise<BatchOutput<T>[]> {
  const job = defineJob(
    { name: options.name ?? 'test', batchInterval: options.batchInterval, defaultParallelism: options.defaultParallelism, maxTaskAttempts: options.maxTaskAttempts, onRecordError: options.onRecordError, taskTimeout: options.taskTimeout, checkpointInterval: options.checkpointInterval, writeEmptyBatches: options.writeEmptyBatches },
    build,
  );
  if (!Number.isInteger(options.batches) || options.batches < 0) {
    throw new TypeError(`runBatches: batches must be a whole number >= 0, got ${String(options.batches)}`);
  }
  const out: BatchOutput<T>[] = [];
  const graph = buildGraph(job, (built) => {
    if (built instanceof DStream) {
      (built as DStream<T>).capture((time, partitions) => out.push({ time, data: partitions.flat(), partitions }));
    }
  });
  const clock = new ManualClock(0);
  const runtimeBase = {
    blobs: options.blobs ?? new MemoryBlobStore(),
    sources: localSources(),
    sinks: options.sinks ?? localSinks(process.cwd()),
  };
  const worker = new Worker(graph, runtimeBase);
  const coordinator = new Coordinator(graph, job.options, {
    ...runtimeBase,
    meta: options.meta ?? new MemoryMetaStore(),
    invoker: new InProcessInvoker(worker, options.parallelism ?? 1),
    clock,
    log: options.log ?? memoryLog(),
    owner: 'runBatches',
    onStep: options.onStep,
    retryBackoffMs: 1,
    inlineLimit: options.inlineLimit,
  });
  try {
    await coordinator.start();
    for (let i = 0; i < options.batches; i++) {
      clock.set(coordinator.nextBatchTime);
      await coordinator.runNextBatch();
    }
  } finally {
    await coordinator.stop();
  }
  // As a run of the CLI ends: the next run with the same stores starts where this one stopped.
  await coordinator.releaseLease();
  return out;
}

export type { ProtocolStep };
