import { JobGraph } from '../plan/graph.ts';
import { StreamingContext } from './context.ts';
import { type Duration, toMillis } from './duration.ts';
import { JobDefinitionError } from '../core/errors.ts';
import { describeValue } from '../core/values.ts';
import type { OnRecordError, ResolvedJobOptions } from '../core/options.ts';

export type { OnRecordError, ResolvedJobOptions } from '../core/options.ts';

/**
 * Options of {@link defineJob}.
 * @example
 * ```ts
 * const options: JobOptions = { name: 'clicks', batchInterval: '2s', defaultParallelism: 8, taskTimeout: '1m' };
 * ```
 */
export interface JobOptions {
  /** The job's name: letters, digits, `-` and `_`. Names its state directory, stack and metrics. */
  readonly name: string;
  /** How often a batch is cut (Spark's batch duration), e.g. `'1s'`. */
  readonly batchInterval: Duration;
  /** Partitions of shuffles that do not set `numPartitions`. @default the largest parent's partition count */
  readonly defaultParallelism?: number;
  /** Attempts of a task before its batch fails (Spark's `spark.task.maxFailures`). @default 4 */
  readonly maxTaskAttempts?: number;
  /**
   * How often stateful operators write their whole state; the batches between write only what
   * changed. A multiple of the batch interval; `.checkpoint(d)` on a stream overrides it.
   * @default 10 × batchInterval
   */
  readonly checkpointInterval?: Duration;
  /**
   * How long one task may run before it counts as failed and is retried (a hung sink, a lost
   * worker). A task stuck in a synchronous loop in the coordinator's own thread cannot be timed out.
   * @default '15m' (the longest a Lambda function may run)
   */
  readonly taskTimeout?: Duration;
  /**
   * A record that a user function throws on (or that a pair operator cannot use), a key whose
   * reduce, state or window function throws, or a transform function that throws: `'fail'` fails
   * the task, which is retried, then the batch — never skipped silently; `'dead-letter'` writes the
   * record (or the key and its values, or the transform's node), where it came from and the error
   * to `dead-letters/<batchTime>/` in the job's state store, counts it in the batch's metrics,
   * and goes on without it.
   * @default 'fail'
   */
  readonly onRecordError?: OnRecordError;
  /**
   * Spark's backpressure (`spark.streaming.backpressure.enabled`): after each batch, a PID
   * controller estimates from its records, processing time and scheduling delay how many records
   * per second the job can process, and the next batches take at most that many per batch interval
   * from each source that can hold records back (Kinesis shards, receivers, sockets). The rest waits
   * in the source, not in a growing queue of late batches. Queue, generator and file sources are
   * not limited.
   * @default false
   */
  readonly backpressure?: boolean;
  /**
   * Whether a batch whose `saveAsTextFiles` / `saveAsJsonFiles` output has no record at all writes
   * that output anyway: Spark's layout, an empty part per partition and `_SUCCESS`. By default such
   * a batch writes nothing there (no directory, no `_SUCCESS`), so an idle job adds no objects to
   * its sink; the checkpoint still records that the batch ran. A batch with at least one record
   * writes every part, empty ones included, then `_SUCCESS`, either way. `print()`,
   * `foreachRDD` and `foreachPartition` are not affected.
   * @default false
   */
  readonly writeEmptyBatches?: boolean;
  /**
   * Batches of at most this many input records run inside the coordinator instead of fanning
   * their tasks out to workers (on AWS: no worker Lambda invocation). The size is what the cut
   * saw: the records of blocks and queue slices, the bytes of files; Kinesis shards are read by
   * the tasks, so after a small batch the next is cut with at most this many records (and
   * `coordinatorBatchBytes`), and a batch that reached that cap makes the next one fan out.
   * Results, guarantees and recovery are the same either way. `0` fans every batch out.
   * @default 1000 (measured: `npm run bench`, "coordinator or workers")
   */
  readonly coordinatorBatchRecords?: number;
  /**
   * The most bytes of input a batch run inside the coordinator may have (see
   * `coordinatorBatchRecords`): Kinesis records may be up to 1 MB each, and the coordinator's
   * memory (256 MB on AWS by default) holds the batch's input, its shuffle and its state. A 4 MiB
   * word-count batch adds about 45 MB to the coordinator process at its peak; raise both together.
   * @default 4 MiB (4194304)
   */
  readonly coordinatorBatchBytes?: number;
  /**
   * Idle mode, on AWS: once the job has had no input for this long and nothing is pending (no
   * window holds data, no `mapWithState` timeout is due, no key in `updateStateByKey`), the
   * coordinator releases the lease marked idle and returns; each scheduled invocation after that
   * only looks for new input (reads, no write) and returns within a fraction of a second. When
   * input comes, that invocation takes the lease and runs at once, so the first records wait at
   * most about a minute, the schedule's period; the batch times skipped while idle are not run
   * (what arrived meanwhile is in the first batch after). Off by default: every minute's
   * invocation then runs the batch clock, and an idle minute costs its billed minute.
   * @default undefined (off)
   */
  readonly idleAfter?: Duration;
}


