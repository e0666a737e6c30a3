import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  GetRecordsCommand,
  type GetRecordsCommandOutput,
  GetShardIteratorCommand,
  type GetShardIteratorCommandInput,
  type KinesisClient,
  ListShardsCommand,
  type ListShardsCommandOutput,
  type _Record,
  type Shard,
} from '@aws-sdk/client-kinesis';
import { RecordError, SluiceError } from '../core/errors.ts';
import type { InputSplit, JsonValue, RecordSource, SourceIO, SourceRecordFailure, SourceSpec } from '../ports/index.ts';

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
 * Resharding: a child shard is read only once all its parents are closed and fully consumed, so
 * the records of one partition key keep their order across splits and merges.
 *
 * Split shapes (plain JSON):
 * - open: `{ open: true, shard, after: seq | null, start: 'TRIM_HORIZON' | 'LATEST' | { timestamp } | null, until, max, closed?, resume? }`
 * - sealed: `{ shard, after, start, end: seq | null, count, first?, exhausted?, resume? }` — `first`
 *   is the first record consumed when there was no `after`, so a re-read starts exactly there
 *   (`LATEST` and `{ timestamp }` name no fixed record); `count` counts Kinesis records.
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
  private readonly client: KinesisClient;
  private readonly clock: () => number;
  private readonly stream: string;
  private readonly initialPosition: StartPosition;
  private readonly maxRecords: number;
  private readonly decode: Decoder;
  private readonly throughputRetries: number;
  private readonly backoffMs: number;
  private readonly atTimestampTimeoutMs: number;
  /** When GetRecords was last called per shard (5 reads/s/shard: at most one call every 200 ms). */
  private readonly lastRead = new Map<string, number>();

  constructor(
    private readonly spec: SourceSpec,
    _io: SourceIO,
    options: KinesisSourceOptions,
  ) {
    this.client = options.client;
    this.clock = options.clock ?? Date.now;
    this.throughputRetries = options.throughputRetries ?? 6;
    this.backoffMs = options.backoffMs ?? 200;
    this.atTimestampTimeoutMs = options.atTimestampTimeoutMs ?? 5000;
    const stream = spec.params.stream;
    if (typeof stream !== 'string' || stream === '') throw new SluiceError(`${spec.nodeId}: a kinesis source needs a stream name`, { nodeId: spec.nodeId });
    this.stream = stream;
    this.initialPosition = parseStart(spec.params.initialPosition ?? 'LATEST', spec.nodeId);
    const max = spec.params.maxRecordsPerBatch ?? 10_000;
    if (typeof max !== 'number' || !Number.isInteger(max) || max < 1) {
      throw new SluiceError(`${spec.nodeId}: maxRecordsPerBatch must be a whole number >= 1, got ${JSON.stringify(max)}`, { nodeId: spec.nodeId });
    }
    this.maxRecords = max;
    const local = spec.local as { decode?: Decoder } | undefined;
    this.decode = local?.decode ?? defaultDecode;
  }

  // ---------------------------------------------------------------------------------------------
  // Coordinator side
  // ---------------------------------------------------------------------------------------------

  async cut(time: number, state: JsonValue | undefined, limit?: number): Promise<{ splits: InputSplit[]; state: JsonValue }> {
    const shards = await this.listShards();
    const first = state === undefined || state === null;
    const prev = readState(state);
    const known = new Map(shards.map((s) => [s.ShardId!, s]));
    const next: KinesisState = { positions: {}, starts: {}, resume: {}, exhausted: [] };
    const exhausted = new Set<string>();
    for (const s of shards) {
      const id = s.ShardId!;
      const end = s.SequenceNumberRange?.EndingSequenceNumber;
      if (prev.positions[id] !== undefined) next.positions[id] = prev.positions[id];
      if (prev.starts[id] !== undefined) next.starts[id] = prev.starts[id];
      if (prev.resume[id] !== undefined) next.resume[id] = prev.resume[id];
      if (prev.exhausted.includes(id)) exhausted.add(id);
      // A closed shard whose last sealed record is its last one has nothing left.
      if (end !== undefined && prev.positions[id] === end) exhausted.add(id);
      if (first) {
        if (this.initialPosition === 'LATEST') {
          // Nothing new ever arrives in a closed shard: LATEST starts after all of them.
          if (end !== undefined) exhausted.add(id);
          else next.starts[id] = 'LATEST';
        } else {
          next.starts[id] = this.initialPosition;
        }
      }
    }
    // A parent that is no longer listed has been trimmed away: nothing of it is left to read.
    const done = (id: string): boolean => !known.has(id) || exhausted.has(id);
    const splits: InputSplit[] = [];
    for (const s of shards) {
      const id = s.ShardId!;
      if (done(id)) continue;
      const parents = [s.ParentShardId, s.AdjacentParentShardId].filter((p): p is string => typeof p === 'string' && p !== '');
      if (parents.some((p) => !done(p))) continue;
      const after = next.positions[id] ?? null;
      const split: Record<string, JsonValue> = { open: true, shard: id, after, start: after === null ? (next.starts[id] ?? 'TRIM_HORIZON') : null, until: time, max: this.maxRecords };
      if (s.SequenceNumberRange?.EndingSequenceNumber !== undefined) split.closed = true;
      if (after === null && next.resume[id]) split.resume = next.resume[id] as unknown as JsonValue;
      splits.push(split);
    }
    // Backpressure: the batch's limit shared evenly by the shards read in it.
    if (limit !== undefined && splits.length) {
      const each = Math.max(1, Math.ceil(limit / splits.length));
      for (const split of splits as Record<string, JsonValue>[]) split.max = Math.min(this.maxRecords, each);
    }
    // Exhausted shards are dropped: only their ids stay, until the stream forgets them, so their children can start.
    next.exhausted = [...exhausted].sort();
    for (const id of next.exhausted) {
      delete next.starts[id];
      delete next.resume[id];
    }
    return { splits, state: next as unknown as JsonValue };
  }

  advance(state: JsonValue, sealedSplits: readonly InputSplit[]): JsonValue {
    const prev = readState(state);
    const next: KinesisState = { positions: { ...prev.positions }, starts: { ...prev.starts }, resume: { ...prev.resume }, exhausted: [...prev.exhausted] };
    for (const split of sealedSplits) {
      // A split still open was not read (its range was never sealed): the shard stays where it was.
      if (!('end' in split)) continue;
      const shard = split.shard as string;
      const end = split.end as string | null;
      if (end !== null) {
        next.positions[shard] = end;
        delete next.starts[shard];
        delete next.resume[shard];
      } else if (isResume(split.resume)) {
        next.resume[shard] = split.resume;
      }
      if (split.exhausted === true && !next.exhausted.includes(shard)) {
        next.exhausted.push(shard);
        delete next.starts[shard];
        delete next.resume[shard];
      }
    }
    next.exhausted.sort();
    return next as unknown as JsonValue;
  }

  private async listShards(): Promise<Shard[]> {
    const shards: Shard[] = [];
    let token: string | undefined;
    do {
      const input = token ? { NextToken: token } : { StreamName: this.stream };
      let out: ListShardsCommandOutput;
      try {
        out = await this.throttled(`ListShards`, undefined, () => this.client.send(new ListShardsCommand(input)));
      } catch (e) {
        throw this.failed(e, 'ListShards');
      }
      shards.push(...(out.Shards ?? []));
      token = out.NextToken;
    } while (token);
    return shards.filter((s) => typeof s.ShardId === 'string').sort((a, b) => (a.ShardId! < b.ShardId! ? -1 : a.ShardId! > b.ShardId! ? 1 : 0));
  }

  // ---------------------------------------------------------------------------------------------
  // Worker side
  // ---------------------------------------------------------------------------------------------

  async read(split: InputSplit): Promise<{ records: unknown[]; sealedSplit?: InputSplit; failures?: readonly SourceRecordFailure[] }> {
    if (typeof split.shard !== 'string') throw new SluiceError(`${this.spec.nodeId}: malformed Kinesis split ${JSON.stringify(split)}`, { nodeId: this.spec.nodeId });
    if ('end' in split) return this.readSealed(split);
    return this.readOpen(split);
  }

  /** Reads an open split up to the batch boundary and reports what it consumed. */
  private async readOpen(split: InputSplit): Promise<{ records: unknown[]; sealedSplit: InputSplit; failures?: SourceRecordFailure[] }> {
    const shard = split.shard as string;
    const after = typeof split.after === 'string' ? split.after : null;
    const start = after === null ? parseStart(split.start ?? 'TRIM_HORIZON', this.spec.nodeId) : null;
    const until = typeof split.until === 'number' ? split.until : Number.POSITIVE_INFINITY;
    const max = typeof split.max === 'number' && split.max >= 1 ? split.max : this.maxRecords;
    const closed = split.closed === true;

    // Where reading starts. LATEST and timestamps name no record: remember since when we look,
    // and keep an iterator that can pick up there in the next batch if nothing was consumed.
    const resume = after === null && isResume(split.resume) ? split.resume : undefined;
    const since = resume ? resume.since : start === 'LATEST' ? this.clock() : start !== null && typeof start === 'object' ? start.timestamp : undefined;
    let origin: Position;
    if (after !== null) origin = { type: 'AFTER_SEQUENCE_NUMBER', seq: after };
    else if (start === 'TRIM_HORIZON') origin = { type: 'TRIM_HORIZON' };
    else if (start === 'LATEST') origin = { type: 'LATEST' };
    else origin = { type: 'AT_TIMESTAMP', time: (start as { timestamp: number }).timestamp };
    // A remembered iterator that expired is replaced by the time it stood for.
    if (resume) origin = { type: 'AT_TIMESTAMP', time: resume.since };
    const cursor = new Cursor(this, shard, origin, resume);
    await cursor.open();

    const consumed: _Record[] = [];
    let exhausted = false;
    let resumeAt: { iterator: string; at: number } | undefined;
    let emptyClosed = 0;
    read: for (;;) {
      const limit = Math.min(10_000, max - consumed.length);
      const page = await cursor.next(limit);
      for (let i = 0; i < page.records.length; i++) {
        const r = page.records[i];
        const arrival = arrivalOf(r);
        if (consumed.length === 0 && cursor.skipBefore !== undefined && arrival < cursor.skipBefore) {
          cursor.lastSeen = r.SequenceNumber!;
          continue;
        }
        if (arrival > until) {
          // This record belongs to a later batch; it is not consumed.
          if (consumed.length === 0) resumeAt = { iterator: page.used, at: page.usedAt };
          break read;
        }
        consumed.push(r);
        cursor.lastSeen = r.SequenceNumber!;
        if (consumed.length >= max) {
          if (i === page.records.length - 1 && page.next === null) exhausted = true;
          break read;
        }
      }
      if (page.next === null) {
        exhausted = true;
        break;
      }
      if (page.records.length === 0 && page.behind === 0) {
        if (!closed) {
          if (consumed.length === 0) resumeAt = { iterator: page.next, at: page.nextAt };
          break;
        }
        // A closed shard tells it is exhausted only when asked past its end: keep asking, a little.
        if (++emptyClosed >= 5) break;
        continue;
      }
      emptyClosed = 0;
      if (!closed && page.behind === 0 && page.records.length < limit) {
        if (consumed.length === 0) resumeAt = { iterator: page.next, at: page.nextAt };
        break;
      }
    }

    const sealed: Record<string, JsonValue> = {
      shard,
      after,
      start: split.start ?? null,
      end: consumed.length > 0 ? consumed[consumed.length - 1].SequenceNumber! : null,
      count: consumed.length,
    };
    if (after === null && consumed.length > 0) sealed.first = consumed[0].SequenceNumber!;
    if (exhausted) sealed.exhausted = true;
    else if (consumed.length === 0 && since !== undefined && after === null && resumeAt) sealed.resume = { iterator: resumeAt.iterator, at: resumeAt.at, since };
    return { ...this.decodeAll(shard, consumed), sealedSplit: sealed };
  }

  /** Reads exactly the sealed range (after, end] again, whatever arrived since. */
  private async readSealed(split: InputSplit): Promise<Decoded> {
    const shard = split.shard as string;
    const count = typeof split.count === 'number' ? split.count : -1;
    const end = typeof split.end === 'string' ? split.end : null;
    if (end === null || count === 0) return { records: [] };
    if (count < 1) throw new SluiceError(`${this.spec.nodeId}: malformed sealed Kinesis split ${JSON.stringify(split)}`, { nodeId: this.spec.nodeId });
    const after = typeof split.after === 'string' ? split.after : null;
    const first = typeof split.first === 'string' ? split.first : null;
    let origin: Position;
    if (after !== null) origin = { type: 'AFTER_SEQUENCE_NUMBER', seq: after };
    else if (first !== null) origin = { type: 'AT_SEQUENCE_NUMBER', seq: first };
    else {
      const start = parseStart(split.start ?? 'TRIM_HORIZON', this.spec.nodeId);
      if (start === 'LATEST') throw this.lost(shard, split, 'the split names no first record to start from');
      origin = start === 'TRIM_HORIZON' ? { type: 'TRIM_HORIZON' } : { type: 'AT_TIMESTAMP', time: start.timestamp };
    }
    const cursor = new Cursor(this, shard, origin, undefined);
    await cursor.open();
    const out: _Record[] = [];
    let empty = 0;
    for (;;) {
      const page = await cursor.next(Math.min(10_000, count - out.length));
      for (const r of page.records) {
        if (out.length === 0 && cursor.skipBefore !== undefined && arrivalOf(r) < cursor.skipBefore) {
          cursor.lastSeen = r.SequenceNumber!;
          continue;
        }
        if (out.length === 0 && first !== null && r.SequenceNumber !== first) throw this.lost(shard, split, `it starts at ${r.SequenceNumber} instead of ${first}`);
        out.push(r);
        cursor.lastSeen = r.SequenceNumber!;
        if (out.length === count) {
          if (r.SequenceNumber !== end) throw this.lost(shard, split, `record ${count} is ${r.SequenceNumber} instead of ${end}`);
          return this.decodeAll(shard, out);
        }
      }
      if (page.next === null) throw this.lost(shard, split, `the shard ends after ${out.length} of its ${count} records`);
      if (page.records.length === 0 && (page.behind === 0 || split.exhausted === true) && ++empty >= 5) {
        throw this.lost(shard, split, `the shard holds only ${out.length} of its ${count} records`);
      }
      if (page.records.length > 0) empty = 0;
    }
  }

  private lost(shard: string, split: InputSplit, why: string): SluiceError {
    return new SluiceError(
      `${this.spec.nodeId}: the sealed range of shard ${shard} of Kinesis stream ${this.stream} (after ${String(split.after ?? split.first ?? split.start)}, up to ${String(split.end)}) ` +
        `can no longer be read as it was sealed: ${why}. Were its records trimmed (stream retention period)?`,
      { nodeId: this.spec.nodeId },
    );
  }

  /**
   * Decodes (and de-aggregates) the records; one that cannot be decoded is left out and listed as
   * a failure, so the engine can fail the batch or set it aside (onRecordError).
   */
  private decodeAll(shard: string, records: readonly _Record[]): Decoded {
    const out: unknown[] = [];
    const failures: SourceRecordFailure[] = [];
    const raw = (data: Uint8Array, { shardId: _, ...meta }: RecordMeta) => ({ shard, ...meta, data: Buffer.from(data).toString('base64') });
    records.forEach((r, index) => {
      const seq = r.SequenceNumber!;
      const arrivalTime = arrivalOf(r);
      const data = r.Data ?? new Uint8Array(0);
      let parts: UserRecord[] | undefined;
      try {
        parts = deaggregate(data);
      } catch (e) {
        const error = new RecordError(`${this.spec.nodeId}: the KPL-aggregated record ${seq} of shard ${shard} of Kinesis stream ${this.stream} is malformed: ${messageOf(e)}`, {
          nodeId: this.spec.nodeId,
          cause: e,
        });
        failures.push({ index, record: raw(data, { shardId: shard, partitionKey: r.PartitionKey ?? '', sequenceNumber: seq, arrivalTime }), error });
        return;
      }
      const one = (bytes: Uint8Array, meta: RecordMeta) => {
        try {
          out.push(this.decode(bytes, meta));
        } catch (e) {
          const which = meta.subSequenceNumber === undefined ? `record ${meta.sequenceNumber}` : `record ${meta.sequenceNumber} (user record ${meta.subSequenceNumber})`;
          const error = new RecordError(`${this.spec.nodeId}: the decoder threw on ${which} of shard ${shard} of Kinesis stream ${this.stream}: ${messageOf(e)}`, {
            nodeId: this.spec.nodeId,
            cause: e,
          });
          failures.push({ index, record: raw(bytes, meta), error });
        }
      };
      if (parts === undefined) one(data, { shardId: shard, partitionKey: r.PartitionKey ?? '', sequenceNumber: seq, arrivalTime });
      else parts.forEach((p, i) => one(p.data, { shardId: shard, partitionKey: p.partitionKey, sequenceNumber: seq, subSequenceNumber: i, arrivalTime }));
    });
    return failures.length ? { records: out, failures } : { records: out };
  }

  // ---------------------------------------------------------------------------------------------
  // Calls to Kinesis
  // ---------------------------------------------------------------------------------------------

  /** @internal The source's clock. */
  now(): number {
    return this.clock();
  }

  /** @internal An iterator at `position`; `skipBefore` when a timestamp had to be emulated by skipping older records. */
  async iterator(shard: string, position: Position): Promise<{ iterator: string | null; skipBefore?: number }> {
    const base = { StreamName: this.stream, ShardId: shard };
    let input: GetShardIteratorCommandInput;
    switch (position.type) {
      case 'AFTER_SEQUENCE_NUMBER':
      case 'AT_SEQUENCE_NUMBER':
        input = { ...base, ShardIteratorType: position.type, StartingSequenceNumber: position.seq };
        break;
      case 'TRIM_HORIZON':
      case 'LATEST':
        input = { ...base, ShardIteratorType: position.type };
        break;
      case 'AT_TIMESTAMP':
        return this.iteratorAt(shard, position.time);
    }
    const out = await this.call('GetShardIterator', shard, (signal) => this.client.send(new GetShardIteratorCommand(input), { abortSignal: signal }));
    return { iterator: out.ShardIterator ?? null };
  }

  /**
   * AT_TIMESTAMP. Emulators are not all faithful here: kinesalite never answers when no record is
   * at or after the time, and refuses a time ahead of its clock. Both are read the long way
   * round (from the trim horizon, or from LATEST, skipping records that arrived before the time).
   */
  private async iteratorAt(shard: string, time: number): Promise<{ iterator: string | null; skipBefore?: number }> {
    const input = { StreamName: this.stream, ShardId: shard, ShardIteratorType: 'AT_TIMESTAMP' as const, Timestamp: new Date(time) };
    try {
      const out = await this.call('GetShardIterator', shard, (signal) => this.client.send(new GetShardIteratorCommand(input), { abortSignal: signal }), this.atTimestampTimeoutMs);
      return { iterator: out.ShardIterator ?? null };
    } catch (e) {
      const err = e instanceof SluiceError && e.cause !== undefined ? e.cause : e;
      if (errorName(err) === 'InvalidArgumentException' && /greater than the current/i.test(messageOf(err))) {
        const out = await this.call('GetShardIterator', shard, (signal) => this.client.send(new GetShardIteratorCommand({ ...input, ShardIteratorType: 'LATEST', Timestamp: undefined }), { abortSignal: signal }));
        return { iterator: out.ShardIterator ?? null, skipBefore: time };
      }
      if (!(e instanceof TimedOut)) throw e;
      const out = await this.call('GetShardIterator', shard, (signal) => this.client.send(new GetShardIteratorCommand({ ...input, ShardIteratorType: 'TRIM_HORIZON', Timestamp: undefined }), { abortSignal: signal }));
      return { iterator: out.ShardIterator ?? null, skipBefore: time };
    }
  }

  /** @internal One GetRecords call, paced to one call per shard every 200 ms. */
  async getRecords(shard: string, iterator: string, limit: number): Promise<GetRecordsCommandOutput> {
    return this.call('GetRecords', shard, async (signal) => {
      const last = this.lastRead.get(shard);
      const wait = last === undefined ? 0 : last + MIN_READ_INTERVAL_MS - Date.now();
      if (wait > 0) await sleep(wait);
      this.lastRead.set(shard, Date.now());
      return this.client.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: limit }), { abortSignal: signal });
    });
  }

  /** Runs a call with throughput retries; other errors become clear ones (ExpiredIterator passes through). */
  private async call<T>(op: string, shard: string | undefined, fn: (signal: AbortSignal | undefined) => Promise<T>, timeoutMs?: number): Promise<T> {
    try {
      return await this.throttled(op, shard, async () => {
        if (timeoutMs === undefined) return fn(undefined);
        const ctl = new AbortController();
        const timer = setTimeout(() => ctl.abort(), timeoutMs);
        try {
          return await fn(ctl.signal);
        } catch (e) {
          if (ctl.signal.aborted) throw new TimedOut();
          throw e;
        } finally {
          clearTimeout(timer);
        }
      });
    } catch (e) {
      if (e instanceof TimedOut || errorName(e) === 'ExpiredIteratorException') throw e;
      throw this.failed(e, op, shard);
    }
  }

  /** Retries throttled calls with exponential backoff (200 ms, 400 ms, …), then gives up clearly. */
  private async throttled<T>(op: string, shard: string | undefined, fn: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn();
      } catch (e) {
        if (!THROTTLED.has(errorName(e))) throw e;
        if (attempt >= this.throughputRetries) {
          throw new SluiceError(
            `${this.spec.nodeId}: Kinesis ${op}${shard ? ` on shard ${shard}` : ''} of stream ${this.stream} is still throttled (${errorName(e)}) after ${attempt} retries; ` +
              'other consumers may be using up the read throughput (5 reads/s and 2 MB/s per shard): add shards, or use fewer consumers',
            { nodeId: this.spec.nodeId, cause: e },
          );
        }
        await sleep(this.backoffMs * 2 ** attempt);
      }
    }
  }

  private failed(e: unknown, op: string, shard?: string): SluiceError {
    if (e instanceof SluiceError) return e;
    const name = errorName(e);
    const where = shard ? `shard ${shard} of Kinesis stream ${this.stream}` : `Kinesis stream ${this.stream}`;
    if (name === 'ResourceNotFoundException') {
      return new SluiceError(
        shard
          ? `${this.spec.nodeId}: ${where} does not exist (${op}: ${messageOf(e)})`
          : `${this.spec.nodeId}: kinesisStream('${this.stream}'): there is no Kinesis stream named ${this.stream} in this account and region (${op}: ${messageOf(e)})`,
        { nodeId: this.spec.nodeId, cause: e },
      );
    }
    return new SluiceError(`${this.spec.nodeId}: Kinesis ${op} on ${where} failed: ${name}: ${messageOf(e)}`, { nodeId: this.spec.nodeId, cause: e });
  }
}

