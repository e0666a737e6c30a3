import { MergeShardsCommand, type Shard, SplitShardCommand } from '@aws-sdk/client-kinesis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defineJob } from '../lib/api/job.ts';
import { kinesisClient } from '../lib/aws/clients.ts';
import { type CoordinatorRun, createCoordinatorHandler, createWorkerHandler } from '../lib/aws/handlers.ts';
import { awsCoordinatorRuntime } from '../lib/aws/coordinatorRuntime.ts';
import { awsWorkerRuntime } from '../lib/aws/runtime.ts';
import type { ProtocolStep } from '../lib/engine/coordinator.ts';
import type { TaskDescriptor, TaskResult } from '../lib/engine/protocol.ts';
import { type AwsStack, createResources, readS3Batches, startAwsStack } from './helpers/awsStack.ts';
import { putAll, shardsOf, waitActive } from './helpers/kinesisStreams.ts';

const KEYS = Array.from({ length: 24 }, (_, i) => `key${i}`);

/** What the tests throw from a protocol step to crash a coordinator there. */
class CoordinatorCrash extends Error {}

/** Raw records tagged with the shard they came from, and a running count per key, both saved to S3. */
function job(name: string) {
  return defineJob({ name, batchInterval: '400ms' }, (ctx) => {
    const records = ctx.kinesisStream(name, {
      initialPosition: 'TRIM_HORIZON',
      maxRecordsPerBatch: 40,
      decode: (bytes, meta) => `${new TextDecoder().decode(bytes)}@${meta.shardId}`,
    });
    records.saveAsTextFiles(`s3://${name}-out/raw`);
    records
      .map((r) => [r.split(':')[0], 1] as [string, number])
      .updateStateByKey((ones: number[], total: number | undefined) => (total ?? 0) + ones.length)
      .saveAsTextFiles(`s3://${name}-out/totals`);
  });
}

/**
 * Nothing lost, nothing doubled: the saved batches hold every record put, once each; and per key,
 * records come out in the order they were put, across batches and across shards.
 */
function expectEachRecordOnceInKeyOrder(raw: Map<number, string[]>, put: readonly string[]): void {
  const records = [...raw.values()].flat().map((l) => l.split('@')[0]);
  expect(records).toHaveLength(put.length);
  expect([...records].sort()).toEqual([...put].sort());
  const last = new Map<string, number>();
  const outOfOrder: string[] = [];
  for (const r of records) {
    const [key, i] = r.split(':');
    if (Number(i) !== (last.get(key) ?? -1) + 1) outOfOrder.push(`${r} after ${key}:${last.get(key) ?? 'nothing'}`);
    last.set(key, Number(i));
  }
  expect(outOfOrder).toEqual([]);
}

/** Ten records per key, each `key:i` with i counting up per key, put in order; `put` keeps them all. */
function rounds(kin: ReturnType<typeof kinesisClient>, name: string, put: string[]) {
  const next = new Map<string, number>();
  return async () => {
    const recs = Array.from({ length: 10 }, () => KEYS).flat().map((key) => {
      const i = next.get(key) ?? 0;
      next.set(key, i + 1);
      return { key, data: `${key}:${i}` };
    });
    await putAll(kin, name, recs);
    put.push(...recs.map((r) => r.data));
  };
}

/** Open shards (no ending sequence number), by starting hash key. */
function open(shards: Shard[]): Shard[] {
  return shards
    .filter((s) => s.SequenceNumberRange?.EndingSequenceNumber === undefined)
    .sort((a, b) => (BigInt(a.HashKeyRange!.StartingHashKey!) < BigInt(b.HashKeyRange!.StartingHashKey!) ? -1 : 1));
}

