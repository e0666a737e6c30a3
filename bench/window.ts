/**
 * "windowed counts": what a batch of `reduceByKeyAndWindow` costs as the window gets longer.
 *
 * With an inverse function the window's value is kept per key and each slide only adds the
 * entering slice and subtracts the leaving one, so a batch should cost about the same whatever
 * the window length (target: the long window's per-batch time ≤ 1.3 × the short one's). Without
 * an inverse, each slide reduces every slice in the window again, so the cost grows with the
 * window; its ratio is reported for comparison, with no target.
 *
 * Fairness of the comparison:
 *  - a fixed key space: every batch holds every key at least once (a shuffled permutation of all
 *    keys) plus uniform draws from all of them, from a seeded PRNG, so every slice has the same
 *    keys and the window holds the same set of keys at both lengths — only the number of slices
 *    differs;
 *  - the same pre-generated input (one array per batch, through a queueStream) for every variant;
 *  - every variant runs the same number of batches and times the same batches: the ones after the
 *    longer window has filled, so the short window is timed at the same stream position;
 *  - per-batch wall time from the coordinator's listener (`onBatchStarted` → `onBatchCompleted`,
 *    `performance.now()`: the manual clock does not move), median over the timed batches;
 *  - the output is consumed by a `foreachRDD` that does nothing on timed batches, so collecting
 *    the window's output does not dominate; after the timed batches one more batch collects it,
 *    untimed, for the correctness check.
 */
import { loadavg } from 'node:os';
import { DEFAULT_STATE_PARTITIONS } from '../lib/plan/batch.ts';
import { runBatches } from '../lib/testing/index.ts';
import { mulberry32 } from './data.ts';
import { median, type Timing } from './measure.ts';
import { BATCH_INTERVAL_MS } from './pipelines.ts';

/** Sizes of the windowed-counts benchmark. */
export interface WindowConfig {
  /** Distinct keys; every batch holds all of them. */
  readonly keys: number;
  readonly recordsPerBatch: number;
  /** Window lengths, in batch intervals (the slide is one batch interval). */
  readonly shortWindow: number;
  readonly longWindow: number;
  /** Batches run before the timed ones (≥ longWindow, so the long window is full when timing starts). */
  readonly fillBatches: number;
  /** Batches timed per run, right after the fill. */
  readonly timedBatches: number;
  /**
   * Runs of each inverse variant, in the order short, long, long, short, … (their timed batches
   * pooled), so a drift in machine speed over the runs lands on both window lengths alike.
   */
  readonly inverseRuns: number;
  readonly seed: number;
}

/**
 * Full sizes. 1,000 keys × 10,000 records per batch rather than 2,000 × 20,000: the no-inverse
 * 300-batch window re-reduces every slice in the window at every batch, ~45,000 slice reads over
 * its fill alone, and that run's cost grows with the keys per slice, not with the records; at
 * 2,000 keys it alone took ~90 s on a 2-core machine.
 */
export const WINDOW_FULL: Omit<WindowConfig, 'seed'> = { keys: 1000, recordsPerBatch: 10_000, shortWindow: 10, longWindow: 300, fillBatches: 300, timedBatches: 30, inverseRuns: 4 };
export const WINDOW_QUICK: Omit<WindowConfig, 'seed'> = { keys: 200, recordsPerBatch: 2000, shortWindow: 3, longWindow: 30, fillBatches: 30, timedBatches: 10, inverseRuns: 1 };

/** The inverse variant's long-window per-batch time may be at most this multiple of the short one's. */
export const WINDOW_INVERSE_TARGET = 1.3;

function timing(name: string, samples: readonly number[]): Timing {
  return { name, samplesMs: samples, medianMs: median(samples), minMs: Math.min(...samples), maxMs: Math.max(...samples) };
}

