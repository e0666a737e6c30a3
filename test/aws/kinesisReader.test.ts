import { GetRecordsCommand, GetShardIteratorCommand, type GetShardIteratorCommandInput, type KinesisClient } from '@aws-sdk/client-kinesis';
import { describe, expect, it } from 'vitest';
import { KinesisApi } from '../../lib/aws/kinesis/api.ts';
import { defaultDecode } from '../../lib/aws/kinesis/decode.ts';
import { ShardReader } from '../../lib/aws/kinesis/reader.ts';
import type { InputSplit, JsonValue } from '../../lib/ports/index.ts';

// How one shard is read, against a fake of the two Kinesis calls the reader makes. An iterator is
// `shard:index` (the next record it returns). Emulator-level behaviour (real iterators, throttling,
// expiry) is covered by infra-test/kinesisSource.test.ts; these tests pin down when a read stops.

interface FakeShard {
  /** Arrival times (epoch ms) of the shard's records; record i has sequence number `s{i}` and data `r{i}`. */
  arrivals: number[];
  /** Closed by a split or a merge: asked past its end, Kinesis answers with no next iterator. */
  closed?: boolean;
  /** Records per GetRecords answer, at most. @default unlimited */
  pageSize?: number;
  /** A closed shard that never says it ended (answers empty pages with a next iterator, as emulators can). */
  neverEnds?: boolean;
  /** A closed shard that says it ended on the page with its last record already. */
  endsWithLastPage?: boolean;
}

const seq = (i: number) => `s${String(i).padStart(3, '0')}`;
const indexOf = (s: string) => Number(s.slice(1));

function fakeKinesis(shard: FakeShard) {
  const calls: string[] = [];
  const send = async (command: unknown) => {
    if (command instanceof GetShardIteratorCommand) {
      const input: GetShardIteratorCommandInput = command.input;
      calls.push(`GetShardIterator ${input.ShardIteratorType}`);
      const at = {
        TRIM_HORIZON: () => 0,
        LATEST: () => shard.arrivals.length,
        AT_SEQUENCE_NUMBER: () => indexOf(input.StartingSequenceNumber!),
        AFTER_SEQUENCE_NUMBER: () => indexOf(input.StartingSequenceNumber!) + 1,
        AT_TIMESTAMP: () => {
          const i = shard.arrivals.findIndex((t) => t >= input.Timestamp!.getTime());
          return i === -1 ? shard.arrivals.length : i;
        },
      }[input.ShardIteratorType!]();
      return { ShardIterator: `shard:${at}` };
    }
    if (command instanceof GetRecordsCommand) {
      calls.push('GetRecords');
      const from = Number(command.input.ShardIterator!.split(':')[1]);
      const n = Math.min(command.input.Limit ?? Infinity, shard.pageSize ?? Infinity, Math.max(0, shard.arrivals.length - from));
      const records = Array.from({ length: n }, (_, k) => ({
        SequenceNumber: seq(from + k),
        PartitionKey: 'k',
        Data: new TextEncoder().encode(`r${from + k}`),
        ApproximateArrivalTimestamp: new Date(shard.arrivals[from + k]),
      }));
      const end = from + n;
      const ended = shard.closed && !shard.neverEnds && (shard.endsWithLastPage ? end : from) >= shard.arrivals.length;
      return { Records: records, MillisBehindLatest: end < shard.arrivals.length ? 1000 : 0, NextShardIterator: ended ? undefined : `shard:${end}` };
    }
    throw new Error(`the fake does not answer ${String(command)}`);
  };
  return { client: { send } as unknown as KinesisClient, calls };
}

function reader(shard: FakeShard, { maxRecords = 100, now = 10_000 } = {}) {
  const { client, calls } = fakeKinesis(shard);
  const api = new KinesisApi({ client, stream: 'events', nodeId: 'src', clock: () => now, throughputRetries: 0, backoffMs: 0, atTimestampTimeoutMs: 1000, readIntervalMs: 0 });
  return { reader: new ShardReader(api, { nodeId: 'src', stream: 'events', decode: defaultDecode, maxRecords }), calls };
}

const open = (fields: Record<string, JsonValue>): InputSplit => ({ open: true, shard: 'shard', after: null, start: 'TRIM_HORIZON', until: 1_000_000, max: 100, ...fields });
/** The data of the records with these indexes, as the default decoder returns it. */
const data = (from: number, to: number) => Array.from({ length: to - from }, (_, k) => `r${from + k}`);

