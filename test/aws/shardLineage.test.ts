import { describe, expect, it } from 'vitest';
import { advanceState, type CutOptions, cutSplits, type ListedShard } from '../../lib/aws/kinesis/shardLineage.ts';
import type { InputSplit, JsonValue } from '../../lib/ports/index.ts';

// The shard lineage of the Kinesis source without Kinesis: a fake stream of shards (their records,
// their parents, open or closed) and a fake reader that seals what an open split would consume.
// Resharding rule under test: a child is read only once every parent is read to its end (or
// trimmed away), so one partition key's records keep their order across splits and merges.

interface FakeShard {
  readonly id: string;
  readonly parents?: readonly string[];
  /** Sequence numbers, oldest first. */
  readonly records: readonly string[];
  /** Closed by a split or a merge: nothing more arrives. */
  readonly closed?: boolean;
}

/** A shard's records, named after it: `records('a', 3)` is a0, a1, a2. */
const records = (shard: string, n: number) => Array.from({ length: n }, (_, i) => `${shard}${i}`);

function listing(stream: readonly FakeShard[]): ListedShard[] {
  return stream.map((s) => ({ id: s.id, parents: s.parents ?? [], ...(s.closed ? { endingSequenceNumber: s.records[s.records.length - 1] } : {}) }));
}

/** What reading an open split seals: the records after `after`, up to `max`; exhausted when that ends a closed shard. */
function sealAsReaderWould(split: InputSplit, stream: readonly FakeShard[]): { sealed: InputSplit; read: string[] } {
  const shard = stream.find((s) => s.id === split.shard)!;
  const from = typeof split.after === 'string' ? shard.records.indexOf(split.after) + 1 : 0;
  const read = shard.records.slice(from, from + (split.max as number));
  const sealed: Record<string, JsonValue> = { shard: shard.id, after: split.after ?? null, start: split.start ?? null, end: read.at(-1) ?? null, count: read.length };
  if (shard.closed && from + read.length === shard.records.length) sealed.exhausted = true;
  return { sealed, read };
}

const options: CutOptions = { time: 1000, initialPosition: 'TRIM_HORIZON', maxRecords: 10 };

/** One batch: cut, read every split, advance. */
function batch(stream: readonly FakeShard[], state: JsonValue | undefined, opts: Partial<CutOptions> = {}) {
  const cut = cutSplits(listing(stream), state, { ...options, ...opts });
  const reads = cut.splits.map((split) => sealAsReaderWould(split, stream));
  return {
    shardsRead: cut.splits.map((s) => s.shard as string),
    recordsRead: reads.flatMap((r) => r.read),
    state: advanceState(cut.state, reads.map((r) => r.sealed)),
  };
}

/** Batches until one reads nothing: the records in the order they were read, and the shards of each batch. */
function drain(stream: readonly FakeShard[], opts: Partial<CutOptions> = {}) {
  let state: JsonValue | undefined;
  const order: string[] = [];
  const batches: string[][] = [];
  for (let i = 0; i < 100; i++) {
    const b = batch(stream, state, opts);
    state = b.state;
    if (b.recordsRead.length === 0) break;
    order.push(...b.recordsRead);
    batches.push(b.shardsRead);
  }
  return { order, batches, state: state as unknown as { positions: Record<string, string>; exhausted: string[] } };
}