/**
 * A job: its options and the function that builds its streams. What a job file exports by default.
 * @example
 * ```ts
 * const job: JobDefinition = defineJob({ name: 'j', batchInterval: '1s' }, (ctx) => ctx.queueStream([[1]]).print());
 * job.options.batchInterval; // 1000
 * ```
 */
export interface JobDefinition {
  /** Marks a value made by `defineJob`, so a loaded module's default export can be checked. */
  readonly kind: 'sluice-job';
  /** The options, validated, with every default filled in and durations in milliseconds. */
  readonly options: ResolvedJobOptions;
  /** The function given to `defineJob`; each runtime calls it once on a fresh context to build the graph. */
  readonly build: (ctx: StreamingContext) => unknown;
}

const JOB_NAME = /^[A-Za-z][A-Za-z0-9_-]{0,62}$/;

function resolveOptions(options: JobOptions): ResolvedJobOptions {
  if (!options || typeof options !== 'object') throw new JobDefinitionError(`defineJob: expected options { name, batchInterval }, got ${describeValue(options)}`);
  const { name } = options;
  if (typeof name !== 'string' || !JOB_NAME.test(name)) {
    throw new JobDefinitionError(`defineJob: name must start with a letter and hold only letters, digits, '-' and '_' (at most 63), got ${describeValue(name)}`);
  }
  if (options.batchInterval === undefined) throw new JobDefinitionError(`job ${name}: batchInterval is required, e.g. '1s'`);
  const batchInterval = toMillis(options.batchInterval, `job ${name}: batchInterval`);
  const dp = options.defaultParallelism;
  if (dp !== undefined && (!Number.isInteger(dp) || dp < 1)) {
    throw new JobDefinitionError(`job ${name}: defaultParallelism must be a whole number >= 1, got ${describeValue(dp)}`);
  }
  const attempts = options.maxTaskAttempts ?? 4;
  if (!Number.isInteger(attempts) || attempts < 1) throw new JobDefinitionError(`job ${name}: maxTaskAttempts must be a whole number >= 1, got ${describeValue(attempts)}`);
  const onRecordError = options.onRecordError ?? 'fail';
  if (onRecordError !== 'fail' && onRecordError !== 'dead-letter') {
    throw new JobDefinitionError(`job ${name}: onRecordError must be 'fail' or 'dead-letter', got ${describeValue(onRecordError)}`);
  }
  const taskTimeout = toMillis(options.taskTimeout ?? '15m', `job ${name}: taskTimeout`);
  const checkpointInterval = options.checkpointInterval === undefined ? 10 * batchInterval : toMillis(options.checkpointInterval, `job ${name}: checkpointInterval`);
  if (checkpointInterval % batchInterval !== 0) {
    throw new JobDefinitionError(`job ${name}: checkpointInterval (${checkpointInterval} ms) must be a multiple of the batch interval (${batchInterval} ms)`);
  }
  const backpressure = options.backpressure ?? false;
  if (typeof backpressure !== 'boolean') throw new JobDefinitionError(`job ${name}: backpressure must be true or false, got ${describeValue(backpressure)}`);
  const writeEmptyBatches = options.writeEmptyBatches ?? false;
  if (typeof writeEmptyBatches !== 'boolean') throw new JobDefinitionError(`job ${name}: writeEmptyBatches must be true or false, got ${describeValue(writeEmptyBatches)}`);
  const coordinatorBatchRecords = wholeAtLeastZero(options.coordinatorBatchRecords ?? DEFAULT_COORDINATOR_BATCH_RECORDS, name, 'coordinatorBatchRecords', '0 fans every batch out to workers');
  const coordinatorBatchBytes = wholeAtLeastZero(options.coordinatorBatchBytes ?? DEFAULT_COORDINATOR_BATCH_BYTES, name, 'coordinatorBatchBytes', 'e.g. 4194304 for 4 MiB');
  const idleAfter = options.idleAfter === undefined ? undefined : toMillis(options.idleAfter, `job ${name}: idleAfter`);
  if (idleAfter !== undefined && idleAfter < batchInterval) {
    throw new JobDefinitionError(`job ${name}: idleAfter (${idleAfter} ms) must be at least the batch interval (${batchInterval} ms), e.g. '10m'`);
  }
  return {
    name,
    batchInterval,
    defaultParallelism: dp,
    maxTaskAttempts: attempts,
    onRecordError,
    taskTimeout,
    checkpointInterval,
    backpressure,
    coordinatorBatchRecords,
    coordinatorBatchBytes,
    writeEmptyBatches,
    idleAfter,
  };
}

