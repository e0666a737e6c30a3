import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Duration, Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as kinesis from 'aws-cdk-lib/aws-kinesis';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sns from 'aws-cdk-lib/aws-sns';
import { describe, expect, it } from 'vitest';
import { bundleJob } from '../cdk/bundle.ts';
import { SluiceJob, type SluiceJobProps } from '../cdk/sluiceJob.ts';
import { metricCatalogue, type MetricName } from '../lib/core/metrics.ts';
import { acknowledgments, cfn, grantsOf, leastPrivilegeProblems, nagSynth, type Resource, testApps } from './helpers/cdkTemplate.ts';

// SluiceJob as CDK users expect a construct to be (aws-cdk-lib's own, AWS Solutions Constructs):
// metric helpers, the alarms as a list with an action and a way out, a deployment dimension on
// every metric, high-resolution metrics, and props passed through to the stream, buckets, table
// and functions (customer-managed keys, VPC, reserved concurrency, tracing, logs, bundling), each
// checked in the synthesized template; bad props fail the synth saying what to do.

const ROOT = join(import.meta.dirname, '..');
const WORDCOUNT = join(ROOT, 'examples/kinesis-wordcount.ts');
const newApp = testApps();

interface Deployment {
  readonly stack: Stack;
  readonly job: SluiceJob;
  readonly template: Template;
}

/** A stack (`S` unless named) holding one SluiceJob `Job` of the Kinesis word count. */
function deploy(props: (stack: Stack) => Partial<SluiceJobProps> = () => ({}), stackName = 'S'): Deployment {
  const stack = new Stack(newApp(), stackName);
  const job = new SluiceJob(stack, 'Job', { entry: WORDCOUNT, ...props(stack) });
  return { stack, job, template: Template.fromStack(stack) };
}

function once(make: () => Deployment): () => Deployment {
  let made: Deployment | undefined;
  return () => (made ??= make());
}

const defaults = once(() => deploy());

/** A key of the stack's own, rotated (as cdk-nag asks). */
const newKey = (stack: Stack, id: string) => new kms.Key(stack, id, { enableKeyRotation: true });

/** A VPC made elsewhere, with two private subnets. */
const importedVpc = (stack: Stack) =>
  ec2.Vpc.fromVpcAttributes(stack, 'Vpc', {
    vpcId: 'vpc-0123456789abcdef0',
    availabilityZones: ['eu-west-1a', 'eu-west-1b'],
    privateSubnetIds: [SUBNET_A, SUBNET_B],
    privateSubnetRouteTableIds: ['rtb-0123456789abcdef0', 'rtb-0123456789abcdef1'],
  });
const SUBNET_A = 'subnet-0123456789abcdef0';
const SUBNET_B = 'subnet-0123456789abcdef1';
const SECURITY_GROUP = 'sg-0123456789abcdef0';

/** Every new prop at once: keys of its own for the data, a VPC, reserved concurrency, tracing, logs, an alarm topic, 1 s metrics. */
const everything = (stack: Stack): Partial<SluiceJobProps> => ({
  streamProps: { shardCount: 2, encryptionKey: newKey(stack, 'StreamKey') },
  stateBucketProps: { encryptionKey: newKey(stack, 'StateKey') },
  sinkBucketProps: { encryptionKey: newKey(stack, 'SinkKey') },
  tableProps: { encryptionKey: newKey(stack, 'TableKey') },
  vpc: importedVpc(stack),
  workerReservedConcurrency: 40,
  coordinatorReservedConcurrency: 2,
  tracing: lambda.Tracing.ACTIVE,
  logRetention: logs.RetentionDays.THREE_MONTHS,
  applicationLogLevel: lambda.ApplicationLogLevel.DEBUG,
  systemLogLevel: lambda.SystemLogLevel.WARN,
  alarmTopic: new sns.Topic(stack, 'Alarms', { enforceSSL: true, masterKey: newKey(stack, 'TopicKey') }),
  highResolutionMetrics: true,
});
const tuned = once(() => deploy(everything));

/** An alarm's labelled metric (the catalogue's metrics have labels) in the template: a Sluice metric like `metric`, its statistic and period. */
const alarmMetric = (metric: Record<string, unknown>, stat: string, period: number) =>
  Match.objectLike({ MetricStat: { Metric: Match.objectLike({ Namespace: 'Sluice', ...metric }), Stat: stat, Period: period } });

