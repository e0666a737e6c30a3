/**
 * Sluice's benchmark suite (`npm run bench`, or `npm run bench -- --quick` for a smoke run).
 *
 * It answers four questions about the local runtime, each measured against something timed in
 * the same process on the same generated input, so the numbers mean something on any machine:
 *  1. word count: how close is a job running through the real coordinator and worker (one
 *     in-process lane) to the loop you would write by hand? Target: ≥ 0.5 of its throughput.
 *  2. grep (filter only): same question for a pipeline with no shuffle. Target: ≥ 0.3.
 *  3. the fixed cost of a batch with nothing in it, in ms and relative to the batch interval and
 *     to a full word-count batch.
 *  4. windowed counts: does a batch of `reduceByKeyAndWindow` with an inverse function cost the
 *     same at a 300-batch window as at a 10-batch one? Target: per-batch time ratio ≤ 1.3. The
 *     same without an inverse (re-reduces the whole window every slide) is reported alongside.
 *     See ./window.ts for how the comparison is kept fair.
 *  5. bundles (./bundles.ts): the import time of each function's deployment bundle in a fresh Node
 *     process, against the old combined bundle built the old way in the same run. Target: the
 *     worker's ≤ 40 ms on the development machine.
 *  6. the AWS path (./aws.ts): on emulated AWS started for the run, the records/s of a word count
 *     read from a 4-shard Kinesis stream through the real coordinator and worker handlers, against
 *     a plain GetRecords loop over the same stream, and the wall time and AWS requests of an empty
 *     batch. Needs node's --openssl-legacy-provider (s3rver's paged listings); `main` re-spawns
 *     node with it when it is missing.
 *  7. cost (./costRun.ts, priced by ./cost.ts): the same word count at 1 s batches, idle with the
 *     job's defaults and with today's path's settings, and loaded with 100-byte lines; every
 *     request counted, worker time measured, priced per month idle and per million records.
 *     A full run writes the figures to bench/results/cost.json for the README's chart
 *     (scripts/costChart.ts); `--cost-only` runs this section alone.
 * Two informational variants (no target) of the 1-partition word count, raced against the same
 * hand loop in the same interleaved rounds, show what durability costs on top of that:
 *  - durable state: the file-system stores `sluice run` uses, in a fresh temp directory per run,
 *    so checkpoint, lineage and shuffle writes hit the disk;
 *  - received input: the same, with the lines arriving through a generatorStream, so every
 *    batch's input is also serialised into a block file at the cut (a queueStream's split is
 *    only a position in the queue and never serialises anything).
 * Targets are reported, not enforced: timings depend on the machine. What is enforced is that
 * Sluice computed exactly what the hand loop computed, and that the AWS path's word counts equal a
 * direct count of its input (the process exits non-zero otherwise).
 */
import { spawn } from 'node:child_process';
import { createCipheriv } from 'node:crypto';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { AWS_FULL, AWS_QUICK, type AwsPathConfig, type AwsPathResult, runAwsPath } from './aws.ts';
import { BUNDLES_FULL, BUNDLES_QUICK, type BundlesConfig, type BundlesResult, runBundleImports } from './bundles.ts';
import { COST_FULL, COST_QUICK, type CostConfig, type CostResult, runCost } from './costRun.ts';
import { costJson, formatCost } from './costReport.ts';
import { generateBatches, LINE_BYTES } from './data.ts';
import { exposeGc, race, type Timing } from './measure.ts';
import {
  BATCH_INTERVAL_MS,
  emptyMismatch,
  grepMismatch,
  handGrep,
  handWordCount,
  sluiceEmptyBatches,
  sluiceGrep,
  type SluiceMatches,
  sluiceReceivedWordCount,
  type SluiceWordCounts,
  sluiceWordCount,
  type WordCounts,
  wordCountMismatch,
} from './pipelines.ts';
import { formatReport } from './report.ts';
import { type StateTraffic, TempState } from './state.ts';
import { runWindowedCounts, WINDOW_FULL, WINDOW_QUICK, type WindowConfig, type WindowedCountsResult } from './window.ts';

