import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Annotations as CoreAnnotations, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as kinesis from 'aws-cdk-lib/aws-kinesis';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { CURRENTLY_RECOMMENDED_FLAGS } from 'aws-cdk-lib/cx-api';
import { Construct } from 'constructs';
import { describe, expect, it, vi } from 'vitest';
import { SluiceJob, type SluiceJobProps } from '../cdk/sluiceJob.ts';
import { emfMetrics } from '../lib/aws/emfMetrics.ts';
import { sourceCatalogue } from '../lib/core/sources.ts';
import { projectContext } from './helpers/cdkContext.ts';
import {
  acknowledgments,
  asList,
  cfn,
  dashboardBody,
  type Grants,
  grantsOf,
  identityStatements,
  inventory,
  leastPrivilegeProblems,
  nagSynth,
  type NagResult,
  only,
  type Resource,
  sortedGrants,
  testApps,
  text,
  wildcardResources,
} from './helpers/cdkTemplate.ts';

// The SluiceJob construct (cdk/sluiceJob.ts) and the CDK app (cdk/app.ts), synthesized offline:
// the template resource by resource, least privilege, invalid props, cdk-nag, and `cdk synth`.
// Each SluiceJob loads its job file in a child process (about a second) unless the same file was
// loaded with the same environment before in this process: the tests share stacks where they can.

const ROOT = join(import.meta.dirname, '..');
const WORDCOUNT = join(ROOT, 'examples/kinesis-wordcount.ts');
const fixture = (name: string) => join(ROOT, 'infra-test/fixtures', name);

/** An app with the project's feature flags (with `nag`, checked by cdk-nag's AwsSolutions pack on synth). */
const newApp = testApps();

interface Deployment {
  readonly stack: Stack;
  readonly job: SluiceJob;
  readonly template: Template;
}

/** A stack `S` holding one SluiceJob `Job` (the Kinesis word count unless `entry` says otherwise). */
function deploy(props: Partial<SluiceJobProps> | ((stack: Stack) => Partial<SluiceJobProps>) = {}): Deployment {
  const stack = new Stack(newApp(), 'S');
  const job = new SluiceJob(stack, 'Job', { entry: WORDCOUNT, ...(typeof props === 'function' ? props(stack) : props) });
  return { stack, job, template: Template.fromStack(stack) };
}

/** Builds a deployment on first use only: several tests read the same one. */
function once(make: () => Deployment): () => Deployment {
  let made: Deployment | undefined;
  return () => (made ??= make());
}

/** A stream, two buckets and a table made elsewhere, named `clicks`, `shared-sluice-state`, `clicks-out` and `sluice-meta`. */
const existingResources = (stack: Stack): Partial<SluiceJobProps> => ({
  existingStream: kinesis.Stream.fromStreamArn(stack, 'Clicks', 'arn:aws:kinesis:eu-west-1:123456789012:stream/clicks'),
  existingStateBucket: s3.Bucket.fromBucketName(stack, 'SharedState', 'shared-sluice-state'),
  existingSinkBucket: s3.Bucket.fromBucketName(stack, 'ClicksOut', 'clicks-out'),
  existingTable: dynamodb.Table.fromTableName(stack, 'Meta', 'sluice-meta'),
});

const defaults = once(() => deploy());
const existing = once(() => deploy(existingResources));
const destroyed = once(() => deploy({ removalPolicy: RemovalPolicy.DESTROY }));

/** The Sluice metrics the dashboard graphs, as `Sluice/<name> Job=<job>,Stack=<stack>`, sorted. */
function dashboardSluiceMetrics(template: Template): string[] {
  const metrics = dashboardBody(template).widgets.flatMap((w) => w.properties.metrics.filter((m) => m[0] === 'Sluice'));
  return [...new Set(metrics.map((m) => `Sluice/${String(m[1])} ${String(m[2])}=${String(m[3])},${String(m[4])}=${String(m[5])}`))].sort();
}

// ---------------------------------------------------------------------------------------------
// IAM (the statements are read by helpers/cdkTemplate.ts)
// ---------------------------------------------------------------------------------------------

/** `<RoleLogicalId>` of the role EventBridge Scheduler assumes to invoke the coordinator. */
function schedulerRole(template: Template): string {
  return text({ Ref: (only(template, 'AWS::Scheduler::Schedule').Properties!.Target.RoleArn['Fn::GetAtt'] as string[])[0] });
}

/** `<RoleLogicalId>` of a function's role. */
const roleOf = (stack: Stack, fn: lambda.Function) => cfn(stack, fn.role!.roleName);

/** What the data-plane grants of both functions are for a job's stream, state prefix and sink. */
/**
 * What a function may do with the data. Both read records, read and write blobs under the job's
 * prefix (listing the whole state bucket, so a missing blob is a 404) and write the sink; only the
 * coordinator lists shards (the cut) and deletes blobs (cleanup).
 */
function dataGrants(stream: string, state: string, sink: string, jobName: string, kind: 'coordinator' | 'worker'): Grants {
  const prefix = `${state}/${jobName}/*`;
  return {
    'kinesis:GetRecords': [stream],
    'kinesis:GetShardIterator': [stream],
    ...(kind === 'coordinator' ? { 'kinesis:ListShards': [stream], 's3:DeleteObject': [prefix] } : {}),
    's3:GetObject': [prefix],
    's3:ListBucket': [state],
    's3:PutObject': [prefix, `${sink}/*`],
  };
}

const logGrants = (group: string): Grants => ({ 'logs:CreateLogStream': [group, `${group}:log-stream:*`], 'logs:PutLogEvents': [group, `${group}:log-stream:*`] });

const logGroup = (job: SluiceJob, id: 'WorkerLogs' | 'CoordinatorLogs') => job.node.findChild(id) as logs.LogGroup;

/**
 * The only resource patterns with a wildcard a deployment may grant, as `<Role> pattern`, sorted:
 * the end of the job's prefix in the state bucket, the sink bucket's objects, each function's own
 * log streams, and the coordinator's versions for the scheduler.
 */
function allowedWildcards({ stack, job, template }: Deployment): string[] {
  const [worker, coordinator] = [roleOf(stack, job.worker), roleOf(stack, job.coordinator)];
  const state = `${cfn(stack, job.stateBucket.bucketArn)}/${job.jobName}/*`;
  const sink = `${cfn(stack, job.sinkBucket.bucketArn)}/*`;
  return [
    `${worker} ${state}`,
    `${worker} ${sink}`,
    `${worker} ${cfn(stack, logGroup(job, 'WorkerLogs').logGroupArn)}:log-stream:*`,
    `${coordinator} ${state}`,
    `${coordinator} ${sink}`,
    `${coordinator} ${cfn(stack, logGroup(job, 'CoordinatorLogs').logGroupArn)}:log-stream:*`,
    `${schedulerRole(template)} ${cfn(stack, job.coordinator.functionArn)}:*`,
  ].sort();
}

// ---------------------------------------------------------------------------------------------
// cdk-nag
// ---------------------------------------------------------------------------------------------


// =============================================================================================

