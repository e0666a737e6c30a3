/**
 * Timing of one batch, as Spark's `BatchInfo`: all times in epoch milliseconds, delays in ms.
 * `schedulingDelay` is how long the batch waited after its time before it started,
 * `processingDelay` how long it ran, `totalDelay` the sum.
 *
 * @example
 * ```ts
 * ctx.addListener({ onBatchCompleted: (b: BatchInfo) => b.totalDelay! > ctx.batchInterval && console.warn('falling behind') });
 * ```
 */
export interface BatchInfo {
  readonly batchTime: number;
  readonly numRecords: number;
  readonly submissionTime: number;
  readonly processingStartTime?: number;
  readonly processingEndTime?: number;
  readonly schedulingDelay?: number;
  readonly processingDelay?: number;
  readonly totalDelay?: number;
  /** Records set aside under `onRecordError: 'dead-letter'` (absent when none). */
  readonly numDeadLetters?: number;
}

/**
 * Hears about batches as they go (Spark's `StreamingListener`). Methods are optional; an error
 * thrown by a listener is reported and otherwise ignored.
 *
 * @example
 * ```ts
 * ctx.addListener({ onBatchCompleted: (b) => console.log(`batch ${b.batchTime}: ${b.numRecords} records in ${b.processingDelay} ms`) });
 * ```
 */
export interface StreamingListener {
  onBatchSubmitted?(info: BatchInfo): void;
  onBatchStarted?(info: BatchInfo): void;
  onBatchCompleted?(info: BatchInfo): void;
}
