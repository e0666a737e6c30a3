/**
 * `npm run cfn-lint`: runs cfn-lint (Python, on development machines; CI has none, so no test
 * depends on it) on two synthesized templates: the CDK app's (`npx cdk synth -c
 * job=examples/kinesis-wordcount.ts`, into cdk.out/cfn-lint/app) and a stack that uses every prop
 * of SluiceJob past the defaults (customer-managed keys, a VPC, reserved concurrency, tracing, log
 * levels, an alarm topic, high-resolution metrics, bundling options), into cdk.out/cfn-lint/props.
 * Exits with cfn-lint's status: errors fail, warnings and informational findings are printed.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sns from 'aws-cdk-lib/aws-sns';
import { SluiceJob } from '../cdk/sluiceJob.ts';
import { projectContext } from '../infra-test/helpers/cdkContext.ts';

const ROOT = resolve(import.meta.dirname, '..');
const OUT = join(ROOT, 'cdk.out', 'cfn-lint');

/** The app as `npx cdk synth` makes it. */
function synthApp(): string {
  const dir = join(OUT, 'app');
  execFileSync(process.execPath, [join(ROOT, 'node_modules/aws-cdk/bin/cdk'), 'synth', '-c', 'job=examples/kinesis-wordcount.ts', '--no-notices', '--quiet', '-o', dir], {
    cwd: ROOT,
    env: { ...process.env, CDK_DISABLE_VERSION_CHECK: '1', CDK_DISABLE_CLI_TELEMETRY: '1' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  return dir;
}

/** A stack with every new prop of SluiceJob set. */
function synthProps(): string {
  const dir = join(OUT, 'props');
  const app = new App({ outdir: dir, context: projectContext() });
  // Environment-agnostic, as the app's stack is without CDK_DEFAULT_*: the VPC's zones are Fn::GetAZs, not placeholders.
  const stack = new Stack(app, 'sluice-props');
  const key = (id: string) => new kms.Key(stack, id, { enableKeyRotation: true });
  const vpc = new ec2.Vpc(stack, 'Vpc', { maxAzs: 2, natGateways: 1 });
  new SluiceJob(stack, 'Job', {
    entry: join(ROOT, 'examples/kinesis-wordcount.ts'),
    streamProps: { shardCount: 2, encryptionKey: key('StreamKey') },
    stateBucketProps: { encryptionKey: key('StateKey') },
    sinkBucketProps: { encryptionKey: key('SinkKey') },
    tableProps: { encryptionKey: key('TableKey') },
    vpc,
    vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
    workerReservedConcurrency: 32,
    coordinatorReservedConcurrency: 2,
    tracing: lambda.Tracing.ACTIVE,
    logRetention: logs.RetentionDays.THREE_MONTHS,
    applicationLogLevel: lambda.ApplicationLogLevel.DEBUG,
    systemLogLevel: lambda.SystemLogLevel.WARN,
    alarmTopic: new sns.Topic(stack, 'Alarms', { enforceSSL: true }),
    highResolutionMetrics: true,
    bundling: { define: { 'process.env.STAGE': '"lint"' }, sourcesContent: true },
  });
  app.synth();
  return dir;
}

rmSync(OUT, { recursive: true, force: true });
const templates = [synthApp(), synthProps()].flatMap((dir) => readdirSync(dir).filter((f) => f.endsWith('.template.json')).map((f) => join(dir, f)));
console.log(`cfn-lint ${templates.map((t) => t.slice(ROOT.length + 1)).join(' ')}`);
const run = spawnSync('cfn-lint', templates, { stdio: 'inherit' });
if (run.error) {
  console.error(`cfn-lint could not run (${run.error.message}): install it with pip install cfn-lint`);
  process.exit(1);
}
// cfn-lint's status is a bit mask: 2 errors, 4 warnings, 8 informational. Only errors fail.
const status = run.status ?? 1;
console.log(status === 0 ? 'cfn-lint: no findings' : `cfn-lint: ${status & 2 ? 'errors' : 'no errors'}${status & 4 ? ', warnings' : ''}${status & 8 ? ', informational findings' : ''}`);
process.exit(status & 2 ? 1 : 0);
