import type { BatchMetrics, Metrics } from '../ports/index.ts';

/**
 * Per-batch metrics as CloudWatch Embedded Metric Format log lines: CloudWatch Logs turns each
 * line into metrics in the `Sluice` namespace (dimension `Job`) without any API call from the
 * Lambda — input records, scheduling/processing/total delay, dead letters, and failed batches.
 *
 * @example
 * ```ts
 * const metrics = emfMetrics((line) => console.log(line));
 * ```
 */
export function emfMetrics(write: (line: string) => void = (l) => process.stdout.write(`${l}\n`), namespace = 'Sluice'): Metrics {
  return {
    batch(m: BatchMetrics) {
      write(
        JSON.stringify({
          _aws: {
            Timestamp: m.batchTime,
            CloudWatchMetrics: [
              {
                Namespace: namespace,
                Dimensions: [['Job']],
                Metrics: [
                  { Name: 'InputRecords', Unit: 'Count' },
                  { Name: 'SchedulingDelay', Unit: 'Milliseconds' },
                  { Name: 'ProcessingDelay', Unit: 'Milliseconds' },
                  { Name: 'TotalDelay', Unit: 'Milliseconds' },
                  { Name: 'DeadLetters', Unit: 'Count' },
                ],
              },
            ],
          },
          Job: m.job,
          BatchTime: m.batchTime,
          InputRecords: m.inputRecords,
          SchedulingDelay: m.schedulingDelayMs,
          ProcessingDelay: m.processingDelayMs,
          TotalDelay: m.totalDelayMs,
          DeadLetters: m.deadLetters ?? 0,
        }),
      );
    },
    batchFailed({ job, batchTime }) {
      write(
        JSON.stringify({
          _aws: { Timestamp: Date.now(), CloudWatchMetrics: [{ Namespace: namespace, Dimensions: [['Job']], Metrics: [{ Name: 'FailedBatches', Unit: 'Count' }] }] },
          Job: job,
          BatchTime: batchTime,
          FailedBatches: 1,
        }),
      );
    },
  };
}
