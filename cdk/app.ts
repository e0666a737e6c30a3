// The CDK app: one stack deploying one job with the SluiceJob construct.
//   npx cdk synth  -c job=examples/kinesis-wordcount.ts
//   npx cdk deploy -c job=examples/kinesis-wordcount.ts [-c shards=2] [-c batchInterval=5s] [-c destroy=true]
import { basename, extname } from 'node:path';
import { App, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { SluiceJob } from './sluiceJob.ts';

const app = new App();
const context = (key: string): string | undefined => {
  const v: unknown = app.node.tryGetContext(key);
  return v === undefined || v === null || v === '' ? undefined : String(v);
};
const entry = context('job') ?? 'examples/kinesis-wordcount.ts';
const shards = context('shards');
const stack = new Stack(app, context('stack') ?? `sluice-${basename(entry, extname(entry)).replace(/[^A-Za-z0-9-]/g, '-')}`, {
  description: `Sluice job ${entry}`,
  env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
});
// The id `Job` names the stack's outputs (JobStreamName, JobSinkBucketName, …) and its dashboard (<stack>-Job), as the README lists them.
new SluiceJob(stack, 'Job', {
  entry,
  batchInterval: context('batchInterval'),
  streamProps: context('onDemand') === 'true' ? { mode: 'on-demand' } : { shardCount: shards === undefined ? 1 : Number(shards) },
  // Development stacks (-c destroy=true) take their data with them when deleted.
  removalPolicy: context('destroy') === 'true' ? RemovalPolicy.DESTROY : RemovalPolicy.RETAIN,
});
app.synth();
