import { CreateTableCommand } from '@aws-sdk/client-dynamodb';
import { CreateStreamCommand, DescribeStreamSummaryCommand } from '@aws-sdk/client-kinesis';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import type { JobDefinition } from '../../api/job.ts';
import { dynamoClient, kinesisClient, s3Client } from '../clients.ts';
import { metaTableSchema } from '../dynamoMetaStore.ts';
import { createCoordinatorHandler, createWorkerHandler } from '../handlers.ts';
import { produceLines } from '../produce.ts';
import { awsCoordinatorRuntime } from '../coordinatorRuntime.ts';
import { type AwsRuntimeConfig, awsWorkerRuntime } from '../runtime.ts';
import { type Emulator, startDynalite, startKinesalite, startS3rver } from './emulators.ts';
import { startLambdaEndpoint } from './lambdaEndpoint.ts';

/** Options of {@link runDevAws}. */
export interface DevAwsOptions {
  /** Lines a second the producer puts into the stream. */
  readonly rate: number;
  /** How long one coordinator invocation runs (the deployed schedule's minute, shortened). */
  readonly minuteMs: number;
  /** Shards of the stream. */
  readonly shards: number;
  /** Name of the stream (`SLUICE_STREAM`); the table, buckets and worker function are named after it. */
  readonly name: string;
  readonly signal: AbortSignal;
  readonly log: (line: string) => void;
}

/** An endpoint someone else runs (LocalStack): nothing to stop. */
function external(endpoint: string): Emulator {
  return { endpoint, stop: async () => undefined };
}

async function createStream(config: AwsRuntimeConfig, stream: string, shards: number): Promise<void> {
  const kinesis = kinesisClient(config.aws);
  await kinesis.send(new CreateStreamCommand({ StreamName: stream, ShardCount: shards }));
  for (;;) {
    const out = await kinesis.send(new DescribeStreamSummaryCommand({ StreamName: stream }));
    if (out.StreamDescriptionSummary?.StreamStatus === 'ACTIVE') return;
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * The AWS path on one machine (`sluice dev-aws job.ts`): S3, DynamoDB and Kinesis emulators and a
 * Lambda Invoke endpoint on 127.0.0.1 (or LocalStack at `SLUICE_AWS_ENDPOINT`), the stream, table
 * and buckets created, a producer feeding the stream, and the job run through the real coordinator
 * and worker handlers, one "minute" after another, until `signal` aborts. The job is loaded with
 * `SLUICE_STREAM` and `SLUICE_SINK_BUCKET` set, as the deployed functions have them.
 *
 * @example
 * ```ts
 * await runDevAws(() => loadJob('job.ts'), { rate: 200, minuteMs: 20_000, shards: 2, name: 'sluice-dev', signal, log: console.error });
 * ```
 */
export async function runDevAws(load: () => Promise<JobDefinition>, options: DevAwsOptions): Promise<void> {
  const { name, signal, log } = options;
  process.env.SLUICE_STREAM = name;
  process.env.SLUICE_SINK_BUCKET = `${name}-out`;
  const target = process.env.SLUICE_AWS_ENDPOINT;
  const [s3, dynamo, kinesis, lambda] = target
    ? [external(target), external(target), external(target), await startLambdaEndpoint()]
    : await Promise.all([startS3rver(), startDynalite(), startKinesalite(), startLambdaEndpoint()]);
  const config: AwsRuntimeConfig = {
    stateBucket: `${name}-state`,
    table: `${name}-meta`,
    workerFunction: `${name}-worker`,
    concurrency: 8,
    aws: { endpoint: { s3: s3.endpoint, dynamodb: dynamo.endpoint, kinesis: kinesis.endpoint, lambda: lambda.endpoint } },
  };
  try {
    await createStream(config, name, options.shards);
    await dynamoClient(config.aws).send(new CreateTableCommand(metaTableSchema(config.table)));
    const buckets = s3Client(config.aws);
    for (const Bucket of [config.stateBucket, `${name}-out`]) await buckets.send(new CreateBucketCommand({ Bucket }));
    const job = await load();
    lambda.register(config.workerFunction!, createWorkerHandler(async () => job, (graph) => awsWorkerRuntime(graph, config)));
    log(`dev-aws: S3 ${s3.endpoint}, DynamoDB ${dynamo.endpoint}, Kinesis ${kinesis.endpoint}, Lambda ${lambda.endpoint}`);
    log(`dev-aws: stream ${name}, table ${config.table}, buckets ${config.stateBucket} and ${name}-out; job ${job.options.name}; Ctrl-C to stop`);

    const producer = produceLines({ stream: name, rate: options.rate, aws: config.aws, signal });
    // One coordinator invocation per "minute" (shortened), as EventBridge would schedule them.
    const coordinator = createCoordinatorHandler(async () => job, (graph) => awsCoordinatorRuntime(graph, config), { marginMs: 0, log });
    while (!signal.aborted) {
      const run = await coordinator({}, { getRemainingTimeInMillis: () => options.minuteMs });
      log(`dev-aws: coordinator invocation ran ${run.batches} batch(es), last committed ${run.lastCompleted}`);
    }
    await producer;
  } finally {
    await Promise.all([s3.stop(), dynamo.stop(), kinesis.stop(), lambda.stop()]);
  }
}
