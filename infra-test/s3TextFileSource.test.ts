import { CreateBucketCommand, DeleteObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DStream } from '../lib/api/dstream.ts';
import { SluiceError } from '../lib/core/errors.ts';
import { buildGraph, defineJob } from '../lib/api/job.ts';
import { s3Client } from '../lib/aws/clients.ts';
import { awsSources } from '../lib/aws/runtime.ts';
import { S3TextFileSource, type S3TextFileSourceOptions } from '../lib/aws/s3TextFileSource.ts';
import { Coordinator } from '../lib/engine/coordinator.ts';
import { Worker } from '../lib/engine/worker.ts';
import { ManualClock } from '../lib/node/clock.ts';
import { InProcessInvoker } from '../lib/local/inProcessInvoker.ts';
import { memoryLog } from '../lib/local/log.ts';
import { MemoryBlobStore } from '../lib/local/memoryBlobStore.ts';
import { MemoryMetaStore } from '../lib/local/memoryMetaStore.ts';
import { localSinks } from '../lib/local/sinks.ts';
import type { InputSplit, JsonValue, SourceSpec } from '../lib/ports/index.ts';
import { type Emulator, startS3rver } from './helpers/emulators.ts';

const NODE = 'textFile-1';
const io = { blobs: new MemoryBlobStore(), job: 's3-textfile-test' };

function spec(directory: string, includeExisting = false): SourceSpec {
  return { nodeId: NODE, kind: 'textFile', params: { directory, includeExisting } };
}

function seenNames(state: JsonValue): string[] {
  return Object.keys((state as { seen: Record<string, number> }).seen);
}

/** A client that counts the commands sent through it. */
function countingClient(endpoint: string): { client: S3Client; counts: Map<string, number> } {
  const client = s3Client({ endpoint });
  const counts = new Map<string, number>();
  client.middlewareStack.add(
    (next, context) => async (args) => {
      counts.set(context.commandName!, (counts.get(context.commandName!) ?? 0) + 1);
      return next(args);
    },
    { step: 'initialize', name: 'sluiceCountCommands' },
  );
  return { client, counts };
}

