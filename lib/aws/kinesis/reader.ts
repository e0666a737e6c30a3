import type { _Record } from '@aws-sdk/client-kinesis';
import { SluiceError } from '../../core/errors.ts';
import type { InputSplit, JsonValue, SourceRecordFailure } from '../../ports/index.ts';
import type { KinesisApi } from './api.ts';
import { Cursor, type Page } from './cursor.ts';
import { arrivalOf, type Decoded, type DecodeContext, decodeAll } from './decode.ts';
import { isResume, parseStart, type Position, type Resume } from './positions.ts';

/** GetRecords returns at most this many records per call. */
const MAX_RECORDS_PER_CALL = 10_000;
/** How many empty pages in a row a read accepts from a shard that should still hold records (or tell it ended). */
const EMPTY_PAGES_BEFORE_GIVING_UP = 5;

/**
 * The worker side of a Kinesis source: reads an open split up to the batch boundary and seals
 * the range it consumed, or reads a sealed range again exactly.
 */
export class ShardReader {
  /**
   * Per shard, the iterator the last open read in this process ended with, and the sequence
   * number it continues after: the next batch's split of the shard, if it starts right there, reads
   * with it instead of calling GetShardIterator. Process memory only, used for that exact position
   * only, so a stale entry (a superseded batch's) is never used for another; an expired one is
   * renewed by the cursor.
   */
  private readonly kept = new Map<string, { readonly from: string; readonly iterator: string; readonly at: number }>();

  constructor(
    private readonly api: KinesisApi,
    private readonly context: DecodeContext & { readonly maxRecords: number },
  ) {}

  /** Reads an open split up to the batch boundary and reports what it consumed. */
  async readOpen(split: InputSplit): Promise<{ records: unknown[]; sealedSplit: InputSplit; failures?: SourceRecordFailure[] }> {
    const shard = split.shard as string;
    const after = typeof split.after === 'string' ? split.after : null;
    const start = after === null ? parseStart(split.start ?? 'TRIM_HORIZON', this.context.nodeId) : null;
    const until = typeof split.until === 'number' ? split.until : Number.POSITIVE_INFINITY;
    const max = typeof split.max === 'number' && split.max >= 1 ? split.max : this.context.maxRecords;
    const maxBytes = typeof split.maxBytes === 'number' && split.maxBytes >= 1 ? split.maxBytes : Number.POSITIVE_INFINITY;

    // Where reading starts. LATEST and timestamps name no record: remember since when we look,
    // and keep an iterator that can pick up there in the next batch if nothing was consumed.
    const resume = after === null && isResume(split.resume) ? split.resume : undefined;
    const since = resume ? resume.since : start === 'LATEST' ? this.api.now() : start !== null && typeof start === 'object' ? start.timestamp : undefined;
    let origin: Position;
    if (after !== null) origin = { type: 'AFTER_SEQUENCE_NUMBER', seq: after };
    else if (start === 'TRIM_HORIZON') origin = { type: 'TRIM_HORIZON' };
    else if (start === 'LATEST') origin = { type: 'LATEST' };
    else origin = { type: 'AT_TIMESTAMP', time: (start as { timestamp: number }).timestamp };
    // A remembered iterator that expired is replaced by the time it stood for.
    if (resume) origin = { type: 'AT_TIMESTAMP', time: resume.since };
    // A position named by the split alone (a remembered resume point carries its own iterator).
    const from = after !== null ? `after ${after}` : origin.type === 'TRIM_HORIZON' ? 'trim horizon' : undefined;
    const kept = this.kept.get(shard);
    this.kept.delete(shard);
    const cursor = new Cursor(this.api, shard, origin, resume ?? (from !== undefined && kept?.from === from ? kept : undefined));
    await cursor.open();

    const read = new OpenRead(cursor, until, max, maxBytes, split.closed === true);
    await read.run();
    const { consumed, exhausted, resumeAt, bytesFull, continueAt } = read;
    // Where the shard's next split starts: after the last record consumed, or where this one started.
    const next = consumed.length > 0 ? `after ${consumed[consumed.length - 1].SequenceNumber!}` : from;
    if (next !== undefined && continueAt && !exhausted) this.kept.set(shard, { from: next, ...continueAt });

    const sealed: Record<string, JsonValue> = {
      shard,
      after,
      start: split.start ?? null,
      end: consumed.length > 0 ? consumed[consumed.length - 1].SequenceNumber! : null,
      count: consumed.length,
    };
    if (after === null && consumed.length > 0) sealed.first = consumed[0].SequenceNumber!;
    if (bytesFull) sealed.full = true;
    if (exhausted) sealed.exhausted = true;
    else if (consumed.length === 0 && since !== undefined && after === null && resumeAt) sealed.resume = { iterator: resumeAt.iterator, at: resumeAt.at, since } satisfies Resume;
    return { ...decodeAll(this.context, shard, consumed), sealedSplit: sealed };
  }

