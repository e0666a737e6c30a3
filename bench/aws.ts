/**
 * The bench's "AWS path" section: what a batch costs when it goes through the real AWS adapters
 * — a Kinesis source, the DynamoDB meta store, S3 for state and output, workers invoked through
 * the Lambda `Invoke` API — on emulators started for the run (see ./awsStack.ts).
 *
 * On one stream of `shards` shards pre-filled with `lines` generated lines, in the same run:
 *  1. raw read: a plain loop reading every shard from TRIM_HORIZON to its end with
 *     GetShardIterator + GetRecords (default limit), counting records: what the emulated Kinesis
 *     serves at best, the ceiling of anything that reads the stream;
 *  2. end to end: a word count (`kinesisStream` → flatMap → map → reduceByKey → saveAsTextFiles
 *     to s3://) run by `createCoordinatorHandler` with its workers behind `createWorkerHandler`,
 *     timed with `ctx.addListener` from the first batch's onBatchSubmitted to the onBatchCompleted
 *     of the batch that consumed the last record (a batch completes after its commit and cleanup).
 *     Each run is a fresh job (own table and buckets) on the same stream; `reps` rounds of one raw
 *     read and one run, medians reported, after an untimed warm-up job on a stream of its own;
 *  3. empty batches: the same job keeps running after the stream is drained; the wall time of
 *     each of `emptyBatches` batches without records, and the requests each one made. The drain
 *     runs past its batch times, so these batches start late and run back to back; they are
 *     timed again on schedule, in a fresh job of the same pipeline on an empty stream. The
 *     difference is mostly the Kinesis source's pacing of GetRecords (one call per shard every
 *     200 ms, the 5 reads/s per shard Kinesis allows): back to back, a batch's read of a shard
 *     waits out what is left of the 200 ms since the previous batch's read.
 * The word counts the job saved to S3, summed over all batches, must equal a direct count of the
 * lines (the section reports a mismatch otherwise, and the bench exits non-zero).
 *
 * Everything (emulators, coordinator, workers) runs in this one process, so the numbers are the
 * cost of Sluice's calls and the emulators' work on the same cores, not of AWS's network.
 */
import { GetRecordsCommand, GetShardIteratorCommand, type KinesisClient, PutRecordsCommand } from '@aws-sdk/client-kinesis';
import { runStreamingJob } from './awsJob.ts';
import { type CountedAwsStack, startCountedAwsStack } from './awsStack.ts';
import { generateBatches } from './data.ts';
import { median, type Timing } from './measure.ts';
import { kinesisClient } from '../lib/aws/clients.ts';
import { createResources, readS3Batches } from '../infra-test/helpers/awsStack.ts';
import { shardsOf, waitActive } from '../infra-test/helpers/kinesisStreams.ts';

export interface AwsPathConfig {
  /** Lines put into the stream before anything reads it. */
  readonly lines: number;
  /** Bytes per generated line. */
  readonly lineBytes: number;
  readonly shards: number;
  /** `maxRecordsPerBatch` of the source: records per shard per batch. */
  readonly maxRecordsPerBatch: number;
  readonly batchIntervalMs: number;
  readonly reducePartitions: number;
  /** Batches run after the stream is drained, to time an empty batch. */
  readonly emptyBatches: number;
  /**
   * Rounds of one raw read and one end-to-end run (a fresh job each, on the same stream), after 1
   * untimed raw read; medians are reported. The last run goes on with the empty batches.
   */
  readonly reps: number;
  /** Lines of the untimed warm-up job on its own stream (0: none). */
  readonly warmupLines: number;
  /** Time given to the coordinator invocation of each job (its `getRemainingTimeInMillis`). */
  readonly timeoutMs: number;
  readonly seed: number;
}

export const AWS_FULL: Omit<AwsPathConfig, 'seed'> = {
  lines: 20_000,
  lineBytes: 60,
  shards: 4,
  maxRecordsPerBatch: 2_000,
  batchIntervalMs: 200,
  reducePartitions: 4,
  emptyBatches: 20,
  reps: 3,
  warmupLines: 1_000,
  timeoutMs: 40_000,
};

