import { CfnOutput, Duration, Stack, Token } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type * as kinesis from 'aws-cdk-lib/aws-kinesis';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';
import * as cloudwatchActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import type * as sns from 'aws-cdk-lib/aws-sns';
import { metricCatalogue, metricDimensions, metricNamespace, type MetricName } from '../../lib/core/metrics.ts';
import { checkMetricPeriod } from './validate.ts';

// How a SluiceJob is watched: alarms on the metrics the coordinator writes (namespace `Sluice`,
// dimensions `Job` and `Stack`) and on the stream and functions, one dashboard, and the stack
// outputs scripts read.

/** Which job's metrics: its name, its deployment (the `Stack` dimension) and their resolution. */
export interface MetricSpec {
  readonly jobName: string;
  /** The deployment the functions are told (`SLUICE_DEPLOYMENT`): the stack's name. */
  readonly deployment: string;
  /** Whether the metrics are stored at 1-second resolution, so periods under a minute can read them. */
  readonly highResolution: boolean;
}

/** What the alarms and the dashboard watch. */
export interface Watched extends MetricSpec {
  /** The batch interval in ms: the delay alarm's threshold and the graphs' annotation. */
  readonly batchInterval: number;
  readonly stream: kinesis.IStream;
  readonly coordinator: lambda.Function;
  readonly worker: lambda.Function;
  /** How far behind the newest record the job may read before the input-lag alarm goes off. */
  readonly maxInputLag: Duration;
  /** Whether to make the alarms at all. @default true */
  readonly createAlarms?: boolean;
  /** Told when each alarm goes off and when it is OK again. */
  readonly alarmTopic?: sns.ITopic;
}

/** The job's alarms, as SluiceJob exposes them: each by name, and all in one list. */
export interface JobAlarms {
  readonly delayAlarm: cloudwatch.Alarm;
  readonly failedBatchAlarm: cloudwatch.Alarm;
  readonly coordinatorErrorAlarm: cloudwatch.Alarm;
  readonly stalledAlarm: cloudwatch.Alarm;
  readonly inputLagAlarm: cloudwatch.Alarm;
  readonly readThrottledAlarm: cloudwatch.Alarm;
  readonly writeThrottledAlarm: cloudwatch.Alarm;
}

/** The job's alarms (none with `createAlarms: false`) and dashboard. */
export interface JobMonitoring {
  readonly dashboard: cloudwatch.Dashboard;
  readonly alarms?: JobAlarms;
}

/**
 * A metric the coordinator writes for the job, named from the metric catalogue
 * (`lib/core/metrics.ts`): per minute, with the catalogue's statistic and label, unless `props`
 * say otherwise (a period under a minute needs high-resolution metrics). The job's dimensions are
 * kept whatever `props.dimensionsMap` adds.
 */
export function sluiceMetric(spec: MetricSpec, name: MetricName, props: cloudwatch.MetricOptions = {}): cloudwatch.Metric {
  checkMetricPeriod(props.period, spec.highResolution, `metric${name}`);
  const definition = metricCatalogue[name];
  return new cloudwatch.Metric({
    statistic: definition.statistic,
    period: Duration.minutes(1),
    label: definition.label,
    ...props,
    namespace: metricNamespace,
    metricName: name,
    dimensionsMap: { ...props.dimensionsMap, ...metricDimensions(spec.jobName, spec.deployment) },
  });
}

/** The alarms (unless turned off), then the dashboard: the input-lag metric is made once and shared by both. */
export function jobMonitoring(scope: Construct, watched: Watched): JobMonitoring {
  // How far behind the newest record of its stream the job reads, worst over a minute.
  const inputLag = watched.stream.metricGetRecordsIteratorAgeMilliseconds({ statistic: 'Maximum', period: Duration.minutes(1), label: 'Input lag (ms)' });
  const alarms = watched.createAlarms === false ? undefined : jobAlarms(scope, watched, inputLag);
  if (alarms && watched.alarmTopic) {
    const action = new cloudwatchActions.SnsAction(watched.alarmTopic);
    for (const alarm of Object.values(alarms)) {
      alarm.addAlarmAction(action);
      alarm.addOkAction(action);
    }
  }
  return { alarms, dashboard: jobDashboard(scope, watched, inputLag) };
}

