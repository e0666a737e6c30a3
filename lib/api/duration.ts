import { JobDefinitionError } from '../core/errors.ts';

/**
 * A length of time: milliseconds as a number, or a string such as `'500ms'`, `'2s'`, `'5m'`, `'1h'`.
 *
 * @example
 * ```ts
 * defineJob({ name: 'j', batchInterval: '2s' }, build);   // same as batchInterval: 2000
 * ```
 */
export type Duration = number | string;

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, min: 60_000, h: 3_600_000, d: 86_400_000 };
const PATTERN = /^\s*(-?\d+(?:\.\d+)?)\s*(ms|s|m|min|h|d)\s*$/;

/**
 * Converts a {@link Duration} to whole milliseconds, or throws a `JobDefinitionError` naming
 * what was wrong (`what` says which setting it was).
 *
 * @example
 * ```ts
 * toMillis('1.5s'); // 1500
 * toMillis(250);    // 250
 * ```
 */
export function toMillis(d: Duration, what = 'duration'): number {
  let ms: number;
  if (typeof d === 'number') {
    ms = d;
  } else if (typeof d === 'string') {
    const m = PATTERN.exec(d);
    if (!m) {
      throw new JobDefinitionError(
        `${what}: cannot read "${d}" as a duration; write milliseconds as a number, or a string like '500ms', '2s', '5m', '1h'`,
      );
    }
    ms = Number(m[1]) * UNITS[m[2]];
  } else {
    throw new JobDefinitionError(`${what}: expected a number of milliseconds or a string like '2s', got ${typeof d}`);
  }
  // A negative length is readable but meaningless: say so, rather than that it cannot be read.
  if (ms < 0) throw new JobDefinitionError(`${what}: ${JSON.stringify(d)} is negative; a duration must be positive, like '500ms', '2s', '5m'`);
  if (!Number.isFinite(ms) || ms <= 0 || !Number.isInteger(ms)) {
    throw new JobDefinitionError(`${what}: must be a positive whole number of milliseconds, got ${String(d)}`);
  }
  return ms;
}

/**
 * `n` seconds in milliseconds.
 *
 * @example
 * ```ts
 * stream.window(seconds(30), seconds(10));
 * ```
 */
export function seconds(n: number): number {
  return toMillis(n * 1000, 'seconds()');
}

/**
 * `n` minutes in milliseconds.
 *
 * @example
 * ```ts
 * stream.countByWindow(minutes(5));
 * ```
 */
export function minutes(n: number): number {
  return toMillis(n * 60_000, 'minutes()');
}

/**
 * `n` milliseconds, checked to be a positive whole number (Spark's `Milliseconds(n)`).
 *
 * @example
 * ```ts
 * defineJob({ name: 'j', batchInterval: milliseconds(500) }, build);
 * ```
 */
export function milliseconds(n: number): number {
  return toMillis(n, 'milliseconds()');
}
