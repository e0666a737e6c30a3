import type { BatchInfoMetricFields } from './metrics.ts';

/**
 * Timing of one batch, as Spark's `BatchInfo`: all times in epoch milliseconds, delays in ms.
 * Its metric fields come from the metric catalogue (`lib/core/metrics.ts`): `numRecords` (records
 * read from all sources; 0 in `onBatchSubmitted`), `schedulingDelay` (`processingStartTime -
 * batchTime`: how long the batch waited after its time before it started), `processingDelay`
 * (`processingEndTime - processingStartTime`: how long it ran), `totalDelay` (`processingEndTime -
 * batchTime`: how late its output is) and `numDeadLetters` (records set aside under
 * `onRecordError: 'dead-letter'`, absent when none). The delays are absent until known.
 *
 * @example
 * ```ts
 * ctx.addListener({ onBatchCompleted: (b: BatchInfo) => b.totalDelay! > ctx.batchInterval && console.warn('falling behind') });
 * ```
 */
export interface BatchInfo extends BatchInfoMetricFields {
  /** The batch's time: the end of the interval it covers. */
  readonly batchTime: number;
  /** When the batch was submitted: its batch time, as in Spark, where batches are queued on the clock. */
  readonly submissionTime: number;
  /** When its input was cut and sealed and it began to run (absent in `onBatchSubmitted`). */
  readonly processingStartTime?: number;
  /** When it was committed (only in `onBatchCompleted`). */
  readonly processingEndTime?: number;
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
