import { Annotations } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kinesis from 'aws-cdk-lib/aws-kinesis';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';
import type { JobDescription } from '../describeJob.ts';

// What each function may do, statement by statement (least privilege, each with a sid): the roles
// start with their own log group only, and get the data and the coordinator's extras after.

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
 * What a function does with the data. Both read the stream's records, read and write blobs under
 * the job's prefix and write the sink; the coordinator also lists shards (the cut) and deletes
 * blobs (cleanup). `s3:ListBucket` on the whole state bucket lets S3 answer 404, not 403, for a
 * blob that is missing, which the engine must tell apart (a lost shuffle segment is recomputed).
 */
export function grantData(role: iam.Role, data: JobData, jobName: string, kind: 'coordinator' | 'worker'): void {
  const coordinator = kind === 'coordinator';
  role.addToPrincipalPolicy(
    new iam.PolicyStatement({
      sid: 'ReadStream',
      actions: [...(coordinator ? ['kinesis:ListShards'] : []), 'kinesis:GetShardIterator', 'kinesis:GetRecords'],
      resources: [data.stream.streamArn],
    }),
  );
  role.addToPrincipalPolicy(
    new iam.PolicyStatement({
      sid: 'StateBlobs',
      actions: ['s3:GetObject', 's3:PutObject', ...(coordinator ? ['s3:DeleteObject'] : [])],
      resources: [data.stateBucket.arnForObjects(`${jobName}/*`)],
    }),
  );
  role.addToPrincipalPolicy(new iam.PolicyStatement({ sid: 'ListStateBlobs', actions: ['s3:ListBucket'], resources: [data.stateBucket.bucketArn] }));
  role.addToPrincipalPolicy(new iam.PolicyStatement({ sid: 'WriteSink', actions: ['s3:PutObject'], resources: [data.sinkBucket.arnForObjects('*')] }));
  if (data.stream.encryptionKey) data.stream.encryptionKey.grantDecrypt(role);
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
}

/**
 * Warns at synth when the job reads or writes somewhere the grants above do not cover. `stream` and
 * `sink` are the names the job was loaded with; `grantedStream` is the stream's name as the user reads it.
 */
export function warnAboutUngranted(scope: Construct, job: JobDescription, stream: string, sink: string, grantedStream: string): void {
  for (const s of job.streams) {
    if (s !== stream) {
      Annotations.of(scope).addWarningV2('sluice:stream', `job ${job.name} reads Kinesis stream ${s}, but its functions may read only ${grantedStream}: grant it yourself`);
    }
  }
  for (const location of job.s3) {
    const bucket = location.slice('s3://'.length).split('/')[0];
    if (bucket !== sink) {
      Annotations.of(scope).addWarningV2('sluice:bucket', `job ${job.name} uses ${location}, but its functions may write only to the sink bucket: grant it yourself`);
    }
  }
}