describe('SluiceJob: the default deployment of the Kinesis word count', { timeout: 60_000 }, () => {
  it('creates one stream, two buckets, one table, two functions, a schedule, seven alarms and a dashboard, and nothing else', () => {
    const { template } = defaults();

    expect(inventory(template)).toEqual({
      'AWS::Kinesis::Stream': 1,
      'AWS::S3::Bucket': 2,
      'AWS::S3::BucketPolicy': 2,
      'AWS::DynamoDB::Table': 1,
      'AWS::Lambda::Function': 2,
      'AWS::Lambda::EventInvokeConfig': 1,
      'AWS::Logs::LogGroup': 2,
      'AWS::IAM::Role': 3,
      'AWS::IAM::Policy': 3,
      'AWS::Scheduler::Schedule': 1,
      'AWS::CloudWatch::Alarm': 7,
      'AWS::CloudWatch::Dashboard': 1,
    });
  });

  it('learns the name and batch interval from the job file, and has nothing to warn about', () => {
    const { stack, job } = defaults();

    expect(job.jobName).toBe('kinesis-wordcount');
    expect(job.batchIntervalMs).toBe(1000);
    Annotations.fromStack(stack).hasNoWarning('*', Match.anyValue());
  });

  it('the stream: provisioned with one shard, records kept 24 h, encrypted with the AWS managed key', () => {
    const { template } = defaults();

    template.resourceCountIs('AWS::Kinesis::Stream', 1);
    template.hasResourceProperties('AWS::Kinesis::Stream', {
      StreamModeDetails: { StreamMode: 'PROVISIONED' },
      ShardCount: 1,
      RetentionPeriodHours: 24,
      StreamEncryption: { EncryptionType: 'KMS', KeyId: 'alias/aws/kinesis' },
    });
  });

  it('the state bucket: encrypted, private, SSL only; batch blobs under <job>/batch/ expire after 3 days, dead letters under <job>/dead-letters/ after 14', () => {
    const { stack, job, template } = defaults();
    const bucket = cfn(stack, job.stateBucket.bucketName);

    template.hasResourceProperties('AWS::S3::Bucket', {
      BucketEncryption: { ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }] },
      PublicAccessBlockConfiguration: { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true },
      LifecycleConfiguration: {
        Rules: [
          { Id: 'expire-batch-data', Prefix: 'kinesis-wordcount/batch/', ExpirationInDays: 3, AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 }, Status: 'Enabled' },
          { Id: 'expire-dead-letters', Prefix: 'kinesis-wordcount/dead-letters/', ExpirationInDays: 14, Status: 'Enabled' },
          { Id: 'expire-history', Prefix: 'kinesis-wordcount/history/', ExpirationInDays: 30, Status: 'Enabled' },
        ],
      },
    });
    const policy = Object.values(template.findResources('AWS::S3::BucketPolicy') as Record<string, Resource>).find((p) => text(p.Properties!.Bucket) === bucket);
    expect(policy?.Properties!.PolicyDocument.Statement).toEqual([
      {
        Effect: 'Deny',
        Principal: { AWS: '*' },
        Action: 's3:*',
        Condition: { Bool: { 'aws:SecureTransport': 'false' } },
        Resource: [stack.resolve(job.stateBucket.bucketArn), stack.resolve(job.stateBucket.arnForObjects('*'))],
      },
    ]);
  });

  it('the sink bucket: encrypted, private, SSL only, and nothing in it expires', () => {
    const { stack, job, template } = defaults();
    const sink = cfn(stack, job.sinkBucket.bucketName);
    const [id, bucket] = Object.entries(template.findResources('AWS::S3::Bucket') as Record<string, Resource>).find(([logicalId]) => `<${logicalId}>` === sink)!;

    expect(bucket.Properties).toEqual({
      BucketEncryption: { ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }] },
      PublicAccessBlockConfiguration: { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true },
    });
    template.hasResourceProperties('AWS::S3::BucketPolicy', {
      Bucket: { Ref: id },
      PolicyDocument: { Statement: [Match.objectLike({ Effect: 'Deny', Action: 's3:*', Condition: { Bool: { 'aws:SecureTransport': 'false' } } })] },
    });
  });

  it('the table: on demand, string keys pk and sk, point-in-time recovery', () => {
    const { template } = defaults();

    template.resourceCountIs('AWS::DynamoDB::Table', 1);
    template.hasResourceProperties('AWS::DynamoDB::Table', {
      BillingMode: 'PAY_PER_REQUEST',
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
      AttributeDefinitions: [
        { AttributeName: 'pk', AttributeType: 'S' },
        { AttributeName: 'sk', AttributeType: 'S' },
      ],
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
    });
  });

  it('the coordinator: Node.js 22 on arm64, 75 s, 256 MB, JSON logs, told where the stream, buckets, table and worker are and its deployment', () => {
    const { stack, job, template } = defaults();

    template.hasResourceProperties('AWS::Lambda::Function', {
      Handler: 'index.coordinator',
      Runtime: 'nodejs22.x',
      Architectures: ['arm64'],
      Timeout: 75,
      MemorySize: 256,
      Role: stack.resolve(job.coordinator.role!.roleArn),
      LoggingConfig: { LogFormat: 'JSON', ApplicationLogLevel: 'INFO', SystemLogLevel: 'INFO', LogGroup: stack.resolve(logGroup(job, 'CoordinatorLogs').logGroupName) },
      Environment: {
        Variables: Match.objectEquals({
          SLUICE_STREAM: stack.resolve(job.stream.streamName),
          SLUICE_SINK_BUCKET: stack.resolve(job.sinkBucket.bucketName),
          SLUICE_STATE_BUCKET: stack.resolve(job.stateBucket.bucketName),
          SLUICE_TABLE: stack.resolve(job.table.tableName),
          SLUICE_WORKER_FUNCTION: stack.resolve(job.worker.functionName),
          SLUICE_DEPLOYMENT: 'S',
        }),
      },
    });
  });

  it('the worker: a bundle of its own, Node.js 22 on arm64, 1024 MB, 5 minutes a task, JSON logs', () => {
    const { stack, job, template } = defaults();

    template.resourceCountIs('AWS::Lambda::Function', 2);
    template.hasResourceProperties('AWS::Lambda::Function', {
      Handler: 'index.worker',
      Runtime: 'nodejs22.x',
      Architectures: ['arm64'],
      Timeout: 300,
      MemorySize: 1024,
      Role: stack.resolve(job.worker.role!.roleArn),
      LoggingConfig: { LogFormat: 'JSON', ApplicationLogLevel: 'INFO', SystemLogLevel: 'INFO', LogGroup: stack.resolve(logGroup(job, 'WorkerLogs').logGroupName) },
      Environment: {
        Variables: Match.objectEquals({
          SLUICE_STREAM: stack.resolve(job.stream.streamName),
          SLUICE_SINK_BUCKET: stack.resolve(job.sinkBucket.bucketName),
          SLUICE_STATE_BUCKET: stack.resolve(job.stateBucket.bucketName),
          SLUICE_TABLE: stack.resolve(job.table.tableName),
          SLUICE_DEPLOYMENT: 'S',
        }),
      },
    });
    // Each function's code is its own asset (cdk/bundle.ts): the worker's holds no coordinator code.
    const code = Object.values(template.findResources('AWS::Lambda::Function') as Record<string, Resource>).map((f) => f.Properties!.Code as { S3Key: unknown });
    expect(code).toHaveLength(2);
    expect(code[0].S3Key).not.toEqual(code[1].S3Key);
  });

  it('each function logs to a log group of its own, kept a month', () => {
    const { stack, job, template } = defaults();

    template.resourceCountIs('AWS::Logs::LogGroup', 2);
    template.allResourcesProperties('AWS::Logs::LogGroup', { RetentionInDays: 30 });
    template.hasResourceProperties('AWS::Lambda::Function', { Handler: 'index.worker', LoggingConfig: { LogGroup: stack.resolve(logGroup(job, 'WorkerLogs').logGroupName) } });
    template.hasResourceProperties('AWS::Lambda::Function', { Handler: 'index.coordinator', LoggingConfig: { LogGroup: stack.resolve(logGroup(job, 'CoordinatorLogs').logGroupName) } });
  });

  it('EventBridge Scheduler invokes the coordinator every minute, and a failed run is retried by no one', () => {
    const { stack, job, template } = defaults();

    template.hasResourceProperties('AWS::Scheduler::Schedule', {
      ScheduleExpression: 'rate(1 minute)',
      State: 'ENABLED',
      FlexibleTimeWindow: { Mode: 'OFF' },
      Target: { Arn: stack.resolve(job.coordinator.functionArn), RetryPolicy: { MaximumRetryAttempts: 0, MaximumEventAgeInSeconds: 60 } },
    });
    template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', { FunctionName: stack.resolve(job.coordinator.functionName), MaximumRetryAttempts: 0 });
  });

  it('alarms: average total delay above the batch interval for 3 minutes, a failed batch, a coordinator error, no batch for 5 minutes, input lag over 5 minutes, the stream throttled', () => {
    const { stack, job, template } = defaults();
    const sluiceMetric = (name: string, stat: string) =>
      Match.objectLike({
        MetricStat: {
          Metric: {
            Namespace: 'Sluice',
            MetricName: name,
            Dimensions: Match.arrayEquals([
              { Name: 'Job', Value: 'kinesis-wordcount' },
              { Name: 'Stack', Value: 'S' },
            ]),
          },
          Stat: stat,
          Period: 60,
        },
      });

    template.resourceCountIs('AWS::CloudWatch::Alarm', 7);
    expect(job.alarms).toHaveLength(7);
    for (const [name, stat] of [
      ['ReadProvisionedThroughputExceeded', 'Sum'],
      ['WriteProvisionedThroughputExceeded', 'Sum'],
    ]) {
      template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        Metrics: [Match.objectLike({ MetricStat: { Metric: { Namespace: 'AWS/Kinesis', MetricName: name, Dimensions: [{ Name: 'StreamName', Value: stack.resolve(job.stream.streamName) }] }, Stat: stat, Period: 60 } })],
        ComparisonOperator: 'GreaterThanThreshold',
        Threshold: 0,
        EvaluationPeriods: 3,
        DatapointsToAlarm: 3,
        TreatMissingData: 'notBreaching',
      });
    }
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Metrics: [
        Match.objectLike({
          MetricStat: {
            Metric: { Namespace: 'AWS/Kinesis', MetricName: 'GetRecords.IteratorAgeMilliseconds', Dimensions: [{ Name: 'StreamName', Value: stack.resolve(job.stream.streamName) }] },
            Stat: 'Maximum',
            Period: 60,
          },
        }),
      ],
      ComparisonOperator: 'GreaterThanThreshold',
      Threshold: 300_000,
      EvaluationPeriods: 3,
      DatapointsToAlarm: 3,
      TreatMissingData: 'notBreaching',
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Metrics: [sluiceMetric('TotalDelay', 'SampleCount')],
      ComparisonOperator: 'LessThanThreshold',
      Threshold: 1,
      EvaluationPeriods: 5,
      DatapointsToAlarm: 5,
      TreatMissingData: 'breaching',
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Metrics: [sluiceMetric('TotalDelay', 'Average')],
      ComparisonOperator: 'GreaterThanThreshold',
      Threshold: 1000,
      EvaluationPeriods: 3,
      DatapointsToAlarm: 3,
      TreatMissingData: 'notBreaching',
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Metrics: [sluiceMetric('FailedBatches', 'Sum')],
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      Threshold: 1,
      EvaluationPeriods: 1,
      TreatMissingData: 'notBreaching',
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/Lambda',
      MetricName: 'Errors',
      Dimensions: [{ Name: 'FunctionName', Value: stack.resolve(job.coordinator.functionName) }],
      Statistic: 'Sum',
      Period: 60,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      Threshold: 1,
      TreatMissingData: 'notBreaching',
    });
  });

  it('a dashboard of input rate, processing, scheduling and total delay, failures and workers', () => {
    const { template } = defaults();
    const body = dashboardBody(template);

    expect(body.widgets.map((w) => w.properties.title)).toEqual([
      'Input rate (records/s)',
      'Processing time per batch (ms)',
      'Scheduling delay per batch (ms)',
      'Total delay per batch (ms)',
      'Input lag: iterator age (ms)',
      'Failures',
      'Workers',
    ]);
    expect(dashboardSluiceMetrics(template)).toEqual(
      ['DeadLetters', 'FailedBatches', 'InputRecords', 'ProcessingDelay', 'SchedulingDelay', 'TotalDelay'].map((m) => `Sluice/${m} Job=kinesis-wordcount,Stack=S`),
    );
  });

  it('the alarms and the dashboard watch metrics the coordinator emits (namespace Sluice, dimensions Job and Stack)', () => {
    // Prepare: the coordinator as deployed, told its deployment (the stack's name) by SLUICE_DEPLOYMENT.
    const { template } = defaults();
    const lines: string[] = [];
    const metrics = emfMetrics((line) => lines.push(line), { deployment: 'S' });

    // Act: what the coordinator logs for a batch done and a batch failed (CloudWatch turns it into metrics).
    metrics.batch({ job: 'kinesis-wordcount', batchTime: 60_000, inputRecords: 5, schedulingDelayMs: 1, processingDelayMs: 2, totalDelayMs: 3 });
    metrics.batchFailed!({ job: 'kinesis-wordcount', batchTime: 61_000 });

    // Assess
    const emitted = new Set(
      lines.flatMap((l) => {
        const emf = JSON.parse(l) as { _aws: { CloudWatchMetrics: { Namespace: string; Dimensions: string[][]; Metrics: { Name: string }[] }[] } } & Record<string, string>;
        return emf._aws.CloudWatchMetrics.flatMap((d) => d.Metrics.map((m) => `${d.Namespace}/${m.Name} ${d.Dimensions[0].map((name) => `${name}=${emf[name]}`).join()}`));
      }),
    );

    const watched = Object.values(template.findResources('AWS::CloudWatch::Alarm') as Record<string, Resource>)
      .flatMap((a) => asList<{ MetricStat: { Metric: { Namespace: string; MetricName: string; Dimensions: { Name: string; Value: string }[] } } }>(a.Properties!.Metrics))
      .map(({ MetricStat: { Metric: m } }) => `${m.Namespace}/${m.MetricName} ${m.Dimensions.map((d) => `${d.Name}=${d.Value}`).join()}`)
      .filter((m) => m.startsWith('Sluice/'));
    expect(watched).toHaveLength(3);
    for (const metric of [...watched, ...dashboardSluiceMetrics(template)]) expect(emitted).toContain(metric);
  });

  it("outputs the job's name and the names of the stream, buckets, table and functions, named by the construct id without a hash (JobStreamName)", () => {
    const { stack, job, template } = defaults();
    const outputs: Record<string, string> = {
      JobName: job.jobName,
      StreamName: job.stream.streamName,
      StateBucketName: job.stateBucket.bucketName,
      SinkBucketName: job.sinkBucket.bucketName,
      TableName: job.table.tableName,
      CoordinatorFunctionName: job.coordinator.functionName,
      WorkerFunctionName: job.worker.functionName,
    };

    expect(Object.keys(template.findOutputs('*')).sort()).toEqual(Object.keys(outputs).map((name) => `${job.node.id}${name}`).sort());
    for (const [name, value] of Object.entries(outputs)) template.hasOutput(`${job.node.id}${name}`, { Value: stack.resolve(value) });
  });

  it('names the dashboard after the stack and the construct id', () => {
    const { stack, job, template } = defaults();

    expect(only(template, 'AWS::CloudWatch::Dashboard').Properties!.DashboardName).toBe(`${stack.stackName}-${job.node.id}`);
  });

  it('keeps the stream, buckets, table and logs when the stack is deleted', () => {
    const { template } = defaults();

    for (const type of ['AWS::Kinesis::Stream', 'AWS::S3::Bucket', 'AWS::DynamoDB::Table', 'AWS::Logs::LogGroup']) {
      template.allResources(type, { DeletionPolicy: 'Retain', UpdateReplacePolicy: 'Retain' });
    }
    template.resourceCountIs('Custom::S3AutoDeleteObjects', 0);
  });
});

