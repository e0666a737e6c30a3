import { type Batch, SourceBatch, StaticBatch } from '../plan/batch.ts';
import type { BatchPlan, JobGraph } from '../plan/graph.ts';
import { type BatchLike, DStream, rememberFor, transformed, unionStreams } from './dstream.ts';
import { type Duration, toMillis } from './duration.ts';
import { JobDefinitionError } from '../core/errors.ts';
import type { StreamingListener } from '../core/listener.ts';
import type { Receiver } from '../core/receiver.ts';
import type { GeneratorStreamOptions, KinesisStreamOptions, QueueStreamOptions, TextFileStreamOptions } from '../core/sourceOptions.ts';
import { type DefinedSource, partitionCount, sourceCatalogue, type SourceKind } from '../core/sources.ts';
import { describeValue } from '../core/values.ts';

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

  /** A source node, from its operator's arguments as the catalogue (lib/core/sources.ts) checked them. */
  private sourceStream<T>(kind: SourceKind, { params, local }: DefinedSource): DStream<T> {
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
    return this.sourceStream<T>('queue', sourceCatalogue.queue.define(batches, options));
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
    return this.sourceStream<T>('generator', sourceCatalogue.generator.define(options));
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
    return this.sourceStream<string>('socket', sourceCatalogue.socket.define(host, port));
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
    return this.sourceStream<string>('textFile', sourceCatalogue.textFile.define(directory, options));
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
    return this.sourceStream<T>('kinesis', sourceCatalogue.kinesis.define(streamName, options));
  }

  /**
   * A stream fed by your own {@link Receiver} (Spark's `receiverStream`).
   * @example
   * ```ts
   * ctx.receiverStream<string>({ start(store) { feed.on('msg', (m) => store(m)); }, stop() { feed.close(); } });
   * ```
   */
  receiverStream<T>(receiver: Receiver<T>): DStream<T> {
    return this.sourceStream<T>('receiver', sourceCatalogue.receiver.define(receiver));
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
    const n = partitionCount(numPartitions, 'parallelize');
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
