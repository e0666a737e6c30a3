/**
 * The bench's "cost" section: what Sluice costs on AWS, from what it does on the emulators.
 *
 * The word count of the AWS path (Kinesis → flatMap → map → reduceByKey → saveAsTextFiles to S3,
 * 4 shards, 4 reduce partitions) runs through the real coordinator and worker handlers at a 1 s
 * batch interval, every request reaching the emulators counted by service and operation and every
 * worker invocation timed, in three stretches:
 *  1. idle, the job's defaults: `idleBatches` batches of a fresh job on an empty stream (its
 *     first batch, a cold start, left out);
 *  2. idle, today's path: the same with the settings of the path before this issue's changes,
 *     which still exist as options — `coordinatorBatchRecords: 0` (every batch fanned out to
 *     workers), `writeEmptyBatches: true` (every empty batch writes its parts and `_SUCCESS`) and
 *     the coordinator's `quietBatches: false` (every batch recorded and committed);
 *  3. loaded, the job's defaults: `loadedLines` 100-byte lines put into the stream first, then a
 *     fresh job run until it has consumed them all.
 * Each stretch is priced with ./cost.ts: idle per month (the coordinator billed for the whole
 * month — it sleeps between batches — plus a month of batches each costing what a measured one
 * cost), and per million records (the loaded stretch's batches scaled to a million records, plus
 * the producer's Kinesis PUT units). Shard-hours are priced apart.
 *
 * Worker time is measured here, in one process that also runs the emulators, on this machine's
 * cores: on Lambda the S3 and Kinesis calls take longer and a 1 GB worker has 0.6 vCPU, so the
 * worker figures are what this machine says, not what AWS bills to the millisecond.
 */
import { type AwsBatch, type AwsPathConfig, putLines } from './aws.ts';
import { type JobRun, type JobVariant, runStreamingJob } from './awsJob.ts';
import { startCountedAwsStack } from './awsStack.ts';
import { type CostBreakdown, DEPLOYED_MEMORY, type IdleBatch, idleModePerMonth, idlePerMonth, type Memory, perMillionRecords, shardsPerMonth, TODAY_MEMORY, type Usage } from './cost.ts';
import { generateBatches, LINE_BYTES } from './data.ts';
import { median } from './measure.ts';
import { kinesisClient } from '../lib/aws/clients.ts';
import { createResources } from '../infra-test/helpers/awsStack.ts';
import { waitActive } from '../infra-test/helpers/kinesisStreams.ts';

export interface CostConfig {
  readonly shards: number;
  readonly reducePartitions: number;
  readonly batchIntervalMs: number;
  /** Batches timed in each idle stretch (after one left out). */
  readonly idleBatches: number;
  /** Lines put into the stream for the loaded stretch. */
  readonly loadedLines: number;
  readonly seed: number;
}

export const COST_FULL: Omit<CostConfig, 'seed'> = { shards: 4, reducePartitions: 4, batchIntervalMs: 1000, idleBatches: 60, loadedLines: 200_000 };
export const COST_QUICK: Omit<CostConfig, 'seed'> = { shards: 4, reducePartitions: 4, batchIntervalMs: 1000, idleBatches: 4, loadedLines: 2_000 };

/** A KPL-aggregated record's payload: user records (each with about 16 bytes of framing) up to one 25 KB PUT payload unit. */
const KPL_RECORD_BYTES = 24_000;

/**
 * The PUT payload units a producer aggregating as the KPL does by default pays for `lines`: lines
 * packed in order into aggregated records of at most {@link KPL_RECORD_BYTES}, one unit each.
 */
export function kplPutUnits(lines: readonly string[]): number {
  let units = 0;
  let bytes = KPL_RECORD_BYTES;
  for (const l of lines) {
    const size = Buffer.byteLength(l) + 16;
    if (bytes + size > KPL_RECORD_BYTES) {
      units++;
      bytes = 0;
    }
    bytes += size;
  }
  return units;
}

/** Looks measured in idle mode. */
const IDLE_LOOKS = 5;

/** The figures the issue gives for today's path where this run cannot measure it. */
export const ISSUE_TODAY = { perMillionRecords: 0.02, workerImportMs: 100 } as const;

/** What the issue asks for. */
export const COST_TARGETS = { idlePerMonth: 10, idleModePerMonth: 1, perMillionRecords: 0.01, workerImportMs: 40 } as const;

/** One idle stretch. */
export interface IdleStretch {
  readonly name: string;
  readonly variant: JobVariant;
  readonly batches: number;
  /** Per batch, means over the stretch (what a month of batches costs is a sum). */
  readonly perBatch: IdleBatch;
  /** Median ms the coordinator worked per batch (submitted → completed); billed or not, it is there for the whole minute. */
  readonly coordinatorBusyMs: number;
  /** Dollars per month at the measured interval, shard-hours excluded. */
  readonly perMonth: CostBreakdown;
}

