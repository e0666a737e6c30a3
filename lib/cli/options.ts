import { toMillis } from '../api/duration.ts';
import { UsageError } from './errors.ts';

/** A flag's value as a whole number >= 1, or undefined when the flag was not given. */
export function positiveInt(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`${flag} must be a whole number >= 1, got "${v}"`);
  return n;
}

/** A flag's value as a positive number (rates), or undefined when the flag was not given. */
export function positiveNumber(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`${flag} must be a positive number, got "${v}"`);
  return n;
}

/** A flag's value as a duration in milliseconds (`30s`, `5m`, `500`), or undefined when not given. */
export function durationMs(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  try {
    return toMillis(/^\d+$/.test(v) ? Number(v) : v, flag);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

/** A signal that aborts on the first Ctrl-C: a command that runs until stopped ends its loop on it. */
export function stopOnCtrlC(): AbortSignal {
  const stop = new AbortController();
  process.once('SIGINT', () => stop.abort());
  return stop.signal;
}

/** A port flag's value (0 to 65535; 0 picks a free one), or `fallback` when the flag was given without one. */
export function portFlag(v: string | boolean | undefined, flag: string, fallback = 4040): number | undefined {
  if (v === undefined || v === false) return undefined;
  if (v === true) return fallback;
  const n = Number(v);
  if (!/^\d+$/.test(v) || n > 65535) throw new UsageError(`${flag} must be a port from 0 to 65535 (0: any free one), got "${v}"`);
  return n;
}