/** Options of {@link runBench}; anything left out comes from the full or the quick preset. */
export interface BenchOptions {
  /** Small input and one repetition: a smoke run that checks the suite works, not a measurement. */
  readonly quick?: boolean;
  readonly linesPerBatch?: number;
  readonly batches?: number;
  /** Timed repetitions of each side; the median is reported. */
  readonly reps?: number;
  /** Timed repetitions of the informational durable variants (capped at `reps`). */
  readonly infoReps?: number;
  /** Empty batches run to measure the fixed per-batch cost. */
  readonly emptyBatches?: number;
  /** Seed of the generated input. */
  readonly seed?: number;
  /** Windowed counts: distinct keys, and records per batch. */
  readonly windowKeys?: number;
  readonly windowRecords?: number;
  /** Bundles section: timed imports of each bundle. */
  readonly bundleRuns?: number;
  /** Run the AWS path section (emulators started for it). @default true */
  readonly aws?: boolean;
  /** AWS path: lines put into the stream, and empty batches timed. */
  readonly awsLines?: number;
  readonly awsEmptyBatches?: number;
  /** Run the cost section (on emulators too). @default the value of `aws` */
  readonly cost?: boolean;
  /** Cost section: batches per idle stretch, and lines of the loaded stretch. */
  readonly costIdleBatches?: number;
  readonly costLoadedLines?: number;
  /** Full GC before each run (see {@link exposeGc}); without it, runs pay for each other's garbage. */
  readonly gc?: () => void;
  /** Progress messages (the CLI sends them to stderr so stdout is only the report). */
  readonly log?: (message: string) => void;
}

export interface BenchConfig {
  readonly linesPerBatch: number;
  readonly batches: number;
  readonly reps: number;
  /** Timed repetitions of the informational durable variants (the first `infoReps` rounds). */
  readonly infoReps: number;
  readonly warmups: number;
  readonly emptyBatches: number;
  readonly seed: number;
  readonly gc: boolean;
  /** Sizes of the windowed-counts part. */
  readonly window: WindowConfig;
  /** The bundles section's job and runs. */
  readonly bundles: BundlesConfig;
  /** Sizes of the AWS path section; undefined when it is skipped. */
  readonly aws: AwsPathConfig | undefined;
  /** Sizes of the cost section; undefined when it is skipped. */
  readonly cost: CostConfig | undefined;
}

/** The timing of one side, turned into throughput over the input lines. */
export interface Throughput extends Timing {
  /** Input records (lines) processed per run. */
  readonly records: number;
  /** Input records per second, at the median time. */
  readonly recordsPerSec: number;
  /** Input megabytes (10^6 bytes) per second, at the median time. */
  readonly mbPerSec: number;
}

/** A Sluice variant against the hand-written loop, timed in the same interleaved rounds. */
export interface Comparison {
  readonly name: string;
  readonly hand: Throughput;
  readonly sluice: Throughput;
  /** Sluice records/s ÷ hand-loop records/s. */
  readonly ratio: number;
  /** The ratio the issue asks for, if this comparison has one. */
  readonly target: number | undefined;
  readonly met: boolean | undefined;
  /** Why Sluice's output differs from the hand loop's; undefined when they agree. */
  readonly mismatch: string | undefined;
}

/** A comparison whose Sluice side ran on file-system stores, with what went through them in its last run. */
export interface DurableComparison extends Comparison {
  readonly traffic: StateTraffic;
}

export interface EmptyBatchResult {
  readonly batches: number;
  /** Median ms of a run of `batches` empty batches, and of a run of none (start and stop only). */
  readonly runMs: Timing;
  readonly baselineMs: Timing;
  /** (run − baseline) ÷ batches. */
  readonly perBatchMs: number;
  /** Per-batch cost as a percentage of the batch interval. */
  readonly percentOfInterval: number;
  /** Per-batch cost as a percentage of one word-count batch of `linesPerBatch` lines (Sluice, 1 partition). */
  readonly percentOfWordCountBatch: number;
  readonly mismatch: string | undefined;
}

