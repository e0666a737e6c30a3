import { basename, join, resolve } from 'node:path';
import { type AwsConfig, cloudFormationClient, dynamoClient, type KinesisClient, kinesisClient, s3Client } from '../aws/clients.ts';
import { awsAccessFromEnv, bucketExists, credentialsRefused, jobsInTable } from '../aws/deployedJob.ts';
import { DynamoMetaStore } from '../aws/dynamoMetaStore.ts';
import { S3BlobStore } from '../aws/s3BlobStore.ts';
import { type StackJob, StackNotFoundError, sluiceJobsOf, stackOutputs } from '../aws/stackJobs.ts';
import { keys } from '../engine/protocol.ts';
import { SpillingMetaStore } from '../engine/spillingMetaStore.ts';
import { loadJob } from '../node/loadJob.ts';
import type { BlobStore, MetaStore } from '../ports/index.ts';
import { UsageError } from './errors.ts';
import { localStateStores } from './localState.ts';

/** Where a command finds a job: a local state directory, or a deployed job's stack, or its table and bucket. */
export interface JobStoreFlags {
  /** A local job's state directory (as given to `sluice run --state-dir`). */
  readonly stateDir?: string;
  /** A deployed job's CloudFormation stack: its outputs name the table, bucket and stream. */
  readonly stack?: string;
  /** A deployed job's DynamoDB table (with `bucket`). */
  readonly table?: string;
  /** A deployed job's state bucket (with `table`). */
  readonly bucket?: string;
  /** Which job: its name, or in a stack its construct (`Clicks`); needed when there are several. */
  readonly job?: string;
  /** The job's Kinesis stream (a stack's own by default). */
  readonly stream?: string;
  /** The AWS region. @default AWS_REGION, else your profile's region */
  readonly region?: string;
}

/** A job's stores, local or deployed, for the commands that read or operate it (`status`, `state`, `dead-letters`, `pause`, `ui`). */
export interface JobStores {
  /** Where the state is, for messages: a directory, or `table T and s3://B/<job>/ (stack S)`. */
  readonly where: string;
  readonly jobName: string;
  /**
   * The job's meta store as the coordinator reads it: values it spilled to the blob store (large
   * batch records and checkpoints) come back whole (`SpillingMetaStore`). On AWS, the job's
   * partition of the table (`DynamoMetaStore`).
   */
  readonly meta: MetaStore;
  /** The job's blob store: its state directory's blobs, or the state bucket under `<job>/` (`S3BlobStore`). */
  readonly blobs: BlobStore;
  /** The job's Kinesis stream, when known (a stack's, or `--stream`), with a client for it and its region. */
  readonly stream?: { readonly name: string; readonly client: KinesisClient; readonly region: string };
  /** Set for a deployed job: where it is. */
  readonly deployed?: { readonly table: string; readonly bucket: string; readonly prefix: string; readonly stack?: string; readonly region: string };
  /** Closes the AWS clients (none locally). */
  close(): void;
}

/**
 * The stores of a job, for the commands that read or operate it. Locally (`file`, or `--state-dir`)
 * the state directory's, as `sluice run` keeps them; for a deployed job, `--stack NAME` (its outputs
 * give the table, the state bucket and the stream; a stack holding several jobs needs `--job`) or
 * `--table T --bucket B [--job NAME] [--stream S]`, read with your AWS credentials (the SDK's
 * default chain: environment, `AWS_PROFILE`, SSO, …) in `--region` or your default region; every
 * endpoint variable of `endpointsFromEnv` applies (`SLUICE_AWS_ENDPOINT` for LocalStack, …).
 * Whatever cannot work is a {@link UsageError} that says what to do: both a stack and a state
 * directory, a table without its bucket, a stack that does not exist or holds no Sluice job,
 * several jobs and no `--job`, a job the table does not hold, no credentials or region, a table
 * or bucket that does not exist.
 *
 * @example
 * ```ts
 * const stores = await jobStores(undefined, { stack: 'sluice-kinesis-wordcount' });
 * try {
 *   console.log(stores.where, (await readJobStatus(stores.meta, stores.blobs)).checkpoint?.lastCompleted);
 * } finally {
 *   stores.close();
 * }
 * ```
 */