describe('SluiceJob: two jobs in one stack', { timeout: 60_000 }, () => {
  it('each has outputs and a dashboard of its own, named by its path in the stack (alphanumerics only)', () => {
    // Prepare: one job at the top of the stack, another (of another name) in a construct whose id has a character logical ids may not hold.
    const stack = new Stack(newApp(), 'Analytics');
    const team = new Construct(stack, 'Team-A');

    // Act
    new SluiceJob(stack, 'Clicks', { entry: WORDCOUNT });
    new SluiceJob(team, 'Views', { entry: join(ROOT, 'infra-test/fixtures/stateful-aws-job.ts') });
    const template = Template.fromStack(stack);

    // Assess
    const names = ['JobName', 'StreamName', 'StateBucketName', 'SinkBucketName', 'TableName', 'CoordinatorFunctionName', 'WorkerFunctionName'];
    expect(Object.keys(template.findOutputs('*')).sort()).toEqual([...names.map((n) => `Clicks${n}`), ...names.map((n) => `TeamAViews${n}`)].sort());
    const dashboards = Object.values(template.findResources('AWS::CloudWatch::Dashboard')).map((d) => (d as Resource).Properties!.DashboardName as string);
    expect(dashboards.sort()).toEqual([`${stack.stackName}-Clicks`, `${stack.stackName}-TeamA-Views`]);
  });
});