/** One variant of `reduceByKeyAndWindow` (with or without inverse, one window length): wall ms per timed batch. */
export interface WindowRun extends Timing {
  readonly inverse: boolean;
  readonly windowBatches: number;
  /** Runs whose timed batches are pooled in the samples. */
  readonly runs: number;
  /**
   * CPU ms of this process per timed batch (`process.cpuUsage`, all threads, GC helpers included):
   * unlike wall time, hardly affected by other processes competing for the cores.
   */
  readonly cpu: Timing;
  /** Wall ms of the whole runs (all batches, start and stop included), summed. */
  readonly totalMs: number;
}

/** Long-window median per-batch time ÷ short-window median per-batch time, for one kind of window. */
export interface WindowComparison {
  readonly short: WindowRun;
  readonly long: WindowRun;
  /** Of the wall-time medians: what the target is about. */
  readonly ratio: number;
  /** Of the CPU-time medians (information). */
  readonly cpuRatio: number;
  readonly target: number | undefined;
  readonly met: boolean | undefined;
}

export interface WindowedCountsResult {
  readonly config: WindowConfig;
  /** State partitions of the window (the default of a stateful operator). */
  readonly partitions: number;
  readonly inverse: WindowComparison;
  readonly plain: WindowComparison;
  /** Keys in the window at the check batch (the same for every variant when there is no mismatch). */
  readonly checkedKeys: number;
  /** Why the results at the check batch are wrong, or undefined. */
  readonly mismatch: string | undefined;
  /** 1-minute load average before and after (other processes competing for the cores make wall times noisy). */
  readonly loadBefore: number;
  readonly loadAfter: number;
  /** Wall ms of the whole windowed-counts part (input generation and all runs). */
  readonly elapsedMs: number;
}

/** Input of the windowed counts: `batches` arrays of keys, each holding every key at least once. */
export function generateKeyBatches(config: Pick<WindowConfig, 'keys' | 'recordsPerBatch' | 'seed'>, batches: number): { keys: string[]; batches: string[][] } {
  if (config.recordsPerBatch < config.keys) throw new Error(`windowed counts: ${config.recordsPerBatch} records per batch cannot hold all ${config.keys} keys`);
  const rand = mulberry32(config.seed);
  const width = String(config.keys - 1).length;
  const keys = Array.from({ length: config.keys }, (_, i) => `k${String(i).padStart(width, '0')}`);
  const out: string[][] = [];
  for (let b = 0; b < batches; b++) {
    const batch = new Array<string>(config.recordsPerBatch);
    for (let i = 0; i < config.keys; i++) batch[i] = keys[i];
    for (let i = config.keys; i < config.recordsPerBatch; i++) batch[i] = keys[Math.floor(rand() * config.keys)];
    // Shuffle, so the guaranteed occurrence of each key is not always first, in the same order.
    for (let i = batch.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      const x = batch[i];
      batch[i] = batch[j];
      batch[j] = x;
    }
    out.push(batch);
  }
  return { keys, batches: out };
}

/** `[key, count]` pairs sorted by key. */
function sortedPairs(pairs: Iterable<readonly [string, number]>): [string, number][] {
  return [...pairs].map(([k, n]): [string, number] => [k, n]).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}

/** Counts of the keys of batches `[from, to]` (indices), counted directly. */
export function recount(batches: readonly (readonly string[])[], from: number, to: number): [string, number][] {
  const counts = new Map<string, number>();
  for (let b = Math.max(0, from); b <= to; b++) for (const k of batches[b]) counts.set(k, (counts.get(k) ?? 0) + 1);
  return sortedPairs(counts);
}

/** Why two sorted pair lists differ (first difference), or undefined. */
function pairsMismatch(what: string, got: readonly [string, number][], want: readonly [string, number][]): string | undefined {
  for (let i = 0; i < Math.min(got.length, want.length); i++) {
    if (got[i][0] !== want[i][0] || got[i][1] !== want[i][1]) return `${what}: pair ${i} is ${JSON.stringify(got[i])}, expected ${JSON.stringify(want[i])}`;
  }
  if (got.length !== want.length) return `${what}: ${got.length} keys, expected ${want.length}`;
  return undefined;
}

