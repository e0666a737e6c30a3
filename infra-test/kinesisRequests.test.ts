import { GetRecordsCommand, GetShardIteratorCommand, type KinesisClient, ListShardsCommand, SplitShardCommand } from '@aws-sdk/client-kinesis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildGraph, defineJob } from '../lib/api/job.ts';
import { kinesisClient } from '../lib/aws/clients.ts';
import { awsCoordinatorRuntime } from '../lib/aws/coordinatorRuntime.ts';
import { createWorkerHandler } from '../lib/aws/handlers.ts';
import { KinesisSource, type KinesisSourceOptions } from '../lib/aws/kinesisSource.ts';
import { awsWorkerRuntime } from '../lib/aws/runtime.ts';
import { Coordinator } from '../lib/engine/coordinator.ts';
import { MemoryBlobStore } from '../lib/local/memoryBlobStore.ts';
import type { JsonValue } from '../lib/ports/index.ts';
import { type AwsStack, createResources, putLines, readS3Batches, startAwsStack } from './helpers/awsStack.ts';
import { type BatchRun, createStream, putAll, runBatch, shardsOf, uniqueStreamName, waitActive } from './helpers/kinesisStreams.ts';
import { startThrottlingProxy } from './helpers/throttlingProxy.ts';

// Issue 14: what an idle Kinesis batch asks of Kinesis. The coordinator keeps its shard listing
// across cuts (listing again when a shard ended, or after listShardsIntervalMs), and a process that
// reads a shard batch after batch keeps the iterator its last read ended with. Requests are
// counted as they go to kinesalite, by a client that passes each one on, or by a proxy.

/** The real client, counting what is sent through it per operation. */
function counting(client: KinesisClient): { client: KinesisClient; count: (op: 'ListShards' | 'GetShardIterator' | 'GetRecords') => number } {
  const sent = { ListShards: 0, GetShardIterator: 0, GetRecords: 0 };
  const wrapped = {
    send(cmd: unknown, opts?: { abortSignal?: AbortSignal }) {
      if (cmd instanceof ListShardsCommand) sent.ListShards++;
      if (cmd instanceof GetShardIteratorCommand) sent.GetShardIterator++;
      if (cmd instanceof GetRecordsCommand) sent.GetRecords++;
      return client.send(cmd as never, opts);
    },
  } as unknown as KinesisClient;
  return { client: wrapped, count: (op) => sent[op] };
}