export const AWS_QUICK: Omit<AwsPathConfig, 'seed'> = {
  lines: 1_000,
  lineBytes: 60,
  shards: 4,
  maxRecordsPerBatch: 100,
  batchIntervalMs: 200,
  reducePartitions: 4,
  emptyBatches: 5,
  reps: 1,
  warmupLines: 100,
  timeoutMs: 20_000,
};

/** One batch of a job, as its listener saw it. */
export interface AwsBatch {
  readonly time: number;
  readonly numRecords: number;
  /** onBatchSubmitted → onBatchCompleted (lease renewal, cut, seal, stages, outputs, commit, cleanup). */
  readonly wallMs: number;
  /** onBatchStarted → onBatchCompleted (without lease renewal, cut and seal). */
  readonly processingMs: number;
  /** How long after its batch time the batch was submitted (0 on schedule; more when earlier batches ran late). */
  readonly lateMs: number;
  /** Requests the emulators received during the batch, by `service:operation`. */
  readonly requests: ReadonlyMap<string, number>;
  /** Worker invocations' time that ended during the batch, each rounded up to a whole ms as Lambda bills it. */
  readonly workerBilledMs: number;
}

/** One end-to-end run. */
export interface EndToEndRun {
  /** Records its batches consumed (their numRecords summed). */
  readonly records: number;
  /** First batch submitted → the batch that consumed the last record completed. */
  readonly ms: number;
  /** Sum of those batches' wall times (`ms` without the waits for batch times between them). */
  readonly busyMs: number;
  /** The batches that consumed records (the first to the one that consumed the last record). */
  readonly batches: readonly AwsBatch[];
  /** Requests of those batches together. */
  readonly requests: ReadonlyMap<string, number>;
}

/** Wall time and requests of a run of empty batches. */
export interface EmptyBatches {
  readonly batches: number;
  readonly samplesMs: readonly number[];
  readonly medianMs: number;
  readonly minMs: number;
  readonly maxMs: number;
  /** Median of onBatchStarted → onBatchCompleted. */
  readonly processingMedianMs: number;
  readonly percentOfInterval: number;
  /** How late (after its batch time) the first and the last of them were submitted. */
  readonly lateMs: { readonly first: number; readonly last: number };
  /** Median per batch of each operation's count. */
  readonly requests: ReadonlyMap<string, number>;
}

export interface AwsPathResult {
  readonly config: AwsPathConfig;
  readonly input: { readonly lines: number; readonly bytes: number; readonly words: number; readonly distinctWords: number; readonly perShard: readonly number[] };
  /** Starting the emulators (and creating the resources), and putting the lines (PutRecords, 500 per call). */
  readonly setup: { readonly stackMs: number; readonly fillMs: number };
  readonly raw: Timing & {
    readonly records: number;
    readonly recordsPerSec: number;
    readonly mbPerSec: number;
    /** GetShardIterator + GetRecords calls of one read. */
    readonly calls: number;
  };
  /** Per run: first batch submitted → the batch that consumed the last record completed; records/s at the median. */
  readonly endToEnd: Timing & {
    readonly recordsPerSec: number;
    readonly mbPerSec: number;
    /** End-to-end records/s ÷ raw-read records/s (both at their medians). */
    readonly ratio: number;
    readonly runs: readonly EndToEndRun[];
  };
  /** The timed job's batches after the stream was drained (late: the drain ran past its batch times). */
  readonly emptyAfterDrain: EmptyBatches;
  /** The same job started afresh on an empty stream (its first batch left out): batches on schedule. */
  readonly emptyOnSchedule: EmptyBatches;
  /** What each end-to-end run saved to S3: batch directories with _SUCCESS, and the words counted in them. */
  readonly outputs: readonly { readonly batches: number; readonly words: number; readonly distinctWords: number }[];
  /** Wall time of the whole section, stack start and stop included. */
  readonly elapsedMs: number;
  readonly mismatch: string | undefined;
}

const STREAM = 'bench-aws';
const WARMUP_STREAM = 'bench-aws-warmup';
const IDLE_STREAM = 'bench-aws-idle';

/**
 * Puts the lines in PutRecords calls of 500, a distinct partition key per line (spread evenly over the shards).
 *
 * @example
 * ```ts
 * await putLines(kinesisClient(config.aws), 'bench-aws', ['a b', 'b c']);
 * ```
 */