/** A function's role as `<RoleLogicalId>`, as the IAM helpers name roles. */
const roleOf = (stack: Stack, fn: lambda.Function) => cfn(stack, fn.role!.roleName);

/** A metric's template form (as an alarm's `Metrics` entry holds it), resolved. */
function metricStat(stack: Stack, metric: cloudwatch.IMetric): unknown {
  const config = metric.toMetricConfig().metricStat!;
  return {
    namespace: config.namespace,
    name: config.metricName,
    dimensions: stack.resolve(config.dimensions),
    statistic: config.statistic,
    period: config.period.toSeconds(),
  };
}

describe('SluiceJob metric helpers', { timeout: 60_000 }, () => {
  const helpers: Record<MetricName, (job: SluiceJob, props?: cloudwatch.MetricOptions) => cloudwatch.Metric> = {
    InputRecords: (j, p) => j.metricInputRecords(p),
    SchedulingDelay: (j, p) => j.metricSchedulingDelay(p),
    ProcessingDelay: (j, p) => j.metricProcessingDelay(p),
    TotalDelay: (j, p) => j.metricTotalDelay(p),
    DeadLetters: (j, p) => j.metricDeadLetters(p),
    FailedBatches: (j, p) => j.metricFailedBatches(p),
  };

  it.each(Object.keys(metricCatalogue) as MetricName[])('metric%s(): namespace Sluice, dimensions Job and Stack, per minute, the catalogue statistic and label', (name) => {
    const { stack, job } = defaults();
    const metric = helpers[name](job);

    // A helper of the same name as the catalogue's metric, and the generic metric(name) gives the same.
    expect(typeof (job as unknown as Record<string, unknown>)[`metric${name}`]).toBe('function');
    expect(metricStat(stack, metric)).toEqual({
      namespace: 'Sluice',
      name,
      dimensions: [
        { name: 'Job', value: 'kinesis-wordcount' },
        { name: 'Stack', value: 'S' },
      ],
      statistic: metricCatalogue[name].statistic,
      period: 60,
    });
    expect(metric.label).toBe(metricCatalogue[name].label);
    expect(metricStat(stack, job.metric(name))).toEqual(metricStat(stack, metric));
  });

  it('take cloudwatch.MetricOptions as aws-cdk-lib metrics do, and keep the job dimensions', () => {
    const { stack, job } = defaults();

    const metric = job.metricTotalDelay({ statistic: 'p99', period: Duration.minutes(5), label: 'Late', dimensionsMap: { Extra: 'x' } });

    expect(metricStat(stack, metric)).toEqual({
      namespace: 'Sluice',
      name: 'TotalDelay',
      dimensions: [
        { name: 'Extra', value: 'x' },
        { name: 'Job', value: 'kinesis-wordcount' },
        { name: 'Stack', value: 'S' },
      ],
      statistic: 'p99',
      period: 300,
    });
    expect(metric.label).toBe('Late');
  });

  it('make alarms of their own: an alarm on the p90 processing delay in the template', () => {
    // Prepare
    const stack = new Stack(newApp(), 'Mine');
    const job = new SluiceJob(stack, 'Job', { entry: WORDCOUNT });

    // Act
    job.metricProcessingDelay({ statistic: 'p90' }).createAlarm(stack, 'Slow', { threshold: 800, evaluationPeriods: 2 });

    // Assess
    Template.fromStack(stack).hasResourceProperties('AWS::CloudWatch::Alarm', {
      Metrics: [alarmMetric({ MetricName: 'ProcessingDelay', Dimensions: Match.arrayWith([{ Name: 'Stack', Value: 'Mine' }]) }, 'p90', 60)],
      Threshold: 800,
    });
  });

  it('refuse a period under a minute unless the metrics are high-resolution, saying what to set', () => {
    const { job } = defaults();

    expect(() => job.metricInputRecords({ period: Duration.seconds(10) })).toThrow(
      /^SluiceJob: metricInputRecords: a period of 10 seconds is under a minute, but the job's metrics are stored per minute: set highResolutionMetrics: true on the SluiceJob, or use a period of at least 1 minute$/,
    );
  });

  it('with highResolutionMetrics, read 1, 5, 10 or 30 s periods (an alarm every 10 s), and refuse 7 s', () => {
    const stack = new Stack(newApp(), 'Fast');
    const job = new SluiceJob(stack, 'Job', { entry: WORDCOUNT, highResolutionMetrics: true });

    expect(metricStat(stack, job.metricInputRecords({ period: Duration.seconds(1) }))).toMatchObject({ period: 1 });
    job.metricTotalDelay({ period: Duration.seconds(10) }).createAlarm(stack, 'LateFast', { threshold: 2000, evaluationPeriods: 3 });
    Template.fromStack(stack).hasResourceProperties('AWS::CloudWatch::Alarm', { Metrics: [alarmMetric({ MetricName: 'TotalDelay' }, 'Average', 10)], Threshold: 2000 });
    expect(() => job.metricTotalDelay({ period: Duration.seconds(7) })).toThrow(
      /^SluiceJob: metricTotalDelay: CloudWatch takes a period of 1, 5, 10 or 30 seconds or whole minutes, got 7 seconds$/,
    );
  });

  it('highResolutionMetrics tells the functions to write 1 s metrics (SLUICE_HIGH_RESOLUTION_METRICS), which they do not by default', () => {
    tuned().template.allResourcesProperties('AWS::Lambda::Function', { Environment: { Variables: Match.objectLike({ SLUICE_HIGH_RESOLUTION_METRICS: 'true' }) } });
    defaults().template.allResourcesProperties('AWS::Lambda::Function', { Environment: { Variables: Match.objectLike({ SLUICE_HIGH_RESOLUTION_METRICS: Match.absent() }) } });
  });
});