/** What one run measured: wall and CPU ms of each timed batch, and the window's output at the check batch. */
interface RunSamples {
  readonly wallMs: number[];
  readonly cpuMs: number[];
  readonly totalMs: number;
  readonly last: [string, number][];
}

/**
 * Runs `fill + timed + 1` batches of `queue → map → reduceByKeyAndWindow(window, 1 s)`; times the
 * `timed` batches after the fill, and collects the window's output at the last (untimed) batch.
 */
export async function runWindow(batches: string[][], config: WindowConfig, inverse: boolean, windowBatches: number): Promise<RunSamples> {
  const total = config.fillBatches + config.timedBatches + 1;
  if (batches.length < total) throw new Error(`windowed counts: ${batches.length} input batches, ${total} needed`);
  const firstTimed = (config.fillBatches + 1) * BATCH_INTERVAL_MS;
  const lastTimed = (config.fillBatches + config.timedBatches) * BATCH_INTERVAL_MS;
  const checkTime = total * BATCH_INTERVAL_MS;
  const window = windowBatches * BATCH_INTERVAL_MS;
  const started = new Map<number, { wall: number; cpu: NodeJS.CpuUsage }>();
  const wallMs: number[] = [];
  const cpuMs: number[] = [];
  let last: [string, number][] | undefined;
  const t0 = performance.now();
  await runBatches({ batchInterval: BATCH_INTERVAL_MS, batches: total }, (ctx) => {
    // Called on the coordinator around each batch (after its input is cut, through its commit
    // and clean-up); the manual clock does not move, so time with performance.now().
    ctx.addListener({
      onBatchStarted: (b) => {
        if (b.batchTime >= firstTimed && b.batchTime <= lastTimed) started.set(b.batchTime, { wall: performance.now(), cpu: process.cpuUsage() });
      },
      onBatchCompleted: (b) => {
        const end = performance.now();
        const s = started.get(b.batchTime);
        if (!s) return;
        const cpu = process.cpuUsage(s.cpu);
        wallMs.push(end - s.wall);
        cpuMs.push((cpu.user + cpu.system) / 1000);
        started.delete(b.batchTime);
      },
    });
    const pairs = ctx.queueStream(batches.slice(0, total)).map((k) => [k, 1] as [string, number]);
    const windowed = inverse
      ? pairs.reduceByKeyAndWindow(
          (a, b) => a + b,
          (a, b) => a - b,
          window,
          BATCH_INTERVAL_MS,
        )
      : pairs.reduceByKeyAndWindow((a, b) => a + b, window, BATCH_INTERVAL_MS);
    // The window is computed every batch whether or not anything reads it (its state moves every
    // batch); reading it only at the check batch keeps the output's collection out of the timings.
    windowed.foreachRDD(async (batch, time) => {
      if (time === checkTime) last = sortedPairs(await batch.collect());
    });
  });
  const totalMs = performance.now() - t0;
  if (wallMs.length !== config.timedBatches) throw new Error(`windowed counts: timed ${wallMs.length} batches, expected ${config.timedBatches}`);
  if (!last) throw new Error(`windowed counts: no output at the check batch (time ${checkTime})`);
  return { wallMs, cpuMs, totalMs, last };
}

function pooled(inverse: boolean, windowBatches: number, runs: readonly RunSamples[]): WindowRun {
  const name = `${inverse ? 'inverse' : 'no inverse'}, window ${windowBatches} batches`;
  return {
    ...timing(name, runs.flatMap((r) => r.wallMs)),
    inverse,
    windowBatches,
    runs: runs.length,
    cpu: timing(`${name} (CPU)`, runs.flatMap((r) => r.cpuMs)),
    totalMs: runs.reduce((a, r) => a + r.totalMs, 0),
  };
}