describe('SluiceJob props', { timeout: 60_000 }, () => {
  it('streamProps: a provisioned stream of 4 shards, with a name and 48 h of retention', () => {
    const { template } = deploy({ streamProps: { shardCount: 4, streamName: 'clicks', retentionPeriod: Duration.hours(48) } });

    template.hasResourceProperties('AWS::Kinesis::Stream', { Name: 'clicks', ShardCount: 4, RetentionPeriodHours: 48, StreamModeDetails: { StreamMode: 'PROVISIONED' } });
  });

  it('streamProps: an on-demand stream has no shard count', () => {
    const { template } = deploy({ streamProps: { mode: 'on-demand' } });
    const stream = only(template, 'AWS::Kinesis::Stream');

    expect(stream.Properties).toEqual({
      StreamModeDetails: { StreamMode: 'ON_DEMAND' },
      RetentionPeriodHours: 24,
      StreamEncryption: { EncryptionType: 'KMS', KeyId: 'alias/aws/kinesis' },
    });
  });

  describe('a tuned job: 5 s batches, dead letters, empty batches written, 8 tasks at once, bigger functions, an extra variable', () => {
    const tuned = once(() =>
      deploy({
        batchInterval: '5s',
        onRecordError: 'dead-letter',
        writeEmptyBatches: true,
        maxConcurrency: 8,
        workerMemoryMB: 2048,
        workerTimeout: Duration.minutes(10),
        coordinatorMemoryMB: 1024,
        environment: { WORDCOUNT_MIN_LENGTH: '3' },
      }),
    );

    it('both functions get the settings as environment variables', () => {
      const { job, template } = tuned();
      const settings = { SLUICE_BATCH_INTERVAL: '5000', SLUICE_ON_RECORD_ERROR: 'dead-letter', SLUICE_WRITE_EMPTY_BATCHES: 'true', SLUICE_CONCURRENCY: '8', WORDCOUNT_MIN_LENGTH: '3' };

      expect(job.batchIntervalMs).toBe(5000);
      template.allResourcesProperties('AWS::Lambda::Function', { Environment: { Variables: Match.objectLike(settings) } });
    });

    it('the worker gets 2048 MB and 10 minutes a task; the coordinator 1024 MB and still 75 s', () => {
      const { template } = tuned();

      template.hasResourceProperties('AWS::Lambda::Function', { Handler: 'index.worker', MemorySize: 2048, Timeout: 600 });
      template.hasResourceProperties('AWS::Lambda::Function', { Handler: 'index.coordinator', MemorySize: 1024, Timeout: 75 });
    });

    it('the delay alarm and the dashboard measure against 5000 ms', () => {
      const { template } = tuned();

      template.hasResourceProperties('AWS::CloudWatch::Alarm', { Threshold: 5000, Metrics: [Match.objectLike({ MetricStat: Match.objectLike({ Metric: Match.objectLike({ MetricName: 'TotalDelay' }) }) })] });
      expect(text(only(template, 'AWS::CloudWatch::Dashboard').Properties!.DashboardBody)).toContain('{"value":5000,"label":"Batch interval","yAxis":"left"}');
    });
  });

  it('batchInterval lets a job tuned for 400 ms locally run at 1 s on AWS', () => {
    const { job, template } = deploy({ entry: fixture('fast-job.ts'), batchInterval: '1s' });

    expect(job.jobName).toBe('fast-job');
    expect(job.batchIntervalMs).toBe(1000);
    template.allResourcesProperties('AWS::Lambda::Function', { Environment: { Variables: Match.objectLike({ SLUICE_BATCH_INTERVAL: '1000' }) } });
  });

  it("ignores the synth machine's own SLUICE_BATCH_INTERVAL: the functions would not get it", () => {
    // Prepare: a shell left configured for a local run (the extra variable makes the job load afresh).
    vi.stubEnv('SLUICE_BATCH_INTERVAL', '5000');
    try {
      // Act
      const { job, template } = deploy({ environment: { FROM_THE_SHELL_TEST: '1' } });

      // Assess
      expect(job.batchIntervalMs).toBe(1000);
      template.hasResourceProperties('AWS::CloudWatch::Alarm', { Threshold: 1000, ComparisonOperator: 'GreaterThanThreshold' });
      template.allResourcesProperties('AWS::Lambda::Function', { Environment: { Variables: Match.objectLike({ SLUICE_BATCH_INTERVAL: Match.absent() }) } });
    } finally {
      vi.unstubAllEnvs();
    }
  });

  it('shuffleExpiration: batch blobs left behind expire after 7 days instead of 3', () => {
    const { template } = deploy({ shuffleExpiration: Duration.days(7) });

    template.hasResourceProperties('AWS::S3::Bucket', {
      LifecycleConfiguration: { Rules: [Match.objectLike({ Prefix: 'kinesis-wordcount/batch/', ExpirationInDays: 7 }), Match.objectLike({ Prefix: 'kinesis-wordcount/dead-letters/', ExpirationInDays: 14 }), Match.objectLike({ Prefix: 'kinesis-wordcount/history/', ExpirationInDays: 30 })] },
    });
  });

  it('deadLetterRetention: dead letters expire after 30 days instead of 14; batch blobs still after 3', () => {
    const { template } = deploy({ deadLetterRetention: Duration.days(30) });

    template.hasResourceProperties('AWS::S3::Bucket', {
      LifecycleConfiguration: {
        Rules: [
          Match.objectLike({ Id: 'expire-batch-data', ExpirationInDays: 3 }),
          { Id: 'expire-dead-letters', Prefix: 'kinesis-wordcount/dead-letters/', ExpirationInDays: 30, Status: 'Enabled' },
          Match.objectLike({ Id: 'expire-history', ExpirationInDays: 30 }),
        ],
      },
    });
  });

  it('historyRetention: the batch history (what sluice ui --stack shows) expires after 7 days instead of 30', () => {
    const { template } = deploy({ historyRetention: Duration.days(7) });

    template.hasResourceProperties('AWS::S3::Bucket', {
      LifecycleConfiguration: { Rules: Match.arrayWith([{ Id: 'expire-history', Prefix: 'kinesis-wordcount/history/', ExpirationInDays: 7, Status: 'Enabled' }]) },
    });
  });

  it('deadLetterRetention: a whole number of days given in hours is taken (48 hours expire after 2 days)', () => {
    const { template } = deploy({ deadLetterRetention: Duration.hours(48) });

    template.hasResourceProperties('AWS::S3::Bucket', { LifecycleConfiguration: { Rules: Match.arrayWith([Match.objectLike({ Prefix: 'kinesis-wordcount/dead-letters/', ExpirationInDays: 2 })]) } });
  });

  it('maxInputLag: the input-lag alarm goes off past 2 minutes; with an existing stream it watches that stream', () => {
    const { template } = deploy({ maxInputLag: Duration.minutes(2) });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', { Threshold: 120_000, Metrics: [Match.objectLike({ MetricStat: Match.objectLike({ Metric: Match.objectLike({ MetricName: 'GetRecords.IteratorAgeMilliseconds' }) }) })] });
    existing().template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Metrics: [Match.objectLike({ MetricStat: Match.objectLike({ Metric: Match.objectLike({ MetricName: 'GetRecords.IteratorAgeMilliseconds', Dimensions: [{ Name: 'StreamName', Value: 'clicks' }] }) }) })],
    });
  });

  it('sourceMaps: both functions load their source maps (NODE_OPTIONS=--enable-source-maps), which they do not by default', () => {
    const { template } = deploy({ sourceMaps: true });

    template.allResourcesProperties('AWS::Lambda::Function', { Environment: { Variables: Match.objectLike({ NODE_OPTIONS: '--enable-source-maps' }) } });
    defaults().template.allResourcesProperties('AWS::Lambda::Function', { Environment: { Variables: Match.objectLike({ NODE_OPTIONS: Match.absent() }) } });
    // Only the variable changes: the code is the same asset either way.
    const keys = (t: Template) => Object.values(t.findResources('AWS::Lambda::Function') as Record<string, Resource>).map((f) => (f.Properties!.Code as { S3Key: unknown }).S3Key);
    expect(keys(template)).toEqual(keys(defaults().template));
  });

  it('enabled: false deploys the schedule paused', () => {
    const { template } = deploy({ enabled: false });

    template.hasResourceProperties('AWS::Scheduler::Schedule', { State: 'DISABLED', ScheduleExpression: 'rate(1 minute)' });
  });

  it('removalPolicy DESTROY deletes the stream, table and logs, and empties and deletes the buckets', () => {
    const { stack, job, template } = destroyed();

    for (const type of ['AWS::Kinesis::Stream', 'AWS::S3::Bucket', 'AWS::DynamoDB::Table', 'AWS::Logs::LogGroup']) {
      template.allResources(type, { DeletionPolicy: 'Delete', UpdateReplacePolicy: 'Delete' });
    }
    template.resourceCountIs('Custom::S3AutoDeleteObjects', 2);
    for (const bucket of [job.stateBucket, job.sinkBucket]) {
      template.hasResourceProperties('Custom::S3AutoDeleteObjects', { BucketName: stack.resolve(bucket.bucketName) });
    }
  });

  it('warns when the job reads a stream or writes a bucket its functions are not granted', () => {
    const { stack } = deploy({ entry: fixture('elsewhere-job.ts') });
    const annotations = Annotations.fromStack(stack);

    annotations.hasWarning('/S/Job', Match.stringLikeRegexp('job elsewhere-job reads Kinesis stream clickstream-of-another-team, but its functions may read only .*: grant it yourself'));
    annotations.hasWarning('/S/Job', Match.stringLikeRegexp('job elsewhere-job uses s3://another-teams-bucket/clicks, but its functions may write only to the sink bucket: grant it yourself'));
  });
});

