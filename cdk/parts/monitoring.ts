import { CfnOutput, Duration, Stack, Token } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type * as kinesis from 'aws-cdk-lib/aws-kinesis';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';
import { metricCatalogue, metricDimension, metricNamespace, type MetricName } from '../../lib/core/metrics.ts';

// How a SluiceJob is watched: alarms on the metrics the coordinator writes (namespace `Sluice`,
// dimension `Job`) and on the stream and functions, one dashboard, and the stack outputs scripts read.

/** What the alarms and the dashboard watch. */
export interface Watched {
  readonly jobName: string;
  /** The batch interval in ms: the delay alarm's threshold and the graphs' annotation. */
  readonly batchInterval: number;
  readonly stream: kinesis.IStream;
  readonly coordinator: lambda.Function;
  readonly worker: lambda.Function;
  /** How far behind the newest record the job may read before the input-lag alarm goes off. */
  readonly maxInputLag: Duration;
}

/** The job's alarms and dashboard, as SluiceJob exposes them. */
export interface JobMonitoring {
  readonly dashboard: cloudwatch.Dashboard;
  readonly delayAlarm: cloudwatch.Alarm;
  readonly failedBatchAlarm: cloudwatch.Alarm;
  readonly coordinatorErrorAlarm: cloudwatch.Alarm;
  readonly stalledAlarm: cloudwatch.Alarm;
  readonly inputLagAlarm: cloudwatch.Alarm;
}

/**
 * A per-minute metric the coordinator writes for the job, named from the metric catalogue
 * (`lib/core/metrics.ts`): its statistic and label are the catalogue's unless a graph needs others.
 */
const sluiceMetric = (jobName: string, name: MetricName, statistic: string = metricCatalogue[name].statistic, label = metricCatalogue[name].label) =>
  new cloudwatch.Metric({ namespace: metricNamespace, metricName: name, dimensionsMap: { [metricDimension]: jobName }, statistic, period: Duration.minutes(1), label });

/** The alarms, then the dashboard: the input-lag metric is made once and shared by both. */
export function jobMonitoring(scope: Construct, watched: Watched): JobMonitoring {
  // How far behind the newest record of its stream the job reads, worst over a minute.
  const inputLag = watched.stream.metricGetRecordsIteratorAgeMilliseconds({ statistic: 'Maximum', period: Duration.minutes(1), label: 'Input lag (ms)' });
  const alarms = jobAlarms(scope, watched, inputLag);
  return { ...alarms, dashboard: jobDashboard(scope, watched, inputLag) };
}

/** The alarms: falling behind, a failed batch, a failed coordinator, no batch at all, input lag. */
function jobAlarms(scope: Construct, watched: Watched, inputLag: cloudwatch.IMetric): Omit<JobMonitoring, 'dashboard'> {
  const { jobName, batchInterval, coordinator } = watched;
  const metric = (name: MetricName, statistic?: string, label?: string) => sluiceMetric(jobName, name, statistic, label);
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
    metric: metric('TotalDelay', 'SampleCount', 'Batches'),
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
  return { delayAlarm, failedBatchAlarm, coordinatorErrorAlarm, stalledAlarm, inputLagAlarm };
}

/** Input rate, processing time, scheduling and total delay per batch, input lag, failures and workers. */
function jobDashboard(scope: Construct, watched: Watched, inputLag: cloudwatch.IMetric): cloudwatch.Dashboard {
  const { jobName, batchInterval, coordinator, worker, maxInputLag } = watched;
  const metric = (name: MetricName, statistic?: string, label?: string) => sluiceMetric(jobName, name, statistic, label);
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
