import { describe, expect, it } from 'vitest';
import { advanceState, cutSplits, type ListedShard, listingStale } from '../../lib/aws/kinesis/shardLineage.ts';
import type { JsonValue } from '../../lib/ports/index.ts';

// When the coordinator's kept shard listing must be renewed before a cut (issue 14): the lineage
// is safe on an older listing except where the state knows more than the listing does.

const open = (id: string, parents: string[] = []): ListedShard => ({ id, parents });
const closed = (id: string, end: string, parents: string[] = []): ListedShard => ({ id, parents, endingSequenceNumber: end });
const options = { time: 1000, initialPosition: 'TRIM_HORIZON' as const, maxRecords: 10 };

describe('listingStale: when a kept Kinesis shard listing is listed again', () => {
  it('lists for the first batch (no state yet)', () => {
    expect(listingStale([open('a')], undefined)).toBe(true);
    expect(listingStale([open('a')], null)).toBe(true);
  });

  it('keeps the listing while every shard named in the state is listed and none ended', () => {
    // Prepare: two open shards, one batch sealed on each.
    const listing = [open('a'), open('b')];
    const cut = cutSplits(listing, undefined, options);
    const state = advanceState(cut.state, [
      { shard: 'a', after: null, start: 'TRIM_HORIZON', end: 'a3', count: 4 },
      { shard: 'b', after: null, start: 'TRIM_HORIZON', end: null, count: 0 },
    ]);

    // Act, Assess
    expect(listingStale(listing, cut.state)).toBe(false);
    expect(listingStale(listing, state)).toBe(false);
  });

  it('lists again once a read saw a shard end that the listing shows open, and not after the new listing', () => {
    // Prepare: the kept listing predates the split of a into c and d.
    const kept = [open('a')];
    const cut = cutSplits(kept, undefined, options);

    // Act: the read of a's open split reached its end.
    const state = advanceState(cut.state, [{ shard: 'a', after: null, start: 'TRIM_HORIZON', end: 'a1', count: 2, exhausted: true }]);

    // Assess
    expect(listingStale(kept, state)).toBe(true);
    const fresh = [closed('a', 'a1'), open('c', ['a']), open('d', ['a'])];
    expect(listingStale(fresh, state)).toBe(false);
    expect(cutSplits(fresh, state, options).splits.map((s) => s.shard)).toEqual(['c', 'd']);
  });

  it('lists again when a shard read to its end shows closed but without children', () => {
    const state: JsonValue = { positions: { a: 'a1' }, starts: {}, resume: {}, exhausted: ['a'] };
    expect(listingStale([closed('a', 'a1')], state)).toBe(true);
    expect(listingStale([closed('a', 'a1'), open('m', ['a', 'b']), closed('b', 'b0')], { ...state, exhausted: ['a', 'b'] })).toBe(false);
  });

  it('lists again when the state names a shard the listing does not hold (a fresher listing found it)', () => {
    const state: JsonValue = { positions: { a: 'a1', c: 'c4' }, starts: {}, resume: {}, exhausted: [] };
    expect(listingStale([open('a')], state)).toBe(true);
    expect(listingStale([open('a')], { positions: {}, starts: { c: 'TRIM_HORIZON' }, resume: {}, exhausted: [] })).toBe(true);
  });

  it('reads malformed state as empty rather than failing', () => {
    expect(listingStale([open('a')], 'nonsense')).toBe(false);
    expect(listingStale([open('a')], { positions: 3, exhausted: 'x' } as unknown as JsonValue)).toBe(false);
  });
});