/** The alarms: falling behind, a failed batch, a failed coordinator, no batch at all, input lag, the stream throttled. */
function jobAlarms(scope: Construct, watched: Watched, inputLag: cloudwatch.IMetric): JobAlarms {
  const { jobName, batchInterval, coordinator, stream } = watched;
  const metric = (name: MetricName, props?: cloudwatch.MetricOptions) => sluiceMetric(watched, name, props);
  const delayAlarm = new cloudwatch.Alarm(scope, 'TotalDelayAlarm', {
    alarmDescription: `Sluice job ${jobName} falls behind: the average total delay of its batches is above the batch interval (${batchInterval} ms) for 3 minutes`,
    metric: metric('TotalDelay'),
    threshold: batchInterval,
    comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
    evaluationPeriods: 3,
    datapointsToAlarm: 3,
    treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
  });
  const failedBatchAlarm = new cloudwatch.Alarm(scope, 'FailedBatchAlarm', {
    alarmDescription: `Sluice job ${jobName}: a batch failed (see the coordinator's log); the next run retries it from its lineage`,
    metric: metric('FailedBatches'),
    threshold: 1,
    comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    evaluationPeriods: 1,
    treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
  });
  const coordinatorErrorAlarm = new cloudwatch.Alarm(scope, 'CoordinatorErrorAlarm', {
    alarmDescription: `Sluice job ${jobName}: the coordinator function failed`,
    metric: coordinator.metricErrors({ period: Duration.minutes(1), statistic: 'Sum' }),
    threshold: 1,
    comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    evaluationPeriods: 1,
    treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
  });
  // Every batch, empty or not, writes a TotalDelay line: none for 5 minutes means no batch ran.
  const stalledAlarm = new cloudwatch.Alarm(scope, 'StalledAlarm', {
    alarmDescription: `Sluice job ${jobName} ran no batch for 5 minutes (paused, failing before its first batch, or not scheduled)`,
    metric: metric('TotalDelay', { statistic: 'SampleCount', label: 'Batches' }),
    threshold: 1,
    comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
    evaluationPeriods: 5,
    datapointsToAlarm: 5,
    treatMissingData: cloudwatch.TreatMissingData.BREACHING,
  });

  const maxLag = watched.maxInputLag;
  const inputLagAlarm = new cloudwatch.Alarm(scope, 'InputLagAlarm', {
    alarmDescription: `Sluice job ${jobName} reads more than ${maxLag.toHumanString()} behind the newest record of its stream (GetRecords iterator age): input arrives faster than it is processed`,
    metric: inputLag,
    threshold: maxLag.toMilliseconds(),
    comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
    evaluationPeriods: 3,
    datapointsToAlarm: 3,
    treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
  });
  // A shard serves 5 reads and 1 MB (or 1000 records) of writes a second. Now and then a throttled
  // request is retried and does no harm; throttling minute after minute does.
  const throttled = (id: string, what: string, m: cloudwatch.IMetric) =>
    new cloudwatch.Alarm(scope, id, {
      alarmDescription: `Sluice job ${jobName}: ${what}`,
      metric: m,
      threshold: 0,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 3,
      datapointsToAlarm: 3,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
  const readThrottledAlarm = throttled(
    'ReadThrottledAlarm',
    "reads of its stream were throttled (ReadProvisionedThroughputExceeded) in each of 3 minutes: another consumer shares the shards' 5 reads/s, or the job's batches read too often (batchInterval)",
    stream.metricReadProvisionedThroughputExceeded({ statistic: 'Sum', period: Duration.minutes(1), label: 'Throttled reads' }),
  );
  const writeThrottledAlarm = throttled(
    'WriteThrottledAlarm',
    'writes to its stream were throttled (WriteProvisionedThroughputExceeded) in each of 3 minutes: the producers need more shards (streamProps.shardCount) or an on-demand stream',
    stream.metricWriteProvisionedThroughputExceeded({ statistic: 'Sum', period: Duration.minutes(1), label: 'Throttled writes' }),
  );
  return { delayAlarm, failedBatchAlarm, coordinatorErrorAlarm, stalledAlarm, inputLagAlarm, readThrottledAlarm, writeThrottledAlarm };
}

/** Input rate, processing time, scheduling and total delay per batch, input lag, failures and workers. */
function jobDashboard(scope: Construct, watched: Watched, inputLag: cloudwatch.IMetric): cloudwatch.Dashboard {
  const { batchInterval, coordinator, worker, maxInputLag } = watched;
  const metric = (name: MetricName, statistic?: string, label?: string) => sluiceMetric(watched, name, { ...(statistic ? { statistic } : {}), ...(label ? { label } : {}) });
  const records = metric('InputRecords');
  /** Average and maximum of a per-batch time, against the batch interval. */
  const perBatch = (title: string, name: MetricName) =>
    new cloudwatch.GraphWidget({
      title,
      left: [metric(name, 'Average', 'Average'), metric(name, 'Maximum', 'Maximum')],
      leftAnnotations: [{ value: batchInterval, label: 'Batch interval' }],
      width: 12,
    });
  return new cloudwatch.Dashboard(scope, 'Dashboard', {
    dashboardName: dashboardName(scope),
    defaultInterval: Duration.hours(3),
    widgets: [
      [
        new cloudwatch.GraphWidget({
          title: 'Input rate (records/s)',
          left: [new cloudwatch.MathExpression({ expression: 'records / PERIOD(records)', usingMetrics: { records }, label: 'Records/s', period: Duration.minutes(1) })],
          width: 12,
        }),
        perBatch('Processing time per batch (ms)', 'ProcessingDelay'),
      ],
      [perBatch('Scheduling delay per batch (ms)', 'SchedulingDelay'), perBatch('Total delay per batch (ms)', 'TotalDelay')],
      [
        new cloudwatch.GraphWidget({
          title: 'Input lag: iterator age (ms)',
          left: [inputLag],
          leftAnnotations: [{ value: maxInputLag.toMilliseconds(), label: 'Alarm' }],
          width: 12,
        }),
      ],
      [
        new cloudwatch.GraphWidget({
          title: 'Failures',
          left: [metric('FailedBatches'), metric('DeadLetters'), coordinator.metricErrors({ label: 'Coordinator errors' })],
          width: 12,
        }),
        new cloudwatch.GraphWidget({
          title: 'Workers',
          left: [worker.metricInvocations({ label: 'Tasks' }), worker.metricErrors({ label: 'Errors' }), worker.metricThrottles({ label: 'Throttles' })],
          right: [worker.metricDuration({ statistic: 'p90', label: 'Duration p90 (ms)' })],
          width: 12,
        }),
      ],
    ],
  });
}

/** The names of what the job made or was given, for scripts (`npx sluice produce --stream <name>`, …). */
export interface Outputs {
  readonly jobName: string;
  readonly stream: kinesis.IStream;
  readonly stateBucket: s3.IBucket;
  readonly sinkBucket: s3.IBucket;
  readonly table: dynamodb.ITable;
  readonly coordinator: lambda.Function;
  readonly worker: lambda.Function;
}

/**
 * Outputs are named by the construct's path in the stack, without CDK's hash (`JobStreamName` for a
 * SluiceJob `Job`), so scripts can read them by a name that survives refactoring and is known before
 * the first synth; two jobs in one stack differ by their ids.
 */
export function jobOutputs(scope: Construct, o: Outputs): void {
  const outputPrefix = pathInStack(scope).join('');
  const output = (name: string, value: string, description: string) => {
    new CfnOutput(scope, name, { value, description }).overrideLogicalId(`${outputPrefix}${name}`);
  };
  output('JobName', o.jobName, "The job's name (its defineJob name): sluice status, ui and pause --stack read it");
  output('StreamName', o.stream.streamName, 'Kinesis stream the job reads (npx sluice produce --stream <name>)');
  output('StateBucketName', o.stateBucket.bucketName, `Lineage, shuffle and state blobs, under ${o.jobName}/`);
  output('SinkBucketName', o.sinkBucket.bucketName, "The job's output");
  output('TableName', o.table.tableName, 'Lease, checkpoint and batch records');
  output('CoordinatorFunctionName', o.coordinator.functionName, 'Runs a minute of batches per invocation');
  output('WorkerFunctionName', o.worker.functionName, 'Runs one task per invocation');
}

/** The ids from the stack (exclusive) down to `scope`, alphanumerics only: what logical ids may contain. */
function pathInStack(scope: Construct): string[] {
  const scopes = scope.node.scopes;
  return scopes.slice(scopes.indexOf(Stack.of(scope)) + 1).map((s) => s.node.id.replace(/[^A-Za-z0-9]/g, ''));
}

/**
 * `<stack name>-<path in the stack>`: dashboard names are unique per account and region, as stack
 * names are, so two stacks (or two jobs in one stack) never share a dashboard.
 */
function dashboardName(scope: Construct): string {
  const name = `${Stack.of(scope).stackName}-${pathInStack(scope).join('-')}`;
  // CloudWatch allows 255 characters; a stack name (128 at most) leaves the path the rest.
  if (!Token.isUnresolved(name) && name.length > 255) {
  throw new Error(`SluiceJob: the dashboard name ${name} is longer than CloudWatch's 255 characters: give the SluiceJob or its scopes shorter ids`);
  }
  return name;
}