export interface BenchResult {
  readonly config: BenchConfig;
  readonly input: { readonly lines: number; readonly bytes: number; readonly words: number; readonly distinctWords: number; readonly errorLines: number };
  readonly wordCount: Comparison;
  /** Word count with 4 input partitions and 4 reduce partitions (hash partitioning in the shuffle). */
  readonly wordCount4: Comparison;
  /** Informational: the 1-partition word count with FsBlobStore + FsMetaStore in a fresh temp directory. */
  readonly wordCountDurable: DurableComparison;
  /** Informational: the same, its input received through a generatorStream (written as blocks at the cut). */
  readonly wordCountReceived: DurableComparison;
  readonly grep: Comparison;
  readonly emptyBatch: EmptyBatchResult;
  readonly windowedCounts: WindowedCountsResult;
  readonly bundles: BundlesResult;
  /** The AWS path section; undefined when it was skipped. */
  readonly aws: AwsPathResult | undefined;
  /** The cost section; undefined when it was skipped. */
  readonly cost: CostResult | undefined;
  /** True when every Sluice result matched the hand loop's (and the windowed counts their recount). */
  readonly ok: boolean;
}

const FULL = { linesPerBatch: 200_000, batches: 3, reps: 5, infoReps: 5, emptyBatches: 200 };
const QUICK = { linesPerBatch: 20_000, batches: 2, reps: 1, infoReps: 1, emptyBatches: 20 };

export const WORD_COUNT_TARGET = 0.5;
export const GREP_TARGET = 0.3;

function throughput(t: Timing, records: number): Throughput {
  const seconds = t.medianMs / 1000;
  return { ...t, records, recordsPerSec: records / seconds, mbPerSec: (records * LINE_BYTES) / 1e6 / seconds };
}

function compare(name: string, hand: Timing, sluice: Timing, records: number, target: number | undefined, mismatch: string | undefined): Comparison {
  const h = throughput(hand, records);
  const s = throughput(sluice, records);
  const ratio = s.recordsPerSec / h.recordsPerSec;
  return { name, hand: h, sluice: s, ratio, target, met: target === undefined ? undefined : ratio >= target, mismatch };
}

/**
 * Why the received-input run did not go through input blocks as it should (one per batch, every
 * line in one), or undefined: without this, a source that stopped writing blocks would still
 * produce the right counts and the variant would silently measure something else.
 */
function receivedMismatch(t: StateTraffic, batches: number, lines: number): string | undefined {
  if (t.inputBlocks !== batches) return `${t.inputBlocks} input blocks written, expected ${batches} (one per batch)`;
  if (t.inputBytes < lines) return `input blocks hold ${t.inputBytes} bytes, fewer than one per line (${lines} lines)`;
  return undefined;
}

/** The cost section's sizes: the preset, with what `options` sets. */
function costConfig(options: BenchOptions): CostConfig {
  return {
    ...(options.quick ? COST_QUICK : COST_FULL),
    ...(options.costIdleBatches !== undefined ? { idleBatches: options.costIdleBatches } : {}),
    ...(options.costLoadedLines !== undefined ? { loadedLines: options.costLoadedLines } : {}),
    seed: options.seed ?? 42,
  };
}

