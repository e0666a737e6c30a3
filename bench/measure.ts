/**
 * Timing helpers. Contestants of one comparison are run in interleaved rounds (rotating who goes
 * first) so that machine noise — CPU frequency, other processes, a JIT tier-up — lands on every
 * side alike instead of on whichever ran last.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** One timed side of a comparison. `run` returns its result so it can be checked afterwards. */
export interface Contestant<R> {
  readonly name: string;
  readonly run: () => R | Promise<R>;
  /** Untimed set-up before every run of `run` (warm-ups included), e.g. creating a state directory. */
  readonly before?: () => void | Promise<void>;
  /** Untimed clean-up after every run of `run`, also when it threw, e.g. removing that directory. */
  readonly after?: () => void | Promise<void>;
  /**
   * Timed rounds this contestant takes part in: the first `reps` of the race's rounds, so a slow,
   * informational side can be sampled less often while staying interleaved with the others.
   * @default every round
   */
  readonly reps?: number;
}

/** The timings of one contestant. */
export interface Timing {
  readonly name: string;
  /** Wall-clock ms of each timed run, in run order. */
  readonly samplesMs: readonly number[];
  readonly medianMs: number;
  readonly minMs: number;
  readonly maxMs: number;
}

export interface RaceOptions {
  /** Timed rounds; the median over them is what gets reported. */
  readonly reps: number;
  /** Untimed runs of each contestant first, so both sides are measured with optimised (JIT-compiled) code. */
  readonly warmups: number;
  /** Full garbage collection before every run, so no run pays for the previous run's garbage. */
  readonly gc?: () => void;
  /** Called before each timed round (progress output). */
  readonly onRound?: (round: number) => void;
}

/** The median of a non-empty list. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/**
 * Runs every contestant `warmups` times untimed, then `reps` timed rounds in which each runs
 * once, the starting contestant rotating from round to round. Returns the timings and the result
 * of each contestant's last run.
 */
export async function race<R>(contestants: readonly Contestant<R>[], options: RaceOptions): Promise<{ timings: Timing[]; results: R[] }> {
  const results: R[] = new Array(contestants.length);
  const samples: number[][] = contestants.map(() => []);
  /** One run of contestant `i`: set-up, GC, the timed call, clean-up. */
  const runOnce = async (i: number): Promise<number> => {
    const c = contestants[i];
    await c.before?.();
    try {
      options.gc?.();
      const t0 = performance.now();
      const r = await c.run();
      const elapsed = performance.now() - t0;
      results[i] = r;
      return elapsed;
    } finally {
      await c.after?.();
    }
  };
  for (let w = 0; w < options.warmups; w++) {
    for (let i = 0; i < contestants.length; i++) await runOnce(i);
  }
  for (let round = 0; round < options.reps; round++) {
    options.onRound?.(round);
    for (let k = 0; k < contestants.length; k++) {
      const i = (round + k) % contestants.length;
      if (round >= Math.max(1, contestants[i].reps ?? options.reps)) continue;
      // Drop the previous result before collecting, so the collection frees it.
      results[i] = undefined as R;
      samples[i].push(await runOnce(i));
    }
  }
  const timings = contestants.map((c, i): Timing => {
    const s = samples[i];
    return { name: c.name, samplesMs: s, medianMs: median(s), minMs: Math.min(...s), maxMs: Math.max(...s) };
  });
  return { timings, results };
}

/**
 * A function that runs a full garbage collection, or undefined if V8 refuses. `npm run bench`
 * does not start node with `--expose-gc`; setting the flag at run time makes V8 install `gc`
 * in contexts created afterwards, so a fresh `vm` context hands it out.
 */
export function exposeGc(): (() => void) | undefined {
  const existing = (globalThis as { gc?: () => void }).gc;
  if (typeof existing === 'function') return existing;
  try {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as unknown;
    return typeof gc === 'function' ? (gc as () => void) : undefined;
  } catch {
    return undefined;
  }
}