describe('SluiceJob alarms', { timeout: 60_000 }, () => {
  it('are exposed as a list, the named alarms in it, none with an action by default', () => {
    const { job, template } = defaults();

    expect(job.alarms).toEqual([
      job.delayAlarm,
      job.failedBatchAlarm,
      job.coordinatorErrorAlarm,
      job.stalledAlarm,
      job.inputLagAlarm,
      job.readThrottledAlarm,
      job.writeThrottledAlarm,
    ]);
    expect(job.alarms.every((a) => a instanceof cloudwatch.Alarm)).toBe(true);
    template.allResourcesProperties('AWS::CloudWatch::Alarm', { AlarmActions: Match.absent(), OKActions: Match.absent() });
  });

  it('alarmTopic: every alarm tells the topic when it goes off and when it is OK again', () => {
    const { stack, job, template } = tuned();
    const topic = stack.resolve((stack.node.findChild('Alarms') as sns.Topic).topicArn);

    expect(job.alarms).toHaveLength(7);
    for (const alarm of job.alarms) {
      const id = stack.getLogicalId(alarm.node.defaultChild as cloudwatch.CfnAlarm);
      expect(template.toJSON().Resources[id].Properties).toMatchObject({ AlarmActions: [topic], OKActions: [topic] });
    }
  });

  it('createCloudWatchAlarms: false makes no alarm: the list is empty, the named alarms undefined; the dashboard stays', () => {
    const { job, template } = deploy(() => ({ createCloudWatchAlarms: false }));

    template.resourceCountIs('AWS::CloudWatch::Alarm', 0);
    template.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
    expect(job.alarms).toEqual([]);
    expect([job.delayAlarm, job.failedBatchAlarm, job.coordinatorErrorAlarm, job.stalledAlarm, job.inputLagAlarm, job.readThrottledAlarm, job.writeThrottledAlarm]).toEqual(Array(7).fill(undefined));
  });
});

