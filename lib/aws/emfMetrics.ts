import {
  completedBatchMetricNames,
  completedBatchMetrics,
  failedBatchMetricNames,
  failedBatchMetrics,
  metricDimension,
  metricNamespace,
  portValue,
  type MetricDefinition,
} from '../core/metrics.ts';
import type { BatchMetrics, Metrics } from '../ports/index.ts';

/** EMF's list of the metrics a line carries: each catalogue name with its unit. */
const declared = (names: readonly string[], catalogue: Readonly<Record<string, MetricDefinition>>) => names.map((name) => ({ Name: name, Unit: catalogue[name].unit }));

/**
 * Per-batch metrics as CloudWatch Embedded Metric Format log lines: CloudWatch Logs turns each
 * line into metrics in the `Sluice` namespace (dimension `Job`) without any API call from the
 * Lambda. The names and units are the metric catalogue's (`lib/core/metrics.ts`): one line per
 * completed batch with every completed-batch metric, one per failed batch.
 *
 * @example
 * ```ts
 * const metrics = emfMetrics((line) => console.log(line));
 * ```
 */
export function emfMetrics(write: (line: string) => void = (l) => process.stdout.write(`${l}\n`), namespace = metricNamespace): Metrics {
  return {
    batch(m: BatchMetrics) {
      write(
        JSON.stringify({
          _aws: {
            Timestamp: m.batchTime,
            CloudWatchMetrics: [{ Namespace: namespace, Dimensions: [[metricDimension]], Metrics: declared(completedBatchMetricNames, completedBatchMetrics) }],
          },
          [metricDimension]: m.job,
          BatchTime: m.batchTime,
          ...Object.fromEntries(completedBatchMetricNames.map((name) => [name, portValue(m, name)])),
        }),
      );
    },
    batchFailed({ job, batchTime }) {
      write(
        JSON.stringify({
          _aws: {
            Timestamp: Date.now(),
            CloudWatchMetrics: [{ Namespace: namespace, Dimensions: [[metricDimension]], Metrics: declared(failedBatchMetricNames, failedBatchMetrics) }],
          },
          [metricDimension]: job,
          BatchTime: batchTime,
          // Each failure counts one.
          ...Object.fromEntries(failedBatchMetricNames.map((name) => [name, 1])),
        }),
      );
    },
  };
}