/** Runs the whole suite and returns the measurements; prints nothing (see {@link formatReport}). */
export async function runBench(options: BenchOptions = {}): Promise<BenchResult> {
  const preset = options.quick ? QUICK : FULL;
  const config: BenchConfig = {
    linesPerBatch: options.linesPerBatch ?? preset.linesPerBatch,
    batches: options.batches ?? preset.batches,
    reps: options.reps ?? preset.reps,
    infoReps: Math.min(options.infoReps ?? preset.infoReps, options.reps ?? preset.reps),
    warmups: 1,
    emptyBatches: options.emptyBatches ?? preset.emptyBatches,
    seed: options.seed ?? 42,
    gc: options.gc !== undefined,
    window: {
      ...(options.quick ? WINDOW_QUICK : WINDOW_FULL),
      ...(options.windowKeys !== undefined ? { keys: options.windowKeys } : {}),
      ...(options.windowRecords !== undefined ? { recordsPerBatch: options.windowRecords } : {}),
      seed: options.seed ?? 42,
    },
    bundles: { ...(options.quick ? BUNDLES_QUICK : BUNDLES_FULL), ...(options.bundleRuns !== undefined ? { runs: options.bundleRuns } : {}) },
    aws:
      options.aws === false
        ? undefined
        : {
            ...(options.quick ? AWS_QUICK : AWS_FULL),
            ...(options.awsLines !== undefined ? { lines: options.awsLines } : {}),
            ...(options.awsEmptyBatches !== undefined ? { emptyBatches: options.awsEmptyBatches } : {}),
            seed: options.seed ?? 42,
          },
    cost: (options.cost ?? options.aws ?? true) ? costConfig(options) : undefined,
  };
  const log = options.log ?? (() => {});
  const raceOptions = { reps: config.reps, warmups: config.warmups, gc: options.gc };
  const rounds = (what: string) => (round: number) => log(`${what}: round ${round + 1}/${config.reps}`);

  log(`generating ${config.batches} × ${config.linesPerBatch} lines`);
  const input = generateBatches({ seed: config.seed, batches: config.batches, linesPerBatch: config.linesPerBatch });
  const lines = config.batches * config.linesPerBatch;
  // What the generator of the received-input variant hands out, line i of the whole run.
  const allLines = input.flat();

  // The durable variants get a fresh state directory per run: made before and removed after the
  // timed call, so neither is timed (and a leftover checkpoint would make the job resume).
  const durableState = new TempState();
  const receivedState = new TempState();
  const inTempState = (state: TempState) => ({ before: () => state.create(), after: () => state.remove(), reps: config.infoReps });

  log('word count: warm-up');
  const wc = await race<WordCounts[] | SluiceWordCounts>(
    [
      { name: 'hand loop', run: () => handWordCount(input) },
      { name: 'sluice, 1 partition', run: () => sluiceWordCount(input, 1) },
      { name: 'sluice, 4 partitions', run: () => sluiceWordCount(input, 4) },
      { name: 'sluice, durable state', run: () => sluiceWordCount(input, 1, durableState.stores), ...inTempState(durableState) },
      {
        name: 'sluice, received input',
        run: () => sluiceReceivedWordCount(allLines, config.batches, config.linesPerBatch, receivedState.stores),
        ...inTempState(receivedState),
      },
    ],
    { ...raceOptions, onRound: rounds('word count') },
  );
  const handCounts = wc.results[0] as WordCounts[];
  const wordCount = compare(
    'word count',
    wc.timings[0],
    wc.timings[1],
    lines,
    WORD_COUNT_TARGET,
    wordCountMismatch(wc.results[1] as SluiceWordCounts, handCounts),
  );
  const wordCount4 = compare(
    'word count, 4 partitions',
    wc.timings[0],
    wc.timings[2],
    lines,
    undefined,
    wordCountMismatch(wc.results[2] as SluiceWordCounts, handCounts),
  );
  const wordCountDurable: DurableComparison = {
    ...compare(
      'word count, durable state',
      wc.timings[0],
      wc.timings[3],
      lines,
      undefined,
      wordCountMismatch(wc.results[3] as SluiceWordCounts, handCounts) ??
        (durableState.traffic.metaPuts === 0 ? 'nothing was written to the file-system meta store' : undefined),
    ),
    traffic: durableState.traffic,
  };
  const wordCountReceived: DurableComparison = {
    ...compare(
      'word count, received input (blocks)',
      wc.timings[0],
      wc.timings[4],
      lines,
      undefined,
      wordCountMismatch(wc.results[4] as SluiceWordCounts, handCounts) ?? receivedMismatch(receivedState.traffic, config.batches, lines),
    ),
    traffic: receivedState.traffic,
  };

  log('grep: warm-up');
  const gr = await race<string[][] | SluiceMatches>(
    [
      { name: 'hand loop', run: () => handGrep(input) },
      { name: 'sluice', run: () => sluiceGrep(input) },
    ],
    { ...raceOptions, onRound: rounds('grep') },
  );
  const handMatches = gr.results[0] as string[][];
  const grep = compare('grep', gr.timings[0], gr.timings[1], lines, GREP_TARGET, grepMismatch(gr.results[1] as SluiceMatches, handMatches));

  log('empty batches: warm-up');
  // Start and stop of a run are paid once, not per batch: time a run without batches too and
  // subtract it, so the per-batch figure does not depend on how many batches were run.
  const eb = await race(
    [
      { name: `${config.emptyBatches} empty batches`, run: () => sluiceEmptyBatches(config.emptyBatches) },
      { name: 'no batches', run: () => sluiceEmptyBatches(0) },
    ],
    { ...raceOptions, onRound: rounds('empty batches') },
  );
  const perBatchMs = Math.max(0, eb.timings[0].medianMs - eb.timings[1].medianMs) / config.emptyBatches;
  const wordCountBatchMs = wordCount.sluice.medianMs / config.batches;
  const emptyBatch: EmptyBatchResult = {
    batches: config.emptyBatches,
    runMs: eb.timings[0],
    baselineMs: eb.timings[1],
    perBatchMs,
    percentOfInterval: (perBatchMs / BATCH_INTERVAL_MS) * 100,
    percentOfWordCountBatch: (perBatchMs / wordCountBatchMs) * 100,
    mismatch: emptyMismatch(eb.results[0], config.emptyBatches) ?? emptyMismatch(eb.results[1], 0),
  };

  const windowedCounts = await runWindowedCounts(config.window, { gc: options.gc, log });

  const bundles = await runBundleImports(config.bundles, { log });

  const aws = config.aws ? await runAwsPath(config.aws, { gc: options.gc, log }) : undefined;

  const cost = config.cost ? await runCost(config.cost, { log }) : undefined;

  let words = 0;
  const distinct = new Set<string>();
  for (const counts of handCounts) {
    for (const [w, n] of counts) {
      words += n;
      distinct.add(w);
    }
  }
  let errorLines = 0;
  for (const m of handMatches) errorLines += m.length;

  return {
    config,
    input: { lines, bytes: lines * LINE_BYTES, words, distinctWords: distinct.size, errorLines },
    wordCount,
    wordCount4,
    wordCountDurable,
    wordCountReceived,
    grep,
    emptyBatch,
    windowedCounts,
    bundles,
    aws,
    cost,
    ok: [wordCount, wordCount4, wordCountDurable, wordCountReceived, grep, emptyBatch, windowedCounts, bundles, ...(aws ? [aws] : []), ...(cost ? [cost] : [])].every(
      (r) => r.mismatch === undefined,
    ),
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      lines: { type: 'string' },
      batches: { type: 'string' },
      reps: { type: 'string' },
      'info-reps': { type: 'string' },
      seed: { type: 'string' },
      'window-keys': { type: 'string' },
      'window-records': { type: 'string' },
      'bundle-runs': { type: 'string' },
      'skip-aws': { type: 'boolean', default: false },
      'aws-lines': { type: 'string' },
      'aws-empty-batches': { type: 'string' },
      'cost-only': { type: 'boolean', default: false },
      'cost-idle-batches': { type: 'string' },
      'cost-loaded-lines': { type: 'string' },
    },
  });
  const int = (name: string, v: string | undefined, min: number): number | undefined => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be a whole number >= ${min}, got ${v}`);
    return n;
  };
  const log = (m: string) => process.stderr.write(`[bench] ${m}\n`);
  const costOptions = {
    quick: values.quick,
    seed: int('seed', values.seed, 0),
    costIdleBatches: int('cost-idle-batches', values['cost-idle-batches'], 1),
    costLoadedLines: int('cost-loaded-lines', values['cost-loaded-lines'], 1),
  };
  if (values['cost-only']) {
    if (values['skip-aws']) throw new Error('--cost-only runs on the emulators: leave out --skip-aws');
    const cost = await runCost(costConfig(costOptions), { log });
    process.stdout.write(`${formatCost(cost).join('\n')}\n`);
    if (!values.quick && cost.mismatch === undefined) await writeCostJson(costJson(cost, undefined), log);
    if (cost.mismatch !== undefined) process.exitCode = 1;
    return;
  }
  const gc = exposeGc();
  const result = await runBench({
    ...costOptions,
    quick: values.quick,
    linesPerBatch: int('lines', values.lines, 1),
    batches: int('batches', values.batches, 1),
    reps: int('reps', values.reps, 1),
    infoReps: int('info-reps', values['info-reps'], 1),
    seed: int('seed', values.seed, 0),
    windowKeys: int('window-keys', values['window-keys'], 1),
    windowRecords: int('window-records', values['window-records'], 1),
    bundleRuns: int('bundle-runs', values['bundle-runs'], 1),
    aws: !values['skip-aws'],
    awsLines: int('aws-lines', values['aws-lines'], 1),
    awsEmptyBatches: int('aws-empty-batches', values['aws-empty-batches'], 1),
    gc,
    log,
  });
  process.stdout.write(formatReport(result));
  // A quick run is a smoke test, not a measurement: only a full run replaces the chart's figures.
  if (result.cost && !values.quick && result.cost.mismatch === undefined) await writeCostJson(costJson(result.cost, result.bundles.worker.medianMs), log);
  if (!values['skip-aws']) {
    const { runPlacementBench, formatPlacement, PLACEMENT_FULL, PLACEMENT_QUICK } = await import('./placement.ts');
    const rows = await runPlacementBench(values.quick ? PLACEMENT_QUICK : PLACEMENT_FULL, values.quick ? 1 : 3, (m) => process.stderr.write(`[bench] ${m}\n`));
    process.stdout.write(formatPlacement(rows));
  }
  if (!result.ok) process.exitCode = 1;
}

/** Where the cost figures go, for scripts/costChart.ts (committed, so the chart can be drawn again). */
const COST_JSON = new URL('./results/cost.json', import.meta.url);

async function writeCostJson(data: unknown, log: (m: string) => void): Promise<void> {
  const { mkdir, writeFile } = await import('node:fs/promises');
  await mkdir(new URL('./', COST_JSON), { recursive: true });
  await writeFile(COST_JSON, `${JSON.stringify(data, null, 2)}\n`);
  log(`cost figures written to bench/results/cost.json (node bin/run-ts.mjs scripts/costChart.ts draws the README's chart from them)`);
}

