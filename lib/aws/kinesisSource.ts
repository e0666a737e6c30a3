import type { KinesisClient } from '@aws-sdk/client-kinesis';
import { SluiceError } from '../core/errors.ts';
import type { InputSplit, JsonValue, RecordSource, SourceIO, SourceRecordFailure, SourceSpec } from '../ports/index.ts';
import { KinesisApi } from './kinesis/api.ts';
import { type Decoder, defaultDecode } from './kinesis/decode.ts';
import { parseStart, type StartPosition } from './kinesis/positions.ts';
import { ShardReader } from './kinesis/reader.ts';
import { advanceState, cutSplits, type ListedShard, listingStale, samePositions } from './kinesis/shardLineage.ts';

export type { RecordMeta } from './kinesis/decode.ts';
export { deaggregate, type UserRecord } from './kinesis/kpl.ts';

/**
 * `ctx.kinesisStream`: one input partition per shard (docs/design.md §4.2, §5).
 *
 * The coordinator's `cut` takes the shards from a listing it keeps across cuts (listed again when
 * a shard ended, or after `listShardsIntervalMs`) and hands each readable shard an *open* split: read
 * after the shard's last sealed sequence number (or from the initial position) until a record
 * arrived after the batch time, the shard is caught up, or `maxRecordsPerBatch` records. The
 * task that reads it reports the range it consumed (`sealedSplit`); the coordinator seals that
 * range, and every recomputation reads exactly it again. `advance` moves each shard on to the end
 * of its sealed range.
 *
 * Its jobs live in `kinesis/`: which shards to read (`shardLineage.ts`, pure), reading them
 * (`reader.ts`, `cursor.ts`), decoding (`decode.ts`, `kpl.ts`) and the calls to Kinesis (`api.ts`).
 *
 * Resharding: a child shard is read only once all its parents are closed and fully consumed, so
 * the records of one partition key keep their order across splits and merges.
 *
 * Split shapes (plain JSON):
 * - open: `{ open: true, shard, after: seq | null, start: 'TRIM_HORIZON' | 'LATEST' | { timestamp } | null, until, max, maxBytes?, closed?, resume? }`
 * - sealed: `{ shard, after, start, end: seq | null, count, first?, exhausted?, resume?, full? }` — `first`
 *   is the first record consumed when there was no `after`, so a re-read starts exactly there
 *   (`LATEST` and `{ timestamp }` name no fixed record); `count` counts Kinesis records; `full`
 *   says the read stopped at `maxBytes` (a batch capped to run in the coordinator).
 *
 * State (JSON): `{ positions: { [shard]: seq }, starts: { [shard]: start }, resume: { [shard]: Resume }, exhausted: [shard] }`.
 *
 * @example
 * ```ts
 * const source = new KinesisSource(spec, io, { client: kinesisClient() });
 * const { splits, state } = await source.cut(batchTime, previousState);
 * const { records, sealedSplit } = await source.read(splits[0]);
 * ```
 */
export class KinesisSource implements RecordSource {
  private readonly api: KinesisApi;
  private readonly reader: ShardReader;
  private readonly initialPosition: StartPosition;
  private readonly maxRecords: number;
  private readonly listInterval: number;
  /** The coordinator's last shard listing, kept across cuts (see {@link KinesisSourceOptions.listShardsIntervalMs}). */
  private listing: { readonly shards: readonly ListedShard[]; readonly at: number } | undefined;