  /** Reads exactly the sealed range (after, end] again, whatever arrived since. */
  async readSealed(split: InputSplit): Promise<Decoded> {
    const { nodeId } = this.context;
    const shard = split.shard as string;
    const count = typeof split.count === 'number' ? split.count : -1;
    const end = typeof split.end === 'string' ? split.end : null;
    if (end === null || count === 0) return { records: [] };
    if (count < 1) throw new SluiceError(`${nodeId}: malformed sealed Kinesis split ${JSON.stringify(split)}`, { nodeId });
    const after = typeof split.after === 'string' ? split.after : null;
    const first = typeof split.first === 'string' ? split.first : null;
    let origin: Position;
    if (after !== null) origin = { type: 'AFTER_SEQUENCE_NUMBER', seq: after };
    else if (first !== null) origin = { type: 'AT_SEQUENCE_NUMBER', seq: first };
    else {
      const start = parseStart(split.start ?? 'TRIM_HORIZON', nodeId);
      if (start === 'LATEST') throw this.lost(shard, split, 'the split names no first record to start from');
      origin = start === 'TRIM_HORIZON' ? { type: 'TRIM_HORIZON' } : { type: 'AT_TIMESTAMP', time: start.timestamp };
    }
    const cursor = new Cursor(this.api, shard, origin, undefined);
    await cursor.open();
    const out: _Record[] = [];
    let empty = 0;
    for (;;) {
      const page = await cursor.next(Math.min(MAX_RECORDS_PER_CALL, count - out.length));
      for (const r of page.records) {
        if (cursor.passesOver(r, out.length)) continue;
        if (out.length === 0 && first !== null && r.SequenceNumber !== first) throw this.lost(shard, split, `it starts at ${r.SequenceNumber} instead of ${first}`);
        out.push(r);
        cursor.consumed(r);
        if (out.length === count) {
          if (r.SequenceNumber !== end) throw this.lost(shard, split, `record ${count} is ${r.SequenceNumber} instead of ${end}`);
          return decodeAll(this.context, shard, out);
        }
      }
      if (page.next === null) throw this.lost(shard, split, `the shard ends after ${out.length} of its ${count} records`);
      if (page.records.length === 0 && (page.behind === 0 || split.exhausted === true) && ++empty >= EMPTY_PAGES_BEFORE_GIVING_UP) {
        throw this.lost(shard, split, `the shard holds only ${out.length} of its ${count} records`);
      }
      if (page.records.length > 0) empty = 0;
    }
  }

  private lost(shard: string, split: InputSplit, why: string): SluiceError {
    const { nodeId, stream } = this.context;
    return new SluiceError(
      `${nodeId}: the sealed range of shard ${shard} of Kinesis stream ${stream} (after ${String(split.after ?? split.first ?? split.start)}, up to ${String(split.end)}) ` +
        `can no longer be read as it was sealed: ${why}. Were its records trimmed (stream retention period)?`,
      { nodeId },
    );
  }
}