/** Options of {@link KinesisSource}. */
export interface KinesisSourceOptions {
  readonly client: KinesisClient;
  /** Wall-clock time, as Kinesis arrival timestamps see it: where LATEST begins, and the age of kept iterators. @default Date.now */
  readonly clock?: () => number;
  /** Retries of a throttled call before the read fails. @default 6 */
  readonly throughputRetries?: number;
  /** First backoff after a throttled call; doubles at each retry. @default 200 */
  readonly backoffMs?: number;
  /** How long an AT_TIMESTAMP GetShardIterator may take before the timestamp is found by reading from the trim horizon. @default 5000 */
  readonly atTimestampTimeoutMs?: number;
}

/** Decoded records, and the ones that could not be decoded. */
interface Decoded {
  records: unknown[];
  failures?: SourceRecordFailure[];
}

/** What a decoder is told about a record besides its bytes. */
export interface RecordMeta {
  /** The shard the record was read from (after resharding, a key's records move to a child shard). */
  readonly shardId: string;
  readonly partitionKey: string;
  readonly sequenceNumber: string;
  /** The index of a user record within a KPL-aggregated record. */
  readonly subSequenceNumber?: number;
  readonly arrivalTime: number;
}

type Decoder = (data: Uint8Array, meta: RecordMeta) => unknown;
type StartPosition = 'TRIM_HORIZON' | 'LATEST' | { readonly timestamp: number };
type Position =
  | { readonly type: 'AFTER_SEQUENCE_NUMBER' | 'AT_SEQUENCE_NUMBER'; readonly seq: string }
  | { readonly type: 'TRIM_HORIZON' | 'LATEST' }
  | { readonly type: 'AT_TIMESTAMP'; readonly time: number };
