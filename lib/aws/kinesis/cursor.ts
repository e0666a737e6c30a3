import type { _Record } from '@aws-sdk/client-kinesis';
import { errorName, type KinesisApi } from './api.ts';
import { arrivalOf } from './decode.ts';
import type { Position, Resume } from './positions.ts';

/** One GetRecords answer, with the iterators before and after it. */
export interface Page {
  readonly records: _Record[];
  /** MillisBehindLatest: 0 once the read has caught up with the shard's newest record. */
  readonly behind: number;
  /** The iterator for the next page; null once the shard is closed and read to its end. */
  readonly next: string | null;
  readonly nextAt: number;
  /** The iterator this page was read with (it can read the page again). */
  readonly used: string;
  readonly usedAt: number;
}

/** Kinesis forgets an iterator after 5 minutes; one older than this is not tried. */
const ITERATOR_MAX_AGE_MS = 280_000;
const MAX_RENEWALS = 5;

/** Reads one shard from a position, renewing expired iterators from the last record seen. */
export class Cursor {
  private iterator: string | null = null;
  private iteratorAt = 0;
  /** Set when AT_TIMESTAMP was emulated: records that arrived before it are passed over. */
  private skipBefore: number | undefined;
  /** The last record handed out or passed over: where a renewed iterator picks up. */
  private lastSeen: string | undefined;
  private renewals = 0;

  constructor(
    private readonly api: KinesisApi,
    private readonly shard: string,
    private readonly origin: Position,
    /** An iterator known to point at `origin` (a remembered resume point, or one kept by the last read of the shard in this process). */
    private readonly kept: Pick<Resume, 'iterator' | 'at'> | undefined,
  ) {}

  /** Starts with the kept iterator while it is young enough, else asks Kinesis for one at the origin. */
  async open(): Promise<void> {
    if (this.kept && this.api.now() - this.kept.at < ITERATOR_MAX_AGE_MS) {
      this.iterator = this.kept.iterator;
      this.iteratorAt = this.kept.at;
      return;
    }
    await this.renew();
  }

  private async renew(): Promise<void> {
    const pos: Position = this.lastSeen !== undefined ? { type: 'AFTER_SEQUENCE_NUMBER', seq: this.lastSeen } : this.origin;
    const it = await this.api.iterator(this.shard, pos);
    this.iterator = it.iterator;
    this.iteratorAt = this.api.now();
    if (this.lastSeen === undefined) this.skipBefore = it.skipBefore;
  }

  /** The next page; `next` is null once the shard is closed and read to its end. */
  async next(limit: number): Promise<Page> {
    for (;;) {
      if (this.iterator === null) return { records: [], behind: 0, next: null, nextAt: this.api.now(), used: '', usedAt: this.iteratorAt };
      const used = this.iterator;
      const usedAt = this.iteratorAt;
      try {
        const out = await this.api.getRecords(this.shard, used, Math.max(1, limit));
        this.iterator = out.NextShardIterator ?? null;
        this.iteratorAt = this.api.now();
        return { records: out.Records ?? [], behind: out.MillisBehindLatest ?? 0, next: this.iterator, nextAt: this.iteratorAt, used, usedAt };
      } catch (e) {
        if (errorName(e) !== 'ExpiredIteratorException' || this.renewals >= MAX_RENEWALS) throw e;
        this.renewals++;
        await this.renew();
      }
    }
  }

  /**
   * Whether the read passes over this record: one that arrived before an emulated AT_TIMESTAMP
   * start, as long as nothing was consumed yet.
   */
  passesOver(record: _Record, consumedSoFar: number): boolean {
    if (consumedSoFar > 0 || this.skipBefore === undefined || arrivalOf(record) >= this.skipBefore) return false;
    this.lastSeen = record.SequenceNumber!;
    return true;
  }

  /** Notes a record the read consumed, so a renewed iterator starts after it. */
  consumed(record: _Record): void {
    this.lastSeen = record.SequenceNumber!;
  }
}