/**
 * One read of an open split, page by page: it stops at the first record of a later batch, at
 * the split's `max` records or `maxBytes` bytes of data, at the end of a closed shard, or when an
 * open shard is caught up.
 */
class OpenRead {
  readonly consumed: _Record[] = [];
  /** The read stopped because it reached `maxBytes`. */
  bytesFull = false;
  private bytes = 0;
  /** The shard is closed and every record of it was consumed. */
  exhausted = false;
  /** Where a read that consumed nothing can pick up in the next batch. */
  resumeAt: { iterator: string; at: number } | undefined;
  /** Set when the read stops: an iterator that continues exactly after the last record consumed (or the split's start, if none), when one is known. */
  continueAt: { iterator: string; at: number } | undefined;
  private emptyPagesOfClosedShard = 0;

  constructor(
    private readonly cursor: Cursor,
    private readonly until: number,
    private readonly max: number,
    private readonly maxBytes: number,
    private readonly closed: boolean,
  ) {}

  async run(): Promise<void> {
    for (;;) {
      const limit = Math.min(MAX_RECORDS_PER_CALL, this.max - this.consumed.length);
      const page = await this.cursor.next(limit);
      if (this.take(page) === 'stop') return;
      if (!this.asksAgain(page, limit)) return;
    }
  }

  /** Consumes the page's records of this batch; 'stop' at a record of a later batch or once `max` are consumed. */
  private take(page: Page): 'stop' | 'more' {
    for (let i = 0; i < page.records.length; i++) {
      const r = page.records[i];
      if (this.cursor.passesOver(r, this.consumed.length)) continue;
      if (arrivalOf(r) > this.until) {
        // This record belongs to a later batch; it is not consumed, and the page's own iterator reads it again.
        this.keep(page.used, page.usedAt);
        this.continueAt = i === 0 ? { iterator: page.used, at: page.usedAt } : undefined;
        return 'stop';
      }
      // The byte cap is a bound on memory, not an exact size: a record that would cross it waits
      // for the next batch, unless it is the first (a read always makes progress).
      const size = r.Data?.byteLength ?? 0;
      if (this.consumed.length > 0 && this.bytes + size > this.maxBytes) {
        this.bytesFull = true;
        this.continueAt = i === 0 ? { iterator: page.used, at: page.usedAt } : undefined;
        return 'stop';
      }
      this.bytes += size;
      this.consumed.push(r);
      this.cursor.consumed(r);
      if (this.consumed.length >= this.max) {
        // A full batch ends the shard too when it took the closed shard's very last record.
        if (i === page.records.length - 1 && page.next === null) this.exhausted = true;
        this.continueAt = i === page.records.length - 1 && page.next !== null ? { iterator: page.next, at: page.nextAt } : undefined;
        return 'stop';
      }
    }
    return 'more';
  }

  /** Whether to read another page after this one, all of whose records were taken. */
  private asksAgain(page: Page, limit: number): boolean {
    if (page.next === null) {
      this.exhausted = true;
      return false;
    }
    // Every record of the page was taken: if the read stops here, the page's next iterator goes on after the last.
    this.continueAt = { iterator: page.next, at: page.nextAt };
    const caughtUp = page.behind === 0;
    if (this.closed) {
      if (page.records.length > 0 || !caughtUp) {
        this.emptyPagesOfClosedShard = 0;
        return true;
      }
      // A closed shard tells it is exhausted only when asked past its end: keep asking, a little.
      return ++this.emptyPagesOfClosedShard < EMPTY_PAGES_BEFORE_GIVING_UP;
    }
    // An open shard that is caught up has nothing more for this batch.
    if (caughtUp && page.records.length < limit) {
      this.keep(page.next, page.nextAt);
      return false;
    }
    return true;
  }

  /** Keeps an iterator for the next batch, only while nothing was consumed (else the sealed end says where to go on). */
  private keep(iterator: string, at: number): void {
    if (this.consumed.length === 0) this.resumeAt = { iterator, at };
  }
}
