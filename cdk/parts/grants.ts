import { Annotations } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kinesis from 'aws-cdk-lib/aws-kinesis';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';
import { type AwsAccess, resourceName, sourceCatalogue } from '../../lib/core/sources.ts';
import type { JobDescription } from '../describeJob.ts';

// What each function may do, statement by statement (least privilege, each with a sid): the roles
// start with their own log group only, and get the data and the coordinator's extras after. What the
// job's sources call is the source catalogue's (lib/core/sources.ts), not repeated here.

/** One of a job's two functions. */
type AwsFunction = 'coordinator' | 'worker';

/** The data both functions use: the grants' resources. */
export interface JobData {
  readonly stream: kinesis.IStream;
  readonly stateBucket: s3.IBucket;
  readonly sinkBucket: s3.IBucket;
}

/** A role Lambda can assume that may write to one log group, and nothing else yet. */
export function functionRole(scope: Construct, id: string, logGroup: logs.LogGroup): iam.Role {
  const role = new iam.Role(scope, id, { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com') });
  role.addToPrincipalPolicy(
    new iam.PolicyStatement({ sid: 'Logs', actions: ['logs:CreateLogStream', 'logs:PutLogEvents'], resources: [logGroup.logGroupArn, `${logGroup.logGroupArn}:log-stream:*`] }),
  );
  return role;
}

/**
 * What a function does with the data. Both read the job's stream as the source catalogue says a
 * Kinesis source does (the coordinator also lists shards, at the cut), read and write blobs under
 * the job's prefix, write the sink, and read what the job's sources read in the sink bucket
 * (`sinkReads`, catalogue entries too); the coordinator also deletes blobs (cleanup).
 * `s3:ListBucket` on the whole state bucket lets S3 answer 404, not 403, for a blob that is
 * missing, which the engine must tell apart (a lost shuffle segment is recomputed).
 */
export function grantData(role: iam.Role, data: JobData, jobName: string, kind: AwsFunction, sinkReads: readonly AwsAccess[] = []): void {
  const coordinator = kind === 'coordinator';
  // The job's stream (SLUICE_STREAM) is granted whether or not the job reads it yet: it is the stream the construct made or was given for the job.
  role.addToPrincipalPolicy(new iam.PolicyStatement({ sid: 'ReadStream', actions: [...sourceCatalogue.kinesis.aws.actions[kind]], resources: [data.stream.streamArn] }));
  role.addToPrincipalPolicy(
    new iam.PolicyStatement({
      sid: 'StateBlobs',
      actions: ['s3:GetObject', 's3:PutObject', ...(coordinator ? ['s3:DeleteObject'] : [])],
      resources: [data.stateBucket.arnForObjects(`${jobName}/*`)],
    }),
  );
  role.addToPrincipalPolicy(new iam.PolicyStatement({ sid: 'ListStateBlobs', actions: ['s3:ListBucket'], resources: [data.stateBucket.bucketArn] }));
  role.addToPrincipalPolicy(new iam.PolicyStatement({ sid: 'WriteSink', actions: ['s3:PutObject'], resources: [data.sinkBucket.arnForObjects('*')] }));
  grantSinkReads(role, data.sinkBucket, kind, sinkReads);
  grantDataKeys(role, data, sinkReads.length > 0);
}

/**
 * The customer-managed keys of the data, granted through the keys' own `grant` (which also writes
 * the key's policy when the role is in another account): the stream's records are decrypted; blobs
 * of a bucket encrypted with SSE-KMS are encrypted with a data key on `PutObject` and decrypted on
 * `GetObject`; the sink is decrypted only when the job's sources read it. A bucket, stream or table
 * made elsewhere is granted its key when it was imported with it (`encryptionKey`).
 */
function grantDataKeys(role: iam.Role, data: JobData, readsSink: boolean): void {
  data.stream.encryptionKey?.grantDecrypt(role);
  data.stateBucket.encryptionKey?.grant(role, 'kms:Decrypt', 'kms:GenerateDataKey');
  data.sinkBucket.encryptionKey?.grant(role, 'kms:GenerateDataKey', ...(readsSink ? ['kms:Decrypt'] : []));
}

/** S3 actions on a bucket itself rather than on its objects. */
const BUCKET_ACTIONS: ReadonlySet<string> = new Set(['s3:ListBucket']);

/** The catalogue's actions of `kind` for sources that read prefixes of the sink bucket: listing those prefixes, and their objects. */
function grantSinkReads(role: iam.Role, sink: s3.IBucket, kind: AwsFunction, reads: readonly AwsAccess[]): void {
  const prefixes = [...new Set(reads.flatMap((r) => (r.resource.type === 's3Prefix' ? [r.resource.prefix] : [])))];
  const actions = [...new Set(reads.flatMap((r) => r[kind]))];
  const onBucket = actions.filter((a) => BUCKET_ACTIONS.has(a));
  const onObjects = actions.filter((a) => !BUCKET_ACTIONS.has(a));
  // A listing of the whole bucket sends no prefix, which a condition on s3:prefix would refuse.
  const conditions = prefixes.includes('') ? undefined : { StringLike: { 's3:prefix': prefixes.map((p) => `${p}*`) } };
  if (onBucket.length) role.addToPrincipalPolicy(new iam.PolicyStatement({ sid: 'ListSinkInput', actions: onBucket, resources: [sink.bucketArn], conditions }));
  if (onObjects.length) role.addToPrincipalPolicy(new iam.PolicyStatement({ sid: 'ReadSinkInput', actions: onObjects, resources: prefixes.map((p) => sink.arnForObjects(`${p}*`)) }));
}

/**
 * What the job's sources read in the sink bucket (`sink`: its name as the job was loaded with):
 * granted with the data. Everything else they read is named by {@link warnAboutUngranted}.
 */
export function sinkReadsOf(job: JobDescription, sink: string): AwsAccess[] {
  return job.reads.filter((r) => r.resource.type === 's3Prefix' && r.resource.bucket === sink);
}

/** What only the coordinator does: keep the lease, checkpoint and batch records, and invoke workers. */
export function grantCoordinatorExtras(role: iam.Role, table: dynamodb.ITable, worker: lambda.IFunction): void {
  role.addToPrincipalPolicy(
    new iam.PolicyStatement({
      sid: 'MetaTable',
      actions: ['dynamodb:GetItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem', 'dynamodb:Query'],
      resources: [table.tableArn],
    }),
  );
  role.addToPrincipalPolicy(new iam.PolicyStatement({ sid: 'InvokeWorker', actions: ['lambda:InvokeFunction'], resources: [worker.functionArn] }));
  // DynamoDB decrypts the table's key with the caller's rights (read) and encrypts with it (write):
  // CDK's grantReadWriteData key actions, each named rather than wildcarded.
  table.encryptionKey?.grant(role, 'kms:Decrypt', 'kms:DescribeKey', 'kms:Encrypt', 'kms:GenerateDataKey');
}

/**
 * What Lambda needs of a function's role to run it in a VPC: to make, list and delete its network
 * interfaces (the actions of AWS's `AWSLambdaVPCAccessExecutionRole`, without its log grants on every
 * log group). EC2 allows these on no narrower resource than `*`.
 */
export function grantVpcAccess(role: iam.Role): void {
  role.addToPrincipalPolicy(
    new iam.PolicyStatement({
      sid: 'VpcNetworkInterfaces',
      actions: ['ec2:CreateNetworkInterface', 'ec2:DescribeNetworkInterfaces', 'ec2:DescribeSubnets', 'ec2:DeleteNetworkInterface', 'ec2:AssignPrivateIpAddresses', 'ec2:UnassignPrivateIpAddresses'],
      resources: ['*'],
    }),
  );
}

/**
 * Warns at synth when the job reads or writes somewhere the grants above do not cover. `stream` and
 * `sink` are the names the job was loaded with; `grantedStream` is the stream's name as the user reads it.
 */
export function warnAboutUngranted(scope: Construct, job: JobDescription, stream: string, sink: string, grantedStream: string): void {
  const resources = job.reads.map((r) => r.resource);
  for (const r of resources) {
    if (r.type === 'kinesisStream' && r.stream !== stream) {
      Annotations.of(scope).addWarningV2('sluice:stream', `job ${job.name} reads Kinesis stream ${r.stream}, but its functions may read only ${grantedStream}: grant it yourself`);
    }
  }
  const reads = resources.flatMap((r) => (r.type === 's3Prefix' ? [{ bucket: r.bucket, location: resourceName(r) }] : []));
  const writes = job.writes.map((location) => ({ bucket: location.slice('s3://'.length).split('/')[0], location }));
  for (const { bucket, location } of [...reads, ...writes]) {
    if (bucket !== sink) {
      Annotations.of(scope).addWarningV2('sluice:bucket', `job ${job.name} uses ${location}, but its functions may write only to the sink bucket: grant it yourself`);
    }
  }
}
