/**
 * The source catalogue: every kind of input stream Sluice has, said once — the operator that makes
 * it, how the operator's arguments are checked (when the job is built, in the user's words), which
 * runtimes can run it, and what it needs on AWS (IAM actions on which resource, per function). The
 * context's operators, both runtimes' source factories, and the SluiceJob construct's checks and
 * grants all read it, so a kind cannot be accepted in one place and unknown or ungranted in another.
 *
 * Adding a source: an entry below, its adapter, the adapter's line in the factory registry of each
 * runtime the entry names (the registries' types require it: lib/engine/sources.ts for sources that
 * live in memory, lib/local/sourceFactory.ts, lib/aws/runtime.ts), and its operator on
 * `StreamingContext` (lib/api/context.ts) with its options exported from lib/index.ts.
 */
import { JobDefinitionError } from './errors.ts';
import type { Receiver } from './receiver.ts';
import type { GeneratorStreamOptions, KinesisStreamOptions, QueueStreamOptions, TextFileStreamOptions } from './sourceOptions.ts';
import { describeValue, type JsonValue } from './values.ts';

/**
 * Where a job runs: `local` (one Node process, `sluice run`, `runBatches`) or `aws` (the Lambda
 * functions a `SluiceJob` deploys, or the same handlers against emulators).
 * @example
 * ```ts
 * const where: Runtime = 'aws';
 * ```
 */
export type Runtime = 'local' | 'aws';

/** A source node's parameters: plain JSON, recorded in the plan and in its fingerprint. */
export type SourceParams = { readonly [key: string]: JsonValue };

/** What an operator's checked arguments make: the node's parameters and the parts that exist only in memory (functions, arrays, a receiver). */
export interface DefinedSource {
  readonly params: SourceParams;
  readonly local?: unknown;
}

/**
 * A resource a source reads on AWS, named as the job names it: a Kinesis stream by name, or the
 * objects under a key prefix of an S3 bucket (`prefix` is `''` or ends with `/`).
 * @example
 * ```ts
 * const clicks: AwsResource = { type: 'kinesisStream', stream: 'clicks' };
 * const incoming: AwsResource = { type: 's3Prefix', bucket: 'my-bucket', prefix: 'in/' };
 * ```
 */
export type AwsResource = { readonly type: 'kinesisStream'; readonly stream: string } | { readonly type: 's3Prefix'; readonly bucket: string; readonly prefix: string };

/**
 * The IAM actions a source's adapter calls, per function: the coordinator cuts batches (and reads
 * splits itself for datasets made inside `foreachRDD`), workers read splits.
 */
export interface AwsActions {
  readonly coordinator: readonly string[];
  readonly worker: readonly string[];
}

/** What one source node needs on AWS: the actions each function calls, on one resource. */
export interface AwsAccess extends AwsActions {
  readonly resource: AwsResource;
}

/** One kind of source. */
export interface SourceDescription {
  /** The `StreamingContext` operator that makes it, as the user writes it. */
  readonly operator: string;
  /** The runtimes with an adapter for it: the factory registry of each must build it (its type says so). */
  readonly runtimes: readonly Runtime[];
  /** Checks the operator's arguments, throwing {@link JobDefinitionError} in the user's words. */
  readonly define: (...args: any[]) => DefinedSource;
  /**
   * Why `runtime` cannot run a node with these parameters (undefined: it can), for kinds whose
   * parameters decide it or whose refusal says more than {@link refusalOf}'s default.
   */
  readonly refusal?: (runtime: Runtime, params: SourceParams) => string | undefined;
  /** What its AWS adapter calls: the actions, and the resource they are on from the node's parameters. */
  readonly aws?: { readonly actions: AwsActions; readonly resource: (params: SourceParams) => AwsResource | undefined };
}