describe('SluiceJob with existing resources', { timeout: 60_000 }, () => {
  it('creates no stream, bucket or table', () => {
    const { template } = existing();

    template.resourceCountIs('AWS::Kinesis::Stream', 0);
    template.resourceCountIs('AWS::S3::Bucket', 0);
    template.resourceCountIs('AWS::S3::BucketPolicy', 0);
    template.resourceCountIs('AWS::DynamoDB::Table', 0);
    template.resourceCountIs('AWS::Lambda::Function', 2);
  });

  it('tells the job and the functions the given names, and outputs them', () => {
    const { stack, job, template } = existing();
    const names = { SLUICE_STREAM: 'clicks', SLUICE_SINK_BUCKET: 'clicks-out', SLUICE_STATE_BUCKET: 'shared-sluice-state', SLUICE_TABLE: 'sluice-meta' };

    template.allResourcesProperties('AWS::Lambda::Function', { Environment: { Variables: Match.objectLike(names) } });
    const outputs = { StreamName: 'clicks', SinkBucketName: 'clicks-out', StateBucketName: 'shared-sluice-state', TableName: 'sluice-meta' };
    for (const [name, value] of Object.entries(outputs)) template.hasOutput(`${job.node.id}${name}`, { Value: value });
    // The job reads SLUICE_STREAM and writes to SLUICE_SINK_BUCKET: what it uses is what it is granted.
    // The only warnings: an existing state bucket gets no lifecycle rule from the construct.
    const warnings = Annotations.fromStack(stack).findWarning('*', Match.anyValue()).map((w) => String(w.entry.data));
    expect(warnings).toEqual([
      expect.stringMatching(/^existingStateBucket: batch blobs a crash leaves under kinesis-wordcount\/batch\/ do not expire unless the bucket has its own lifecycle rule/),
      expect.stringMatching(/^existingStateBucket: dead letters under kinesis-wordcount\/dead-letters\/ do not expire unless the bucket has its own lifecycle rule/),
      expect.stringMatching(/^existingStateBucket: the batch history under kinesis-wordcount\/history\/ .* does not expire unless the bucket has its own lifecycle rule/),
    ]);
  });

  it('warns that dead letters in an existing state bucket do not expire, even with deadLetterRetention; the warning is acknowledged on its own', () => {
    const { stack } = deploy((s) => ({ ...existingResources(s), deadLetterRetention: Duration.days(30) }));
    const warning =
      'existingStateBucket: dead letters under kinesis-wordcount/dead-letters/ do not expire unless the bucket has its own lifecycle rule for that prefix (deadLetterRetention applies to a new bucket only) [ack: sluice:dead-letter-lifecycle]';

    Annotations.fromStack(stack).hasWarning('/S/Job', warning);
    // A bucket with its own rule for dead letters but none for batch blobs: acknowledging one warning keeps the other.
    CoreAnnotations.of(stack).acknowledgeWarning('sluice:dead-letter-lifecycle');
    const warnings = Annotations.fromStack(stack).findWarning('*', Match.anyValue()).map((w) => String(w.entry.data));
    expect(warnings).toEqual([
      expect.stringMatching(/^existingStateBucket: batch blobs .*\[ack: sluice:lifecycle\]$/),
      expect.stringMatching(/^existingStateBucket: the batch history .*\[ack: sluice:history-lifecycle\]$/),
    ]);
  });

  it('grants the functions the given stream, state prefix, sink bucket and table', () => {
    const { stack, job, template } = existing();
    const data = (kind: 'coordinator' | 'worker') =>
      dataGrants('arn:aws:kinesis:eu-west-1:123456789012:stream/clicks', 'arn:<AWS::Partition>:s3:::shared-sluice-state', 'arn:<AWS::Partition>:s3:::clicks-out', 'kinesis-wordcount', kind);
    const table = 'arn:<AWS::Partition>:dynamodb:<AWS::Region>:<AWS::AccountId>:table/sluice-meta';

    expect(grantsOf(template, roleOf(stack, job.worker))).toEqual(sortedGrants({ ...data('worker'), ...logGrants(cfn(stack, logGroup(job, 'WorkerLogs').logGroupArn)) }));
    expect(grantsOf(template, roleOf(stack, job.coordinator))).toEqual(
      sortedGrants({
        ...data('coordinator'),
        ...logGrants(cfn(stack, logGroup(job, 'CoordinatorLogs').logGroupArn)),
        'dynamodb:DeleteItem': [table],
        'dynamodb:GetItem': [table],
        'dynamodb:Query': [table],
        'dynamodb:UpdateItem': [table],
        'lambda:InvokeFunction': [cfn(stack, job.worker.functionArn)],
      }),
    );
  });
});