describe('S3TextFileSource against s3rver', () => {
  let s3: Emulator;
  let client: S3Client;
  let buckets = 0;

  beforeAll(async () => {
    s3 = await startS3rver();
    client = s3Client({ endpoint: s3.endpoint });
  });

  afterAll(async () => {
    client?.destroy();
    await s3?.stop();
  });

  async function freshBucket(): Promise<string> {
    const bucket = `textfile-${++buckets}`;
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
    return bucket;
  }

  /** Uploads an object and returns its ETag. */
  async function upload(bucket: string, key: string, body: string): Promise<string> {
    const out = await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: new TextEncoder().encode(body) }));
    return out.ETag!;
  }

  function newSource(directory: string, options: { includeExisting?: boolean } & Partial<S3TextFileSourceOptions> = {}): S3TextFileSource {
    return new S3TextFileSource(spec(directory, options.includeExisting), io, { client, ...options });
  }

  async function readAll(source: S3TextFileSource, splits: InputSplit[]): Promise<unknown[][]> {
    const out: unknown[][] = [];
    for (const s of splits) out.push((await source.read(s)).records);
    return out;
  }

  it('skips the objects already there at the first cut, then takes each new object once, as its own sealed split', async () => {
    // Prepare
    const bucket = await freshBucket();
    await upload(bucket, 'in/old.txt', 'old\n');
    const source = newSource(`s3://${bucket}/in/`);

    // Act
    const first = await source.cut(1000, undefined);
    const a = await upload(bucket, 'in/a.txt', 'a1\na2\n');
    const b = await upload(bucket, 'in/b.txt', 'b1\r\nb2');
    const second = await source.cut(2000, first.state);
    const third = await source.cut(3000, second.state);

    // Assess
    expect(first.splits).toEqual([]);
    expect(seenNames(first.state)).toEqual(['old.txt']);
    expect(second.splits).toEqual([
      { bucket, key: 'in/a.txt', size: 6, etag: a },
      { bucket, key: 'in/b.txt', size: 6, etag: b },
    ]);
    expect(await readAll(source, second.splits)).toEqual([
      ['a1', 'a2'],
      ['b1', 'b2'],
    ]);
    expect(third.splits).toEqual([]);
    expect(seenNames(third.state)).toEqual(['a.txt', 'b.txt', 'old.txt']);
  });

  it('takes the existing objects at the first cut with includeExisting, and watches s3://bucket/prefix without a trailing slash as the same prefix', async () => {
    // Prepare
    const bucket = await freshBucket();
    const etag = await upload(bucket, 'in/old.txt', 'x\ny\n');
    const source = newSource(`s3://${bucket}/in`, { includeExisting: true });

    // Act
    const first = await source.cut(1000, undefined);
    const second = await source.cut(2000, first.state);

    // Assess
    expect(source.prefix).toBe('in/');
    expect(first.splits).toEqual([{ bucket, key: 'in/old.txt', size: 4, etag }]);
    expect(await readAll(source, first.splits)).toEqual([['x', 'y']]);
    expect(second.splits).toEqual([]);
  });

  it('ignores hidden and underscore names, uploads in progress, deeper keys, the prefix marker and sibling prefixes', async () => {
    // Prepare
    const bucket = await freshBucket();
    const source = newSource(`s3://${bucket}/in/`);
    const first = await source.cut(1000, undefined);

    // Act
    for (const key of ['in/.hidden.txt', 'in/_COPYING_', 'in/_SUCCESS', 'in/big.csv._COPYING_', 'in/sub/inner.txt', 'in/', 'input/x.txt', 'top.txt']) {
      await upload(bucket, key, 'no\n');
    }
    const yes = await upload(bucket, 'in/yes.txt', 'yes\n');
    const second = await source.cut(2000, first.state);

    // Assess
    expect(second.splits).toEqual([{ bucket, key: 'in/yes.txt', size: 4, etag: yes }]);
    expect(seenNames(second.state)).toEqual(['yes.txt']);
  });

  it('does not take an object again, even when it is overwritten, and takes a finished upload renamed from ._COPYING_', async () => {
    // Prepare
    const bucket = await freshBucket();
    const source = newSource(`s3://${bucket}/in/`);
    const first = await source.cut(1000, undefined);
    await upload(bucket, 'in/once.txt', 'one\n');
    await upload(bucket, 'in/late.csv._COPYING_', 'half');
    const second = await source.cut(2000, first.state);

    // Act
    await upload(bucket, 'in/once.txt', 'one\nand more\n');
    await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'in/late.csv._COPYING_' }));
    await upload(bucket, 'in/late.csv', 'whole\n');
    const third = await source.cut(3000, second.state);
    const fourth = await source.cut(4000, third.state);

    // Assess
    expect(second.splits.map((s) => s.key)).toEqual(['in/once.txt']);
    expect(third.splits.map((s) => s.key)).toEqual(['in/late.csv']);
    expect(await readAll(source, third.splits)).toEqual([['whole']]);
    expect(fourth.splits).toEqual([]);
  });

  it('reads an empty object as no lines and keeps empty lines in between', async () => {
    // Prepare
    const bucket = await freshBucket();
    const source = newSource(`s3://${bucket}/in/`);
    const first = await source.cut(1000, undefined);
    await upload(bucket, 'in/empty.txt', '');
    await upload(bucket, 'in/gaps.txt', 'a\n\n\nb\n\n');
    await upload(bucket, 'in/one.txt', 'z');

    // Act
    const second = await source.cut(2000, first.state);

    // Assess
    expect(await readAll(source, second.splits)).toEqual([[], ['a', '', '', 'b', ''], ['z']]);
  });

  it('fails the re-read of an object replaced since its cut, naming the object', async () => {
    // Prepare
    const bucket = await freshBucket();
    const source = newSource(`s3://${bucket}/in/`);
    const first = await source.cut(1000, undefined);
    await upload(bucket, 'in/data.txt', 'first version\n');
    const second = await source.cut(2000, first.state);
    expect(await readAll(source, second.splits)).toEqual([['first version']]);

    // Act
    await upload(bucket, 'in/data.txt', 'second version, longer\n');
    const error = await source.read(second.splits[0]).catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(SluiceError);
    expect((error as SluiceError).message).toContain(`textFile-1: the input object s3://${bucket}/in/data.txt was replaced since its batch was cut`);
    expect((error as SluiceError).nodeId).toBe(NODE);
  });

  it('fails the re-read of an object removed since its cut, naming the object', async () => {
    // Prepare
    const bucket = await freshBucket();
    const source = newSource(`s3://${bucket}/in/`);
    const first = await source.cut(1000, undefined);
    await upload(bucket, 'in/gone.txt', 'x\n');
    const second = await source.cut(2000, first.state);

    // Act
    await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'in/gone.txt' }));
    const error = await source.read(second.splits[0]).catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(SluiceError);
    expect((error as SluiceError).message).toBe(`textFile-1: the input object s3://${bucket}/in/gone.txt was removed before its batch was processed; the batch cannot be read again`);
  });

  it('fails a cut on a missing bucket, naming it', async () => {
    // Prepare
    const source = newSource('s3://no-such-bucket/in/');

    // Act
    const error = await source.cut(1000, undefined).catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(SluiceError);
    expect((error as SluiceError).message).toBe('textFile-1: the textFileStream bucket "no-such-bucket" does not exist (watching s3://no-such-bucket/in/)');
    expect((error as SluiceError).nodeId).toBe(NODE);
    expect((error as SluiceError).batchTime).toBe(1000);
  });

  it('lists every page of a large prefix', async () => {
    // Prepare
    const bucket = await freshBucket();
    const counting = countingClient(s3.endpoint);
    const source = new S3TextFileSource(spec(`s3://${bucket}/in/`, true), io, { client: counting.client, pageSize: 2 });
    const names = ['f1', 'f2', 'f3', 'f4', 'f5'];
    for (const n of names) await upload(bucket, `in/${n}`, `${n}\n`);

    // Act
    const first = await source.cut(1000, undefined);

    // Assess
    expect(first.splits.map((s) => s.key)).toEqual(names.map((n) => `in/${n}`));
    expect(counting.counts.get('ListObjectsV2Command')).toBe(3);
    counting.client.destroy();
  });

  it('forgets removed objects after the grace period and caps the names it remembers with a watermark', async () => {
    // Prepare
    const bucket = await freshBucket();
    const forgetting = newSource(`s3://${bucket}/in/`, { includeExisting: true, forgetAfterMs: 60_000 });
    await upload(bucket, 'in/done.txt', 'x\n');
    await upload(bucket, 'in/kept.txt', 'y\n');
    const taken = await forgetting.cut(1000, undefined);
    const modified = (taken.state as { seen: Record<string, number> }).seen['done.txt'];

    // Act
    await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'in/done.txt' }));
    const soon = await forgetting.cut(modified + 30_000, taken.state);
    const later = await forgetting.cut(modified + 61_000, soon.state);
    const capped = newSource(`s3://${bucket}/in/`, { includeExisting: true, maxRemembered: 0 });
    const cappedFirst = await capped.cut(1000, undefined);
    const cappedSecond = await capped.cut(2000, cappedFirst.state);

    // Assess
    expect(taken.splits).toHaveLength(2);
    expect(seenNames(soon.state)).toEqual(['done.txt', 'kept.txt']);
    expect(seenNames(later.state)).toEqual(['kept.txt']); // still listed: never forgotten
    expect(later.splits).toEqual([]);
    expect(cappedFirst.splits).toHaveLength(1);
    expect(cappedFirst.state).toEqual({ ignoreBefore: (later.state as { seen: Record<string, number> }).seen['kept.txt'], seen: {} });
    expect(cappedSecond.splits).toEqual([]); // below the watermark
  });

  it('refuses a state it cannot read and directories that name no bucket', async () => {
    // Act / Assess
    await expect(newSource('s3://any-bucket/in/').cut(1000, { seen: [] })).rejects.toThrow(SluiceError);
    expect(() => newSource('s3:///in/')).toThrow(/names no bucket/);
    expect(() => newSource('s3://')).toThrow(/names no bucket/);
    expect(newSource('s3://whole-bucket').prefix).toBe('');
  });

  it('reads with If-Match and a range of the sealed size, and reports a failed precondition as a replaced object', async () => {
    // Prepare: S3 answers a stale If-Match with 412 PreconditionFailed (s3rver ignores If-Match, so a stub stands in)
    const sent: unknown[] = [];
    const stub = {
      send: async (command: { input: unknown }) => {
        sent.push(command.input);
        throw Object.assign(new Error('At least one of the pre-conditions you specified did not hold'), { name: 'PreconditionFailed', $metadata: { httpStatusCode: 412 } });
      },
    } as unknown as S3Client;
    const source = new S3TextFileSource(spec('s3://b-1/in/'), io, { client: stub });

    // Act
    const error = await source.read({ bucket: 'b-1', key: 'in/a.txt', size: 10, etag: '"abc"' }).catch((e: unknown) => e);

    // Assess
    expect(sent).toEqual([{ Bucket: 'b-1', Key: 'in/a.txt', IfMatch: '"abc"', Range: 'bytes=0-9' }]);
    expect(error).toBeInstanceOf(SluiceError);
    expect((error as SluiceError).message).toBe('textFile-1: the input object s3://b-1/in/a.txt was replaced since its batch was cut (ETag "abc"); the batch cannot be read again');
  });

  describe('awsSources', () => {
    it('builds an S3TextFileSource for s3:// textFile nodes and refuses local directories', () => {
      // Prepare
      const sources = awsSources({ stateBucket: 'state', table: 'table', aws: { endpoint: s3.endpoint } });

      // Act / Assess
      expect(sources(spec('s3://bucket/in/'), io)).toBeInstanceOf(S3TextFileSource);
      expect(() => sources(spec('incoming/'), io)).toThrow(SluiceError);
      expect(() => sources(spec('incoming/'), io)).toThrow(/textFile-1: textFileStream\("incoming\/"\): the AWS runtime watches s3:\/\/ prefixes only/);
    });
  });

  describe('textFileStream end to end', () => {
    it('counts the words of the objects uploaded before each batch, through the coordinator and worker', async () => {
      // Prepare
      const bucket = await freshBucket();
      await upload(bucket, 'in/old.txt', 'old words\n');
      const job = defineJob({ name: 's3-textfile-e2e', batchInterval: 1000 }, (ctx) =>
        ctx
          .textFileStream(`s3://${bucket}/in/`)
          .flatMap((l) => l.split(' '))
          .countByValue(),
      );
      const out: { time: number; data: [string, number][] }[] = [];
      const graph = buildGraph(job, (built) => {
        if (built instanceof DStream) (built as DStream<[string, number]>).capture((time, partitions) => out.push({ time, data: partitions.flat() }));
      });
      const base = { blobs: new MemoryBlobStore(), sources: awsSources({ stateBucket: 'state', table: 'table', aws: { endpoint: s3.endpoint } }), sinks: localSinks(process.cwd()) };
      const clock = new ManualClock(0);
      const coordinator = new Coordinator(graph, job.options, {
        ...base,
        meta: new MemoryMetaStore(),
        invoker: new InProcessInvoker(new Worker(graph, base)),
        clock,
        log: memoryLog(),
        owner: 's3-textfile-e2e',
        retryBackoffMs: 1,
      });
      const batch = async () => {
        clock.set(coordinator.nextBatchTime);
        await coordinator.runNextBatch();
      };

      // Act
      try {
        await coordinator.start();
        await batch(); // old.txt was there before the job: skipped
        await upload(bucket, 'in/one.txt', 'to be or\nnot to be\n');
        await upload(bucket, 'in/two.txt', 'be quick\n');
        await upload(bucket, 'in/.hidden.txt', 'hidden words\n');
        await batch();
        await upload(bucket, 'in/three.txt', 'to go\n');
        await batch();
      } finally {
        await coordinator.stop();
      }

      // Assess
      const sorted = (d: [string, number][]) => [...d].sort((x, y) => (x[0] < y[0] ? -1 : 1));
      expect(out.map((b) => b.time)).toEqual([1000, 2000, 3000]);
      expect(out[0].data).toEqual([]);
      expect(sorted(out[1].data)).toEqual([
        ['be', 3],
        ['not', 1],
        ['or', 1],
        ['quick', 1],
        ['to', 2],
      ]);
      expect(sorted(out[2].data)).toEqual([
        ['go', 1],
        ['to', 1],
      ]);
    });
  });
});