  constructor(
    private readonly spec: SourceSpec,
    _io: SourceIO,
    options: KinesisSourceOptions,
  ) {
    const nodeId = spec.nodeId;
    const stream = spec.params.stream;
    if (typeof stream !== 'string' || stream === '') throw new SluiceError(`${nodeId}: a kinesis source needs a stream name`, { nodeId });
    this.initialPosition = parseStart(spec.params.initialPosition ?? 'LATEST', nodeId);
    const max = spec.params.maxRecordsPerBatch ?? 10_000;
    if (typeof max !== 'number' || !Number.isInteger(max) || max < 1) {
      throw new SluiceError(`${nodeId}: maxRecordsPerBatch must be a whole number >= 1, got ${JSON.stringify(max)}`, { nodeId });
    }
    this.maxRecords = max;
    const interval = options.listShardsIntervalMs ?? LIST_SHARDS_INTERVAL_MS;
    if (typeof interval !== 'number' || !(interval >= 0)) {
      throw new SluiceError(`${nodeId}: listShardsIntervalMs must be a number of milliseconds >= 0 (0 lists the shards at every cut), got ${JSON.stringify(interval)}`, { nodeId });
    }
    this.listInterval = interval;
    const local = spec.local as { decode?: Decoder } | undefined;
    this.api = new KinesisApi({
      client: options.client,
      stream,
      nodeId,
      clock: options.clock ?? Date.now,
      throughputRetries: options.throughputRetries ?? 6,
      backoffMs: options.backoffMs ?? 200,
      atTimestampTimeoutMs: options.atTimestampTimeoutMs ?? 5000,
    });
    this.reader = new ShardReader(this.api, { nodeId, stream, decode: local?.decode ?? defaultDecode, maxRecords: max });
  }

  /** Coordinator side: the open splits of the batch at `time`, one per readable shard. */
  async cut(time: number, state: JsonValue | undefined, limit?: number, maxBytes?: number): Promise<{ splits: InputSplit[]; state: JsonValue }> {
    const now = this.api.now();
    if (this.listing === undefined || now - this.listing.at >= this.listInterval || listingStale(this.listing.shards, state)) {
      this.listing = { shards: await this.api.listShards(), at: now };
    }
    return cutSplits(this.listing.shards, state, {
      time,
      initialPosition: this.initialPosition,
      maxRecords: this.maxRecords,
      ...(limit === undefined ? {} : { limit }),
      ...(maxBytes === undefined ? {} : { maxBytes }),
    });
  }

  /** Coordinator side: each shard moved on to the end of its sealed range. */
  advance(state: JsonValue, sealedSplits: readonly InputSplit[]): JsonValue {
    return advanceState(state, sealedSplits);
  }

  /** A quiet batch may refresh where a shard without a position resumes (a newer iterator of the same place); it moves no position. */
  unmoved(before: JsonValue, after: JsonValue): boolean {
    return samePositions(before, after);
  }

  /** Worker side: an open split read and sealed, or a sealed one read again exactly. */
  async read(split: InputSplit): Promise<{ records: unknown[]; sealedSplit?: InputSplit; failures?: readonly SourceRecordFailure[] }> {
    if (typeof split.shard !== 'string') throw new SluiceError(`${this.spec.nodeId}: malformed Kinesis split ${JSON.stringify(split)}`, { nodeId: this.spec.nodeId });
    if ('end' in split) return this.reader.readSealed(split);
    return this.reader.readOpen(split);
  }
}

/**
 * How long the coordinator cuts batches from one shard listing. A listing needs renewing when a
 * shard ends, and a read of the shard sees that (GetRecords answers without a next iterator; the
 * cut then lists again, see `listingStale`); the timer is the backstop for what no read tells: a
 * shard retention trimmed away, or an end the read did not reach. A minute keeps ListShards far
 * below its limit (100 calls/s per account) and an idle job's requests low.
 */
const LIST_SHARDS_INTERVAL_MS = 60_000;

/** Options of {@link KinesisSource}. */
export interface KinesisSourceOptions {
  readonly client: KinesisClient;
  /** Wall-clock time, as Kinesis arrival timestamps see it: where LATEST begins, and the age of kept iterators. @default Date.now */
  readonly clock?: () => number;
  /** Retries of a throttled or transiently failed call before the read fails (the only ones: the client from `kinesisClient` makes one attempt per request). @default 6 */
  readonly throughputRetries?: number;
  /** First backoff after a throttled call; doubles at each retry, with jitter. @default 200 */
  readonly backoffMs?: number;
  /** The longest the coordinator cuts from one shard listing before listing the shards again; a shard read to its end lists them at the next cut. 0 lists at every cut. @default 60000 */
  readonly listShardsIntervalMs?: number;
  /** How long an AT_TIMESTAMP GetShardIterator may take before the timestamp is found by reading from the trim horizon. @default 5000 */
  readonly atTimestampTimeoutMs?: number;
}
