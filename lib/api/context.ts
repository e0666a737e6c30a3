import { type Batch, SourceBatch, StaticBatch } from '../plan/batch.ts';
import type { BatchPlan, JobGraph } from '../plan/graph.ts';
import type { JsonValue } from '../ports/index.ts';
import { type BatchLike, DStream, rememberFor, transformed, unionStreams } from './dstream.ts';
import { type Duration, toMillis } from './duration.ts';
import { JobDefinitionError } from '../core/errors.ts';
import { describeValue } from '../core/values.ts';
import type { StreamingListener } from '../core/listener.ts';
import type { Receiver } from '../core/receiver.ts';

/**
 * Options of {@link StreamingContext.queueStream}.
 * @example
 * ```ts
 * ctx.queueStream(batches, { numPartitions: 4, oneAtATime: true, default: [] });
 * ```
 */
export interface QueueStreamOptions<T> {
  /** Partitions each queued batch is split into. @default 1 */
  readonly numPartitions?: number;
  /** One queued array per batch (`true`), or everything queued so far in the next batch. @default true */
  readonly oneAtATime?: boolean;
  /** The batch used when the queue is empty. @default no records */
  readonly default?: readonly T[];
}

/**
 * Options of {@link StreamingContext.generatorStream}.
 * @example
 * ```ts
 * ctx.generatorStream({ ratePerSec: 5000, make: (i) => ({ user: `u${i % 100}`, at: i }), numPartitions: 2 });
 * ```
 */
export interface GeneratorStreamOptions<T> {
  /** Records per second. */
  readonly ratePerSec: number;
  /** Makes record number `i` (counting from 0 over the life of the job). */
  readonly make: (i: number) => T;
  /** Partitions of each batch. @default 1 */
  readonly numPartitions?: number;
}

/**
 * Where a Kinesis stream is read from at the very first batch of a job.
 * @example
 * ```ts
 * ctx.kinesisStream('clicks', { initialPosition: { timestamp: Date.parse('2026-11-01T00:00:00Z') } });
 * ```
 */
export type KinesisInitialPosition = 'TRIM_HORIZON' | 'LATEST' | { readonly timestamp: number | Date };

/**
 * Options of {@link StreamingContext.kinesisStream}.
 * @example
 * ```ts
 * ctx.kinesisStream('orders', { initialPosition: 'TRIM_HORIZON', maxRecordsPerBatch: 5000, decode: (b) => JSON.parse(new TextDecoder().decode(b)) });
 * ```
 */
export interface KinesisStreamOptions<T> {
  /**
   * Where the job starts reading a shard it has never read: its oldest record, records put after the
   * job starts, or the first record at or after a time. Later runs resume after the last batch.
   * @default 'LATEST'
   */
  readonly initialPosition?: KinesisInitialPosition;
  /**
   * Turns a record's bytes into a record; `meta` tells where it came from (its shard, partition key,
   * sequence number, sub-sequence number within a KPL-aggregated record, and arrival time in ms).
   * @default UTF-8 text
   */
  readonly decode?: (data: Uint8Array, meta: { shardId: string; partitionKey: string; sequenceNumber: string; subSequenceNumber?: number; arrivalTime: number }) => T;
  /** Upper bound of records per shard per batch. @default 10000 */
  readonly maxRecordsPerBatch?: number;
}

/**
 * Options of {@link StreamingContext.textFileStream}.
 * @example
 * ```ts
 * ctx.textFileStream('incoming/', { includeExisting: true });
 * ```
 */
export interface TextFileStreamOptions {
  /** Also read files that were in the directory before the job started. @default false */
  readonly includeExisting?: boolean;
}

function checkPartitionCount(n: unknown, op: string): number {
  if (n === undefined) return 1;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1) {
    throw new JobDefinitionError(`${op}: numPartitions must be a whole number >= 1, got ${describeValue(n)}`);
  }
  return n;
}

/**
 * What a job's build function gets (Spark's `StreamingContext`): make input streams here, combine
 * streams, add listeners.
 *
 * @example
 * ```ts
 * export default defineJob({ name: 'wordcount', batchInterval: '1s' }, (ctx) => {
 *   ctx.socketTextStream('localhost', 9999).flatMap((l) => l.split(' ')).countByValue().print();
 * });
 * ```
 */
export class StreamingContext {
  /** @internal */
  constructor(/** @internal */ readonly graph: JobGraph) {}

