/**
 * The metric catalogue: every metric Sluice emits, said once. The listener's `BatchInfo` fields,
 * the `Metrics` port's values, the CloudWatch EMF lines, the local progress line and the CDK
 * dashboard and alarms are all read from here, so a metric's name, unit and meaning cannot drift
 * apart between the code that writes it and the code that watches it.
 *
 * Adding a metric: add an entry below and produce its value where the coordinator builds
 * {@link CompletedBatchValues} (the type then requires it). The EMF line and `BatchInfo` follow;
 * the dashboard test fails until `cdk/parts/monitoring.ts` places it on a graph.
 */

/** The CloudWatch namespace of every Sluice metric. */
export const metricNamespace = 'Sluice';
/** The dimension every Sluice metric carries: the job's name. */
export const metricDimension = 'Job';
/**
 * The dimension a deployed job's metrics carry besides {@link metricDimension}: the deployment,
 * which the `SluiceJob` construct sets to its stack's name (`SLUICE_DEPLOYMENT`). Staging and
 * production of one job in one account then keep their metrics and alarms apart. A job run without
 * a deployment (locally, or deployed by other means without the variable) writes `Job` alone.
 *
 * @example
 * ```ts
 * job.metric('TotalDelay').dimensions?.[deploymentDimension]; // the stack's name
 * ```
 */
export const deploymentDimension = 'Stack';

/**
 * The dimensions of a job's metrics, by name: `Job`, and `Stack` when the deployment is known.
 *
 * @example
 * ```ts
 * metricDimensions('clicks', 'clicks-prod'); // { Job: 'clicks', Stack: 'clicks-prod' }
 * metricDimensions('clicks');                // { Job: 'clicks' }
 * ```
 */
export function metricDimensions(job: string, deployment?: string): Readonly<Record<string, string>> {
  return deployment ? { [metricDimension]: job, [deploymentDimension]: deployment } : { [metricDimension]: job };
}

/** CloudWatch units the catalogue uses (EMF's `Unit`). */
export type MetricUnit = 'Count' | 'Milliseconds';

/** What a metric is, beyond its name. */
export interface MetricDefinition {
  readonly unit: MetricUnit;
  /** What it measures, in a sentence (for readers of the code and of the dashboard). */
  readonly meaning: string;
  /** The statistic that reads it on a dashboard or in an alarm unless said otherwise. */
  readonly statistic: 'Sum' | 'Average';
  /** Its label on graphs and alarms. */
  readonly label: string;
}

/** A metric written once per completed batch, from one of the batch's values. */
export interface CompletedBatchMetric extends MetricDefinition {
  /** Its field in the listener's `BatchInfo` (Spark's names). */
  readonly listenerField: string;
  /** Its field in what the `Metrics` port is told (`BatchMetrics`). */
  readonly portField: string;
  /** Known at every listener event (`onBatchSubmitted` included), not only once the batch ran. */
  readonly inEveryEvent?: boolean;
  /** Left out of `BatchInfo` and optional on the port when zero (EMF still writes 0). */
  readonly absentWhenZero?: boolean;
}

/**
 * Metrics of every completed batch, in the order the EMF line lists them.
 *
 * @example
 * ```ts
 * completedBatchMetrics.TotalDelay.unit; // 'Milliseconds'
 * ```
 */
export const completedBatchMetrics = {
  InputRecords: {
    unit: 'Count',
    meaning: 'Records read from all sources for this batch.',
    statistic: 'Sum',
    label: 'Records',
    listenerField: 'numRecords',
    portField: 'inputRecords',
    inEveryEvent: true,
  },
  SchedulingDelay: {
    unit: 'Milliseconds',
    meaning: 'How long the batch waited after its time before it started (its input cut and sealed).',
    statistic: 'Average',
    label: 'Scheduling delay (ms)',
    listenerField: 'schedulingDelay',
    portField: 'schedulingDelayMs',
  },
  ProcessingDelay: {
    unit: 'Milliseconds',
    meaning: 'How long the batch ran, from its start to its commit.',
    statistic: 'Average',
    label: 'Processing delay (ms)',
    listenerField: 'processingDelay',
    portField: 'processingDelayMs',
  },
  TotalDelay: {
    unit: 'Milliseconds',
    meaning: 'How late its output is: from the batch time to its commit.',
    statistic: 'Average',
    label: 'Total delay (ms)',
    listenerField: 'totalDelay',
    portField: 'totalDelayMs',
  },
  DeadLetters: {
    unit: 'Count',
    meaning: "Records set aside under onRecordError: 'dead-letter'.",
    statistic: 'Sum',
    label: 'Dead letters',
    listenerField: 'numDeadLetters',
    portField: 'deadLetters',
    absentWhenZero: true,
  },
} as const satisfies Record<string, CompletedBatchMetric>;