function comparison(short: WindowRun, long: WindowRun, target: number | undefined): WindowComparison {
  const ratio = long.medianMs / short.medianMs;
  return { short, long, ratio, cpuRatio: long.cpu.medianMs / short.cpu.medianMs, target, met: target === undefined ? undefined : ratio <= target };
}

/**
 * The whole windowed-counts benchmark: the four variants (inverse or not × short or long window)
 * on the same input, and the check that at the last batch each window length gives the same
 * counts with and without an inverse, equal to a direct recount of the window's input.
 */
export async function runWindowedCounts(
  config: WindowConfig,
  options: { readonly gc?: () => void; readonly log?: (message: string) => void } = {},
): Promise<WindowedCountsResult> {
  if (config.fillBatches < config.longWindow) throw new Error(`windowed counts: ${config.fillBatches} fill batches do not fill a window of ${config.longWindow}`);
  if (config.timedBatches < 1 || config.inverseRuns < 1) throw new Error('windowed counts: at least one timed batch and one inverse run are needed');
  const log = options.log ?? (() => {});
  const t0 = performance.now();
  const loadBefore = loadavg()[0];
  const total = config.fillBatches + config.timedBatches + 1;
  log(`windowed counts: generating ${total} batches × ${config.recordsPerBatch} records over ${config.keys} keys`);
  const { batches } = generateKeyBatches(config, total);
  const want = new Map<number, [string, number][]>([config.shortWindow, config.longWindow].map((w) => [w, recount(batches, total - w, total - 1)]));

  // Inverse: short, long, long, short, …; then no inverse: short, long (one run each: the long
  // one is by far the slowest part of the bench, and it has no target).
  const order: [boolean, number][] = [];
  for (let i = 0; i < config.inverseRuns; i++) {
    const ws = i % 2 === 0 ? [config.shortWindow, config.longWindow] : [config.longWindow, config.shortWindow];
    for (const w of ws) order.push([true, w]);
  }
  order.push([false, config.shortWindow], [false, config.longWindow]);
  const runs = new Map<string, RunSamples[]>();
  const id = (inverse: boolean, w: number) => `${inverse}/${w}`;
  let mismatch: string | undefined;
  for (const [n, [inverse, w]] of order.entries()) {
    log(`windowed counts: run ${n + 1}/${order.length}: ${inverse ? 'inverse' : 'no inverse'}, window ${w} batches (${total} batches)`);
    options.gc?.();
    const r = await runWindow(batches, config, inverse, w);
    const same = runs.get(id(inverse, w)) ?? [];
    same.push(r);
    runs.set(id(inverse, w), same);
    const name = `${inverse ? 'inverse' : 'no inverse'}, window ${w}`;
    mismatch ??= pairsMismatch(`${name}, vs a recount of the window's input`, r.last, want.get(w)!);
  }
  for (const w of [config.shortWindow, config.longWindow]) {
    mismatch ??= pairsMismatch(`window ${w}: no inverse vs inverse`, runs.get(id(false, w))![0].last, runs.get(id(true, w))![0].last);
    if (want.get(w)!.length !== config.keys) mismatch ??= `window ${w}: the input holds ${want.get(w)!.length} keys, expected ${config.keys}`;
  }
  const variant = (inverse: boolean, w: number) => pooled(inverse, w, runs.get(id(inverse, w))!);
  return {
    config,
    partitions: DEFAULT_STATE_PARTITIONS,
    inverse: comparison(variant(true, config.shortWindow), variant(true, config.longWindow), WINDOW_INVERSE_TARGET),
    plain: comparison(variant(false, config.shortWindow), variant(false, config.longWindow), undefined),
    checkedKeys: want.get(config.longWindow)!.length,
    mismatch,
    loadBefore,
    loadAfter: loadavg()[0],
    elapsedMs: performance.now() - t0,
  };
}