describe('SluiceJob IAM: least privilege', { timeout: 60_000 }, () => {
  it('the worker may read the stream, its job prefix of the state bucket, write the sink and its own logs: no table, no Lambda', () => {
    const { stack, job, template } = defaults();
    const worker = grantsOf(template, roleOf(stack, job.worker));

    expect(worker).toEqual(
      sortedGrants({
        ...dataGrants(cfn(stack, job.stream.streamArn), cfn(stack, job.stateBucket.bucketArn), cfn(stack, job.sinkBucket.bucketArn), 'kinesis-wordcount', 'worker'),
        ...logGrants(cfn(stack, logGroup(job, 'WorkerLogs').logGroupArn)),
      }),
    );
    expect(Object.keys(worker).filter((a) => a.startsWith('dynamodb:') || a.startsWith('lambda:'))).toEqual([]);
  });

  it('the coordinator may also use the table and invoke the worker function, nothing else', () => {
    const { stack, job, template } = defaults();
    const table = cfn(stack, job.table.tableArn);
    const coordinator = grantsOf(template, roleOf(stack, job.coordinator));

    expect(coordinator).toEqual(
      sortedGrants({
        ...dataGrants(cfn(stack, job.stream.streamArn), cfn(stack, job.stateBucket.bucketArn), cfn(stack, job.sinkBucket.bucketArn), 'kinesis-wordcount', 'coordinator'),
        ...logGrants(cfn(stack, logGroup(job, 'CoordinatorLogs').logGroupArn)),
        'dynamodb:DeleteItem': [table],
        'dynamodb:GetItem': [table],
        'dynamodb:Query': [table],
        'dynamodb:UpdateItem': [table],
        'lambda:InvokeFunction': [cfn(stack, job.worker.functionArn)],
      }),
    );
    expect(Object.entries(coordinator).filter(([a]) => a.startsWith('lambda:'))).toEqual([['lambda:InvokeFunction', [cfn(stack, job.worker.functionArn)]]]);
  });

  it('the scheduler may invoke the coordinator (and its versions) only', () => {
    const { stack, job, template } = defaults();
    const coordinator = cfn(stack, job.coordinator.functionArn);

    expect(grantsOf(template, schedulerRole(template))).toEqual({ 'lambda:InvokeFunction': [coordinator, `${coordinator}:*`] });
  });

  it.each([
    { what: 'the default deployment', deployment: defaults },
    { what: 'existing resources', deployment: existing },
    { what: 'removalPolicy DESTROY', deployment: destroyed },
  ])('$what: no wildcard action, no "*" resource; wildcards only end the job prefix, sink objects, log streams and coordinator versions', ({ deployment }) => {
    const { template } = deployment();

    expect(leastPrivilegeProblems(template)).toEqual([]);
    expect(wildcardResources(template)).toEqual(allowedWildcards(deployment()));
  });

  it('with existing resources, the wildcards end the given bucket names', () => {
    const { stack, job, template } = existing();

    expect(wildcardResources(template)).toEqual(
      expect.arrayContaining([
        `${roleOf(stack, job.worker)} arn:<AWS::Partition>:s3:::shared-sluice-state/kinesis-wordcount/*`,
        `${roleOf(stack, job.worker)} arn:<AWS::Partition>:s3:::clicks-out/*`,
      ]),
    );
  });
});

describe('SluiceJob grants what the source catalogue says the job\'s sources call', { timeout: 60_000 }, () => {
  const sinkInput = once(() => deploy({ entry: fixture('sink-input-job.ts') }));

  /** The actions of a role's statement with this sid. */
  const actionsOf = (template: Template, role: string, sid: string) =>
    identityStatements(template)
      .filter((s) => s.role === role && (s.statement as { Sid?: string }).Sid === sid)
      .flatMap((s) => asList(s.statement.Action));

  it("each function may call on the job's stream exactly the actions the catalogue lists for a Kinesis source on that function", () => {
    const { stack, job, template } = defaults();

    // The template lists a statement's actions sorted.
    expect(actionsOf(template, roleOf(stack, job.worker), 'ReadStream')).toEqual([...sourceCatalogue.kinesis.aws.actions.worker].sort());
    expect(actionsOf(template, roleOf(stack, job.coordinator), 'ReadStream')).toEqual([...sourceCatalogue.kinesis.aws.actions.coordinator].sort());
  });

  it('a textFileStream of a prefix of the sink bucket: the coordinator may list that prefix, both functions read its objects, nothing more', () => {
    const { stack, job, template } = sinkInput();
    const sink = cfn(stack, job.sinkBucket.bucketArn);
    /** What a function may do on the sink bucket (the bucket and its objects). */
    const onSink = (fn: lambda.Function) =>
      Object.fromEntries(
        Object.entries(grantsOf(template, roleOf(stack, fn)))
          .map(([action, resources]) => [action, resources.filter((r) => r.startsWith(sink))] as const)
          .filter(([, resources]) => resources.length > 0),
      );

    expect(onSink(job.worker)).toEqual({ 's3:GetObject': [`${sink}/incoming/*`], 's3:PutObject': [`${sink}/*`] });
    expect(onSink(job.coordinator)).toEqual({
      's3:GetObject': [`${sink}/incoming/*`],
      's3:ListBucket': [`${sink} if {"StringLike":{"s3:prefix":["incoming/*"]}}`],
      's3:PutObject': [`${sink}/*`],
    });
    expect(actionsOf(template, roleOf(stack, job.coordinator), 'ListSinkInput')).toEqual(['s3:ListBucket']);
    expect(leastPrivilegeProblems(template)).toEqual([]);
  });

  it("warns about a bucket that is not the job's own, and grants nothing there", () => {
    const { stack, template } = sinkInput();
    const warnings = Annotations.fromStack(stack).findWarning('*', Match.anyValue()).map((w) => String(w.entry.data));

    expect(warnings).toEqual([expect.stringMatching(/^job sink-input-job uses s3:\/\/another-teams-bucket\/in\/, but its functions may write only to the sink bucket: grant it yourself/)]);
    expect(JSON.stringify(template.toJSON())).not.toContain('another-teams-bucket');
  });

  it('cdk-nag finds nothing unacknowledged: the wildcard of the sink prefix is acknowledged with its reason', () => {
    const app = newApp(true);
    const stack = new Stack(app, 'S');
    new SluiceJob(stack, 'Job', { entry: fixture('sink-input-job.ts') });

    const result = nagSynth(app);

    expect(result.findings).toEqual([]);
    expect(acknowledgments(stack).some((a) => a.id.endsWith('/incoming/*]') && typeof a.reason === 'string')).toBe(true);
  });
});