export async function jobStores(file: string | undefined, flags: JobStoreFlags): Promise<JobStores> {
  const deployed = flags.stack !== undefined || flags.table !== undefined || flags.bucket !== undefined;
  if (flags.stateDir !== undefined && deployed) {
    throw new UsageError(`give --state-dir (a local job) or ${flags.stack !== undefined ? '--stack' : '--table and --bucket'} (a deployed one), not both`);
  }
  if (flags.stack !== undefined && (flags.table !== undefined || flags.bucket !== undefined)) {
    throw new UsageError('--stack names the table and bucket itself: give --stack, or --table and --bucket, not both');
  }
  if (flags.table !== undefined && flags.bucket === undefined) throw new UsageError(`--table ${flags.table} needs --bucket: the job's state bucket (its stack's <construct>StateBucketName output); or give --stack`);
  if (flags.bucket !== undefined && flags.table === undefined) throw new UsageError(`--bucket ${flags.bucket} needs --table: the job's table (its stack's <construct>TableName output); or give --stack`);
  if (!deployed) {
    if (flags.job !== undefined) throw new UsageError('--job names a job of a deployed stack or table (--stack, or --table and --bucket); a local job is named by its file or --state-dir');
    return localStores(file, flags);
  }
  return deployedStores(file, flags);
}

/**
 * Runs `use` with a job's stores and closes their clients afterwards, whether `use` succeeded or not.
 *
 * @example
 * ```ts
 * const status = await withStores(jobStores(file, flags), (stores) => readJobStatus(stores.meta, stores.blobs));
 * ```
 */
export async function withStores<T>(opening: Promise<JobStores>, use: (stores: JobStores) => Promise<T>): Promise<T> {
  const stores = await opening;
  try {
    return await use(stores);
  } finally {
    stores.close();
  }
}

/** A local job's stores; with `--stream`, a Kinesis client for that stream (to redrive dead letters into it). */
async function localStores(file: string | undefined, flags: JobStoreFlags): Promise<JobStores> {
  let dir = flags.stateDir;
  let jobName: string | undefined;
  if (dir === undefined && file !== undefined) {
    jobName = (await loadJob(file)).options.name;
    dir = join('.sluice', jobName);
  }
  const local = await localStateStores(undefined, dir);
  jobName ??= ((await local.meta.get(keys.checkpoint))?.value as { job?: string } | undefined)?.job ?? basename(resolve(local.dir));
  const aws = flags.stream === undefined ? undefined : await awsAccess(flags.region);
  const client = aws && kinesisClient(aws);
  return {
    where: local.dir,
    jobName,
    meta: new SpillingMetaStore(local.meta, local.blobs),
    blobs: local.blobs,
    ...(client ? { stream: { name: flags.stream!, client, region: aws!.region! } } : {}),
    close: () => client?.destroy(),
  };
}

/** A deployed job's stores: the table's partition of the job, the state bucket under `<job>/`. */
async function deployedStores(file: string | undefined, flags: JobStoreFlags): Promise<JobStores> {
  const aws = await awsAccess(flags.region);
  const region = aws.region!;
  const dynamo = dynamoClient(aws);
  const s3 = s3Client(aws);
  const clients: { destroy(): void }[] = [dynamo, s3];
  const close = () => clients.forEach((c) => c.destroy());
  try {
    const wanted = flags.job ?? (file === undefined ? undefined : (await loadJob(file)).options.name);
    let table: string;
    let bucket: string;
    let jobName: string | undefined;
    let streamName = flags.stream;
    if (flags.stack !== undefined) {
      const job = await stackJob(aws, flags.stack, wanted);
      ({ table, stateBucket: bucket } = job);
      jobName = job.jobName ?? (wanted !== undefined && wanted !== job.construct ? wanted : undefined);
      streamName ??= job.stream;
    } else {
      table = flags.table!;
      bucket = flags.bucket!;
      jobName = wanted;
    }
    const jobs = await jobsInTable(dynamo, table);
    if (jobs === undefined) throw new UsageError(`DynamoDB table ${table} does not exist in ${region}: check --table (the stack's <construct>TableName output) and the region (--region, AWS_REGION)`);
    if (jobName === undefined) {
      if (jobs.length === 1) jobName = jobs[0];
      else if (jobs.length === 0) throw new UsageError(`table ${table} holds no Sluice job yet (no lease, checkpoint or pause): give the job's name with --job`);
      else throw new UsageError(`table ${table} holds ${jobs.length} jobs (${jobs.join(', ')}): say which with --job NAME`);
    } else if (flags.stack === undefined && !jobs.includes(jobName)) {
      // A stack says which job it deployed; a table named by hand may be the wrong one, or the name mistyped.
      throw new UsageError(`table ${table} holds no job ${jobName}${jobs.length ? ` (it holds ${jobs.join(', ')})` : ' (it holds no Sluice job yet)'}: check --job and --table`);
    }
    if (!(await bucketExists(s3, bucket))) throw new UsageError(`S3 bucket ${bucket} does not exist (region ${region}): check --bucket (the stack's <construct>StateBucketName output)`);
    const prefix = `${jobName}/`;
    const blobs = new S3BlobStore({ client: s3, bucket, prefix });
    const meta = new SpillingMetaStore(new DynamoMetaStore({ client: dynamo, table, job: jobName }), blobs);
    let stream: JobStores['stream'];
    if (streamName !== undefined) {
      const client = kinesisClient(aws);
      clients.push(client);
      stream = { name: streamName, client, region };
    }
    return {
      where: `table ${table} and s3://${bucket}/${prefix}${flags.stack !== undefined ? ` (stack ${flags.stack})` : ''}`,
      jobName,
      meta,
      blobs,
      ...(stream ? { stream } : {}),
      deployed: { table, bucket, prefix, region, ...(flags.stack !== undefined ? { stack: flags.stack } : {}) },
      close,
    };
  } catch (e) {
    close();
    throw refusedCredentials(e);
  }
}