export async function putLines(kin: KinesisClient, stream: string, lines: readonly string[]): Promise<void> {
  const enc = new TextEncoder();
  for (let i = 0; i < lines.length; i += 500) {
    const chunk = lines.slice(i, i + 500);
    const out = await kin.send(new PutRecordsCommand({ StreamName: stream, Records: chunk.map((l, k) => ({ Data: enc.encode(l), PartitionKey: `line-${i + k}` })) }));
    if (out.FailedRecordCount) throw new Error(`${out.FailedRecordCount} records refused by PutRecords`);
  }
}

/** The raw read: every shard from TRIM_HORIZON until GetRecords returns an empty page caught up with the shard. */
async function rawRead(kin: KinesisClient, stream: string, shardIds: readonly string[]): Promise<{ records: number; bytes: number; perShard: number[]; calls: number }> {
  let records = 0;
  let bytes = 0;
  let calls = 0;
  const perShard: number[] = [];
  for (const shard of shardIds) {
    let n = 0;
    calls++;
    let iterator = (await kin.send(new GetShardIteratorCommand({ StreamName: stream, ShardId: shard, ShardIteratorType: 'TRIM_HORIZON' }))).ShardIterator;
    while (iterator) {
      calls++;
      const out = await kin.send(new GetRecordsCommand({ ShardIterator: iterator }));
      const page = out.Records ?? [];
      n += page.length;
      for (const r of page) bytes += r.Data?.byteLength ?? 0;
      if (page.length === 0 && (out.MillisBehindLatest ?? 0) === 0) break;
      iterator = out.NextShardIterator;
    }
    perShard.push(n);
    records += n;
  }
  return { records, bytes, perShard, calls };
}

/** Word → count of `lines`, split on ' ' as the job splits them. */
function countWords(lines: readonly string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const l of lines) for (const w of l.split(' ')) counts.set(w, (counts.get(w) ?? 0) + 1);
  return counts;
}

/** Why `got` differs from `want`, or undefined. */
function countsMismatch(got: ReadonlyMap<string, number>, want: ReadonlyMap<string, number>): string | undefined {
  for (const [w, n] of want) if (got.get(w) !== n) return `word ${JSON.stringify(w)} counted ${String(got.get(w) ?? 0)} times over all batches, expected ${n}`;
  for (const w of got.keys()) if (!want.has(w)) return `word ${JSON.stringify(w)} counted but not in the input`;
  return undefined;
}

/** The word counts saved under `s3://<bucket>/counts-<time>/`, summed over all batches; lines read as `(word,count)`. */
async function savedCounts(stack: CountedAwsStack, bucket: string): Promise<{ batches: number; counts: Map<string, number>; bad?: string }> {
  const saved = await readS3Batches(stack, bucket, 'counts');
  const counts = new Map<string, number>();
  for (const [time, lines] of saved) {
    for (const l of lines) {
      const m = /^\((.*),(\d+)\)$/.exec(l);
      if (!m) return { batches: saved.size, counts, bad: `batch ${time}: cannot read output line ${JSON.stringify(l)} as (word,count)` };
      counts.set(m[1], (counts.get(m[1]) ?? 0) + Number(m[2]));
    }
  }
  return { batches: saved.size, counts };
}

/** Timings and median requests of a run of empty batches. */
function emptyStats(batches: readonly AwsBatch[], intervalMs: number): EmptyBatches {
  const ms = batches.map((b) => b.wallMs);
  const med = ms.length ? median(ms) : Number.NaN;
  return {
    batches: batches.length,
    samplesMs: ms,
    medianMs: med,
    minMs: ms.length ? Math.min(...ms) : Number.NaN,
    maxMs: ms.length ? Math.max(...ms) : Number.NaN,
    processingMedianMs: batches.length ? median(batches.map((b) => b.processingMs)) : Number.NaN,
    percentOfInterval: (med / intervalMs) * 100,
    lateMs: { first: batches[0]?.lateMs ?? Number.NaN, last: batches[batches.length - 1]?.lateMs ?? Number.NaN },
    requests: medianRequests(batches),
  };
}

