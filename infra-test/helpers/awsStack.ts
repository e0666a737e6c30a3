import { CreateTableCommand } from '@aws-sdk/client-dynamodb';
import { PutRecordsCommand } from '@aws-sdk/client-kinesis';
import { CreateBucketCommand, GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { dynamoClient, kinesisClient, s3Client } from '../../lib/aws/clients.ts';
import { metaTableSchema } from '../../lib/aws/dynamoMetaStore.ts';
import type { AwsRuntimeConfig } from '../../lib/aws/runtime.ts';
import { type Emulator, startDynalite, startKinesalite, startKinesisLocal, startS3rver } from './emulators.ts';
import { createStream } from './kinesisStreams.ts';
import { type LambdaEndpoint, startLambdaEndpoint } from './lambdaEndpoint.ts';

/** Emulated AWS for one test file: S3, DynamoDB, Kinesis and a Lambda Invoke endpoint on 127.0.0.1. */
export interface AwsStack {
  readonly s3: Emulator;
  readonly dynamo: Emulator;
  readonly kinesis: Emulator;
  readonly lambda: LambdaEndpoint;
  /** Config for a job whose resources use `name` (stream, table, buckets created by {@link createResources}). */
  config(name: string): AwsRuntimeConfig;
  /**
   * A resource name for this run: `base` itself on the emulators (fresh each run); `base` and a
   * run id against `SLUICE_AWS_ENDPOINT` (LocalStack keeps what earlier runs created).
   */
  name(base: string): string;
  stop(): Promise<void>;
}

/** The resource names and endpoints of job `name` on emulators (`<name>-state`, `<name>-meta`, `<name>-worker`). */
export function stackConfig(name: string, at: { s3: Emulator; dynamo: Emulator; kinesis: Emulator; lambda: { endpoint: string } }): AwsRuntimeConfig {
  return {
    stateBucket: `${name}-state`,
    table: `${name}-meta`,
    workerFunction: `${name}-worker`,
    concurrency: 8,
    aws: { endpoint: { s3: at.s3.endpoint, dynamodb: at.dynamo.endpoint, kinesis: at.kinesis.endpoint, lambda: at.lambda.endpoint } },
  };
}

/** An endpoint someone else runs (LocalStack): nothing to stop. */
function external(endpoint: string): Emulator {
  return { endpoint, stop: async () => undefined };
}

/**
 * Starts the emulators; Kinesis is kinesalite (fast) unless `kinesis: 'kinesis-local'` (LocalStack's,
 * closer resharding). With `SLUICE_AWS_ENDPOINT` set (LocalStack: `http://localhost:4566`), S3,
 * DynamoDB and Kinesis are that endpoint instead, and resource names get a run id; the functions'
 * handlers still run in this process behind the local Lambda endpoint.
 */
export async function startAwsStack(options: { kinesis?: 'kinesalite' | 'kinesis-local' } = {}): Promise<AwsStack> {
  const target = process.env.SLUICE_AWS_ENDPOINT;
  const startKinesis = options.kinesis === 'kinesis-local' ? startKinesisLocal : startKinesalite;
  const [s3, dynamo, kinesis, lambda] = target
    ? [external(target), external(target), external(target), await startLambdaEndpoint()]
    : await Promise.all([startS3rver(), startDynalite(), startKinesis(), startLambdaEndpoint()]);
  const run = Date.now().toString(36);
  return {
    s3,
    dynamo,
    kinesis,
    lambda,
    config: (name) => stackConfig(name, { s3, dynamo, kinesis, lambda }),
    name: (base) => (target ? `${base}-${run}` : base),
    stop: async () => {
      await Promise.all([s3.stop(), dynamo.stop(), kinesis.stop(), lambda.stop()]);
    },
  };
}

/** Creates the stream (with `shards`, waiting until it is ACTIVE), the meta table, the state bucket and a sink bucket `<name>-out`. */
export async function createResources(stack: AwsStack, name: string, shards: number): Promise<void> {
  const config = stack.config(name);
  const kin = kinesisClient(config.aws);
  await createStream(kin, name, shards);
  await dynamoClient(config.aws).send(new CreateTableCommand(metaTableSchema(config.table)));
  const s3 = s3Client(config.aws);
  await s3.send(new CreateBucketCommand({ Bucket: config.stateBucket }));
  await s3.send(new CreateBucketCommand({ Bucket: `${name}-out` }));
}

/**
 * Puts `lines` into the stream in PutRecords calls of 500, partition keys spread over the shards.
 * Returns the shard Kinesis put each line in, in the order given (which is each shard's order).
 */
export async function putLines(stack: AwsStack, name: string, lines: readonly string[]): Promise<{ line: string; shard: string }[]> {
  const kin = kinesisClient(stack.config(name).aws);
  const placed: { line: string; shard: string }[] = [];
  for (let i = 0; i < lines.length; i += 500) {
    const chunk = lines.slice(i, i + 500);
    const out = await kin.send(
      new PutRecordsCommand({ StreamName: name, Records: chunk.map((l, k) => ({ Data: new TextEncoder().encode(l), PartitionKey: `key-${(i + k) % 37}` })) }),
    );
    if (out.FailedRecordCount) throw new Error(`${out.FailedRecordCount} records refused`);
    (out.Records ?? []).forEach((r, k) => placed.push({ line: chunk[k], shard: r.ShardId! }));
  }
  return placed;
}

/**
 * Totals per word over saved `(word,n)` lines (a word count's output, any number of batches).
 * @example
 * ```ts
 * wordTotals(['(a,2)', '(b,1)', '(a,1)']); // { a: 3, b: 1 }
 * ```
 */
export function wordTotals(counts: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const c of counts) {
    const [, word, n] = /^\((.*),(\d+)\)$/.exec(c)!;
    out[word] = (out[word] ?? 0) + Number(n);
  }
  return out;
}

/** Every saved batch under `s3://<bucket>/<prefix>-<time>/`: time → lines of all its parts (only batches with _SUCCESS). */
export async function readS3Batches(stack: AwsStack, bucket: string, prefix: string): Promise<Map<number, string[]>> {
  const s3 = s3Client({ endpoint: stack.s3.endpoint });
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `${prefix}-`, ContinuationToken: token }));
    for (const o of page.Contents ?? []) keys.push(o.Key!);
    token = page.NextContinuationToken;
  } while (token);
  const out = new Map<number, string[]>();
  const done = new Set(keys.filter((k) => k.endsWith('/_SUCCESS')).map((k) => Number(/-(\d+)\//.exec(k)![1])));
  for (const k of keys.sort()) {
    const time = Number(/-(\d+)\//.exec(k)![1]);
    if (!done.has(time) || k.endsWith('/_SUCCESS')) continue;
    const body = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: k }));
    const text = await body.Body!.transformToString();
    out.set(time, [...(out.get(time) ?? []), ...text.split('\n').filter((l) => l !== '')]);
  }
  for (const t of done) if (!out.has(t)) out.set(t, []);
  return new Map([...out].sort((a, b) => a[0] - b[0]));
}
