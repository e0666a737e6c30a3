/**
 * The job of the bench's AWS path, run as it runs on AWS: the coordinator function's handler
 * (`createCoordinatorHandler` + `awsCoordinatorRuntime`) invoked once, its tasks sent through the
 * Lambda `Invoke` API to the worker function's handler (`createWorkerHandler` + `awsWorkerRuntime`).
 *
 * A listener added in the job (`ctx.addListener`) timestamps every batch with performance.now()
 * and snapshots the emulators' request counters. Once the stream is drained and `extraBatches`
 * more batches have completed, the next wait for a batch time throws {@link StopRun}: the handler
 * then stops the coordinator and gives the lease up, as at the end of an invocation, and the
 * throw is caught here. (The handler's own deadline, `timeoutMs`, ends a run that never drains.)
 *
 * Each worker invocation is timed around the handler, as Lambda bills it (whole milliseconds,
 * rounded up), so the cost section can price the workers' busy time per batch.
 */
import { defineJob, type JobDefinition } from '../lib/api/job.ts';
import type { StreamingListener } from '../lib/core/listener.ts';
import { type CoordinatorRun, createCoordinatorHandler, createWorkerHandler } from '../lib/aws/handlers.ts';
import { awsCoordinatorRuntime } from '../lib/aws/coordinatorRuntime.ts';
import { awsWorkerRuntime } from '../lib/aws/runtime.ts';
import { WallClock } from '../lib/node/clock.ts';
import type { Clock } from '../lib/ports/index.ts';
import type { AwsBatch, AwsPathConfig } from './aws.ts';
import { type CountedAwsStack, diffCounts, type RequestCounts } from './awsStack.ts';

/** Thrown by the job's clock to end the coordinator invocation between two batches. */
class StopRun extends Error {}

/** What one run of the job did. */
export interface JobRun {
  /** Every completed batch, in order. */
  readonly batches: AwsBatch[];
  /** performance.now() at each batch's onBatchSubmitted and onBatchCompleted. */
  readonly submittedAt: number[];
  readonly completedAt: number[];
  /** Records consumed over all batches (the listener's numRecords summed). */
  readonly consumed: number;
  /** Index of the batch that consumed the last expected record, or -1. */
  readonly drainedIndex: number;
  /** Why the run failed, if it did. */
  readonly error: string | undefined;
  /** Every request of the invocation: its batches', and its start's and end's (the lease, the checkpoint). */
  readonly requests: RequestCounts;
  /** What the handler returned (undefined when it threw). */
  readonly result: CoordinatorRun | undefined;
  /** Wall time of the handler call (performance.now()). */
  readonly ms: number;
}

/**
 * The job options the sections vary; an option left out is the job's default. Without a variant
 * the job fans every batch out (`coordinatorBatchRecords: 0`), as the AWS path section measures
 * the worker path.
 */
export interface JobVariant {
  readonly coordinatorBatchRecords?: number;
  readonly writeEmptyBatches?: boolean;
  /** Records per shard per batch of the Kinesis source. @default the config's `maxRecordsPerBatch` */
  readonly maxRecordsPerBatch?: number;
  /** The coordinator's quiet batches (CoordinatorRuntime.quietBatches). @default true */
  readonly quietBatches?: boolean;
  /** The job's idleAfter (ms): the invocation then also ends when the job goes idle, or at once when it finds it idle. */
  readonly idleAfter?: number;
}

/** Worker invocations so far and their billed time (each rounded up to a whole ms, as Lambda bills). */
interface WorkerTime {
  invocations: number;
  billedMs: number;
}

/** Records the batches of one job run and says when to stop. */
class Recorder {
  readonly batches: AwsBatch[] = [];
  readonly submittedAt: number[] = [];
  readonly completedAt: number[] = [];
  consumed = 0;
  drainedIndex = -1;
  stop = false;
  private current: { startedAt: number; lateMs: number; before: RequestCounts; workerMsBefore: number } | undefined;

  constructor(
    private readonly expected: number,
    private readonly extraBatches: number,
    private readonly requests: () => RequestCounts,
    private readonly workers: WorkerTime,
  ) {}

  readonly listener: StreamingListener = {
    onBatchSubmitted: (b) => {
      this.submittedAt.push(performance.now());
      this.current = { startedAt: Number.NaN, lateMs: Date.now() - b.batchTime, before: this.requests(), workerMsBefore: this.workers.billedMs };
    },
    onBatchStarted: () => {
      if (this.current) this.current.startedAt = performance.now();
    },
    onBatchCompleted: (b) => {
      const now = performance.now();
      const cur = this.current;
      this.current = undefined;
      if (!cur) return;
      this.completedAt.push(now);
      const submittedAt = this.submittedAt[this.submittedAt.length - 1];
      this.batches.push({
        time: b.batchTime,
        numRecords: b.numRecords,
        wallMs: now - submittedAt,
        processingMs: now - (Number.isNaN(cur.startedAt) ? submittedAt : cur.startedAt),
        lateMs: cur.lateMs,
        requests: diffCounts(cur.before, this.requests()),
        workerBilledMs: this.workers.billedMs - cur.workerMsBefore,
      });
      this.consumed += b.numRecords;
      if (this.drainedIndex < 0 && this.consumed >= this.expected) this.drainedIndex = this.batches.length - 1;
      if (this.drainedIndex >= 0 && this.batches.length - 1 - this.drainedIndex >= this.extraBatches) this.stop = true;
    },
  };
}