/** An iterator kept from a read that consumed nothing, valid about 5 minutes; `since` is the time it stands for. */
interface Resume {
  readonly iterator: string;
  readonly at: number;
  readonly since: number;
}
interface KinesisState {
  positions: Record<string, string>;
  starts: Record<string, JsonValue>;
  resume: Record<string, Resume>;
  exhausted: string[];
}

const MIN_READ_INTERVAL_MS = 200;
/** Kinesis forgets an iterator after 5 minutes; one older than this is not tried. */
const ITERATOR_MAX_AGE_MS = 280_000;
const THROTTLED = new Set(['ProvisionedThroughputExceededException', 'LimitExceededException', 'KMSThrottlingException', 'ThrottlingException']);
const utf8 = new TextDecoder();
const defaultDecode: Decoder = (data) => utf8.decode(data);

class TimedOut extends Error {}

/** Reads one shard from a position, renewing expired iterators from the last record seen. */
class Cursor {
  iterator: string | null = null;
  iteratorAt = 0;
  skipBefore: number | undefined;
  lastSeen: string | undefined;
  private renewals = 0;

  constructor(
    private readonly source: KinesisSource,
    private readonly shard: string,
    private readonly origin: Position,
    private readonly resume: Resume | undefined,
  ) {}

  private now(): number {
    return this.source.now();
  }