/**
 * Metrics written when a batch fails (its coordinator gives up on it), one count per failure.
 *
 * @example
 * ```ts
 * failedBatchMetrics.FailedBatches.unit; // 'Count'
 * ```
 */
export const failedBatchMetrics = {
  FailedBatches: {
    unit: 'Count',
    meaning: 'Batches the coordinator gave up on; the next run retries them from their lineage.',
    statistic: 'Sum',
    label: 'Failed batches',
  },
} as const satisfies Record<string, MetricDefinition>;

type Completed = typeof completedBatchMetrics;
/** The name of a metric written for every completed batch. */
export type CompletedBatchMetricName = keyof Completed;
/** The name of any Sluice metric. */
export type MetricName = CompletedBatchMetricName | keyof typeof failedBatchMetrics;

/** Every metric of the catalogue, by name. */
export const metricCatalogue: { readonly [N in MetricName]: MetricDefinition } = { ...completedBatchMetrics, ...failedBatchMetrics };

/** Typed `Object.keys`: the catalogue's keys are exactly its names. */
const namesOf = <T extends object>(o: T) => Object.keys(o) as (keyof T & string)[];
/** The completed-batch metrics, in catalogue order. */
export const completedBatchMetricNames = namesOf(completedBatchMetrics);
/** The failed-batch metrics, in catalogue order. */
export const failedBatchMetricNames = namesOf(failedBatchMetrics);

/** One completed batch's value of every completed-batch metric: what the coordinator produces. */
export type CompletedBatchValues = { readonly [N in CompletedBatchMetricName]: number };

type WithFlag<F extends string> = { [N in CompletedBatchMetricName]: Completed[N] extends Record<F, true> ? N : never }[CompletedBatchMetricName];

/** The metric fields of the listener's `BatchInfo`: some known at every event, the rest once the batch ran. */
export type BatchInfoMetricFields = { readonly [N in WithFlag<'inEveryEvent'> as Completed[N]['listenerField']]: number } & {
  readonly [N in Exclude<CompletedBatchMetricName, WithFlag<'inEveryEvent'>> as Completed[N]['listenerField']]?: number;
};

/** The metric fields the `Metrics` port is told about each completed batch. */
export type BatchMetricFields = { readonly [N in Exclude<CompletedBatchMetricName, WithFlag<'absentWhenZero'>> as Completed[N]['portField']]: number } & {
  readonly [N in WithFlag<'absentWhenZero'> as Completed[N]['portField']]?: number;
};

/** A completed batch's values as `BatchInfo` fields (a zero that is `absentWhenZero` left out). */
export function listenerFields(values: CompletedBatchValues): BatchInfoMetricFields {
  const fields: Record<string, number> = {};
  for (const name of completedBatchMetricNames) {
    const m: CompletedBatchMetric = completedBatchMetrics[name];
    if (!(m.absentWhenZero && values[name] === 0)) fields[m.listenerField] = values[name];
  }
  return fields as unknown as BatchInfoMetricFields;
}

/** A completed batch's values as the `Metrics` port's fields. */
export function portFields(values: CompletedBatchValues): BatchMetricFields {
  const fields: Record<string, number> = {};
  for (const name of completedBatchMetricNames) fields[completedBatchMetrics[name].portField] = values[name];
  return fields as unknown as BatchMetricFields;
}

/** A completed batch's value of a metric, read from the port's fields (0 when left out). */
export function portValue(fields: BatchMetricFields, name: CompletedBatchMetricName): number {
  return (fields as unknown as Record<string, number | undefined>)[completedBatchMetrics[name].portField] ?? 0;
}

/**
 * The local progress line's parts after the batch time, in order, each from one catalogue metric:
 * `1000 records  processed in 12 ms  scheduling delay 3 ms`.
 */
export const progressLineParts: readonly { readonly metric: CompletedBatchMetricName; readonly text: (value: number) => string }[] = [
  { metric: 'InputRecords', text: (v) => `${v} records` },
  { metric: 'ProcessingDelay', text: (v) => `processed in ${v} ms` },
  { metric: 'SchedulingDelay', text: (v) => `scheduling delay ${v} ms` },
];