/** The job of `stack` that `wanted` names (its construct or its job name), or its only one. */
async function stackJob(aws: AwsConfig, stack: string, wanted: string | undefined): Promise<StackJob> {
  const cfn = cloudFormationClient(aws);
  let outputs;
  try {
    outputs = await stackOutputs(cfn, stack);
  } catch (e) {
    if (e instanceof StackNotFoundError) {
      throw new UsageError(`stack ${stack} does not exist in ${aws.region}: check the name (npx cdk list, or the CloudFormation console) and the region (--region, AWS_REGION)`);
    }
    throw e;
  } finally {
    cfn.destroy();
  }
  const jobs = sluiceJobsOf(outputs);
  const named = (j: StackJob) => (j.jobName ? `${j.construct} (job ${j.jobName})` : j.construct);
  if (jobs.length === 0) {
    const seen = outputs.map((o) => o.OutputKey).filter(Boolean);
    throw new UsageError(
      `stack ${stack} has no Sluice job: none of its outputs is a SluiceJob's (<construct>TableName, <construct>StateBucketName, …; it has ${seen.length ? seen.join(', ') : 'no outputs'}). Give the stack the SluiceJob was deployed in, or --table and --bucket`,
    );
  }
  if (wanted !== undefined) {
    const job = jobs.find((j) => j.construct === wanted || j.jobName === wanted);
    if (!job) throw new UsageError(`stack ${stack} has no job ${wanted}: its jobs are ${jobs.map(named).join(', ')}; give one of them with --job`);
    return job;
  }
  if (jobs.length > 1) throw new UsageError(`stack ${stack} holds ${jobs.length} jobs, ${jobs.map(named).join(', ')}: say which with --job NAME`);
  return jobs[0];
}

/**
 * How to reach AWS from this command line (`awsAccessFromEnv`: the endpoint variables, the region
 * of `--region`, `AWS_REGION` or the profile, the SDK's default credentials), or a
 * {@link UsageError} saying how to give what is missing.
 *
 * @example
 * ```ts
 * const aws = await awsAccess('eu-west-1'); // throws a UsageError saying how to sign in when there are no credentials
 * ```
 */
export async function awsAccess(regionFlag?: string): Promise<AwsConfig & { readonly region: string }> {
  const access = await awsAccessFromEnv(regionFlag);
  if ('config' in access) return access.config;
  if (access.missing === 'region') throw new UsageError('no AWS region: give --region, or set AWS_REGION (or a region in your AWS profile)');
  throw new UsageError(
    `no AWS credentials found (${access.why}): sign in (aws configure, aws sso login, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), or choose a profile with AWS_PROFILE`,
  );
}

/** An error of refused credentials said as what to do; any other error as it is. */
function refusedCredentials(e: unknown): unknown {
  if (!credentialsRefused(e)) return e;
  return new UsageError(`AWS refused your credentials (${(e as Error).name}: ${(e as Error).message}): log in again (aws sso login, or new keys), or choose another profile with AWS_PROFILE`);
}
