// The functions' configuration, read from their environment, and the worker's runtime: the only
// AWS services a worker calls are S3 and Kinesis (the coordinator's runtime, coordinatorRuntime.ts,
// adds DynamoDB and Lambda), so the worker's bundle (cdk/bundle.ts) holds only those two clients.
import type { KinesisClient } from '@aws-sdk/client-kinesis';
import type { S3Client } from '@aws-sdk/client-s3';
import { SluiceError } from '../core/errors.ts';
import { booleanSetting } from '../core/options.ts';
import { type JobDefinition, type OnRecordError, withJobOptions } from '../api/job.ts';
import { inMemorySources, type SourceFactories, sourcesOn } from '../engine/sources.ts';
import type { WorkerRuntime } from '../engine/worker.ts';
import { loadJob } from '../node/loadJob.ts';
import type { JobGraph } from '../plan/graph.ts';
import type { SinkResolver, SourceFactory } from '../ports/index.ts';
import { type AwsConfig, endpointsFromEnv, kinesisClient, s3Client } from './clients.ts';
import { KinesisSource } from './kinesisSource.ts';
import { S3BlobStore } from './s3BlobStore.ts';
import { s3Sinks } from './s3Sinks.ts';
import { S3TextFileSource } from './s3TextFileSource.ts';

/** Where a job's AWS resources are. */
export interface AwsRuntimeConfig {
  /** Bucket of lineage blobs, shuffle data and state. */
  readonly stateBucket: string;
  /** Key prefix in the state bucket. @default `<job name>/` */
  readonly statePrefix?: string;
  /** DynamoDB table of the lease, checkpoint and batch records (see `metaTableSchema`). */
  readonly table: string;
  /** The worker function (coordinator only). */
  readonly workerFunction?: string;
  /** Worker invocations in flight at once. @default 32 */
  readonly concurrency?: number;
  /** The deployment, the metrics' `Stack` dimension (`SLUICE_DEPLOYMENT`). @default none: the metrics carry `Job` alone */
  readonly deployment?: string;
  /** Metrics stored at 1-second resolution (`SLUICE_HIGH_RESOLUTION_METRICS`). @default false */
  readonly highResolutionMetrics?: boolean;
  readonly aws?: AwsConfig;
}

function required(env: NodeJS.ProcessEnv, name: string): string {
  const v = env[name];
  if (!v) throw new SluiceError(`environment variable ${name} is not set; the Sluice handlers read their resources from SLUICE_STATE_BUCKET, SLUICE_TABLE and SLUICE_WORKER_FUNCTION`);
  return v;
}

/**
 * The configuration the handlers read from their environment: `SLUICE_STATE_BUCKET`,
 * `SLUICE_STATE_PREFIX`, `SLUICE_TABLE`, `SLUICE_WORKER_FUNCTION`, `SLUICE_CONCURRENCY`,
 * `SLUICE_DEPLOYMENT` and `SLUICE_HIGH_RESOLUTION_METRICS` (the metrics' `Stack` dimension and
 * resolution), and
 * `SLUICE_AWS_ENDPOINT` (or per service `SLUICE_S3_ENDPOINT`, `SLUICE_DYNAMODB_ENDPOINT`,
 * `SLUICE_KINESIS_ENDPOINT`, `SLUICE_LAMBDA_ENDPOINT`; else `AWS_ENDPOINT_URL`, which LocalStack sets in its
 * functions) to point every client at LocalStack or an emulator.
 *
 * @example
 * ```ts
 * const config = configFromEnv(); // throws, naming the variable, when one is missing
 * ```
 */
export function configFromEnv(env: NodeJS.ProcessEnv = process.env, role: 'coordinator' | 'worker' = 'worker'): AwsRuntimeConfig {
  // LocalStack sets AWS_ENDPOINT_URL in the functions it runs.
  const { s3, dynamodb, kinesis, lambda } = endpointsFromEnv(env);
  const per = { s3, dynamodb, kinesis, lambda };
  const concurrency = env.SLUICE_CONCURRENCY === undefined ? undefined : Number(env.SLUICE_CONCURRENCY);
  if (concurrency !== undefined && (!Number.isInteger(concurrency) || concurrency < 1)) throw new SluiceError(`SLUICE_CONCURRENCY must be a whole number >= 1, got ${env.SLUICE_CONCURRENCY}`);
  return {
    stateBucket: required(env, 'SLUICE_STATE_BUCKET'),
    statePrefix: env.SLUICE_STATE_PREFIX,
    table: required(env, 'SLUICE_TABLE'),
    workerFunction: role === 'coordinator' ? required(env, 'SLUICE_WORKER_FUNCTION') : env.SLUICE_WORKER_FUNCTION,
    concurrency,
    deployment: env.SLUICE_DEPLOYMENT || undefined,
    highResolutionMetrics: booleanSetting(env.SLUICE_HIGH_RESOLUTION_METRICS, 'SLUICE_HIGH_RESOLUTION_METRICS'),
    aws: { endpoint: per, region: env.AWS_REGION },
  };
}

