import {
  completedBatchMetricNames,
  completedBatchMetrics,
  failedBatchMetricNames,
  failedBatchMetrics,
  metricDimensions,
  metricNamespace,
  portValue,
  type MetricDefinition,
} from '../core/metrics.ts';
import type { BatchMetrics, Metrics } from '../ports/index.ts';

/**
 * Options of {@link emfMetrics}.
 * @example
 * ```ts
 * const options: EmfOptions = { deployment: process.env.SLUICE_DEPLOYMENT, highResolution: true };
 * ```
 */
export interface EmfOptions {
  /** The CloudWatch namespace. @default 'Sluice' */
  readonly namespace?: string;
  /**
   * The deployment the job runs in (the `SluiceJob` construct gives its stack's name as
   * `SLUICE_DEPLOYMENT`): the lines then carry a `Stack` dimension besides `Job`. Without it they
   * carry `Job` alone, still valid EMF (a declared dimension must have a value on the line).
   * @default none
   */
  readonly deployment?: string;
  /** Store the metrics at 1-second resolution (EMF's `StorageResolution: 1`) rather than 1 minute. @default false */
  readonly highResolution?: boolean;
}

/** The write that CloudWatch extracts EMF from on Lambda: stdout itself, not `console.log`. */
const stdoutLine = (line: string) => void process.stdout.write(`${line}\n`);

/**
 * Per-batch metrics as CloudWatch Embedded Metric Format log lines: CloudWatch Logs turns each
 * line into metrics in the `Sluice` namespace (dimensions `Job` and, when deployed, `Stack`)
 * without any API call from the Lambda. The names and units are the metric catalogue's
 * (`lib/core/metrics.ts`): one line per completed batch with every completed-batch metric, one per
 * failed batch.
 *
 * The default `write` is stdout, not `console.log`: with Lambda's JSON log format the runtime
 * wraps whatever `console` writes in its own object (`{"level":…,"message":"{\"_aws\":…}"}`), and
 * CloudWatch extracts metrics only from a log event that is the EMF object itself.
 *
 * @example
 * ```ts
 * const metrics = emfMetrics(undefined, { deployment: 'clicks-prod', highResolution: true });
 * metrics.batch({ job: 'clicks', batchTime: 60_000, inputRecords: 5, schedulingDelayMs: 1, processingDelayMs: 2, totalDelayMs: 3 });
 * ```
 */
export function emfMetrics(write: (line: string) => void = stdoutLine, options: EmfOptions = {}): Metrics {
  const namespace = options.namespace ?? metricNamespace;
  /** EMF's directive for a line of `job`: the namespace, its one dimension set, each metric with its unit. */
  const directive = (job: string, names: readonly string[], catalogue: Readonly<Record<string, MetricDefinition>>) => {
    const dimensions = metricDimensions(job, options.deployment);
    return {
      dimensions,
      directive: {
        Namespace: namespace,
        Dimensions: [Object.keys(dimensions)],
        Metrics: names.map((name) => ({ Name: name, Unit: catalogue[name].unit, ...(options.highResolution ? { StorageResolution: 1 } : {}) })),
      },
    };
  };
  return {
    batch(m: BatchMetrics) {
      const { dimensions, directive: d } = directive(m.job, completedBatchMetricNames, completedBatchMetrics);
      write(
        JSON.stringify({
          _aws: { Timestamp: m.batchTime, CloudWatchMetrics: [d] },
          ...dimensions,
          BatchTime: m.batchTime,
          ...Object.fromEntries(completedBatchMetricNames.map((name) => [name, portValue(m, name)])),
        }),
      );
    },
    batchFailed({ job, batchTime }) {
      const { dimensions, directive: d } = directive(job, failedBatchMetricNames, failedBatchMetrics);
      write(
        JSON.stringify({
          _aws: { Timestamp: Date.now(), CloudWatchMetrics: [d] },
          ...dimensions,
          BatchTime: batchTime,
          // Each failure counts one.
          ...Object.fromEntries(failedBatchMetricNames.map((name) => [name, 1])),
        }),
      );
    },
  };
}