/** The partition count option of an operator: 1 when not given, else a whole number >= 1. */
export function partitionCount(n: unknown, op: string): number {
  if (n === undefined) return 1;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1) {
    throw new JobDefinitionError(`${op}: numPartitions must be a whole number >= 1, got ${describeValue(n)}`);
  }
  return n;
}

const S3 = 's3://';

/**
 * `s3://bucket/prefix` as a bucket and a key prefix that is `''` (the whole bucket) or ends with
 * `/` — the "directory" is the prefix, so `s3://bucket/in` is the keys `in/<name>` — or why it is not one.
 * @example
 * ```ts
 * parseS3Directory('s3://my-bucket/in'); // { bucket: 'my-bucket', prefix: 'in/' }
 * parseS3Directory('incoming/');         // { error: 'not an s3:// location' }
 * ```
 */
export function parseS3Directory(location: string): { readonly bucket: string; readonly prefix: string } | { readonly error: string } {
  if (!location.startsWith(S3)) return { error: 'not an s3:// location' };
  const rest = location.slice(S3.length);
  const slash = rest.indexOf('/');
  const bucket = slash < 0 ? rest : rest.slice(0, slash);
  const path = slash < 0 ? '' : rest.slice(slash + 1);
  if (bucket === '') return { error: 'it names no bucket' };
  if (/[\s/]/.test(bucket)) return { error: `${JSON.stringify(bucket)} is not a valid S3 bucket name` };
  return { bucket, prefix: path === '' || path.endsWith('/') ? path : `${path}/` };
}

const isS3 = (directory: JsonValue | undefined) => typeof directory === 'string' && directory.startsWith(S3);

/**
 * Every kind of source, by the kind its plan nodes carry (`kinesis-1` is a `kinesis` node).
 *
 * @example
 * ```ts
 * sourceCatalogue.kinesis.operator;     // 'kinesisStream'
 * sourceCatalogue.kinesis.runtimes;     // ['aws']
 * sourceCatalogue.socket.define('localhost', 0); // throws JobDefinitionError: port must be a whole number from 1 to 65535
 * ```
 */