/** The job named by `SLUICE_JOB_FILE` (a bundled handler imports its job instead). */
export function loadJobFromEnv(env: NodeJS.ProcessEnv = process.env): Promise<JobDefinition> {
  return loadJob(required(env, 'SLUICE_JOB_FILE'));
}

/**
 * The job with the options a deployment sets in the environment: `SLUICE_BATCH_INTERVAL` (ms, or
 * a duration such as `'5s'`), `SLUICE_ON_RECORD_ERROR` (`fail` or `dead-letter`) and
 * `SLUICE_WRITE_EMPTY_BATCHES` (`true` or `false`). Coordinator and workers read the same
 * variables, so they build the same plan.
 *
 * @example
 * ```ts
 * const job = withEnvOptions(await loadJobFromEnv(), { SLUICE_BATCH_INTERVAL: '5s' });
 * ```
 */
export function withEnvOptions(job: JobDefinition, env: NodeJS.ProcessEnv = process.env): JobDefinition {
  const interval = env.SLUICE_BATCH_INTERVAL;
  const onRecordError = env.SLUICE_ON_RECORD_ERROR;
  const writeEmptyBatches = booleanSetting(env.SLUICE_WRITE_EMPTY_BATCHES, 'SLUICE_WRITE_EMPTY_BATCHES');
  if (!interval && !onRecordError && writeEmptyBatches === undefined) return job;
  return withJobOptions(job, {
    batchInterval: interval ? (/^\d+$/.test(interval) ? Number(interval) : interval) : undefined,
    onRecordError: onRecordError ? (onRecordError as OnRecordError) : undefined,
    writeEmptyBatches,
  });
}

/**
 * The worker's AWS clients, one per service, each made the first time something asks for it and
 * shared after that: the blob store, the sinks and the S3 file source use one S3 client, and a job
 * that reads no Kinesis stream never makes a Kinesis client. The worker calls only these two
 * services; the coordinator adds its own (`coordinatorRuntime.ts`), so the worker's bundle holds
 * no DynamoDB or Lambda client.
 *
 * @example
 * ```ts
 * const config = configFromEnv();
 * const clients = workerClients(config.aws);
 * const sources = awsSources(config, clients); // no client made yet
 * ```
 */
export interface WorkerClients {
  /** The S3 client (made on first use). */
  s3(): S3Client;
  /** The Kinesis client (made on first use). */
  kinesis(): KinesisClient;
}

/**
 * {@link WorkerClients} for `aws`.
 *
 * @example
 * ```ts
 * const clients = workerClients({ endpoint: 'http://127.0.0.1:4569' });
 * const blobs = new S3BlobStore({ client: clients.s3(), bucket: 'state', prefix: 'job/' });
 * ```
 */
export function workerClients(aws?: AwsConfig): WorkerClients {
  let s3: S3Client | undefined;
  let kinesis: KinesisClient | undefined;
  return { s3: () => (s3 ??= s3Client(aws)), kinesis: () => (kinesis ??= kinesisClient(aws)) };
}

/**
 * Sources on AWS: Kinesis shards, `s3://` text file prefixes, plus the sources that live in the
 * coordinator's memory. What the source catalogue says runs locally only (sockets, local
 * directories) is refused in its words.
 *
 * @example
 * ```ts
 * const sources = awsSources(configFromEnv());
 * ```
 */
export function awsSources(config: AwsRuntimeConfig, clients: WorkerClients = workerClients(config.aws)): SourceFactory {
  const factories: SourceFactories<'aws'> = {
    ...inMemorySources,
    kinesis: (spec, io) => new KinesisSource(spec, io, { client: clients.kinesis() }),
    textFile: (spec, io) => new S3TextFileSource(spec, io, { client: clients.s3() }),
  };
  return sourcesOn('aws', factories);
}

/** Outputs on AWS: `s3://` locations only (a Lambda has no durable disk). */
export function awsSinks(config: AwsRuntimeConfig, clients: WorkerClients = workerClients(config.aws)): SinkResolver {
  const s3 = s3Sinks(clients.s3());
  return (location) => {
    if (!location.startsWith('s3://')) throw new SluiceError(`output ${location}: on AWS, outputs go to S3; use an s3://bucket/prefix location`);
    return s3(location);
  };
}

/**
 * What a worker function needs: the state bucket, the sources, the sinks.
 *
 * @example
 * ```ts
 * export const handler = createWorkerHandler(loadJobFromEnv, (graph) => awsWorkerRuntime(graph, configFromEnv()));
 * ```
 */
export function awsWorkerRuntime(graph: JobGraph, config: AwsRuntimeConfig, clients: WorkerClients = workerClients(config.aws)): WorkerRuntime {
  return {
    blobs: new S3BlobStore({ client: clients.s3(), bucket: config.stateBucket, prefix: config.statePrefix ?? `${graph.name}/` }),
    sources: awsSources(config, clients),
    sinks: awsSinks(config, clients),
  };
}