/** Median per batch of each operation's count over `batches` (an operation a batch did not make counts 0 there). */
function medianRequests(batches: readonly AwsBatch[]): Map<string, number> {
  const ops = new Set(batches.flatMap((b) => [...b.requests.keys()]));
  const out = new Map<string, number>();
  for (const op of [...ops].sort()) {
    const m = median(batches.map((b) => b.requests.get(op) ?? 0));
    if (m > 0) out.set(op, m);
  }
  return out;
}

function sumRequests(maps: readonly ReadonlyMap<string, number>[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const m of maps) for (const [k, n] of m) out.set(k, (out.get(k) ?? 0) + n);
  return new Map([...out].sort((a, b) => (a[0] < b[0] ? -1 : 1)));
}

/** Runs the whole section; never throws for a failed job (that becomes `mismatch`). */
export async function runAwsPath(config: AwsPathConfig, options: { gc?: () => void; log?: (m: string) => void } = {}): Promise<AwsPathResult> {
  const t0 = performance.now();
  const result = await measureAwsPath(config, options);
  return { ...result, elapsedMs: performance.now() - t0 };
}

async function measureAwsPath(config: AwsPathConfig, options: { gc?: () => void; log?: (m: string) => void }): Promise<AwsPathResult> {
  const log = options.log ?? (() => {});
  const problems: string[] = [];

  const [lines] = generateBatches({ seed: config.seed, batches: 1, linesPerBatch: config.lines, lineBytes: config.lineBytes });
  const want = countWords(lines);
  let words = 0;
  for (const n of want.values()) words += n;

  log('AWS path: starting the emulators');
  const stackStart = performance.now();
  const stack = await startCountedAwsStack();
  try {
    const names = [STREAM, IDLE_STREAM, ...(config.warmupLines > 0 ? [WARMUP_STREAM] : [])];
    for (const name of names) await createResources(stack, name, config.shards);
    const kin = kinesisClient(stack.config(STREAM).aws);
    for (const name of names) await waitActive(kin, name);
    const stackMs = performance.now() - stackStart;

    log(`AWS path: putting ${config.lines} lines into ${config.shards} shards`);
    const fillStart = performance.now();
    await putLines(kin, STREAM, lines);
    const fillMs = performance.now() - fillStart;
    const shardIds = (await shardsOf(kin, STREAM)).map((s) => s.ShardId!);

    if (config.warmupLines > 0) {
      log(`AWS path: warm-up job (${config.warmupLines} lines)`);
      const warm = lines.slice(0, config.warmupLines);
      await putLines(kin, WARMUP_STREAM, warm);
      const w = await runStreamingJob(stack, WARMUP_STREAM, WARMUP_STREAM, config, warm.length, 1);
      if (w.error) problems.push(`the warm-up job failed: ${w.error}`);
    }

    // Rounds of one raw read and one end-to-end run, after an untimed raw read.
    await rawRead(kin, STREAM, shardIds);
    const rawSamples: number[] = [];
    let rawOut = { records: 0, bytes: 0, perShard: [] as number[], calls: 0 };
    const runs: EndToEndRun[] = [];
    const outputs: AwsPathResult['outputs'][number][] = [];
    let empties: AwsBatch[] = [];
    for (let round = 0; round < config.reps; round++) {
      log(`AWS path: round ${round + 1}/${config.reps}: raw GetRecords read`);
      options.gc?.();
      const t = performance.now();
      rawOut = await rawRead(kin, STREAM, shardIds);
      rawSamples.push(performance.now() - t);
      if (rawOut.records !== config.lines) problems.push(`raw read ${round + 1} found ${rawOut.records} records, expected ${config.lines}`);

      const last = round === config.reps - 1;
      const name = `${STREAM}-r${round + 1}`;
      log(`AWS path: round ${round + 1}/${config.reps}: end-to-end job${last ? `, then ${config.emptyBatches} empty batches` : ''}`);
      await createResources(stack, name, 1);
      options.gc?.();
      const job = await runStreamingJob(stack, name, STREAM, config, config.lines, last ? config.emptyBatches : 0);
      const what = `end-to-end run ${round + 1}`;
      if (job.error) problems.push(`${what} failed: ${job.error}`);
      const drained = job.drainedIndex;
      if (drained < 0) problems.push(`${what} consumed ${job.consumed} of ${config.lines} records before it stopped`);
      else if (job.consumed !== config.lines) problems.push(`${what} consumed ${job.consumed} records, expected ${config.lines}`);
      const drain = drained < 0 ? job.batches : job.batches.slice(0, drained + 1);
      runs.push({
        records: drain.reduce((a, b) => a + b.numRecords, 0),
        ms: drained < 0 ? Number.NaN : job.completedAt[drained] - job.submittedAt[0],
        busyMs: drain.reduce((a, b) => a + b.wallMs, 0),
        batches: drain,
        requests: sumRequests(drain.map((b) => b.requests)),
      });
      if (last) {
        empties = drained < 0 ? [] : job.batches.slice(drained + 1);
        if (drained >= 0 && empties.length < config.emptyBatches) problems.push(`only ${empties.length} of ${config.emptyBatches} empty batches ran after the drain`);
        const nonEmpty = empties.find((b) => b.numRecords !== 0);
        if (nonEmpty) problems.push(`batch ${nonEmpty.time}, after the stream was drained, has ${nonEmpty.numRecords} records`);
      }

      log(`AWS path: round ${round + 1}/${config.reps}: checking the saved word counts`);
      const saved = await savedCounts(stack, `${name}-out`);
      if (saved.bad) problems.push(`${what}: ${saved.bad}`);
      const countProblem = countsMismatch(saved.counts, want);
      if (countProblem) problems.push(`${what}: ${countProblem}`);
      let savedWords = 0;
      for (const n of saved.counts.values()) savedWords += n;
      outputs.push({ batches: saved.batches, words: savedWords, distinctWords: saved.counts.size });
    }

    log(`AWS path: ${config.emptyBatches + 1} batches of a fresh job on an empty stream`);
    // Nothing to drain: the first batch "consumes the last record" at once; it is left out (cold worker, first cut).
    const idle = await runStreamingJob(stack, IDLE_STREAM, IDLE_STREAM, config, 0, config.emptyBatches);
    if (idle.error) problems.push(`the empty-stream job failed: ${idle.error}`);
    const idleEmpties = idle.batches.slice(1);
    if (idleEmpties.length < config.emptyBatches) problems.push(`only ${idleEmpties.length} of ${config.emptyBatches} batches of the empty-stream job ran`);
    if (idle.consumed !== 0) problems.push(`the empty-stream job consumed ${idle.consumed} records`);

    const rawMedian = median(rawSamples);
    const rawRecordsPerSec = config.lines / (rawMedian / 1000);
    const e2eSamples = runs.map((r) => r.ms);
    const e2eMedian = median(e2eSamples);
    const recordsPerSec = config.lines / (e2eMedian / 1000);
    const result: Omit<AwsPathResult, 'elapsedMs'> = {
      config,
      input: { lines: config.lines, bytes: config.lines * config.lineBytes, words, distinctWords: want.size, perShard: rawOut.perShard },
      setup: { stackMs, fillMs },
      raw: {
        name: 'raw GetRecords loop',
        samplesMs: rawSamples,
        medianMs: rawMedian,
        minMs: Math.min(...rawSamples),
        maxMs: Math.max(...rawSamples),
        records: rawOut.records,
        recordsPerSec: rawRecordsPerSec,
        mbPerSec: rawOut.bytes / 1e6 / (rawMedian / 1000),
        calls: rawOut.calls,
      },
      endToEnd: {
        name: 'Sluice end to end',
        samplesMs: e2eSamples,
        medianMs: e2eMedian,
        minMs: Math.min(...e2eSamples),
        maxMs: Math.max(...e2eSamples),
        recordsPerSec,
        mbPerSec: (config.lines * config.lineBytes) / 1e6 / (e2eMedian / 1000),
        ratio: recordsPerSec / rawRecordsPerSec,
        runs,
      },
      emptyAfterDrain: emptyStats(empties, config.batchIntervalMs),
      emptyOnSchedule: emptyStats(idleEmpties, config.batchIntervalMs),
      outputs,
      mismatch: problems.length ? problems.join('; ') : undefined,
    };
    log('AWS path: stopping the emulators');
    return { ...result, elapsedMs: Number.NaN };
  } finally {
    await stack.stop();
  }
}