export const sourceCatalogue = {
  queue: {
    operator: 'queueStream',
    runtimes: ['local', 'aws'],
    define: (batches: unknown, options: QueueStreamOptions<unknown> = {}): DefinedSource => {
      if (!Array.isArray(batches) || batches.some((b) => !Array.isArray(b))) {
        throw new JobDefinitionError(`queueStream: expected an array of arrays (one per batch), got ${describeValue(batches)}`);
      }
      const numPartitions = partitionCount(options.numPartitions, 'queueStream');
      if (options.default !== undefined && !Array.isArray(options.default)) {
        throw new JobDefinitionError(`queueStream: default must be an array, got ${describeValue(options.default)}`);
      }
      const oneAtATime = options.oneAtATime ?? true;
      return { params: { numPartitions, oneAtATime, hasDefault: options.default !== undefined }, local: { batches, default: options.default } };
    },
  },
  generator: {
    operator: 'generatorStream',
    runtimes: ['local', 'aws'],
    define: (options: GeneratorStreamOptions<unknown>): DefinedSource => {
      const rate = options?.ratePerSec;
      if (typeof rate !== 'number' || !Number.isFinite(rate) || rate < 0) {
        throw new JobDefinitionError(`generatorStream: ratePerSec must be a number >= 0, got ${describeValue(rate)}`);
      }
      if (typeof options.make !== 'function') throw new JobDefinitionError(`generatorStream: make must be a function, got ${describeValue(options.make)}`);
      const numPartitions = partitionCount(options.numPartitions, 'generatorStream');
      return { params: { ratePerSec: rate, numPartitions }, local: { make: options.make } };
    },
  },
  receiver: {
    operator: 'receiverStream',
    runtimes: ['local', 'aws'],
    define: (receiver: Receiver<unknown>): DefinedSource => {
      if (!receiver || typeof receiver.start !== 'function' || typeof receiver.stop !== 'function') {
        throw new JobDefinitionError('receiverStream: a receiver is an object with start(store) and stop() methods');
      }
      return { params: {}, local: { receiver } };
    },
  },
  socket: {
    operator: 'socketTextStream',
    runtimes: ['local'],
    define: (host: unknown, port: unknown): DefinedSource => {
      if (typeof host !== 'string' || host === '') throw new JobDefinitionError(`socketTextStream: host must be a non-empty string, got ${describeValue(host)}`);
      if (!Number.isInteger(port) || (port as number) < 1 || (port as number) > 65535) {
        throw new JobDefinitionError(`socketTextStream: port must be a whole number from 1 to 65535, got ${describeValue(port)}`);
      }
      return { params: { host, port: port as number } };
    },
    refusal: (runtime) => (runtime === 'aws' ? 'socketTextStream runs locally only' : undefined),
  },
  textFile: {
    operator: 'textFileStream',
    // Local for a directory, AWS for an s3:// prefix (a Lambda has no durable directory).
    runtimes: ['local', 'aws'],
    define: (directory: unknown, options: TextFileStreamOptions = {}): DefinedSource => {
      if (typeof directory !== 'string' || directory === '') {
        throw new JobDefinitionError(`textFileStream: directory must be a non-empty path or s3:// prefix, got ${describeValue(directory)}`);
      }
      return { params: { directory, includeExisting: options.includeExisting ?? false } };
    },
    refusal: (runtime, { directory }) => {
      if (runtime === 'local' && isS3(directory)) return `textFileStream('${String(directory)}'): s3:// directories need the AWS runtime; the local runtime reads local directories only`;
      if (runtime === 'aws' && !isS3(directory)) {
        return `textFileStream(${JSON.stringify(directory)}): the AWS runtime watches s3:// prefixes only (a Lambda has no durable directory); use textFileStream('s3://bucket/prefix/')`;
      }
      const where = runtime === 'aws' ? parseS3Directory(String(directory)) : undefined;
      if (where && 'error' in where) return `textFileStream(${JSON.stringify(directory)}): ${where.error} (expected s3://<bucket>/<prefix>/, e.g. s3://my-bucket/incoming/)`;
      return undefined;
    },
    aws: {
      // The coordinator lists the prefix at each cut; whoever reads a split gets its object.
      actions: { coordinator: ['s3:ListBucket', 's3:GetObject'], worker: ['s3:GetObject'] },
      resource: ({ directory }) => {
        const where = typeof directory === 'string' ? parseS3Directory(directory) : undefined;
        return where && 'bucket' in where ? { type: 's3Prefix', bucket: where.bucket, prefix: where.prefix } : undefined;
      },
    },
  },
  kinesis: {
    operator: 'kinesisStream',
    runtimes: ['aws'],
    define: (streamName: unknown, options: KinesisStreamOptions<unknown> = {}): DefinedSource => {
      if (typeof streamName !== 'string' || !/^[A-Za-z0-9_.-]{1,128}$/.test(streamName)) {
        throw new JobDefinitionError(`kinesisStream: a stream name is 1-128 letters, digits, '_', '.' or '-', got ${describeValue(streamName)}`);
      }
      const pos = options.initialPosition ?? 'LATEST';
      let position: JsonValue;
      if (pos === 'TRIM_HORIZON' || pos === 'LATEST') position = pos;
      else if (pos && typeof pos === 'object' && 'timestamp' in pos) position = { timestamp: new Date(pos.timestamp).getTime() };
      else throw new JobDefinitionError(`kinesisStream: initialPosition must be 'TRIM_HORIZON', 'LATEST' or { timestamp }, got ${describeValue(pos)}`);
      const max = options.maxRecordsPerBatch ?? 10_000;
      if (!Number.isInteger(max) || max < 1) throw new JobDefinitionError(`kinesisStream: maxRecordsPerBatch must be a whole number >= 1, got ${describeValue(max)}`);
      return { params: { stream: streamName, initialPosition: position, maxRecordsPerBatch: max }, local: { decode: options.decode } };
    },
    refusal: (runtime, { stream }) =>
      runtime === 'local' ? `kinesisStream('${String(stream)}') needs the AWS runtime: deploy the job, or run it against local emulators with npm run dev:aws` : undefined,
    aws: {
      // The coordinator lists shards at each cut; whoever reads a split gets its records.
      actions: { coordinator: ['kinesis:ListShards', 'kinesis:GetShardIterator', 'kinesis:GetRecords'], worker: ['kinesis:GetShardIterator', 'kinesis:GetRecords'] },
      resource: ({ stream }) => (typeof stream === 'string' ? { type: 'kinesisStream', stream } : undefined),
    },
  },
} as const satisfies Record<string, SourceDescription>;