describe('SluiceJob refuses invalid props with a clear error', { timeout: 60_000 }, () => {
  const build = (props: (stack: Stack) => Partial<SluiceJobProps>) => () => {
    const stack = new Stack(newApp(), 'S');
    return new SluiceJob(stack, 'Job', { entry: WORDCOUNT, ...props(stack) });
  };

  it.each([
    { what: 'a batch interval below 1 s', props: () => ({ batchInterval: '500ms' }), error: /SluiceJob: batchInterval must be at least 1s on AWS, got 500 ms/ },
    { what: 'a batch interval that is not a whole number of ms', props: () => ({ batchInterval: 1500.5 }), error: /SluiceJob: batchInterval: must be a positive whole number of milliseconds, got 1500\.5/ },
    { what: 'a batch interval that is not a duration', props: () => ({ batchInterval: 'soon' }), error: /SluiceJob: batchInterval: cannot read "soon" as a duration/ },
    { what: 'a missing job file', props: () => ({ entry: 'jobs/no-such-job.ts' }), error: /SluiceJob: job file jobs\/no-such-job\.ts does not exist \(resolved to .*no-such-job\.ts\)/ },
    { what: 'workerMemoryMB 64', props: () => ({ workerMemoryMB: 64 }), error: /SluiceJob: workerMemoryMB must be a whole number of MB from 128 to 10240, got 64/ },
    { what: 'workerMemoryMB 20000', props: () => ({ workerMemoryMB: 20000 }), error: /SluiceJob: workerMemoryMB must be a whole number of MB from 128 to 10240, got 20000/ },
    { what: 'workerMemoryMB 1.5', props: () => ({ workerMemoryMB: 1.5 }), error: /SluiceJob: workerMemoryMB must be a whole number of MB from 128 to 10240, got 1\.5/ },
    { what: 'coordinatorMemoryMB 100', props: () => ({ coordinatorMemoryMB: 100 }), error: /SluiceJob: coordinatorMemoryMB must be a whole number of MB from 128 to 10240, got 100/ },
    {
      what: 'both existingStream and streamProps',
      props: (stack: Stack) => ({ ...existingResources(stack), streamProps: { shardCount: 2 } }),
      error: /SluiceJob: give either existingStream or streamProps, not both/,
    },
    { what: 'a shard count for an on-demand stream', props: () => ({ streamProps: { mode: 'on-demand' as const, shardCount: 2 } }), error: /SluiceJob: streamProps\.shardCount applies to provisioned streams only/ },
    { what: 'no shards', props: () => ({ streamProps: { shardCount: 0 } }), error: /SluiceJob: streamProps\.shardCount must be a whole number >= 1, got 0/ },
    { what: 'a worker timeout over 15 minutes', props: () => ({ workerTimeout: Duration.minutes(16) }), error: /SluiceJob: workerTimeout must be from 1 second to 15 minutes, got 16 minutes/ },
    { what: 'maxConcurrency 0', props: () => ({ maxConcurrency: 0 }), error: /SluiceJob: maxConcurrency must be a whole number from 1 to 1000, got 0/ },
    { what: "writeEmptyBatches 'yes'", props: () => ({ writeEmptyBatches: 'yes' as unknown as boolean }), error: /SluiceJob: writeEmptyBatches must be true or false, got "yes"/ },
    { what: 'a shuffle expiration under a day', props: () => ({ shuffleExpiration: Duration.hours(12) }), error: /SluiceJob: shuffleExpiration must be at least 1 day/ },
    { what: 'a dead letter retention under a day', props: () => ({ deadLetterRetention: Duration.hours(12) }), error: /SluiceJob: deadLetterRetention must be a whole number of days, at least 1 \(such as Duration\.days\(14\)\), got 12 hours/ },
    { what: 'a history retention of a day and a half', props: () => ({ historyRetention: Duration.hours(36) }), error: /SluiceJob: historyRetention must be a whole number of days, at least 1 \(such as Duration\.days\(14\)\), got 1 day 12 hours/ },
    { what: 'a dead letter retention of no time', props: () => ({ deadLetterRetention: Duration.days(0) }), error: /SluiceJob: deadLetterRetention must be a whole number of days, at least 1 .*, got 0 days/ },
    { what: 'a dead letter retention that is not whole days', props: () => ({ deadLetterRetention: Duration.hours(36) }), error: /SluiceJob: deadLetterRetention must be a whole number of days, at least 1 .*, got 1 day 12 hours/ },
    { what: 'an input lag alarm under a minute', props: () => ({ maxInputLag: Duration.seconds(30) }), error: /SluiceJob: maxInputLag must be at least 1 minute, got 30 seconds/ },
    { what: 'sourceMaps that is not a boolean', props: () => ({ sourceMaps: 'yes' as unknown as boolean }), error: /SluiceJob: sourceMaps must be true or false, got "yes"/ },
  ])('$what', ({ props, error }) => {
    expect(build(props)).toThrow(error);
  });

  it('two jobs of one name in one stack, naming both constructs', () => {
    const stack = new Stack(newApp(), 'S');
    new SluiceJob(stack, 'First', { entry: WORDCOUNT });
    expect(() => new SluiceJob(stack, 'Second', { entry: WORDCOUNT })).toThrow(
      /^SluiceJob: job \S+ is in stack S twice \(S\/First and S\/Second\); its dashboard, alarms, outputs and metrics would be shared: give one of them another name in its defineJob, or put them in separate stacks$/,
    );
  });

  it('a job whose own batch interval is below 1 s, with no batchInterval to override it', () => {
    expect(build(() => ({ entry: fixture('fast-job.ts') }))).toThrow(/SluiceJob: job fast-job has a batch interval of 400 ms; on AWS it must be at least 1s .*: set batchInterval/);
  });

  it('a job that writes to a local folder and reads a socket, which cannot run on AWS, naming each part', () => {
    expect(build(() => ({ entry: 'examples/network-wordcount.ts' }))).toThrow(/SluiceJob: job network-wordcount \(examples\/network-wordcount\.ts\) cannot run on AWS: socket-1: socketTextStream runs locally only/);
    expect(build(() => ({ entry: 'examples/running-totals.ts' }))).toThrow(/cannot run on AWS: .*output "out\/[^"]+": on AWS, outputs go to s3:\/\/bucket\/prefix/);
  });

  it('a job that watches a local directory, in the words the source catalogue refuses it with on AWS', () => {
    expect(build(() => ({ entry: 'examples/file-wordcount.ts' }))).toThrow(
      /cannot run on AWS: textFile-1: textFileStream\("incoming"\): the AWS runtime watches s3:\/\/ prefixes only \(a Lambda has no durable directory\); use textFileStream\('s3:\/\/bucket\/prefix\/'\)/,
    );
  });

  it('a job file that throws when its job is built, naming the file and the error', () => {
    expect(build(() => ({ entry: fixture('broken-job.ts') }))).toThrow(/SluiceJob: job file .*infra-test\/fixtures\/broken-job\.ts cannot be built: .*broken-job fixture fails to build on purpose/);
  });
});