/** Idle mode: the job goes idle, then each minute's invocation only looks for input. */
export interface IdleModeStretch {
  /** The job's idleAfter (ms). */
  readonly idleAfter: number;
  /** Batches the first invocation ran before the job was idle and it returned. */
  readonly batchesToIdle: number;
  /** Invocations after it, each a look that found no input. */
  readonly looks: number;
  /** Per look: requests (means) and wall time of the handler (median). */
  readonly perLook: { readonly requests: ReadonlyMap<string, number>; readonly ms: number };
  /** A look a minute for a month, shard-hours excluded. */
  readonly perMonth: CostBreakdown;
}

/** The loaded stretch. */
export interface LoadedStretch {
  readonly records: number;
  readonly batches: number;
  /** `putRecords`: the PUT payload units of a KPL-aggregating producer ({@link kplPutUnits}). */
  readonly usage: Usage;
  /** PUT payload units had the producer put every record singly (one each). */
  readonly putUnitsSingly: number;
  /** Worker invocations over the stretch. */
  readonly invocations: number;
  readonly perMillion: CostBreakdown;
}

export interface CostResult {
  readonly config: CostConfig;
  readonly memory: Memory;
  readonly idle: IdleStretch;
  /** Today's path measured in the same run (coordinatorBatchRecords: 0, writeEmptyBatches: true). */
  readonly idleToday: IdleStretch;
  readonly idleMode: IdleModeStretch;
  readonly loaded: LoadedStretch;
  /** The stretch's shards for a month, priced apart. */
  readonly shardsPerMonth: number;
  readonly elapsedMs: number;
  readonly mismatch: string | undefined;
}

/** The settings that reproduce the path before this issue: every batch fanned out, empty batches written. */
export const TODAY_VARIANT: JobVariant = { coordinatorBatchRecords: 0, writeEmptyBatches: true, quietBatches: false };

function jobConfig(c: CostConfig, timeoutMs: number): AwsPathConfig {
  return {
    lines: 0,
    lineBytes: LINE_BYTES,
    shards: c.shards,
    // The Kinesis source's default: the job runs with its defaults.
    maxRecordsPerBatch: 10_000,
    batchIntervalMs: c.batchIntervalMs,
    reducePartitions: c.reducePartitions,
    emptyBatches: c.idleBatches,
    reps: 1,
    warmupLines: 0,
    timeoutMs,
    seed: c.seed,
  };
}

/** Each operation's count summed over `batches`, then divided by `divisor`. */
function requestsOver(batches: readonly AwsBatch[], divisor = 1): Map<string, number> {
  const out = new Map<string, number>();
  for (const b of batches) for (const [k, n] of b.requests) out.set(k, (out.get(k) ?? 0) + n / divisor);
  return new Map([...out].sort((a, b) => (a[0] < b[0] ? -1 : 1)));
}

