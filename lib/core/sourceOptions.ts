// The options of the StreamingContext operators that make input streams (lib/api/context.ts),
// next to the source catalogue (./sources.ts), which checks them.

/**
 * Options of `StreamingContext.queueStream`.
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
 * Options of `StreamingContext.generatorStream`.
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
 * Options of `StreamingContext.kinesisStream`.
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
 * Options of `StreamingContext.textFileStream`.
 * @example
 * ```ts
 * ctx.textFileStream('incoming/', { includeExisting: true });
 * ```
 */
export interface TextFileStreamOptions {
  /** Also read files that were in the directory before the job started. @default false */
  readonly includeExisting?: boolean;
}