  /** The job's batch interval in milliseconds. */
  get batchInterval(): number {
    return this.graph.batchInterval;
  }

  /** The job's name. */
  get jobName(): string {
    return this.graph.name;
  }

  private sourceStream<T>(kind: string, params: { [key: string]: JsonValue }, local?: unknown): DStream<T> {
    const node = this.graph.addNode(kind, [], params);
    this.graph.sources.push({ nodeId: node.id, kind, params, local });
    return new DStream<T>(this.graph, node, (plan: BatchPlan) => new SourceBatch<T>(plan, node.id));
  }

  /**
   * A stream whose batches come from an array of arrays (Spark's `queueStream`): batch `i` (at
   * time `(i + 1) × interval` in tests) holds `batches[i]`. Arrays pushed onto `batches` while the
   * job runs are picked up, as with Spark's mutable queue.
   * @example
   * ```ts
   * ctx.queueStream([['a', 'b'], ['c']], { numPartitions: 2 }).count().print();
   * ```
   */
  queueStream<T>(batches: T[][], options: QueueStreamOptions<T> = {}): DStream<T> {
    if (!Array.isArray(batches) || batches.some((b) => !Array.isArray(b))) {
      throw new JobDefinitionError(`queueStream: expected an array of arrays (one per batch), got ${describeValue(batches)}`);
    }
    const numPartitions = checkPartitionCount(options.numPartitions, 'queueStream');
    if (options.default !== undefined && !Array.isArray(options.default)) {
      throw new JobDefinitionError(`queueStream: default must be an array, got ${describeValue(options.default)}`);
    }
    const oneAtATime = options.oneAtATime ?? true;
    return this.sourceStream<T>('queue', { numPartitions, oneAtATime, hasDefault: options.default !== undefined }, {
      batches,
      default: options.default,
    });
  }

  /**
   * A stream of generated records at a steady rate: each batch of `interval` ms holds
   * `ratePerSec × interval / 1000` records made by `make(i)`. For demos and load tests.
   * @example
   * ```ts
   * ctx.generatorStream({ ratePerSec: 1000, make: (i) => `I am a dummy source ${i % 10}` });
   * ```
   */
  generatorStream<T>(options: GeneratorStreamOptions<T>): DStream<T> {
    const rate = options?.ratePerSec;
    if (typeof rate !== 'number' || !Number.isFinite(rate) || rate < 0) {
      throw new JobDefinitionError(`generatorStream: ratePerSec must be a number >= 0, got ${describeValue(rate)}`);
    }
    if (typeof options.make !== 'function') throw new JobDefinitionError(`generatorStream: make must be a function, got ${describeValue(options.make)}`);
    const numPartitions = checkPartitionCount(options.numPartitions, 'generatorStream');
    return this.sourceStream<T>('generator', { ratePerSec: rate, numPartitions }, { make: options.make });
  }

