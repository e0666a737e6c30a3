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
  /** The batch's time: the end of the interval it covers. */
  readonly batchTime: number;
  /** Records read from all sources for this batch. */
  readonly numRecords: number;
  /** When the batch was submitted: its batch time, as in Spark, where batches are queued on the clock. */
  readonly submissionTime: number;
  /** When its input was cut and sealed and it began to run (absent in `onBatchSubmitted`). */
  readonly processingStartTime?: number;
  /** When it was committed (only in `onBatchCompleted`). */
  readonly processingEndTime?: number;
  /** `processingStartTime - batchTime`. */
  readonly schedulingDelay?: number;
  /** `processingEndTime - processingStartTime`. */
  readonly processingDelay?: number;
  /** `processingEndTime - batchTime`: how late its output is. */
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
  /** The batch's time has come; its input is about to be cut (`numRecords` is still 0). */
  onBatchSubmitted?(info: BatchInfo): void;
  /** Its input is cut and sealed and it begins to run. */
  onBatchStarted?(info: BatchInfo): void;
  /** Its output and state were committed. */
  onBatchCompleted?(info: BatchInfo): void;
}