describe('the Kinesis shard lineage (which shards a batch reads)', () => {
  it('reads every shard without parents from the initial position, then after the end it sealed', () => {
    // Prepare
    const stream = [
      { id: 'a', records: records('a', 3) },
      { id: 'b', records: records('b', 2) },
    ];
    // Act
    const first = cutSplits(listing(stream), undefined, options);
    const next = cutSplits(listing(stream), batch(stream, undefined).state, options);
    // Assess
    expect(first.splits.map((s) => [s.shard, s.after, s.start])).toEqual(stream.map((s) => [s.id, null, options.initialPosition]));
    expect(next.splits.map((s) => [s.shard, s.after, s.start])).toEqual(stream.map((s) => [s.id, s.records.at(-1), null]));
  });

  it('a split: neither child is read while the parent has records left; once it is read to its end, both are, and the parent no more', () => {
    const parent = { id: 'p', records: records('p', 3), closed: true };
    const stream = [parent, { id: 'p1', parents: ['p'], records: records('p1_', 2) }, { id: 'p2', parents: ['p'], records: records('p2_', 2) }];
    // Two records a batch: the parent takes two batches.
    const { batches, order } = drain(stream, { maxRecords: 2 });
    expect(batches).toEqual([['p'], ['p'], ['p1', 'p2']]);
    expect(order).toEqual(stream.flatMap((s) => s.records));
  });

  it('a merge: the child waits until both parents are read to their end, not only the first', () => {
    const stream = [
      { id: 'm1', records: records('m1_', 1), closed: true },
      { id: 'm2', records: records('m2_', 3), closed: true },
      { id: 'm', parents: ['m1', 'm2'], records: records('m_', 2) },
    ];
    const { batches } = drain(stream, { maxRecords: 2 });
    // m1 ends in the first batch, m2 only in the second: the child starts in the third.
    expect(batches).toEqual([['m1', 'm2'], ['m2'], ['m']]);
  });

  it('a closed shard whose last record is sealed counts as read to its end, even when no read said so', () => {
    const parent = { id: 'p', records: records('p', 2), closed: true };
    const stream = [parent, { id: 'c', parents: ['p'], records: records('c', 1) }];
    // The read that sealed the parent's last record stopped at its max, before Kinesis told the shard ended.
    const state = { positions: { p: parent.records.at(-1)! }, starts: {}, resume: {}, exhausted: [] };
    const { splits, state: next } = cutSplits(listing(stream), state, options);
    expect(splits.map((s) => s.shard)).toEqual(['c']);
    expect((next as { exhausted: string[] }).exhausted).toEqual(['p']);
  });

  it('a parent trimmed past retention (no longer listed) leaves nothing to wait for: its children start from their trim horizon, and the state forgets it', () => {
    // The parent was read only partly, then its records passed the retention period and it went from the listing.
    const state = { positions: { gone: 'gone0' }, starts: {}, resume: {}, exhausted: [] };
    const children = [
      { id: 'c1', parents: ['gone'], records: records('c1_', 1) },
      { id: 'c2', parents: ['gone'], records: records('c2_', 1) },
    ];
    const { splits, state: next } = cutSplits(listing(children), state, { ...options, initialPosition: 'LATEST' });
    expect(splits.map((s) => [s.shard, s.after, s.start])).toEqual(children.map((c) => [c.id, null, 'TRIM_HORIZON']));
    expect(next).toEqual({ positions: {}, starts: {}, resume: {}, exhausted: [] });
  });

  it('an exhausted shard stays in the state only while the stream lists it', () => {
    const parent = { id: 'p', records: records('p', 1), closed: true };
    const child = { id: 'c', parents: ['p'], records: records('c', 1) };
    const afterParent = batch([parent, child], undefined).state;
    expect((afterParent as { exhausted: string[] }).exhausted).toEqual(['p']);
    const trimmed = cutSplits(listing([child]), afterParent, options);
    expect((trimmed.state as { exhausted: string[] }).exhausted).toEqual([]);
    expect(trimmed.splits.map((s) => s.shard)).toEqual(['c']);
  });

  it('a shard that appears later without parents is read from its trim horizon, even when the stream started at LATEST', () => {
    const old = { id: 'old', records: records('old', 1) };
    const latest = { ...options, initialPosition: 'LATEST' as const };
    const state = cutSplits(listing([old]), undefined, latest).state;
    const fresh = { id: 'fresh', records: records('fresh', 1) };
    const { splits } = cutSplits(listing([old, fresh]), state, latest);
    // The old shard still starts where the stream started; the new one has nothing before its first record.
    expect(splits.map((s) => [s.shard, s.start])).toEqual([
      ['fresh', 'TRIM_HORIZON'],
      ['old', 'LATEST'],
    ]);
  });

  it('at LATEST, closed shards are passed over at the first batch and their children read at once', () => {
    const stream = [
      { id: 'p', records: records('p', 2), closed: true },
      { id: 'c1', parents: ['p'], records: records('c1_', 1) },
      { id: 'c2', parents: ['p'], records: records('c2_', 1) },
    ];
    const { splits, state } = cutSplits(listing(stream), undefined, { ...options, initialPosition: 'LATEST' });
    expect(splits.map((s) => [s.shard, s.start])).toEqual([
      ['c1', 'LATEST'],
      ['c2', 'LATEST'],
    ]);
    expect((state as { exhausted: string[] }).exhausted).toEqual(['p']);
  });

  it('through splits and merges, every record is read once, and no child record before every record of its parents', () => {
    // a splits into a1, a2; a2 and b merge into ab; a1 splits again into a11, a12.
    const stream: FakeShard[] = [
      { id: 'a', records: records('a', 5), closed: true },
      { id: 'b', records: records('b', 7), closed: true },
      { id: 'a1', parents: ['a'], records: records('a1_', 4), closed: true },
      { id: 'a2', parents: ['a'], records: records('a2_', 3), closed: true },
      { id: 'ab', parents: ['a2', 'b'], records: records('ab_', 6) },
      { id: 'a11', parents: ['a1'], records: records('a11_', 2) },
      { id: 'a12', parents: ['a1'], records: records('a12_', 3) },
    ];
    const { order } = drain(stream, { maxRecords: 2 });
    expect([...order].sort()).toEqual(stream.flatMap((s) => s.records).sort());
    for (const child of stream) {
      for (const parentId of child.parents ?? []) {
        const parent = stream.find((s) => s.id === parentId)!;
        expect(order.indexOf(child.records[0]), `${child.id} after ${parentId}`).toBeGreaterThan(order.indexOf(parent.records.at(-1)!));
      }
    }
  });

  it('backpressure: the limit shared evenly by the shards read, enough to reach it, never over maxRecords', () => {
    const stream = ['a', 'b', 'c'].map((id) => ({ id, records: records(id, 20) }));
    for (const [limit, maxRecords] of [
      [10, 10],
      [10, 3],
      [1, 10],
      [100, 10],
    ]) {
      const { splits } = cutSplits(listing(stream), undefined, { ...options, maxRecords, limit });
      const each = splits.map((s) => s.max as number);
      expect(new Set(each).size, `limit ${limit}: one share for all`).toBe(1);
      expect(each[0], `limit ${limit}`).toBeGreaterThanOrEqual(1);
      expect(each[0], `limit ${limit}`).toBeLessThanOrEqual(maxRecords);
      // Enough to reach the limit when the shards can, and no more than one record a shard over it.
      expect(each[0] * splits.length, `limit ${limit}`).toBeGreaterThanOrEqual(Math.min(limit, maxRecords * splits.length));
      expect((each[0] - 1) * splits.length, `limit ${limit}`).toBeLessThan(limit);
    }
  });

  it('advance: an unread split moves nothing; a read that consumed nothing keeps its iterator; one that consumed records moves the shard on and drops the iterator', () => {
    const resume = { iterator: 'it-1', at: 5, since: 4 };
    const state = advanceState({ positions: {}, starts: { a: 'LATEST', b: 'LATEST', c: 'LATEST' }, resume: {}, exhausted: [] }, [
      { open: true, shard: 'a', after: null, start: 'LATEST', until: 1000, max: 10 },
      { shard: 'b', after: null, start: 'LATEST', end: null, count: 0, resume },
      { shard: 'c', after: null, start: 'LATEST', end: 'c7', count: 3, first: 'c5' },
    ]);
    expect(state).toEqual({ positions: { c: 'c7' }, starts: { a: 'LATEST', b: 'LATEST' }, resume: { b: resume }, exhausted: [] });
    // The next cut hands the kept iterator to the shard that has not consumed anything yet.
    const { splits } = cutSplits(listing(['a', 'b', 'c'].map((id) => ({ id, records: [] }))), state, options);
    expect(splits.map((s) => [s.shard, s.after, s.resume ?? null])).toEqual([
      ['a', null, null],
      ['b', null, resume],
      ['c', 'c7', null],
    ]);
  });
});
