import { createHash } from 'node:crypto';
import {
  ExpiredIteratorException,
  GetRecordsCommand,
  GetShardIteratorCommand,
  type KinesisClient,
  MergeShardsCommand,
  ProvisionedThroughputExceededException,
  SplitShardCommand,
} from '@aws-sdk/client-kinesis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RecordError, SluiceError } from '../lib/core/errors.ts';
import { kinesisClient } from '../lib/aws/clients.ts';
import { deaggregate, KinesisSource, type KinesisSourceOptions, type RecordMeta } from '../lib/aws/kinesisSource.ts';
import { MemoryBlobStore } from '../lib/local/memoryBlobStore.ts';
import type { InputSplit, JsonValue } from '../lib/ports/index.ts';
import { type Emulator, startKinesalite, startKinesisLocal } from './helpers/emulators.ts';
import { aggregate, type BatchRun, createStream, putAll, runBatch, shardsOf, uniqueStreamName, waitActive } from './helpers/kinesisStreams.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const NODE = 'kinesis-0';

describe.each([
  { emulator: 'kinesalite', start: () => startKinesalite() },
  { emulator: 'kinesis-local', start: () => startKinesisLocal() },
])('KinesisSource against $emulator', ({ start }) => {
  let kin: Emulator;
  let client: KinesisClient;
  beforeAll(async () => {
    kin = await start();
    client = kinesisClient({ endpoint: kin.endpoint });
  });
  afterAll(async () => {
    client?.destroy();
    await kin?.stop();
  });

  function source(
    stream: string,
    params: { initialPosition?: JsonValue; maxRecordsPerBatch?: number } = {},
    options: Partial<KinesisSourceOptions> = {},
    decode?: (data: Uint8Array, meta: RecordMeta) => unknown,
  ): KinesisSource {
    return new KinesisSource(
      {
        nodeId: NODE,
        kind: 'kinesis',
        params: { stream, initialPosition: params.initialPosition ?? 'TRIM_HORIZON', maxRecordsPerBatch: params.maxRecordsPerBatch ?? 10_000 },
        local: { decode },
      },
      { blobs: new MemoryBlobStore(), job: 'kinesis-test' },
      { client, ...options },
    );
  }

  const all = (b: BatchRun) => b.records.flat();

  it('reads records put into a 4-shard stream exactly once across cuts, one split per shard', async () => {
    const stream = uniqueStreamName('four');
    await createStream(client, stream, 4);
    const src = source(stream);
    const put: string[] = [];
    const seen: unknown[] = [];
    let state: JsonValue | undefined;
    for (let round = 0; round < 3; round++) {
      const recs = Array.from({ length: 40 }, (_, i) => ({ key: `k${i}`, data: `r${round}-${i}` }));
      await putAll(client, stream, recs);
      put.push(...recs.map((r) => r.data));
      const b = await runBatch(src, Date.now(), state);
      expect(b.splits.map((s) => s.shard)).toEqual(['shardId-000000000000', 'shardId-000000000001', 'shardId-000000000002', 'shardId-000000000003']);
      expect(b.sealed.every((s) => 'end' in s)).toBe(true);
      seen.push(...all(b));
      state = b.state;
    }
    const empty = await runBatch(src, Date.now(), state);
    expect(all(empty)).toEqual([]);
    expect(empty.state).toEqual(state);
    expect(seen).toHaveLength(put.length);
    expect([...seen].sort()).toEqual([...put].sort());
    // Every shard got something (the keys spread over the hash range).
    expect(Object.keys((state as { positions: object }).positions)).toHaveLength(4);
  });

  it('leaves records that arrived after the batch time for the next batch', async () => {
    const stream = uniqueStreamName('time');
    await createStream(client, stream, 4);
    const src = source(stream);
    const early = Array.from({ length: 20 }, (_, i) => ({ key: `k${i}`, data: `early-${i}` }));
    const late = Array.from({ length: 20 }, (_, i) => ({ key: `k${i}`, data: `late-${i}` }));
    await putAll(client, stream, early);
    await sleep(40);
    const t = Date.now();
    await sleep(40);
    await putAll(client, stream, late);
    const b1 = await runBatch(src, t, undefined);
    expect(all(b1).sort()).toEqual(early.map((r) => r.data).sort());
    const b2 = await runBatch(src, Date.now(), b1.state);
    expect(all(b2).sort()).toEqual(late.map((r) => r.data).sort());
  });

  it('reads at most maxRecordsPerBatch records per shard and batch', async () => {
    const stream = uniqueStreamName('max');
    await createStream(client, stream, 1);
    const src = source(stream, { maxRecordsPerBatch: 10 });
    const recs = Array.from({ length: 25 }, (_, i) => ({ key: `k${i}`, data: `m${i}` }));
    await putAll(client, stream, recs);
    let state: JsonValue | undefined;
    const sizes: number[] = [];
    const seen: unknown[] = [];
    for (let i = 0; i < 4; i++) {
      const b = await runBatch(src, Date.now(), state);
      sizes.push(all(b).length);
      seen.push(...all(b));
      state = b.state;
    }
    expect(sizes).toEqual([10, 10, 5, 0]);
    expect(seen).toEqual(recs.map((r) => r.data));
  });

  it('with a backpressure limit, shares it evenly among the shards read (never over maxRecordsPerBatch), and loses nothing', async () => {
    const stream = uniqueStreamName('limit');
    await createStream(client, stream, 2);
    const src = source(stream, { maxRecordsPerBatch: 8 });
    const recs = Array.from({ length: 60 }, (_, i) => ({ key: `k${i}`, data: `l${i}` }));
    await putAll(client, stream, recs);
    let state: JsonValue | undefined;
    const seen: unknown[] = [];
    const limits = [10, 7, 100, 100, 100, 100, 100];
    for (const limit of limits) {
      const b = await runBatch(src, Date.now(), state, limit);
      // 10 over 2 shards: 5 each; 7: 4 each; 100: 50 each, but at most maxRecordsPerBatch (8).
      const each = Math.min(8, Math.ceil(limit / 2));
      expect(b.splits.map((s) => s.max)).toEqual([each, each]);
      for (const part of b.records) expect(part.length).toBeLessThanOrEqual(each);
      seen.push(...all(b));
      state = b.state;
    }
    expect([...seen].sort()).toEqual(recs.map((r) => r.data).sort());
  });

  it('re-reads a sealed split exactly, whatever arrived since', async () => {
    const stream = uniqueStreamName('det');
    await createStream(client, stream, 2);
    const src = source(stream, { maxRecordsPerBatch: 3 });
    await putAll(client, stream, Array.from({ length: 10 }, (_, i) => ({ key: `k${i}`, data: `a${i}` })));
    const b1 = await runBatch(src, Date.now(), undefined);
    await putAll(client, stream, Array.from({ length: 10 }, (_, i) => ({ key: `k${i}`, data: `b${i}` })));
    const b2 = await runBatch(src, Date.now(), b1.state);
    await putAll(client, stream, Array.from({ length: 10 }, (_, i) => ({ key: `k${i}`, data: `c${i}` })));
    for (const b of [b1, b2]) {
      expect(all(b).length).toBeGreaterThan(0);
      for (let p = 0; p < b.sealed.length; p++) {
        const again = await src.read(b.sealed[p]);
        expect(again.sealedSplit).toBeUndefined();
        expect(again.records).toEqual(b.records[p]);
      }
    }
    // A fresh source (another worker) reads the same.
    const other = source(stream, { maxRecordsPerBatch: 3 });
    expect((await other.read(b2.sealed[0])).records).toEqual(b2.records[0]);
    // An empty sealed range is no records, without asking Kinesis.
    expect((await other.read({ ...b2.sealed[0], end: null, count: 0 })).records).toEqual([]);
  });

  it('starts at TRIM_HORIZON, LATEST or a timestamp, and loses nothing after an empty first batch', async () => {
    const stream = uniqueStreamName('pos');
    await createStream(client, stream, 2);
    const [s0, s1] = await shardsOf(client, stream);
    const to = (shard: typeof s0, data: string) => ({ key: data, data, hashKey: shard.HashKeyRange!.StartingHashKey! });
    await putAll(client, stream, [to(s0, 'a0'), to(s1, 'a1'), to(s0, 'a2'), to(s1, 'a3')]);
    await sleep(40);
    const t = Date.now();
    await sleep(40);
    // After the timestamp, only shard 0 gets records: kinesalite never answers AT_TIMESTAMP on shard 1.
    await putAll(client, stream, [to(s0, 'b0'), to(s0, 'b1')]);

    const trim = source(stream, { initialPosition: 'TRIM_HORIZON' });
    const latest = source(stream, { initialPosition: 'LATEST' });
    const stamp = source(stream, { initialPosition: { timestamp: t } }, { atTimestampTimeoutMs: 300 });
    const tr = await runBatch(trim, Date.now(), undefined);
    expect(all(tr).sort()).toEqual(['a0', 'a1', 'a2', 'a3', 'b0', 'b1']);
    const l1 = await runBatch(latest, Date.now(), undefined);
    expect(all(l1)).toEqual([]);
    const t1 = await runBatch(stamp, Date.now(), undefined);
    expect(all(t1)).toEqual(['b0', 'b1']);

    // Records put after an empty LATEST batch belong to the next one.
    await putAll(client, stream, [to(s0, 'c0'), to(s1, 'c1')]);
    await sleep(10);
    const l2 = await runBatch(latest, Date.now(), l1.state);
    expect(all(l2).sort()).toEqual(['c0', 'c1']);
    const t2 = await runBatch(stamp, Date.now(), t1.state);
    expect(all(t2).sort()).toEqual(['c0', 'c1']);
    const tr2 = await runBatch(trim, Date.now(), tr.state);
    expect(all(tr2).sort()).toEqual(['c0', 'c1']);

    // Ranges that began at LATEST or at a timestamp re-read exactly.
    await putAll(client, stream, [to(s0, 'd0'), to(s1, 'd1')]);
    for (const b of [l2, t1, t2]) {
      for (let p = 0; p < b.sealed.length; p++) expect((await latest.read(b.sealed[p])).records).toEqual(b.records[p]);
    }
    const l3 = await runBatch(latest, Date.now(), l2.state);
    expect(all(l3).sort()).toEqual(['d0', 'd1']);
  });

  it('names the stream when it does not exist', async () => {
    const src = source('no-such-stream');
    const err = await src.cut(Date.now(), undefined).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SluiceError);
    expect((err as Error).message).toMatch(/kinesis-0: kinesisStream\('no-such-stream'\): there is no Kinesis stream named no-such-stream/);
  });

  it('reports a record the decoder rejects as a failure naming the node, shard and sequence number, and keeps the others', async () => {
    const stream = uniqueStreamName('dec');
    await createStream(client, stream, 1);
    const puts = await putAll(client, stream, [
      { key: 'a', data: '{"n":1}' },
      { key: 'a', data: 'not json' },
      { key: 'a', data: '{"n":3}' },
    ]);
    const src = source(stream, {}, {}, (b) => JSON.parse(new TextDecoder().decode(b)));
    const { splits } = await src.cut(Date.now(), undefined);
    const { records, failures, sealedSplit } = await src.read(splits[0]);
    expect(records).toEqual([{ n: 1 }, { n: 3 }]);
    expect(failures).toHaveLength(1);
    const f = failures![0];
    expect(f.index).toBe(1);
    expect(f.error).toBeInstanceOf(RecordError);
    expect((f.error as RecordError).nodeId).toBe(NODE);
    expect(f.error.message).toContain(`kinesis-0: the decoder threw on record ${puts[1].seq} of shard shardId-000000000000 of Kinesis stream ${stream}`);
    expect(f.error.cause).toBeInstanceOf(SyntaxError);
    expect(f.record).toMatchObject({ shard: 'shardId-000000000000', partitionKey: 'a', sequenceNumber: puts[1].seq, data: Buffer.from('not json').toString('base64') });
    // The bad record still counts as consumed: the sealed range covers all three.
    expect(sealedSplit!.count).toBe(3);
    const again = await src.read(sealedSplit!);
    expect(again.records).toEqual([{ n: 1 }, { n: 3 }]);
    expect(again.failures).toHaveLength(1);
  });

  it('follows a split and a merge: children only after their parents, nothing lost or doubled, per-key order kept', async () => {
    const stream = uniqueStreamName('reshard');
    await createStream(client, stream, 2);
    const src = source(stream, { maxRecordsPerBatch: 7 });
    const keys = Array.from({ length: 12 }, (_, i) => `key${i}`);
    let n = 0;
    const put: string[] = [];
    const round = async () => {
      const recs = keys.flatMap((k) => [0, 1].map(() => ({ key: k, data: `${k}:${n++}` })));
      await putAll(client, stream, recs);
      put.push(...recs.map((r) => r.data));
    };
    const batches: BatchRun[] = [];
    let state: JsonValue | undefined;
    const batch = async () => {
      // kinesalite stamps records of new shards up to a second ahead.
      const b = await runBatch(src, Date.now() + 60_000, state);
      batches.push(b);
      state = b.state;
    };

    await round();
    await batch();
    const [s0] = await shardsOf(client, stream);
    const mid = (BigInt(s0.HashKeyRange!.EndingHashKey!) + 1n) / 2n;
    await client.send(new SplitShardCommand({ StreamName: stream, ShardToSplit: s0.ShardId!, NewStartingHashKey: mid.toString() }));
    await waitActive(client, stream);
    await round();
    await batch();
    await client.send(new MergeShardsCommand({ StreamName: stream, ShardToMerge: 'shardId-000000000003', AdjacentShardToMerge: 'shardId-000000000001' }));
    await waitActive(client, stream);
    await round();
    for (let i = 0; i < 30 && batches.flatMap(all).length < put.length; i++) await batch();
    await batch();

    const seen = batches.flatMap(all) as string[];
    expect(seen).toHaveLength(put.length);
    expect([...seen].sort()).toEqual([...put].sort());
    const last = new Map<string, number>();
    for (const r of seen) {
      const [k, i] = r.split(':');
      expect(Number(i)).toBeGreaterThan(last.get(k) ?? -1);
      last.set(k, Number(i));
    }

    const shards = await shardsOf(client, stream);
    expect(shards.map((s) => s.ShardId)).toEqual([0, 1, 2, 3, 4].map((i) => `shardId-00000000000${i}`));
    const exhaustedAt = new Map<string, number>();
    batches.forEach((b, i) => b.sealed.forEach((s) => s.exhausted === true && exhaustedAt.set(s.shard as string, i)));
    expect([...exhaustedAt.keys()].sort()).toEqual(['shardId-000000000000', 'shardId-000000000001', 'shardId-000000000003']);
    batches.forEach((b, i) => {
      for (const split of b.splits) {
        const shard = shards.find((s) => s.ShardId === split.shard)!;
        for (const parent of [shard.ParentShardId, shard.AdjacentParentShardId]) if (parent) expect(exhaustedAt.get(parent)).toBeLessThan(i);
      }
    });
    // Each child was read at all.
    for (const child of ['shardId-000000000002', 'shardId-000000000004']) expect(batches.some((b) => b.splits.some((s) => s.shard === child))).toBe(true);
    // Exhausted shards are no longer cut.
    expect(batches.at(-1)!.splits.map((s) => s.shard)).toEqual(['shardId-000000000002', 'shardId-000000000004']);
    expect((state as { exhausted: string[] }).exhausted).toEqual(['shardId-000000000000', 'shardId-000000000001', 'shardId-000000000003']);
  });

  it('renews expired iterators, backs off when throttled and paces GetRecords to 5 calls/s per shard', async () => {
    const stream = uniqueStreamName('faults');
    await createStream(client, stream, 1);
    const recs = Array.from({ length: 10 }, (_, i) => ({ key: `k${i}`, data: `f${i}` }));
    await putAll(client, stream, recs);
    const calls: number[] = [];
    let iterators = 0;
    let throttle = 2;
    const faulty = {
      async send(cmd: unknown, opts?: { abortSignal?: AbortSignal }) {
        if (cmd instanceof GetShardIteratorCommand) iterators++;
        if (cmd instanceof GetRecordsCommand) {
          calls.push(Date.now());
          if (throttle > 0) {
            throttle--;
            throw new ProvisionedThroughputExceededException({ message: 'Rate exceeded for shard', $metadata: {} });
          }
          if (calls.length === 5) throw new ExpiredIteratorException({ message: 'Iterator expired', $metadata: {} });
          // Pages of 3 records, as if the shard held more than one page.
          const out = await client.send(new GetRecordsCommand({ ...cmd.input, Limit: Math.min(cmd.input.Limit ?? 10_000, 3) }), opts);
          if (out.Records?.length === 3) out.MillisBehindLatest = 1000;
          return out;
        }
        return client.send(cmd as never, opts);
      },
    } as unknown as KinesisClient;
    const src = source(stream, {}, { client: faulty });
    const started = Date.now();
    const b = await runBatch(src, Date.now(), undefined);
    expect(all(b)).toEqual(recs.map((r) => r.data));
    expect(b.sealed[0].count).toBe(10);
    expect(Date.now() - started).toBeGreaterThanOrEqual(600 - 5); // 200 + 400 ms of backoff
    expect(iterators).toBe(2); // the first one, and the one renewed after the 6th record
    for (let i = 1; i < calls.length; i++) expect(calls[i] - calls[i - 1]).toBeGreaterThanOrEqual(195);

    // Throttled for good: a clear error after the retries.
    const stuck = {
      async send(cmd: unknown, opts?: { abortSignal?: AbortSignal }) {
        if (cmd instanceof GetRecordsCommand) throw new ProvisionedThroughputExceededException({ message: 'Rate exceeded for shard', $metadata: {} });
        return client.send(cmd as never, opts);
      },
    } as unknown as KinesisClient;
    const slow = source(stream, {}, { client: stuck, throughputRetries: 2, backoffMs: 10 });
    const { splits } = await slow.cut(Date.now(), undefined);
    await expect(slow.read(splits[0])).rejects.toThrow(/GetRecords on shard shardId-000000000000 of stream .* is still throttled \(ProvisionedThroughputExceededException\) after 2 retries/);
  });

  it('de-aggregates KPL records and checks their MD5', async () => {
    const stream = uniqueStreamName('kpl');
    await createStream(client, stream, 1);
    const agg = aggregate([
      { key: 'a', data: 'x' },
      { key: 'b', data: 'y', hashKey: '12345' },
      { key: 'a', data: 'z' },
    ]);
    const bad = aggregate([{ key: 'a', data: 'q' }], { corruptChecksum: true });
    const puts = await putAll(client, stream, [
      { key: 'agg', data: agg },
      { key: 'bad', data: bad },
      { key: 'p', data: 'plain' },
    ]);
    const metas: RecordMeta[] = [];
    const src = source(stream, {}, {}, (data, meta) => {
      metas.push(meta);
      return data[0] === 0xf3 ? 'raw' : new TextDecoder().decode(data);
    });
    const b = await runBatch(src, Date.now(), undefined);
    expect(all(b)).toEqual(['x', 'y', 'z', 'raw', 'plain']);
    expect(b.sealed[0].count).toBe(3);
    expect(metas.every((m) => m.shardId === 'shardId-000000000000')).toBe(true);
    expect(metas.map((m) => [m.partitionKey, m.sequenceNumber, m.subSequenceNumber])).toEqual([
      ['a', puts[0].seq, 0],
      ['b', puts[0].seq, 1],
      ['a', puts[0].seq, 2],
      ['bad', puts[1].seq, undefined],
      ['p', puts[2].seq, undefined],
    ]);
    expect(deaggregate(agg)![1]).toEqual({ partitionKey: 'b', explicitHashKey: '12345', data: new TextEncoder().encode('y') });
    expect(deaggregate(new TextEncoder().encode('plain'))).toBeUndefined();

    // The checksum matches but the protobuf is cut short: a RecordError, not silently raw bytes.
    const body = Uint8Array.from([0x1a, 0x05, 0x08]);
    const broken = Uint8Array.from([0xf3, 0x89, 0x9a, 0xc2, ...body, ...createHash('md5').update(body).digest()]);
    const stream2 = uniqueStreamName('kpl-broken');
    await createStream(client, stream2, 1);
    await putAll(client, stream2, [{ key: 'x', data: broken }]);
    const src2 = source(stream2);
    const { splits } = await src2.cut(Date.now(), undefined);
    const cutShort = await src2.read(splits[0] as InputSplit);
    expect(cutShort.failures?.[0].error).toBeInstanceOf(RecordError);
  });
});