describe('reading one Kinesis shard', () => {
  it('an open split stops at the first record that arrived after the batch time, and the next split starts with it', async () => {
    // Prepare
    const shard = { arrivals: [100, 200, 300, 400] };
    const until = 250;
    const firstLater = shard.arrivals.findIndex((t) => t > until);
    const { reader: r } = reader(shard);
    // Act
    const first = await r.readOpen(open({ until }));
    const next = await r.readOpen(open({ after: first.sealedSplit.end!, start: null }));
    // Assess
    expect(first.records).toEqual(data(0, firstLater));
    expect(first.sealedSplit).toEqual({ shard: 'shard', after: null, start: 'TRIM_HORIZON', end: seq(firstLater - 1), count: firstLater, first: seq(0) });
    expect(next.records).toEqual(data(firstLater, shard.arrivals.length));
  });

  it('a read that consumed nothing before the batch time keeps an iterator that reads the later record in the next batch', async () => {
    const shard = { arrivals: [500] };
    const { reader: r, calls } = reader(shard);
    const empty = await r.readOpen(open({ start: { timestamp: 0 }, until: 100 }));
    expect(empty.records).toEqual([]);
    expect(empty.sealedSplit).toMatchObject({ end: null, count: 0, resume: { since: 0 } });
    const iterators = calls.filter((c) => c.startsWith('GetShardIterator')).length;
    const later = await r.readOpen(open({ start: { timestamp: 0 }, until: 600, resume: (empty.sealedSplit as { resume: JsonValue }).resume }));
    expect(later.records).toEqual(data(0, 1));
    // The kept iterator was used as it is: no new one was asked for.
    expect(calls.filter((c) => c.startsWith('GetShardIterator')).length).toBe(iterators);
  });

  it('an open shard behind the latest record is read page after page until it is caught up', async () => {
    const shard = { arrivals: [1, 2, 3, 4, 5], pageSize: 2 };
    const { reader: r, calls } = reader(shard);
    const { records, sealedSplit } = await r.readOpen(open({}));
    expect(records).toEqual(data(0, shard.arrivals.length));
    expect(sealedSplit).not.toHaveProperty('exhausted');
    // Caught up after the page that held the last record: no page asked for beyond it.
    expect(calls.filter((c) => c === 'GetRecords').length).toBe(Math.ceil(shard.arrivals.length / shard.pageSize));
  });

  it('stops at the split’s max records, and the shard is not exhausted while records are left', async () => {
    const shard = { arrivals: [1, 2, 3, 4, 5], closed: true };
    const max = 3;
    const { reader: r } = reader(shard);
    const { records, sealedSplit } = await r.readOpen(open({ max, closed: true }));
    expect(records).toEqual(data(0, max));
    expect(sealedSplit).toMatchObject({ end: seq(max - 1), count: max });
    expect(sealedSplit).not.toHaveProperty('exhausted');
  });

  it('a closed shard read to its end is exhausted once Kinesis says it ended (no next iterator)', async () => {
    const shard = { arrivals: [1, 2, 3], closed: true };
    const { reader: r } = reader(shard);
    const { records, sealedSplit } = await r.readOpen(open({ closed: true }));
    expect(records).toEqual(data(0, shard.arrivals.length));
    expect(sealedSplit).toMatchObject({ end: seq(shard.arrivals.length - 1), exhausted: true });
  });

  it('a split whose max takes a closed shard’s last record, on the page that says the shard ended, exhausts the shard', async () => {
    const shard = { arrivals: [1, 2, 3], closed: true, endsWithLastPage: true };
    const { reader: r } = reader(shard);
    const { records, sealedSplit } = await r.readOpen(open({ max: shard.arrivals.length, closed: true }));
    expect(records).toEqual(data(0, shard.arrivals.length));
    expect(sealedSplit).toMatchObject({ count: shard.arrivals.length, exhausted: true });
  });

  it('a closed shard that answers only empty pages is asked five times, then left for the next batch, not exhausted', async () => {
    const shard = { arrivals: [1, 2], closed: true, neverEnds: true };
    const { reader: r, calls } = reader(shard);
    const { records, sealedSplit } = await r.readOpen(open({ closed: true }));
    expect(records).toEqual(data(0, shard.arrivals.length));
    expect(sealedSplit).not.toHaveProperty('exhausted');
    // One page with the records, then five empty ones.
    expect(calls.filter((c) => c === 'GetRecords').length).toBe(1 + 5);
  });

  it('a sealed split is read again exactly, whatever arrived since', async () => {
    const shard = { arrivals: [100, 200, 300] };
    const { reader: r } = reader(shard);
    const first = await r.readOpen(open({ until: 250 }));
    shard.arrivals.push(400, 500);
    const again = await r.readSealed(first.sealedSplit);
    expect(again.records).toEqual(first.records);
  });
});