  /**
   * Lines of text from a TCP server (Spark's `socketTextStream`); reconnects when the connection
   * drops. Local runtime only. Lines received are kept until their batch is cut and then stored
   * with the job's state, so a recomputed batch reads the same lines.
   * @example
   * ```ts
   * ctx.socketTextStream('localhost', 9999); // feed it with `nc -lk 9999`
   * ```
   */
  socketTextStream(host: string, port: number): DStream<string> {
    if (typeof host !== 'string' || host === '') throw new JobDefinitionError(`socketTextStream: host must be a non-empty string, got ${describeValue(host)}`);
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw new JobDefinitionError(`socketTextStream: port must be a whole number from 1 to 65535, got ${describeValue(port)}`);
    }
    return this.sourceStream<string>('socket', { host, port });
  }

  /**
   * Lines of the new files that appear in a directory (Spark's `textFileStream`): a local
   * directory, or `s3://bucket/prefix` on AWS. Move files in atomically (write elsewhere, then
   * rename); names starting with `.` or `_` are ignored. One partition per file.
   * @example
   * ```ts
   * ctx.textFileStream('incoming/').filter((l) => l.includes('ERROR')).print();
   * ```
   */
  textFileStream(directory: string, options: TextFileStreamOptions = {}): DStream<string> {
    if (typeof directory !== 'string' || directory === '') {
      throw new JobDefinitionError(`textFileStream: directory must be a non-empty path or s3:// prefix, got ${describeValue(directory)}`);
    }
    return this.sourceStream<string>('textFile', { directory, includeExisting: options.includeExisting ?? false });
  }

  /**
   * Records of an Amazon Kinesis data stream, one input partition per shard (Spark's
   * `KinesisInputDStream`). On AWS, or locally against an emulator (`npm run dev:aws`).
   * @example
   * ```ts
   * ctx.kinesisStream('clicks', { initialPosition: 'TRIM_HORIZON', decode: (b) => JSON.parse(new TextDecoder().decode(b)) });
   * ```
   */
  kinesisStream<T = string>(streamName: string, options: KinesisStreamOptions<T> = {}): DStream<T> {
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
    return this.sourceStream<T>('kinesis', { stream: streamName, initialPosition: position, maxRecordsPerBatch: max }, { decode: options.decode });
  }

  /**
   * A stream fed by your own {@link Receiver} (Spark's `receiverStream`).
   * @example
   * ```ts
   * ctx.receiverStream<string>({ start(store) { feed.on('msg', (m) => store(m)); }, stop() { feed.close(); } });
   * ```
   */
  receiverStream<T>(receiver: Receiver<T>): DStream<T> {
    if (!receiver || typeof receiver.start !== 'function' || typeof receiver.stop !== 'function') {
      throw new JobDefinitionError('receiverStream: a receiver is an object with start(store) and stop() methods');
    }
    return this.sourceStream<T>('receiver', {}, { receiver });
  }

  /**
   * A static dataset, the same in every batch, to join streams with (Spark's `sc.parallelize`).
   * @example
   * ```ts
   * const history = ctx.parallelize([['spark', 10], ['flink', 7]] as [string, number][]);
   * counts.transform((b) => b.join(history));
   * ```
   */
  parallelize<T>(data: readonly T[], numPartitions = 1): Batch<T> {
    if (!Array.isArray(data)) throw new JobDefinitionError(`parallelize: expected an array, got ${describeValue(data)}`);
    const n = checkPartitionCount(numPartitions, 'parallelize');
    return new StaticBatch<T>(data, n, 'parallelize', this.graph);
  }

  /**
   * The records of several streams (Spark's `ssc.union`).
   * @example
   * ```ts
   * ctx.union([eu, us, apac]).count().print();
   * ```
   */
  union<T>(streams: DStream<T>[]): DStream<T> {
    return unionStreams(this.graph, streams);
  }

  /**
   * Combines the batches of several streams at the same time with one function (Spark's `ssc.transform`).
   * @example
   * ```ts
   * ctx.transform([clicks, views], ([c, v]) => c.join(v));
   * ```
   */
  transform<U>(streams: DStream<any>[], fn: (batches: Batch<any>[], time: number) => BatchLike<U>): DStream<U> {
    if (!Array.isArray(streams) || streams.length === 0) throw new JobDefinitionError('transform: needs at least one stream');
    if (typeof fn !== 'function') throw new JobDefinitionError(`transform: expected a function, got ${describeValue(fn)}`);
    const slides = new Set(streams.map((s) => s.slideDuration));
    if (slides.size > 1) throw new JobDefinitionError('transform: all streams must produce batches at the same interval');
    const node = this.graph.addNode('transform', streams.map((s) => s.node), {}, [fn]);
    return new DStream<U>(this.graph, node, (plan) => {
      const batches: Batch<unknown>[] = [];
      for (const s of streams) {
        const b = s.batchAt(plan);
        if (b === undefined) return undefined;
        batches.push(b);
      }
      return transformed<U>(node.id, plan, () => fn(batches, plan.time));
    });
  }

  /**
   * Keeps every stream's batches available to `slice()` for at least `duration` (Spark's `remember`).
   * @example
   * ```ts
   * ctx.remember('1m');
   * ```
   */
  remember(duration: Duration): void {
    rememberFor(this.graph, duration);
  }

  /**
   * Adds a listener for batch events (Spark's `addStreamingListener`).
   * @example
   * ```ts
   * ctx.addListener({ onBatchCompleted: (b) => console.log(b.batchTime, b.totalDelay) });
   * ```
   */
  addListener(listener: StreamingListener): void {
    if (!listener || typeof listener !== 'object') throw new JobDefinitionError('addListener: expected an object with onBatchSubmitted/onBatchStarted/onBatchCompleted methods');
    this.graph.listeners.push(listener);
  }
}

/** @internal Milliseconds of a duration option, for the context's users. */
export const durationMs = toMillis;
