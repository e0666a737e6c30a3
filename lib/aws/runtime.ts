import { randomBytes } from 'node:crypto';
import type { S3Client } from '@aws-sdk/client-s3';
import { SluiceError } from '../core/errors.ts';
import { booleanSetting } from '../core/options.ts';
import { type JobDefinition, type OnRecordError, withJobOptions } from '../api/job.ts';
import type { CoordinatorRuntime } from '../engine/coordinator.ts';
import { inMemorySources, type SourceFactories, sourcesOn } from '../engine/sources.ts';
import type { WorkerRuntime } from '../engine/worker.ts';
import { WallClock } from '../node/clock.ts';
import { loadJob } from '../node/loadJob.ts';
import type { JobGraph } from '../plan/graph.ts';
import type { SinkResolver, SourceFactory } from '../ports/index.ts';
import { type AwsConfig, dynamoClient, kinesisClient, lambdaClient, s3Client } from './clients.ts';
import { DynamoMetaStore } from './dynamoMetaStore.ts';
import { emfMetrics } from './emfMetrics.ts';
import { KinesisSource } from './kinesisSource.ts';
import { LambdaInvoker } from './lambdaInvoker.ts';
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
  readonly aws?: AwsConfig;
}

function required(env: NodeJS.ProcessEnv, name: string): string {
  const v = env[name];
  if (!v) throw new SluiceError(`environment variable ${name} is not set; the Sluice handlers read their resources from SLUICE_STATE_BUCKET, SLUICE_TABLE and SLUICE_WORKER_FUNCTION`);
  return v;
}

/**
 * The configuration the handlers read from their environment: `SLUICE_STATE_BUCKET`,
 * `SLUICE_STATE_PREFIX`, `SLUICE_TABLE`, `SLUICE_WORKER_FUNCTION`, `SLUICE_CONCURRENCY`, and
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
  const one = env.SLUICE_AWS_ENDPOINT || env.AWS_ENDPOINT_URL || undefined;
  const per = { s3: env.SLUICE_S3_ENDPOINT ?? one, dynamodb: env.SLUICE_DYNAMODB_ENDPOINT ?? one, kinesis: env.SLUICE_KINESIS_ENDPOINT ?? one, lambda: env.SLUICE_LAMBDA_ENDPOINT ?? one };
  const concurrency = env.SLUICE_CONCURRENCY === undefined ? undefined : Number(env.SLUICE_CONCURRENCY);
  if (concurrency !== undefined && (!Number.isInteger(concurrency) || concurrency < 1)) throw new SluiceError(`SLUICE_CONCURRENCY must be a whole number >= 1, got ${env.SLUICE_CONCURRENCY}`);
  return {
    stateBucket: required(env, 'SLUICE_STATE_BUCKET'),
    statePrefix: env.SLUICE_STATE_PREFIX,
    table: required(env, 'SLUICE_TABLE'),
    workerFunction: role === 'coordinator' ? required(env, 'SLUICE_WORKER_FUNCTION') : env.SLUICE_WORKER_FUNCTION,
    concurrency,
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
 * Sources on AWS: Kinesis shards, `s3://` text file prefixes, plus the sources that live in the
 * coordinator's memory. What the source catalogue says runs locally only (sockets, local
 * directories) is refused in its words.
 *
 * @example
 * ```ts
 * const sources = awsSources(configFromEnv());
 * ```
 */
export function awsSources(config: AwsRuntimeConfig): SourceFactory {
  const kinesis = kinesisClient(config.aws);
  let s3: S3Client | undefined;
  const factories: SourceFactories<'aws'> = {
    ...inMemorySources,
    kinesis: (spec, io) => new KinesisSource(spec, io, { client: kinesis }),
    textFile: (spec, io) => new S3TextFileSource(spec, io, { client: (s3 ??= s3Client(config.aws)) }),
  };
  return sourcesOn('aws', factories);
}

/** Outputs on AWS: `s3://` locations only (a Lambda has no durable disk). */
export function awsSinks(config: AwsRuntimeConfig): SinkResolver {
  const s3 = s3Sinks(s3Client(config.aws));
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
export function awsWorkerRuntime(graph: JobGraph, config: AwsRuntimeConfig): WorkerRuntime {
  return {
    blobs: new S3BlobStore({ client: s3Client(config.aws), bucket: config.stateBucket, prefix: config.statePrefix ?? `${graph.name}/` }),
    sources: awsSources(config),
    sinks: awsSinks(config),
  };
}

/**
 * What the coordinator function needs: the worker runtime's stores, the DynamoDB meta store, the
 * Lambda invoker, the wall clock, EMF metrics.
 *
 * @example
 * ```ts
 * export const handler = createCoordinatorHandler(loadJobFromEnv, (graph) => awsCoordinatorRuntime(graph, configFromEnv(process.env, 'coordinator')));
 * ```
 */
export function awsCoordinatorRuntime(graph: JobGraph, config: AwsRuntimeConfig, write: (line: string) => void = (l) => console.log(l)): CoordinatorRuntime {
  if (!config.workerFunction) throw new SluiceError('the coordinator needs the worker function name (SLUICE_WORKER_FUNCTION)');
  const worker = awsWorkerRuntime(graph, config);
  return {
    ...worker,
    meta: new DynamoMetaStore({ client: dynamoClient(config.aws), table: config.table, job: graph.name }),
    // Tasks and results over Lambda's 6 MB go through the state store.
    invoker: new LambdaInvoker({ client: lambdaClient(config.aws), functionName: config.workerFunction, concurrency: config.concurrency, blobs: worker.blobs }),
    clock: new WallClock(),
    log: { print: (text) => write(text.trimEnd()), info: write, warn: (l) => write(`warning: ${l}`) },
    metrics: emfMetrics(write),
    owner: `lambda:${process.env.AWS_LAMBDA_LOG_STREAM_NAME ?? randomBytes(6).toString('hex')}:${randomBytes(4).toString('hex')}`,
    stateLocation: `s3://${config.stateBucket}/${config.statePrefix ?? `${graph.name}/`} and table ${config.table}`,
  };
}
