// The job options as the engine sees them. The user-facing options, with their defaults and
// validation, are in lib/api/job.ts.

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
  /** Batches of at most this many input records run inside the coordinator (0: never). */
  readonly coordinatorBatchRecords: number;
  /** ... and of at most this many bytes of input. */
  readonly coordinatorBatchBytes: number;
}