describe('cdk-nag AwsSolutions checks', { timeout: 60_000 }, () => {
  /** A nag-checked app with one SluiceJob, and whatever else `extra` adds to the stack. */
  function nagged(props: (stack: Stack) => Partial<SluiceJobProps>, extra?: (stack: Stack) => void): { stack: Stack; result: NagResult } {
    const app = newApp(true);
    const stack = new Stack(app, 'S');
    new SluiceJob(stack, 'Job', { entry: WORDCOUNT, ...props(stack) });
    extra?.(stack);
    return { stack, result: nagSynth(app) };
  }

  it.each([
    { what: 'the default stack', props: () => ({}) },
    { what: 'an on-demand stream', props: () => ({ streamProps: { mode: 'on-demand' as const } }) },
    { what: 'removalPolicy DESTROY', props: () => ({ removalPolicy: RemovalPolicy.DESTROY }) },
    { what: 'existing resources', props: existingResources },
  ])('$what synthesizes with every finding acknowledged, each with its reason', ({ props }) => {
    // Act
    const { stack, result } = nagged(props);

    // Assess
    const acks = acknowledgments(stack);
    expect(result.findings).toEqual([]);
    expect(result.failed).toBe(false);
    expect(acks.length).toBeGreaterThan(0);
    for (const ack of acks) {
      expect(ack.id, ack.path).toMatch(/^AwsSolutions::AwsSolutions-[A-Z]+\d+/);
      expect(typeof ack.reason === 'string' && ack.reason.trim().length > 20, `${ack.path} ${ack.id}`).toBe(true);
    }
    // Every acknowledgment is one a finding needed, where it is made, and the report keeps its reason.
    const used = new Set(result.acknowledged.map((a) => `${a.acknowledgedAt} ${a.acknowledgedId}`));
    expect(acks.filter((a) => !used.has(`${a.path} ${a.id}`))).toEqual([]);
    for (const a of result.acknowledged) expect(a.reason).toBe(acks.find((k) => k.path === a.acknowledgedAt && k.id === a.acknowledgedId)!.reason);
  });

  it('is live: a bucket added to the stack without logging or SSL fails the synth', () => {
    // Act
    const { result } = nagged(
      () => ({}),
      (stack) => new s3.Bucket(stack, 'Naked'),
    );

    // Assess
    expect(result.failed).toBe(true);
    expect(result.findings).toEqual(['AwsSolutions-S1 at S/Naked/Resource', 'AwsSolutions-S10 at S/Naked/Resource']);
    expect(result.report).toMatch(/Acknowledge with 'AwsSolutions::AwsSolutions-S1'/);
  });

  it("acknowledges nothing for the stack's other resources: a DESTROY stack still checks the user's own function", () => {
    // Act: the user's function has an older runtime and AWS's managed execution policy.
    const { result } = nagged(
      () => ({ removalPolicy: RemovalPolicy.DESTROY }),
      (stack) => new lambda.Function(stack, 'Mine', { runtime: lambda.Runtime.NODEJS_20_X, handler: 'index.handler', code: lambda.Code.fromInline('exports.handler = async () => 1;') }),
    );

    // Assess
    expect(result.failed).toBe(true);
    expect(result.findings).toEqual([
      'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole] at S/Mine/ServiceRole/Resource',
      'AwsSolutions-L1 at S/Mine/Resource',
    ]);
  });
});

/** The backquoted names in the README's bullet that starts with `- **<title>**`, up to the next bullet. */
function readmeBulletNames(title: string): string[] {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const start = readme.indexOf(`- **${title}**`);
  expect(start, `README bullet ${title}`).toBeGreaterThanOrEqual(0);
  const end = readme.slice(start + 1).search(/\n(- |\n)/);
  const bullet = readme.slice(start, end < 0 ? undefined : start + 1 + end);
  return [...bullet.matchAll(/`([^`]+)`/g)].map((m) => m[1]);
}

describe('npx cdk synth', () => {
  it('cdk.json sets every feature flag `cdk init` writes, at the value aws-cdk-lib recommends', () => {
    const context = projectContext();

    for (const [flag, recommended] of Object.entries(CURRENTLY_RECOMMENDED_FLAGS)) expect(context[flag], flag).toEqual(recommended);
  });

  it(
    'synthesizes the app offline with the CLI, warning about no unset feature flag: the coordinator, the worker, the stream, and the outputs and dashboard the README names',
    async () => {
      // Prepare
      const out = mkdtempSync(join(tmpdir(), 'sluice-cdk-synth-'));
      try {
        // Act
        const run = await promisify(execFile)(process.execPath, ['node_modules/aws-cdk/bin/cdk', 'synth', '-c', 'job=examples/kinesis-wordcount.ts', '--no-notices', '-o', out], {
          cwd: ROOT,
          env: { ...process.env, CDK_DISABLE_VERSION_CHECK: '1', CDK_DISABLE_CLI_TELEMETRY: '1' },
          maxBuffer: 64 * 1024 * 1024,
        }).then(
          (r) => ({ code: 0, stderr: r.stderr }),
          (e: { code?: number; stderr?: string }) => ({ code: e.code, stderr: e.stderr }),
        );

        // Assess
        expect(run.code, run.stderr).toBe(0);
        expect(run.stderr).not.toMatch(/feature flags are not configured/);
        const stackName = 'sluice-kinesis-wordcount';
        const template = Template.fromJSON(JSON.parse(readFileSync(join(out, `${stackName}.template.json`), 'utf8')) as Record<string, unknown>);
        template.resourceCountIs('AWS::Kinesis::Stream', 1);
        template.hasResourceProperties('AWS::Lambda::Function', { Handler: 'index.coordinator', Runtime: 'nodejs22.x' });
        template.hasResourceProperties('AWS::Lambda::Function', { Handler: 'index.worker', Runtime: 'nodejs22.x' });
        // The README tells the app's output names (its construct id is Job) and the dashboard's name: they are the template's.
        const readmeOutputs = readmeBulletNames('outputs').filter((name) => /^Job[A-Z]/.test(name));
        expect(readmeOutputs).toHaveLength(7);
        expect(Object.keys(template.findOutputs('*')).sort()).toEqual(readmeOutputs.sort());
        template.hasResourceProperties('AWS::CloudWatch::Dashboard', { DashboardName: `${stackName}-Job` });
        expect(readmeBulletNames('dashboard')).toContain(`${stackName}-Job`);
      } finally {
        rmSync(out, { recursive: true, force: true });
      }
    },
    120_000,
  );
});