/** Batches up to this many records run in the coordinator unless a job says otherwise (bench: "coordinator or workers"). */
const DEFAULT_COORDINATOR_BATCH_RECORDS = 1000;
/** ... and up to this many bytes: a coordinator Lambda has 512 MB by default, and a batch takes a few times its input in memory. */
const DEFAULT_COORDINATOR_BATCH_BYTES = 4 * 1024 * 1024;

function wholeAtLeastZero(v: unknown, job: string, option: string, hint: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new JobDefinitionError(`job ${job}: ${option} must be a whole number >= 0 (${hint}), got ${describeValue(v)}`);
  return v;
}

/**
 * Defines a streaming job: its options and a function that builds its streams from a
 * {@link StreamingContext}. Export the result as the job file's default export; `sluice run`,
 * the test harness and the AWS handlers all load it from there.
 *
 * @example
 * ```ts
 * import { defineJob } from 'sluice';
 * export default defineJob({ name: 'wordcount', batchInterval: '1s' }, (ctx) => {
 *   const lines = ctx.generatorStream({ ratePerSec: 1000, make: (i) => `I am a dummy source ${i % 10}` });
 *   lines.flatMap((l) => l.split(' ')).map((w) => [w, 1] as [string, number]).reduceByKey((a, b) => a + b).print();
 * });
 * ```
 */
export function defineJob(options: JobOptions, build: (ctx: StreamingContext) => unknown): JobDefinition {
  const resolved = resolveOptions(options);
  if (typeof build !== 'function') throw new JobDefinitionError(`job ${resolved.name}: the second argument of defineJob must be the build function (ctx) => { ... }`);
  const job = Object.freeze({ kind: 'sluice-job' as const, options: resolved, build });
  given.set(job, { ...options });
  return job;
}

/** The options each job was defined with, before defaults: {@link withJobOptions} re-derives the defaults that depend on what it changes. */
const given = new WeakMap<JobDefinition, JobOptions>();

/**
 * The same job with some options replaced, validated as {@link defineJob} validates them; defaults
 * that follow from a replaced option (the checkpoint interval from the batch interval) follow it.
 * A deployment uses it to set the batch interval, `onRecordError` or `writeEmptyBatches` without
 * editing the job file.
 *
 * @example
 * ```ts
 * const slower = withJobOptions(job, { batchInterval: '5s' });
 * ```
 */
export function withJobOptions(job: JobDefinition, overrides: Partial<Omit<JobOptions, 'name'>>): JobDefinition {
  const base = given.get(job) ?? job.options;
  const changed = Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined));
  return defineJob({ ...base, ...changed, name: job.options.name }, job.build);
}

/** Whether a value is a job made by {@link defineJob}. */
export function isJobDefinition(v: unknown): v is JobDefinition {
  return !!v && typeof v === 'object' && (v as JobDefinition).kind === 'sluice-job' && typeof (v as JobDefinition).build === 'function';
}

/**
 * Runs a job's build function and returns its graph. `extend` may add outputs (the test harness
 * does) before the graph is sealed.
 */
export function buildGraph(job: JobDefinition, extend?: (built: unknown, ctx: StreamingContext) => void): JobGraph {
  const o = job.options;
  const graph = new JobGraph(o.name, o.batchInterval, o.defaultParallelism, o.onRecordError, o.checkpointInterval);
  const ctx = new StreamingContext(graph);
  const built = job.build(ctx);
  if (built && typeof (built as Promise<unknown>).then === 'function') {
    throw new JobDefinitionError(`job ${o.name}: the build function must not be async; create the streams synchronously`);
  }
  extend?.(built, ctx);
  if (graph.outputs.length === 0) {
    throw new JobDefinitionError(
      `job ${o.name} has no output operation, so nothing would run: add print(), saveAsTextFiles(), foreachRDD() or foreachPartition() to a stream`,
    );
  }
  graph.sealed = true;
  return graph;
}