describe('Kinesis requests of a source read batch after batch (kinesalite)', () => {
  let stack: AwsStack;
  let client: KinesisClient;
  beforeAll(async () => {
    stack = await startAwsStack();
    client = kinesisClient({ endpoint: stack.kinesis.endpoint });
  });
  afterAll(async () => {
    client?.destroy();
    await stack?.stop();
  });

  /** A source on `stream` whose clock runs `offset.ms` ahead of the wall clock (to let a listing interval pass without waiting). */
  function source(stream: string, kin: KinesisClient, offset: { ms: number }, options: Partial<KinesisSourceOptions> = {}): KinesisSource {
    return new KinesisSource(
      { nodeId: 'kinesis-0', kind: 'kinesis', params: { stream, initialPosition: 'TRIM_HORIZON', maxRecordsPerBatch: 10_000 } },
      { blobs: new MemoryBlobStore(), job: 'requests-test' },
      { client: kin, clock: () => Date.now() + offset.ms, ...options },
    );
  }

  it('refuses a listing interval that is not a number of milliseconds >= 0, saying what to give', () => {
    const offset = { ms: 0 };
    expect(() => source('s', client, offset, { listShardsIntervalMs: -1 })).toThrow(/listShardsIntervalMs must be a number of milliseconds >= 0 \(0 lists the shards at every cut\), got -1/);
    expect(() => source('s', client, offset, { listShardsIntervalMs: Number.NaN })).toThrow(/listShardsIntervalMs must be/);
    expect(() => source('s', client, offset, { listShardsIntervalMs: 0 })).not.toThrow();
  });

  it('an idle stream is listed once per interval; a split is picked up at the first shard end, or after one interval', async () => {
    // Prepare: a 1-shard stream with records, a listing interval of a minute.
    const stream = uniqueStreamName('listing');
    await createStream(client, stream, 1);
    await putAll(client, stream, [{ key: 'a', data: 'a0' }]);
    const kin = counting(client);
    const offset = { ms: 0 };
    const src = source(stream, kin.client, offset, { listShardsIntervalMs: 60_000 });
    let state: JsonValue | undefined;
    const batch = async (): Promise<BatchRun> => {
      // kinesalite stamps records of new shards up to a second ahead.
      const b = await runBatch(src, Date.now() + 60_000, state);
      state = b.state;
      return b;
    };

    // Act, Assess: idle batches within one interval list once; the next interval lists again.
    expect((await batch()).records.flat()).toEqual(['a0']);
    for (let i = 0; i < 4; i++) await batch();
    expect(kin.count('ListShards')).toBe(1);
    offset.ms += 60_000;
    await batch();
    await batch();
    expect(kin.count('ListShards')).toBe(2);

    // Act: split the shard while the job runs; records arrive in the children.
    const [parent] = await shardsOf(client, stream);
    const mid = (BigInt(parent.HashKeyRange!.EndingHashKey!) + 1n) / 2n;
    await client.send(new SplitShardCommand({ StreamName: stream, ShardToSplit: parent.ShardId!, NewStartingHashKey: mid.toString() }));
    await waitActive(client, stream);
    await putAll(client, stream, [{ key: 'a', data: 'a1' }]);

    // Assess: the next batches, on the kept listing, read the parent until Kinesis tells it ended
    // (kinesalite: at the second read past its last record); the batch after lists and reads the children.
    let ended: BatchRun | undefined;
    for (let i = 0; i < 5 && ended === undefined; i++) {
      const b = await batch();
      expect(b.splits.map((s) => s.shard)).toEqual([parent.ShardId]);
      if (b.sealed[0].exhausted === true) ended = b;
    }
    expect(ended).toBeDefined();
    expect(kin.count('ListShards')).toBe(2);
    const children = await batch();
    expect(kin.count('ListShards')).toBe(3);
    expect(children.splits.map((s) => s.shard)).toEqual(['shardId-000000000001', 'shardId-000000000002']);
    expect(children.records.flat()).toEqual(['a1']);
    await batch();
    expect(kin.count('ListShards')).toBe(3);

    // Act: split a child while a fresh source (a new coordinator) cuts without ever reading it to its end.
    const late = counting(client);
    const next = source(stream, late.client, offset, { listShardsIntervalMs: 60_000 });
    await runBatch(next, Date.now() + 60_000, state);
    const child = (await shardsOf(client, stream)).find((s) => s.ShardId === 'shardId-000000000001')!;
    const childMid = (BigInt(child.HashKeyRange!.StartingHashKey!) + BigInt(child.HashKeyRange!.EndingHashKey!) + 1n) / 2n;
    await client.send(new SplitShardCommand({ StreamName: stream, ShardToSplit: child.ShardId!, NewStartingHashKey: childMid.toString() }));
    await waitActive(client, stream);
    const before = await next.cut(Date.now() + 60_000, state);
    offset.ms += 60_000;
    const after = await next.cut(Date.now() + 60_000, state);

    // Assess: within the interval the cut still shows the child open; one interval on, it is listed closed.
    expect(late.count('ListShards')).toBe(2);
    expect(before.splits.find((s) => s.shard === child.ShardId)!.closed).toBeUndefined();
    expect(after.splits.find((s) => s.shard === child.ShardId)!.closed).toBe(true);
  }, 60_000);

  it('keeps the iterator its last read ended with for the exact position it continues from, and asks again otherwise', async () => {
    // Prepare: a 1-shard stream with three records.
    const stream = uniqueStreamName('iterators');
    await createStream(client, stream, 1);
    await putAll(client, stream, ['r0', 'r1', 'r2'].map((data) => ({ key: 'k', data })));
    const kin = counting(client);
    const offset = { ms: 0 };
    const src = source(stream, kin.client, offset);

    // Act: the first batch reads the three; the next two are idle.
    const first = await runBatch(src, Date.now(), undefined);
    const idle1 = await runBatch(src, Date.now(), first.state);
    const idle2 = await runBatch(src, Date.now(), idle1.state);

    // Assess: one GetShardIterator (the first read), one GetRecords per idle batch.
    expect(first.records.flat()).toEqual(['r0', 'r1', 'r2']);
    expect([...idle1.records.flat(), ...idle2.records.flat()]).toEqual([]);
    expect(kin.count('GetShardIterator')).toBe(1);
    expect(kin.count('GetRecords')).toBe(3);

    // Act: two records arrive; a superseded coordinator, cutting from the state before the first
    // batch, has this process read the shard from the trim horizon up to now, leaving it an iterator after r4.
    await putAll(client, stream, ['r3', 'r4'].map((data) => ({ key: 'k', data })));
    const stale = await src.read({ ...first.splits[0], until: Date.now() });
    // The current batch starts after r2: the kept iterator (after r4) is not for it.
    const current = await runBatch(src, Date.now(), idle2.state);

    // Assess: nothing skipped, nothing repeated; the current batch asked for its own iterator.
    expect(stale.records).toEqual(['r0', 'r1', 'r2', 'r3', 'r4']);
    expect(current.records.flat()).toEqual(['r3', 'r4']);
    expect(kin.count('GetShardIterator')).toBe(3);

    // Act: an idle batch right after, then one whose kept iterator is too old to trust.
    const idle3 = await runBatch(src, Date.now(), current.state);
    offset.ms += 290_000;
    const idle4 = await runBatch(src, Date.now() + offset.ms, idle3.state);
    await putAll(client, stream, [{ key: 'k', data: 'r5' }]);
    const last = await runBatch(src, Date.now() + offset.ms, idle4.state);

    // Assess: the idle batch reused the iterator, the old one was replaced, and reading goes on exactly.
    expect(kin.count('GetShardIterator')).toBe(4);
    expect(last.records.flat()).toEqual(['r5']);
  }, 60_000);

  it('N idle batches inside the coordinator on a 4-shard stream: ListShards once, GetShardIterator once per shard, one GetRecords per shard and batch; every record once, in order', async () => {
    // Prepare: a 4-shard stream, a job saving what it reads, the Kinesis requests counted by a proxy.
    const name = stack.name('idle-requests');
    await createResources(stack, name, 4);
    const placed = await putLines(stack, name, Array.from({ length: 40 }, (_, i) => `line-${i}`));
    const proxy = await startThrottlingProxy(stack.kinesis.endpoint, 'kinesis', {});
    try {
      const job = defineJob({ name, batchInterval: '400ms' }, (ctx) => ctx.kinesisStream(name, { initialPosition: 'TRIM_HORIZON' }).saveAsTextFiles(`s3://${name}-out/raw`));
      const emulated = stack.config(name);
      const endpoint = emulated.aws!.endpoint as Record<string, string>;
      const config = { ...emulated, aws: { ...emulated.aws, endpoint: { ...endpoint, kinesis: proxy.endpoint } } };
      stack.lambda.register(
        config.workerFunction!,
        createWorkerHandler(async () => job, (graph) => awsWorkerRuntime(graph, config)),
      );
      const graph = buildGraph(job);
      const coordinator = new Coordinator(graph, job.options, { ...awsCoordinatorRuntime(graph, config, () => undefined), retryBackoffMs: 5 });
      await coordinator.start();
      const perBatch: Record<string, number>[] = [];
      const run = async () => {
        // Kinesis reads an open split up to the batch time: a batch starts once its time has passed.
        while (Date.now() <= coordinator.nextBatchTime) await new Promise((r) => setTimeout(r, 20));
        const before = proxy.operations().length;
        await coordinator.runNextBatch();
        const ops: Record<string, number> = {};
        for (const op of proxy.operations().slice(before)) ops[op] = (ops[op] ?? 0) + 1;
        perBatch.push(ops);
      };

      // Act: a batch that reads the 40 records, 6 idle batches, 20 records more, 6 batches.
      await run();
      for (let i = 0; i < 6; i++) await run();
      placed.push(...(await putLines(stack, name, Array.from({ length: 20 }, (_, i) => `line-${40 + i}`))));
      for (let i = 0; i < 6; i++) await run();
      await coordinator.stop();
      await coordinator.releaseLease();

      // Assess: requests.
      const total = (op: string) => perBatch.reduce((n, b) => n + (b[op] ?? 0), 0);
      expect(total('ListShards')).toBe(1);
      expect(perBatch[0].GetShardIterator).toBe(4);
      // After the first batch, only a shard read to a record of a later batch could need a new
      // iterator. And the batch after idle ones reads each shard that has records again twice:
      // once as a quiet batch (which stops at the first record), once in full.
      const woken = new Set(placed.slice(40).map((p) => p.shard)).size;
      expect(perBatch[7]).toMatchObject({ GetShardIterator: woken, GetRecords: 4 + woken });
      expect(total('GetShardIterator')).toBe(4 + woken);
      for (const b of perBatch.slice(1, 7)) expect(b).toEqual({ GetRecords: 4 });
      for (const b of perBatch) expect(b.GetRecords).toBeGreaterThanOrEqual(4);

      // Assess: every record once, each shard's in the order Kinesis holds them.
      const saved = [...(await readS3Batches(stack, `${name}-out`, 'raw')).values()].flat();
      expect([...saved].sort()).toEqual(placed.map((p) => p.line).sort());
      const shardOf = new Map(placed.map((p) => [p.line, p.shard]));
      for (const shard of new Set(placed.map((p) => p.shard))) {
        expect(saved.filter((l) => shardOf.get(l) === shard)).toEqual(placed.filter((p) => p.shard === shard).map((p) => p.line));
      }
    } finally {
      await proxy.stop();
    }
  }, 120_000);
});
