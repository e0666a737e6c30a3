import type { KinesisClient } from '@aws-sdk/client-kinesis';
import { SluiceError } from '../core/errors.ts';
import type { InputSplit, JsonValue, RecordSource, SourceIO, SourceRecordFailure, SourceSpec } from '../ports/index.ts';
import { KinesisApi } from './kinesis/api.ts';
import { type Decoder, defaultDecode } from './kinesis/decode.ts';
import { parseStart, type StartPosition } from './kinesis/positions.ts';
import { ShardReader } from './kinesis/reader.ts';
import { advanceState, cutSplits } from './kinesis/shardLineage.ts';

export type { RecordMeta } from './kinesis/decode.ts';
export { deaggregate, type UserRecord } from './kinesis/kpl.ts';

/**
 * `ctx.kinesisStream`: one input partition per shard (docs/design.md §4.2, §5).
 *
 * The coordinator's `cut` lists the shards and hands each readable shard an *open* split: read
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
    const listing = await this.api.listShards();
    return cutSplits(listing, state, {
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

  /** Worker side: an open split read and sealed, or a sealed one read again exactly. */
  async read(split: InputSplit): Promise<{ records: unknown[]; sealedSplit?: InputSplit; failures?: readonly SourceRecordFailure[] }> {
    if (typeof split.shard !== 'string') throw new SluiceError(`${this.spec.nodeId}: malformed Kinesis split ${JSON.stringify(split)}`, { nodeId: this.spec.nodeId });
    if ('end' in split) return this.reader.readSealed(split);
    return this.reader.readOpen(split);
  }
}

/** Options of {@link KinesisSource}. */
export interface KinesisSourceOptions {
  readonly client: KinesisClient;
  /** Wall-clock time, as Kinesis arrival timestamps see it: where LATEST begins, and the age of kept iterators. @default Date.now */
  readonly clock?: () => number;
  /** Retries of a throttled or transiently failed call before the read fails (the only ones: the client from `kinesisClient` makes one attempt per request). @default 6 */
  readonly throughputRetries?: number;
  /** First backoff after a throttled call; doubles at each retry, with jitter. @default 200 */
  readonly backoffMs?: number;
  /** How long an AT_TIMESTAMP GetShardIterator may take before the timestamp is found by reading from the trim horizon. @default 5000 */
  readonly atTimestampTimeoutMs?: number;
}