/** The kind of a source node (`queue`, `kinesis`, ...). */
export type SourceKind = keyof typeof sourceCatalogue;

/** The kinds the catalogue says `runtime` has an adapter for: its factory registry must build each. */
export type KindOn<R extends Runtime> = { [K in SourceKind]: R extends (typeof sourceCatalogue)[K]['runtimes'][number] ? K : never }[SourceKind];

/** A source node as the catalogue reads it (the plan's `SourceSpec` is one). */
export interface SourceNode {
  readonly nodeId: string;
  readonly kind: string;
  readonly params: SourceParams;
}

/**
 * Whether the catalogue knows a kind.
 * @example
 * ```ts
 * isSourceKind('kinesis'); // true
 * ```
 */
export function isSourceKind(kind: string): kind is SourceKind {
  return Object.hasOwn(sourceCatalogue, kind);
}

/**
 * Why `runtime` cannot run a source node, as `<node id>: <why>` (undefined: it can, or the
 * catalogue does not know its kind). A runtime the kind does not list is always refused.
 * @example
 * ```ts
 * refusalOf({ nodeId: 'socket-1', kind: 'socket', params: { host: 'h', port: 9 } }, 'aws'); // 'socket-1: socketTextStream runs locally only'
 * ```
 */
export function refusalOf(node: SourceNode, runtime: Runtime): string | undefined {
  if (!isSourceKind(node.kind)) return undefined;
  const d: SourceDescription = sourceCatalogue[node.kind];
  const why = d.refusal?.(runtime, node.params) ?? (d.runtimes.includes(runtime) ? undefined : `${d.operator} does not run on the ${runtime} runtime`);
  return why === undefined ? undefined : `${node.nodeId}: ${why}`;
}

/**
 * What a source node needs on AWS (undefined: nothing beyond the job's own state — it lives in the
 * coordinator's memory — or it cannot run there).
 * @example
 * ```ts
 * awsAccessOf({ nodeId: 'kinesis-1', kind: 'kinesis', params: { stream: 'clicks' } });
 * // { resource: { type: 'kinesisStream', stream: 'clicks' }, coordinator: ['kinesis:ListShards', …], worker: ['kinesis:GetShardIterator', 'kinesis:GetRecords'] }
 * ```
 */
export function awsAccessOf(node: SourceNode): AwsAccess | undefined {
  if (!isSourceKind(node.kind) || refusalOf(node, 'aws') !== undefined) return undefined;
  const aws = (sourceCatalogue[node.kind] as SourceDescription).aws;
  const resource = aws?.resource(node.params);
  return aws && resource ? { resource, coordinator: aws.actions.coordinator, worker: aws.actions.worker } : undefined;
}

/**
 * A resource as the user names it in a job: the stream's name, or the `s3://bucket/prefix/` location.
 * @example
 * ```ts
 * resourceName({ type: 's3Prefix', bucket: 'b', prefix: 'in/' }); // 's3://b/in/'
 * ```
 */
export function resourceName(resource: AwsResource): string {
  return resource.type === 'kinesisStream' ? resource.stream : `${S3}${resource.bucket}/${resource.prefix}`;
}