describe('SluiceJob: the deployment dimension', { timeout: 60_000 }, () => {
  it('staging and production of one job in one account watch metrics of their own: the Stack dimension is the stack name, told to the functions', () => {
    // Act
    const staging = deploy(() => ({}), 'clicks-staging');
    const production = deploy(() => ({}), 'clicks-production');

    // Assess
    for (const { template, stack } of [staging, production]) {
      template.allResourcesProperties('AWS::Lambda::Function', { Environment: { Variables: Match.objectLike({ SLUICE_DEPLOYMENT: stack.stackName }) } });
      template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        Metrics: [Match.objectLike({ MetricStat: Match.objectLike({ Metric: Match.objectLike({ MetricName: 'TotalDelay', Dimensions: Match.arrayWith([{ Name: 'Stack', Value: stack.stackName }]) }) }) })],
      });
      // The dashboard's graphs too: its body is JSON in a string.
      expect(JSON.stringify(template.toJSON())).toContain(`\\"Stack\\",\\"${stack.stackName}\\"`);
    }
    expect(staging.job.deployment).toBe('clicks-staging');
    expect(production.job.deployment).toBe('clicks-production');
  });
});

describe('SluiceJob: customer-managed KMS keys', { timeout: 60_000 }, () => {
  /** The actions a role may take on a key, sorted. */
  const keyActions = (d: Deployment, fn: lambda.Function, key: kms.IKey) => {
    const arn = cfn(d.stack, key.keyArn);
    return Object.entries(grantsOf(d.template, roleOf(d.stack, fn)))
      .filter(([, resources]) => resources.includes(arn))
      .map(([action]) => action)
      .sort();
  };

  it('new stream, buckets and table are encrypted with the keys given', () => {
    const { stack, template } = tuned();
    const key = (id: string) => stack.resolve((stack.node.findChild(id) as kms.Key).keyArn);

    template.hasResourceProperties('AWS::Kinesis::Stream', { StreamEncryption: { EncryptionType: 'KMS', KeyId: key('StreamKey') } });
    for (const id of ['StateKey', 'SinkKey']) {
      template.hasResourceProperties('AWS::S3::Bucket', {
        BucketEncryption: { ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms', KMSMasterKeyID: key(id) }, BucketKeyEnabled: true }] },
      });
    }
    template.hasResourceProperties('AWS::DynamoDB::Table', { SSESpecification: { SSEEnabled: true, SSEType: 'KMS', KMSMasterKeyId: key('TableKey') } });
  });

  it('each function may use each key for what it does with the data: decrypt records, encrypt and decrypt blobs, encrypt output; the coordinator also the table', () => {
    const d = tuned();
    const key = (id: string) => d.stack.node.findChild(id) as kms.Key;

    expect(keyActions(d, d.job.worker, key('StreamKey'))).toEqual(['kms:Decrypt']);
    expect(keyActions(d, d.job.worker, key('StateKey'))).toEqual(['kms:Decrypt', 'kms:GenerateDataKey']);
    expect(keyActions(d, d.job.worker, key('SinkKey'))).toEqual(['kms:GenerateDataKey']);
    expect(keyActions(d, d.job.worker, key('TableKey'))).toEqual([]);
    expect(keyActions(d, d.job.coordinator, key('TableKey'))).toEqual(['kms:Decrypt', 'kms:DescribeKey', 'kms:Encrypt', 'kms:GenerateDataKey']);
    expect(keyActions(d, d.job.coordinator, key('StateKey'))).toEqual(['kms:Decrypt', 'kms:GenerateDataKey']);
  });

  it('existing stream, buckets and table imported with their keys: the functions are granted those keys, still without wildcards', () => {
    // Prepare: resources made elsewhere, each encrypted with a key of the account's.
    const keyArn = (n: number) => `arn:aws:kms:eu-west-1:123456789012:key/0000000${n}-aaaa-bbbb-cccc-dddddddddddd`;
    const d = deploy((stack) => ({
      existingStream: kinesis.Stream.fromStreamAttributes(stack, 'Clicks', {
        streamArn: 'arn:aws:kinesis:eu-west-1:123456789012:stream/clicks',
        encryptionKey: kms.Key.fromKeyArn(stack, 'ClicksKey', keyArn(1)),
      }),
      existingStateBucket: s3.Bucket.fromBucketAttributes(stack, 'SharedState', { bucketName: 'shared-sluice-state', encryptionKey: kms.Key.fromKeyArn(stack, 'StateKey', keyArn(2)) }),
      existingSinkBucket: s3.Bucket.fromBucketAttributes(stack, 'ClicksOut', { bucketName: 'clicks-out', encryptionKey: kms.Key.fromKeyArn(stack, 'OutKey', keyArn(3)) }),
      existingTable: dynamodb.Table.fromTableAttributes(stack, 'Meta', { tableName: 'sluice-meta', encryptionKey: kms.Key.fromKeyArn(stack, 'MetaKey', keyArn(4)) }),
    }));

    // Assess
    const grants = (fn: lambda.Function) => grantsOf(d.template, roleOf(d.stack, fn));
    expect(grants(d.job.worker)).toMatchObject({ 'kms:Decrypt': [keyArn(1), keyArn(2)].sort(), 'kms:GenerateDataKey': [keyArn(2), keyArn(3)].sort() });
    expect(grants(d.job.coordinator)).toMatchObject({
      'kms:Decrypt': [keyArn(1), keyArn(2), keyArn(4)].sort(),
      'kms:DescribeKey': [keyArn(4)],
      'kms:Encrypt': [keyArn(4)],
      'kms:GenerateDataKey': [keyArn(2), keyArn(3), keyArn(4)].sort(),
    });
    expect(leastPrivilegeProblems(d.template)).toEqual([]);
  });

  it('without keys, no KMS action is granted', () => {
    const { stack, job, template } = defaults();

    for (const fn of [job.worker, job.coordinator]) expect(Object.keys(grantsOf(template, roleOf(stack, fn))).filter((a) => a.startsWith('kms:'))).toEqual([]);
  });
});

describe('SluiceJob: the functions', { timeout: 60_000 }, () => {
  it('vpc: both functions run in its private subnets with a security group each, and may manage their network interfaces', () => {
    const { stack, job, template } = tuned();

    template.allResourcesProperties('AWS::Lambda::Function', { VpcConfig: { SubnetIds: [SUBNET_A, SUBNET_B], SecurityGroupIds: [Match.anyValue()] } });
    for (const fn of [job.worker, job.coordinator]) {
      expect(grantsOf(template, roleOf(stack, fn))).toMatchObject({ 'ec2:CreateNetworkInterface': ['*'], 'ec2:DeleteNetworkInterface': ['*'], 'ec2:DescribeNetworkInterfaces': ['*'] });
    }
    expect(Object.keys(grantsOf(defaults().template, roleOf(defaults().stack, defaults().job.worker))).filter((a) => a.startsWith('ec2:'))).toEqual([]);
  });

  it('vpcSubnets and securityGroups: the functions run where they say', () => {
    const { template } = deploy((stack) => {
      const vpc = importedVpc(stack);
      return { vpc, vpcSubnets: { subnets: [vpc.privateSubnets[1]] }, securityGroups: [ec2.SecurityGroup.fromSecurityGroupId(stack, 'Sg', SECURITY_GROUP)] };
    });

    template.allResourcesProperties('AWS::Lambda::Function', { VpcConfig: { SubnetIds: [SUBNET_B], SecurityGroupIds: [SECURITY_GROUP] } });
  });

  it('reserved concurrency of the worker and of the coordinator', () => {
    const { template } = tuned();

    template.hasResourceProperties('AWS::Lambda::Function', { Handler: 'index.worker', ReservedConcurrentExecutions: 40 });
    template.hasResourceProperties('AWS::Lambda::Function', { Handler: 'index.coordinator', ReservedConcurrentExecutions: 2 });
    defaults().template.allResourcesProperties('AWS::Lambda::Function', { ReservedConcurrentExecutions: Match.absent() });
  });

  it('warns when the worker reserves fewer invocations than the coordinator sends at once', () => {
    const { stack } = deploy(() => ({ workerReservedConcurrency: 8 }));

    Annotations.fromStack(stack).hasWarning(
      '/S/Job',
      Match.stringLikeRegexp('workerReservedConcurrency 8 is below maxConcurrency 32: .*set maxConcurrency: 8 \\[ack: sluice:worker-concurrency\\]'),
    );
    Annotations.fromStack(tuned().stack).hasNoWarning('*', Match.stringLikeRegexp('workerReservedConcurrency'));
  });

  it('tracing: X-Ray active on both functions, whose roles may write traces', () => {
    const { stack, job, template } = tuned();

    template.allResourcesProperties('AWS::Lambda::Function', { TracingConfig: { Mode: 'Active' } });
    expect(grantsOf(template, roleOf(stack, job.worker))).toMatchObject({ 'xray:PutTraceSegments': ['*'], 'xray:PutTelemetryRecords': ['*'] });
    defaults().template.allResourcesProperties('AWS::Lambda::Function', { TracingConfig: Match.absent() });
  });

  it('logRetention, and the JSON log levels', () => {
    const { template } = tuned();

    template.allResourcesProperties('AWS::Logs::LogGroup', { RetentionInDays: 90 });
    template.allResourcesProperties('AWS::Lambda::Function', { LoggingConfig: Match.objectLike({ LogFormat: 'JSON', ApplicationLogLevel: 'DEBUG', SystemLogLevel: 'WARN' }) });
  });

  it('loggingFormat TEXT: plain lines, no levels', () => {
    const { template } = deploy(() => ({ loggingFormat: lambda.LoggingFormat.TEXT }));

    template.allResourcesProperties('AWS::Lambda::Function', { LoggingConfig: Match.objectEquals({ LogFormat: 'Text', LogGroup: Match.anyValue() }) });
  });

  it('bundling: defined constants, minification and sources in the maps reach the bundles, which are new assets', () => {
    // Act
    const options = { define: { 'process.env.WORDCOUNT_MIN_LENGTH': '"4"' }, minify: false, sourcesContent: true };
    const { template } = deploy(() => ({ bundling: options }));
    const bundles = bundleJob(WORDCOUNT, options);
    const plain = bundleJob(WORDCOUNT);

    // Assess
    const keys = (t: Template) => Object.values(t.findResources('AWS::Lambda::Function') as Record<string, Resource>).map((f) => JSON.stringify(f.Properties!.Code));
    expect(keys(template).filter((k) => keys(defaults().template).includes(k))).toEqual([]);
    const worker = readFileSync(join(bundles.worker.dir, 'index.mjs'), 'utf8');
    expect(worker).not.toContain('process.env.WORDCOUNT_MIN_LENGTH');
    expect(bundles.worker.bytes).toBeGreaterThan(plain.worker.bytes);
    expect(JSON.parse(readFileSync(join(bundles.worker.dir, 'index.mjs.map'), 'utf8')).sourcesContent?.length).toBeGreaterThan(0);
    expect(JSON.parse(readFileSync(join(plain.worker.dir, 'index.mjs.map'), 'utf8')).sourcesContent).toBeUndefined();
  });

  it('bundling.external: a module left out of the bundle is imported at run time', () => {
    const bundles = bundleJob(WORDCOUNT, { external: ['@aws-sdk/client-kinesis'] });

    expect(Object.keys(bundles.worker.contents)).not.toContain('@aws-sdk/client-kinesis');
    expect(Object.keys(bundleJob(WORDCOUNT).worker.contents)).toContain('@aws-sdk/client-kinesis');
    expect(readFileSync(join(bundles.worker.dir, 'index.mjs'), 'utf8')).toMatch(/from"@aws-sdk\/client-kinesis"/);
  });
});

describe('SluiceJob refuses bad new props with an error that says what to do', { timeout: 60_000 }, () => {
  const build = (props: (stack: Stack) => Partial<SluiceJobProps>) => () => {
    const stack = new Stack(newApp(), 'S');
    return new SluiceJob(stack, 'Job', { entry: WORDCOUNT, ...props(stack) });
  };

  it.each([
    { what: 'workerReservedConcurrency 0', props: () => ({ workerReservedConcurrency: 0 }), error: /^SluiceJob: workerReservedConcurrency must be a whole number >= 1, got 0 \(leave it out/ },
    { what: 'coordinatorReservedConcurrency 1', props: () => ({ coordinatorReservedConcurrency: 1 }), error: /^SluiceJob: coordinatorReservedConcurrency must be a whole number >= 2, got 1: .*leave it out or give 2$/ },
    { what: 'vpcSubnets without vpc', props: () => ({ vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS } }), error: /^SluiceJob: vpcSubnets needs vpc: give the VPC the functions run in, or leave vpcSubnets out$/ },
    { what: 'securityGroups without vpc', props: (s: Stack) => ({ securityGroups: [ec2.SecurityGroup.fromSecurityGroupId(s, 'Sg', 'sg-1')] }), error: /^SluiceJob: securityGroups needs vpc/ },
    { what: 'an alarm topic with no alarms', props: (s: Stack) => ({ createCloudWatchAlarms: false, alarmTopic: new sns.Topic(s, 'T') }), error: /^SluiceJob: alarmTopic has no alarm to notify, since createCloudWatchAlarms is false: leave one of them out$/ },
    { what: 'both existingStateBucket and stateBucketProps', props: (s: Stack) => ({ existingStateBucket: s3.Bucket.fromBucketName(s, 'B', 'shared-state'), stateBucketProps: {} }), error: /^SluiceJob: give either existingStateBucket or stateBucketProps, not both; .*fromBucketAttributes/ },
    { what: 'both existingTable and tableProps', props: (s: Stack) => ({ existingTable: dynamodb.Table.fromTableName(s, 'M', 'm'), tableProps: {} }), error: /^SluiceJob: give either existingTable or tableProps, not both/ },
    { what: 'an application log level that drops the metrics', props: () => ({ applicationLogLevel: lambda.ApplicationLogLevel.WARN }), error: /^SluiceJob: applicationLogLevel WARN would drop the coordinator's metric lines .*: use INFO, DEBUG or TRACE$/ },
    { what: 'log levels with text logs', props: () => ({ loggingFormat: lambda.LoggingFormat.TEXT, systemLogLevel: lambda.SystemLogLevel.WARN }), error: /^SluiceJob: applicationLogLevel and systemLogLevel need loggingFormat JSON/ },
    { what: 'highResolutionMetrics that is not a boolean', props: () => ({ highResolutionMetrics: 'yes' as unknown as boolean }), error: /^SluiceJob: highResolutionMetrics must be true or false, got "yes"$/ },
    { what: 'bundling.external that is not a list of names', props: () => ({ bundling: { external: 'sharp' as unknown as string[] } }), error: /^SluiceJob: bundling\.external must be a list of module names/ },
    { what: 'bundling.define with a value that is not a string', props: () => ({ bundling: { define: { DEBUG: true as unknown as string } } }), error: /^SluiceJob: bundling\.define\.DEBUG must be a string of JavaScript/ },
  ])('$what', ({ props, error }) => {
    expect(build(props)).toThrow(error);
  });
});

describe('cdk-nag AwsSolutions checks with the new props', { timeout: 60_000 }, () => {
  it.each([
    { what: 'keys, a VPC, reserved concurrency, tracing, log levels, an alarm topic, 1 s metrics', props: everything },
    {
      what: 'existing resources imported with their keys, and no alarms',
      props: (stack: Stack) => ({
        existingStream: kinesis.Stream.fromStreamAttributes(stack, 'In', { streamArn: 'arn:aws:kinesis:eu-west-1:123456789012:stream/in', encryptionKey: newKey(stack, 'InKey') }),
        existingStateBucket: s3.Bucket.fromBucketAttributes(stack, 'State', { bucketName: 'state', encryptionKey: newKey(stack, 'StateKey') }),
        existingTable: dynamodb.Table.fromTableAttributes(stack, 'Meta', { tableName: 'meta', encryptionKey: newKey(stack, 'MetaKey') }),
        createCloudWatchAlarms: false,
      }),
    },
  ])('$what: every finding acknowledged, each with its reason, and least privilege kept but for EC2 and X-Ray', ({ props }) => {
    // Act
    const app = newApp(true);
    const stack = new Stack(app, 'S');
    new SluiceJob(stack, 'Job', { entry: WORDCOUNT, ...props(stack) });
    const result = nagSynth(app);

    // Assess
    expect(result.findings).toEqual([]);
    expect(result.failed).toBe(false);
    const used = new Set(result.acknowledged.map((a) => `${a.acknowledgedAt} ${a.acknowledgedId}`));
    expect(acknowledgments(stack).filter((a) => !used.has(`${a.path} ${a.id}`))).toEqual([]);
    // Only the network interface and trace actions, which take no narrower resource, are on *.
    const star = leastPrivilegeProblems(Template.fromStack(stack));
    expect(star.every((p) => /resource \* for (ec2|xray):/.test(p)), star.join('\n')).toBe(true);
  });
});
