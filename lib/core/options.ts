// The job options as the engine sees them. The user-facing options, with their defaults and
// validation, are in lib/api/job.ts.

import { SluiceError } from './errors.ts';

/**
 * What to do with a record that a user function or decoder throws on.
 * @example
 * ```ts
 * defineJob({ name: 'etl', batchInterval: '5s', onRecordError: 'dead-letter' }, build);
 * ```
 */
export type OnRecordError = 'fail' | 'dead-letter';

/** Validated options, durations in milliseconds. */
export interface ResolvedJobOptions {
  readonly name: string;
  readonly batchInterval: number;
  readonly defaultParallelism: number | undefined;
  readonly maxTaskAttempts: number;
  readonly onRecordError: OnRecordError;
  readonly taskTimeout: number;
  readonly checkpointInterval: number;
  readonly backpressure: boolean;
  /** Whether a batch whose `saveAs*` output has no record writes empty parts and `_SUCCESS` (Spark's layout). */
  readonly writeEmptyBatches: boolean;
  /** Batches of at most this many input records run inside the coordinator (0: never). */
  readonly coordinatorBatchRecords: number;
  /** ... and of at most this many bytes of input. */
  readonly coordinatorBatchBytes: number;
  /** Idle mode: how long without input (ms) before the coordinator sleeps between checks for input; undefined: off. */
  readonly idleAfter: number | undefined;
}

/**
 * A yes-or-no option given as text (an environment variable such as `SLUICE_WRITE_EMPTY_BATCHES`):
 * `true` or `false`; unset or empty is `undefined`, and anything else is refused naming the
 * variable, so a typo does not quietly keep the default.
 *
 * @example
 * ```ts
 * booleanSetting(process.env.SLUICE_WRITE_EMPTY_BATCHES, 'SLUICE_WRITE_EMPTY_BATCHES'); // true, false or undefined
 * ```
 */
export function booleanSetting(text: string | undefined, name: string): boolean | undefined {
  if (text === undefined || text === '') return undefined;
  if (text === 'true') return true;
  if (text === 'false') return false;
  throw new SluiceError(`${name} must be true or false, got ${JSON.stringify(text)}`);
}