describe('resharding while the job runs, on kinesis-local (the Kinesis emulator LocalStack uses)', () => {
  let stack: AwsStack;
  beforeAll(async () => {
    stack = await startAwsStack({ kinesis: 'kinesis-local' });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  /** A two-shard stream and the job's resources; `round()` puts the next round of records, `put` holds every record put. */
  async function deploy(base: string) {
    const name = stack.name(base);
    await createResources(stack, name, 2);
    const config = stack.config(name);
    const kin = kinesisClient(config.aws);
    const put: string[] = [];
    return { name, config, kin, put, round: rounds(kin, name, put) };
  }

  it('a shard split and two shards merged mid-run: no record lost or doubled, per-key order kept, state carried over', async () => {
    const { name, config, kin, put, round } = await deploy('reshard');

    const definition = job(name);
    stack.lambda.register(config.workerFunction!, createWorkerHandler(async () => definition, (graph) => awsWorkerRuntime(graph, config)));
    let cuts = 0;
    const reshards: string[] = [];
    // The stream is resharded from inside the protocol, right after a batch was cut: that batch
    // reads a shard that has just closed, and the records put next go to the children.
    const onStep = async (step: string) => {
      if (step !== 'cut') return;
      cuts++;
      if (cuts === 3) {
        const [first] = open(await shardsOf(kin, name));
        const mid = (BigInt(first.HashKeyRange!.StartingHashKey!) + BigInt(first.HashKeyRange!.EndingHashKey!) + 1n) / 2n;
        await kin.send(new SplitShardCommand({ StreamName: name, ShardToSplit: first.ShardId!, NewStartingHashKey: mid.toString() }));
        await waitActive(kin, name);
        reshards.push(`split ${first.ShardId}`);
        await round();
      }
      if (cuts === 7) {
        // The upper child of the split and the original second shard are adjacent.
        const [, a, b] = open(await shardsOf(kin, name));
        await kin.send(new MergeShardsCommand({ StreamName: name, ShardToMerge: a.ShardId!, AdjacentShardToMerge: b.ShardId! }));
        await waitActive(kin, name);
        reshards.push(`merge ${a.ShardId} ${b.ShardId}`);
        await round();
      }
    };
    const invoke = () =>
      createCoordinatorHandler(async () => definition, (graph) => ({ ...awsCoordinatorRuntime(graph, config, () => undefined), retryBackoffMs: 5, onStep }), {
        marginMs: 0,
      })({}, { getRemainingTimeInMillis: () => 4000 });

    await round();
    const runs: CoordinatorRun[] = [];
    let raw = new Map<number, string[]>();
    // Coordinator invocations one after another, as the schedule runs them, until the output holds every record put.
    for (let i = 0; i < 8 && [...raw.values()].flat().length < put.length; i++) {
      runs.push(await invoke());
      raw = await readS3Batches(stack, `${name}-out`, 'raw');
    }
    expect(reshards).toEqual(['split shardId-000000000000', 'merge shardId-000000000003 shardId-000000000001']);

    expectEachRecordOnceInKeyOrder(raw, put);

    // All five shards were read, and each child only in batches after the last one that read its parents.
    const shards = await shardsOf(kin, name);
    const batchesOf = (shard: string) => [...raw].filter(([, ls]) => ls.some((l) => l.endsWith(`@${shard}`))).map(([t]) => t);
    expect(shards.map((s) => s.ShardId).filter((s) => batchesOf(s!).length > 0)).toHaveLength(5);
    for (const s of shards) {
      for (const parent of [s.ParentShardId, s.AdjacentParentShardId]) {
        if (parent) expect(Math.min(...batchesOf(s.ShardId!))).toBeGreaterThan(Math.max(...batchesOf(parent)));
      }
    }

    // The running count per key after each batch is the count of its records up to that batch:
    // the state kept its partitions while the input partitions went from 2 to 3 to 2. A batch
    // without records writes no raw output, but the totals go on in it.
    const totals = await readS3Batches(stack, `${name}-out`, 'totals');
    expect([...raw.keys()].filter((t) => !totals.has(t))).toEqual([]);
    const seen = new Map<string, number>();
    for (const [t, ls] of totals) {
      for (const l of raw.get(t) ?? []) seen.set(l.split(':')[0], (seen.get(l.split(':')[0]) ?? 0) + 1);
      expect([...ls].sort()).toEqual([...seen].map(([k, n]) => `(${k},${n})`).sort());
    }
    expect(Object.fromEntries(seen)).toEqual(Object.fromEntries(KEYS.map((k) => [k, 30])));
  }, 60_000);

  it('a worker that fails after reading the first child of a split, then a coordinator that crashes once that batch sealed the child: no record lost or doubled, per-key order kept', async () => {
    // Prepare
    const { name, config, kin, put, round } = await deploy('reshard-faults');
    const definition = job(name);
    let children = new Set<string>();
    /** Whether a task reads a split of one of the split shard's children. */
    const readsChild = (task: TaskDescriptor) => Object.values(task.splits ?? {}).some((parts) => Object.values(parts).some((split) => children.has(split.shard as string)));
    // The worker: its first task that reads a child shard runs to the end, then dies before it
    // answers (retried); the batch of the first attempt that answers with records of a child is the
    // one that seals a child. (A child read before the records put in it are readable seals an
    // empty range: on a loaded machine that batch can come first.)
    const sealsChildRecords = (result: unknown) =>
      Object.values((result as TaskResult).sealed ?? {}).some((parts) => Object.values(parts).some((split) => children.has(split.shard as string) && Number(split.count) > 0));
    const worker = createWorkerHandler(async () => definition, (graph) => awsWorkerRuntime(graph, config));
    let workerDied = false;
    let childSealedIn: number | undefined;
    stack.lambda.register(config.workerFunction!, async (event) => {
      const task = event as TaskDescriptor;
      const result = await worker(event);
      if (!readsChild(task)) return result;
      if (!workerDied) {
        workerDied = true;
        throw new Error('the worker died after reading a child shard');
      }
      if (sealsChildRecords(result)) childSealedIn ??= task.time;
      return result;
    });
    // The coordinator: the stream is split right after the second cut (the records put next go to
    // the children), and it crashes after the stage that sealed the first child split, before
    // anything of that batch is committed.
    let cuts = 0;
    let crashedIn: number | undefined;
    const lines: string[] = [];
    const onStep = async (step: ProtocolStep, t: number) => {
      if (step === 'cut' && ++cuts === 2) {
        const [first] = open(await shardsOf(kin, name));
        const mid = (BigInt(first.HashKeyRange!.StartingHashKey!) + BigInt(first.HashKeyRange!.EndingHashKey!) + 1n) / 2n;
        await kin.send(new SplitShardCommand({ StreamName: name, ShardToSplit: first.ShardId!, NewStartingHashKey: mid.toString() }));
        await waitActive(kin, name);
        children = new Set((await shardsOf(kin, name)).filter((s) => s.ParentShardId === first.ShardId).map((s) => s.ShardId!));
        await round();
      }
      if (step === 'stage' && crashedIn === undefined && t === childSealedIn) {
        crashedIn = t;
        throw new CoordinatorCrash(`crash after the stage that sealed a child shard in batch ${t}`);
      }
    };
    const invoke = () =>
      createCoordinatorHandler(async () => definition, (graph) => ({ ...awsCoordinatorRuntime(graph, config, (l) => lines.push(l)), retryBackoffMs: 5, onStep }), {
        marginMs: 0,
      })({}, { getRemainingTimeInMillis: () => 1200 });

    // Act: coordinator invocations one after another until the output holds every record put; the
    // crashed one is followed by the next, which recovers the crashed batch from its record.
    await round();
    let raw = new Map<number, string[]>();
    for (let i = 0; i < 12 && [...raw.values()].flat().length < put.length; i++) {
      await invoke().catch((e: unknown) => {
        if (!(e instanceof CoordinatorCrash)) throw e;
      });
      raw = await readS3Batches(stack, `${name}-out`, 'raw');
    }

    // Assess: both faults happened, in the batch that first read a child, and that batch was recovered.
    expect(children.size).toBe(2);
    expect(workerDied).toBe(true);
    expect(crashedIn).toBeDefined();
    expect(lines).toContain(`recovering batch ${crashedIn} from its lineage record`);
    expect(raw.get(crashedIn!)?.some((l) => [...children].some((c) => l.endsWith(`@${c}`)))).toBe(true);
    expectEachRecordOnceInKeyOrder(raw, put);
  }, 60_000);
});