/** Runs the three stretches on emulators started for them; a failed job becomes `mismatch`. */
export async function runCost(config: CostConfig, options: { log?: (m: string) => void } = {}): Promise<CostResult> {
  const log = options.log ?? (() => {});
  const t0 = performance.now();
  const problems: string[] = [];
  const idleTimeoutMs = (config.idleBatches + 10) * config.batchIntervalMs + 30_000;

  log('cost: starting the emulators');
  const stack = await startCountedAwsStack();
  try {
    const idle = async (name: string, variant: JobVariant, label: string): Promise<IdleStretch> => {
      log(`cost: idle stretch, ${label}: ${config.idleBatches + 1} batches of ${config.batchIntervalMs} ms`);
      await createResources(stack, name, config.shards);
      await waitActive(kinesisClient(stack.config(name).aws), name);
      // Two invocations, as two minutes on AWS: the second takes the lease the first released, as every later one does.
      const first = await runStreamingJob(stack, name, name, jobConfig(config, idleTimeoutMs), 0, config.idleBatches, variant);
      if (first.error) problems.push(`idle stretch ${label}, first invocation, failed: ${first.error}`);
      const run = await runStreamingJob(stack, name, name, jobConfig(config, idleTimeoutMs), 0, config.idleBatches, variant);
      if (run.error) problems.push(`idle stretch ${label} failed: ${run.error}`);
      if (run.consumed !== 0) problems.push(`idle stretch ${label} consumed ${run.consumed} records`);
      // The first batch starts the worker and cuts the first positions: left out, as a month of idle batches has one.
      const batches = run.batches.slice(1);
      if (batches.length < config.idleBatches) problems.push(`idle stretch ${label}: only ${batches.length} of ${config.idleBatches} batches ran`);
      const n = Math.max(1, batches.length);
      // What the invocation asked for outside its batches: its start and its end.
      const inBatches = requestsOver(run.batches);
      const perInvocation = new Map([...run.requests].map(([op, k]) => [op, k - (inBatches.get(op) ?? 0)] as const).filter(([, k]) => k > 0));
      const perBatch: IdleBatch = { requests: requestsOver(batches, n), workerMs: batches.reduce((a, b) => a + b.workerBilledMs, 0) / n, perInvocation };
      return {
        name: label,
        variant,
        batches: batches.length,
        perBatch,
        coordinatorBusyMs: batches.length ? median(batches.map((b) => b.wallMs)) : Number.NaN,
        // Today's path is priced with today's coordinator (512 MB); the defaults with the construct's.
        perMonth: idlePerMonth(perBatch, config.batchIntervalMs / 1000, variant === TODAY_VARIANT ? TODAY_MEMORY : DEPLOYED_MEMORY),
      };
    };
    const idleNow = await idle('cost-idle', {}, 'defaults');
    const idleToday = await idle('cost-idle-today', TODAY_VARIANT, "today's path");

    // Idle mode: one invocation until the job is idle, then looks, each its own invocation.
    const modeName = 'cost-idle-mode';
    const idleAfter = 3 * config.batchIntervalMs;
    log(`cost: idle mode: idleAfter ${idleAfter} ms, then ${IDLE_LOOKS} looks`);
    await createResources(stack, modeName, config.shards);
    await waitActive(kinesisClient(stack.config(modeName).aws), modeName);
    const toIdle = await runStreamingJob(stack, modeName, modeName, jobConfig(config, idleTimeoutMs), 0, 1_000_000, { idleAfter });
    if (toIdle.error || toIdle.result?.idle !== true) problems.push(`idle mode: the job did not go idle (${toIdle.error ?? JSON.stringify(toIdle.result)})`);
    const looks: JobRun[] = [];
    for (let i = 0; i < IDLE_LOOKS; i++) looks.push(await runStreamingJob(stack, modeName, modeName, jobConfig(config, idleTimeoutMs), 0, 1_000_000, { idleAfter }));
    for (const l of looks) if (l.error || l.result?.idle !== true || l.result.batches !== 0) problems.push(`idle mode: a look ran batches or failed (${l.error ?? JSON.stringify(l.result)})`);
    const lookRequests = new Map<string, number>();
    for (const l of looks) for (const [op, n] of l.requests) lookRequests.set(op, (lookRequests.get(op) ?? 0) + n / looks.length);
    const perLook = { requests: new Map([...lookRequests].sort((a, b) => (a[0] < b[0] ? -1 : 1))), ms: median(looks.map((l) => l.ms)) };
    const idleMode: IdleModeStretch = { idleAfter, batchesToIdle: toIdle.batches.length, looks: looks.length, perLook, perMonth: idleModePerMonth(perLook) };

    const name = 'cost-loaded';
    log(`cost: loaded stretch: putting ${config.loadedLines} lines of ${LINE_BYTES} B into ${config.shards} shards`);
    await createResources(stack, name, config.shards);
    const kin = kinesisClient(stack.config(name).aws);
    await waitActive(kin, name);
    const [lines] = generateBatches({ seed: config.seed, batches: 1, linesPerBatch: config.loadedLines });
    await putLines(kin, name, lines);
    log('cost: loaded stretch: the job, until it has consumed every line');
    const run = await runStreamingJob(stack, name, name, jobConfig(config, 600_000), config.loadedLines, 0, {});
    if (run.error) problems.push(`loaded stretch failed: ${run.error}`);
    if (run.drainedIndex < 0) problems.push(`loaded stretch consumed ${run.consumed} of ${config.loadedLines} records`);
    const batches = run.drainedIndex < 0 ? run.batches : run.batches.slice(0, run.drainedIndex + 1);
    const requests = requestsOver(batches);
    // The producer's PUT units as the KPL puts records by default (aggregated; the source
    // de-aggregates): the stretch itself puts them singly, which only makes Sluice's side dearer.
    const usage: Usage = { requests, workerMs: batches.reduce((a, b) => a + b.workerBilledMs, 0), coordinatorMs: 0, putRecords: kplPutUnits(lines) };
    const records = batches.reduce((a, b) => a + b.numRecords, 0);
    const loaded: LoadedStretch = {
      records,
      batches: batches.length,
      usage,
      putUnitsSingly: config.loadedLines,
      invocations: requests.get('lambda:Invoke') ?? 0,
      perMillion: perMillionRecords(usage, Math.max(1, records)),
    };
    log('cost: stopping the emulators');
    return {
      config,
      memory: DEPLOYED_MEMORY,
      idle: idleNow,
      idleToday,
      idleMode,
      loaded,
      shardsPerMonth: shardsPerMonth(config.shards),
      elapsedMs: performance.now() - t0,
      mismatch: problems.length ? problems.join('; ') : undefined,
    };
  } finally {
    await stack.stop();
  }
}