/** The word count: lines of Kinesis stream `stream` → words → (word, 1) → counts per batch, saved to s3://<name>-out/counts-<time>/. */
function wordCountJob(name: string, stream: string, config: AwsPathConfig, listener: StreamingListener, variant: JobVariant): JobDefinition {
  const options = {
    name,
    batchInterval: config.batchIntervalMs,
    ...(variant.coordinatorBatchRecords !== undefined ? { coordinatorBatchRecords: variant.coordinatorBatchRecords } : {}),
    ...(variant.writeEmptyBatches !== undefined ? { writeEmptyBatches: variant.writeEmptyBatches } : {}),
    ...(variant.idleAfter !== undefined ? { idleAfter: variant.idleAfter } : {}),
  };
  return defineJob(options, (ctx) => {
    ctx.addListener(listener);
    ctx
      .kinesisStream(stream, { initialPosition: 'TRIM_HORIZON', maxRecordsPerBatch: variant.maxRecordsPerBatch ?? config.maxRecordsPerBatch })
      .flatMap((l) => l.split(' '))
      .map((w) => [w, 1] as [string, number])
      .reduceByKey((a, b) => a + b, { numPartitions: config.reducePartitions })
      .saveAsTextFiles(`s3://${name}-out/counts`);
  });
}

/**
 * Job `name` (its table and buckets made by `createResources`) on stream `stream`, from a fresh
 * state, stopping `extraBatches` batches after the one that consumed the `expected`-th record.
 */
export async function runStreamingJob(
  stack: CountedAwsStack,
  name: string,
  stream: string,
  config: AwsPathConfig,
  expected: number,
  extraBatches: number,
  variant: JobVariant = { coordinatorBatchRecords: 0 },
): Promise<JobRun> {
  const workers: WorkerTime = { invocations: 0, billedMs: 0 };
  const recorder = new Recorder(expected, extraBatches, () => stack.requests(), workers);
  const definition = wordCountJob(name, stream, config, recorder.listener, variant);
  const aws = stack.config(name);
  const worker = createWorkerHandler(async () => definition, (graph) => awsWorkerRuntime(graph, aws));
  stack.lambda.register(aws.workerFunction!, async (event) => {
    const t = performance.now();
    try {
      return await worker(event);
    } finally {
      workers.invocations++;
      workers.billedMs += Math.ceil(performance.now() - t);
    }
  });
  const logs: string[] = [];
  const wall = new WallClock();
  const clock: Clock = {
    now: () => wall.now(),
    sleepUntil: async (time, signal) => {
      if (recorder.stop) throw new StopRun('enough batches');
      await wall.sleepUntil(time, signal);
    },
    deadline: (time, signal) => wall.deadline(time, signal),
  };
  const handler = createCoordinatorHandler(
    async () => definition,
    (graph) => ({ ...awsCoordinatorRuntime(graph, aws, (l) => logs.push(l)), clock, retryBackoffMs: 5, ...(variant.quietBatches === undefined ? {} : { quietBatches: variant.quietBatches }) }),
    { marginMs: 0, log: (l) => logs.push(l) },
  );
  let error: string | undefined;
  let result: CoordinatorRun | undefined;
  const before = stack.requests();
  const began = performance.now();
  try {
    result = await handler({}, { getRemainingTimeInMillis: () => config.timeoutMs });
  } catch (e) {
    if (!(e instanceof StopRun)) error = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  }
  const ms = performance.now() - began;
  // In idle mode the handler ends on its own once the job is idle: that is done, too.
  if (error === undefined && !recorder.stop && result?.idle !== true) {
    error = `not done within the invocation's ${config.timeoutMs} ms (${recorder.batches.length} batches)`;
  }
  if (error !== undefined) {
    const warnings = logs.filter((l) => l.startsWith('warning:')).slice(-3);
    if (warnings.length) error += ` (last warnings: ${warnings.join(' | ')})`;
  }
  return {
    batches: recorder.batches,
    submittedAt: recorder.submittedAt,
    completedAt: recorder.completedAt,
    consumed: recorder.consumed,
    drainedIndex: recorder.drainedIndex,
    error,
    requests: diffCounts(before, stack.requests()),
    result,
    ms,
  };
}