/** Whether OpenSSL's legacy provider is loaded (s3rver encrypts listing continuation tokens with DES). */
function legacyProviderLoaded(): boolean {
  try {
    createCipheriv('des', Buffer.alloc(8), Buffer.alloc(8));
    return true;
  } catch {
    return false;
  }
}

/**
 * Runs the bench again in a node started with --openssl-legacy-provider (`npm run bench` passes
 * it; this covers `node bin/run-ts.mjs bench/index.ts` without it) and exits with its code.
 */
function respawnWithLegacyProvider(): void {
  const runTs = fileURLToPath(new URL('../bin/run-ts.mjs', import.meta.url));
  const child = spawn(process.execPath, ['--openssl-legacy-provider', ...process.execArgv, runTs, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, SLUICE_BENCH_RESPAWNED: '1' },
  });
  child.on('exit', (code, signal) => {
    process.exitCode = code ?? (signal ? 1 : 0);
  });
}

// Run only when executed as a script (`npm run bench`), not when imported by the test.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const needsLegacy = !process.argv.includes('--skip-aws') && !legacyProviderLoaded();
  if (needsLegacy && process.env.SLUICE_BENCH_RESPAWNED !== '1') {
    respawnWithLegacyProvider();
  } else {
    main().catch((e: unknown) => {
      process.stderr.write(`bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exitCode = 1;
    });
  }
}