  async open(): Promise<void> {
    if (this.resume && this.now() - this.resume.at < ITERATOR_MAX_AGE_MS) {
      this.iterator = this.resume.iterator;
      this.iteratorAt = this.resume.at;
      return;
    }
    await this.renew();
  }

  private async renew(): Promise<void> {
    const pos: Position = this.lastSeen !== undefined ? { type: 'AFTER_SEQUENCE_NUMBER', seq: this.lastSeen } : this.origin;
    const it = await this.source.iterator(this.shard, pos);
    this.iterator = it.iterator;
    this.iteratorAt = this.now();
    if (this.lastSeen === undefined) this.skipBefore = it.skipBefore;
  }

  /** The next page; `next` is null once the shard is closed and read to its end. */
  async next(limit: number): Promise<{ records: _Record[]; behind: number; next: string | null; nextAt: number; used: string; usedAt: number }> {
    for (;;) {
      if (this.iterator === null) return { records: [], behind: 0, next: null, nextAt: this.now(), used: '', usedAt: this.iteratorAt };
      const used = this.iterator;
      const usedAt = this.iteratorAt;
      try {
        const out = await this.source.getRecords(this.shard, used, Math.max(1, limit));
        this.iterator = out.NextShardIterator ?? null;
        this.iteratorAt = this.now();
        return { records: out.Records ?? [], behind: out.MillisBehindLatest ?? 0, next: this.iterator, nextAt: this.iteratorAt, used, usedAt };
      } catch (e) {
        if (errorName(e) !== 'ExpiredIteratorException' || this.renewals >= 5) throw e;
        this.renewals++;
        await this.renew();
      }
    }
  }
}

function parseStart(v: JsonValue, nodeId: string): StartPosition {
  if (v === 'TRIM_HORIZON' || v === 'LATEST') return v;
  if (v && typeof v === 'object' && !Array.isArray(v) && typeof v.timestamp === 'number') return { timestamp: v.timestamp };
  throw new SluiceError(`${nodeId}: initialPosition must be 'TRIM_HORIZON', 'LATEST' or { timestamp }, got ${JSON.stringify(v)}`, { nodeId });
}

function isResume(v: unknown): v is Resume {
  return !!v && typeof v === 'object' && typeof (v as Resume).iterator === 'string' && typeof (v as Resume).at === 'number' && typeof (v as Resume).since === 'number';
}

function readState(state: JsonValue | undefined): KinesisState {
  const s = (state && typeof state === 'object' && !Array.isArray(state) ? state : {}) as Partial<KinesisState>;
  return {
    positions: s.positions && typeof s.positions === 'object' ? s.positions : {},
    starts: s.starts && typeof s.starts === 'object' ? s.starts : {},
    resume: s.resume && typeof s.resume === 'object' ? s.resume : {},
    exhausted: Array.isArray(s.exhausted) ? s.exhausted.filter((x): x is string => typeof x === 'string') : [],
  };
}

function arrivalOf(r: _Record): number {
  const t = r.ApproximateArrivalTimestamp;
  return t instanceof Date ? t.getTime() : typeof t === 'number' ? t : 0;
}

function errorName(e: unknown): string {
  return e && typeof e === 'object' && typeof (e as { name?: unknown }).name === 'string' ? (e as { name: string }).name : '';
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

// -----------------------------------------------------------------------------------------------
// KPL aggregation: 0xF3 0x89 0x9A 0xC2, an AggregatedRecord protobuf, and the MD5 of the protobuf.
// -----------------------------------------------------------------------------------------------

/** One user record inside a KPL-aggregated Kinesis record. */
export interface UserRecord {
  readonly partitionKey: string;
  readonly explicitHashKey?: string;
  readonly data: Uint8Array;
}

const KPL_MAGIC = [0xf3, 0x89, 0x9a, 0xc2];

/**
 * The user records of a KPL-aggregated record, or `undefined` when `data` is not one (no magic
 * bytes, or an MD5 trailer that does not match: like the KCL, such data is an ordinary record).
 * Throws when the checksum matches but the protobuf is malformed.
 *
 * @example
 * ```ts
 * const parts = deaggregate(record.Data) ?? [{ partitionKey: record.PartitionKey, data: record.Data }];
 * ```
 */
export function deaggregate(data: Uint8Array): UserRecord[] | undefined {
  if (data.length < KPL_MAGIC.length + 16) return undefined;
  for (let i = 0; i < KPL_MAGIC.length; i++) if (data[i] !== KPL_MAGIC[i]) return undefined;
  const body = data.subarray(KPL_MAGIC.length, data.length - 16);
  const digest = createHash('md5').update(body).digest();
  const trailer = data.subarray(data.length - 16);
  for (let i = 0; i < 16; i++) if (digest[i] !== trailer[i]) return undefined;

  const keys: string[] = [];
  const hashKeys: string[] = [];
  const entries: { pk: number; ehk?: number; data: Uint8Array }[] = [];
  const msg = new ProtoReader(body);
  while (!msg.done()) {
    const [field, wire] = msg.tag();
    if (field === 1 && wire === 2) keys.push(utf8Strict.decode(msg.bytes()));
    else if (field === 2 && wire === 2) hashKeys.push(utf8Strict.decode(msg.bytes()));
    else if (field === 3 && wire === 2) {
      const rec = new ProtoReader(msg.bytes());
      let pk: number | undefined;
      let ehk: number | undefined;
      let payload: Uint8Array | undefined;
      while (!rec.done()) {
        const [f, w] = rec.tag();
        if (f === 1 && w === 0) pk = rec.varint();
        else if (f === 2 && w === 0) ehk = rec.varint();
        else if (f === 3 && w === 2) payload = rec.bytes();
        else rec.skip(w);
      }
      if (pk === undefined || payload === undefined) throw new Error('a user record lacks its partition_key_index or data');
      entries.push({ pk, ...(ehk === undefined ? {} : { ehk }), data: payload });
    } else msg.skip(wire);
  }
  return entries.map((e) => {
    if (e.pk >= keys.length) throw new Error(`partition_key_index ${e.pk} is outside the table of ${keys.length} keys`);
    if (e.ehk !== undefined && e.ehk >= hashKeys.length) throw new Error(`explicit_hash_key_index ${e.ehk} is outside the table of ${hashKeys.length} keys`);
    return { partitionKey: keys[e.pk], ...(e.ehk === undefined ? {} : { explicitHashKey: hashKeys[e.ehk] }), data: e.data };
  });
}

const utf8Strict = new TextDecoder('utf-8', { fatal: true });

/** Just enough of the protobuf wire format for AggregatedRecord. */
class ProtoReader {
  private pos = 0;
  constructor(private readonly buf: Uint8Array) {}

  done(): boolean {
    return this.pos >= this.buf.length;
  }

  tag(): [number, number] {
    const t = this.varint();
    return [Math.floor(t / 8), t % 8];
  }

  varint(): number {
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.buf.length) throw new Error('truncated varint');
      const b = this.buf[this.pos++];
      result += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) return result;
      scale *= 128;
    }
    throw new Error('varint longer than 10 bytes');
  }

  bytes(): Uint8Array {
    const n = this.varint();
    if (this.pos + n > this.buf.length) throw new Error('truncated length-delimited field');
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 1) this.advance(8);
    else if (wire === 2) this.bytes();
    else if (wire === 5) this.advance(4);
    else throw new Error(`unsupported protobuf wire type ${wire}`);
  }

  private advance(n: number): void {
    if (this.pos + n > this.buf.length) throw new Error('truncated fixed-width field');
    this.pos += n;
  }
}
