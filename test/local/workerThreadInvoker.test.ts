import { existsSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { MessageChannel, Worker as Thread } from 'node:worker_threads';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildGraph, type JobDefinition } from '../../lib/api/job.ts';
import { Coordinator } from '../../lib/engine/coordinator.ts';
import { TASK_PROTOCOL, type TaskFailure } from '../../lib/engine/protocol.ts';
import { Worker } from '../../lib/engine/worker.ts';
import { BlobStoreClient, serveBlobStore } from '../../lib/local/blobStoreRpc.ts';
import { ManualClock } from '../../lib/node/clock.ts';
import { InProcessInvoker } from '../../lib/local/inProcessInvoker.ts';
import { loadJob } from '../../lib/node/loadJob.ts';
import { memoryLog } from '../../lib/local/log.ts';
import { MemoryBlobStore } from '../../lib/local/memoryBlobStore.ts';
import { MemoryMetaStore } from '../../lib/local/memoryMetaStore.ts';
import { localSinks } from '../../lib/local/sinks.ts';
import { localSources } from '../../lib/local/sourceFactory.ts';
import { WorkerThreadInvoker } from '../../lib/local/workerThreadInvoker.ts';
import type { BlobStore, Invoker } from '../../lib/ports/index.ts';
import { keysOf } from '../fixtures/pairs-job.ts';

const fixture = (name: string) => fileURLToPath(new URL(`../fixtures/${name}`, import.meta.url));
const PAIRS = fixture('pairs-job.ts');
const CRASH = fixture('crash-job.ts');
const BROKEN = fixture('broken-job.ts');

/** Runs `batches` batches of `job` on a manual clock through the real coordinator and `invoker`. */
async function runJob(
  job: JobDefinition,
  opts: { invoker: (graph: ReturnType<typeof buildGraph>) => Invoker; blobs: BlobStore; sinksDir: string; batches: number; inlineLimit?: number },
) {
  const graph = buildGraph(job);
  const clock = new ManualClock(0);
  const log = memoryLog();
  const invoker = opts.invoker(graph);
  const coordinator = new Coordinator(graph, job.options, {
    blobs: opts.blobs,
    sources: localSources(),
    sinks: localSinks(opts.sinksDir),
    meta: new MemoryMetaStore(),
    invoker,
    clock,
    log,
    owner: 'workerThreadInvoker.test',
    retryBackoffMs: 1,
    inlineLimit: opts.inlineLimit,
  });
  try {
    await coordinator.start();
    for (let i = 0; i < opts.batches; i++) {
      clock.set(coordinator.nextBatchTime);
      await coordinator.runNextBatch();
    }
  } finally {
    await coordinator.stop();
  }
  return { graph, log };
}

/** Every file under `dir`, by relative path, with its bytes. */
async function readTree(dir: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const entry of await fs.readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const file = path.join(entry.parentPath, entry.name);
    out.set(path.relative(dir, file), await fs.readFile(file));
  }
  return new Map([...out].sort(([a], [b]) => (a < b ? -1 : 1)));
}

/** Count per key of a batch's `(key,count)` part files; fails on a key written twice. */
function countsOf(tree: Map<string, Buffer>, batchDir: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const [file, bytes] of tree) {
    if (path.dirname(file) !== batchDir || !path.basename(file).startsWith('part-')) continue;
    for (const line of bytes.toString('utf8').split('\n')) {
      if (!line) continue;
      const m = /^\((.*),(\d+)\)$/.exec(line);
      if (!m) throw new Error(`unexpected line ${JSON.stringify(line)} in ${file}`);
      if (counts.has(m[1])) throw new Error(`key ${m[1]} written twice in ${batchDir}`);
      counts.set(m[1], Number(m[2]));
    }
  }
  return counts;
}

function expectedCounts(keys: string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const k of keys) counts.set(k, (counts.get(k) ?? 0) + 1);
  return counts;
}

let tmp: string;
const invokers: WorkerThreadInvoker[] = [];

/** A WorkerThreadInvoker that afterEach closes, whatever the test did. */
function threadsFor(jobFile: string, threads: number, blobs: BlobStore, sinksBaseDir: string): WorkerThreadInvoker {
  const inv = new WorkerThreadInvoker({ jobFile, threads, blobs, sinksBaseDir });
  invokers.push(inv);
  return inv;
}

beforeEach(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-wt-'));
});

afterEach(async () => {
  await Promise.all(invokers.splice(0).map((i) => i.close()));
  delete process.env.SLUICE_TEST_CRASH_ONCE;
  await fs.rm(tmp, { recursive: true, force: true });
});

describe('WorkerThreadInvoker', () => {
  it('writes byte-identical output on 3 threads and in process', async () => {
    // vitest transpiles the job here, the threads load it through tsx, which prints its functions
    // differently (`k=>[k,1]` for `(k) => [k, 1]`). The plan fingerprint leaves function bodies
    // out (lib/plan/graph.ts), so both sides build the same plan and the threads run its tasks.
    const job = await loadJob(PAIRS);
    const threadsDir = path.join(tmp, 'threads');
    const inProcessDir = path.join(tmp, 'in-process');
    const blobs = new MemoryBlobStore();
    const threads = threadsFor(PAIRS, 3, blobs, threadsDir);
    expect(threads.parallelism).toBe(3);

    // inlineLimit 0 sends every shuffle segment through the blob store RPC.
    const { graph } = await runJob(job, { invoker: () => threads, blobs, sinksDir: threadsDir, batches: 2, inlineLimit: 0 });
    expect(await threads.ready()).toEqual({ job: 'pairs', fingerprint: graph.fingerprint() });
    const inProcessBlobs = new MemoryBlobStore();
    await runJob(job, {
      invoker: (g) => new InProcessInvoker(new Worker(g, { blobs: inProcessBlobs, sources: localSources(), sinks: localSinks(inProcessDir) })),
      blobs: inProcessBlobs,
      sinksDir: inProcessDir,
      batches: 2,
    });

    const a = await readTree(threadsDir);
    const b = await readTree(inProcessDir);
    expect([...a.keys()]).toEqual([...b.keys()]);
    expect([...a.keys()]).toContain(path.join('pairs', 'counts-1000', '_SUCCESS'));
    expect([...a.keys()].filter((f) => path.basename(f).startsWith('part-'))).toHaveLength(16);
    for (const [file, bytes] of a) expect(bytes.equals(b.get(file)!), `${file} differs`).toBe(true);

    expect(countsOf(a, path.join('pairs', 'counts-1000'))).toEqual(expectedCounts(keysOf(2000)));
    expect(countsOf(a, path.join('pairs', 'counts-2000'))).toEqual(expectedCounts(keysOf(500)));
    // The shuffle spread keys over all 8 reduce partitions, i.e. real cross-thread work.
    const parts = [...a].filter(([f, bytes]) => f.startsWith(path.join('pairs', 'counts-1000', 'part-')) && bytes.length > 0);
    expect(parts).toHaveLength(8);
    expect(threads.restarts).toBe(0);
  });

  it('replaces a thread that dies mid-task, and the retried batch still completes', async () => {
    const marker = path.join(tmp, 'crashed');
    // Threads copy process.env when they start, so set it before the invoker exists.
    process.env.SLUICE_TEST_CRASH_ONCE = marker;
    const job = await loadJob(CRASH);
    const blobs = new MemoryBlobStore();
    const out = path.join(tmp, 'out');
    const threads = threadsFor(CRASH, 3, blobs, out);

    const { log } = await runJob(job, { invoker: () => threads, blobs, sinksDir: out, batches: 2 });

    expect(existsSync(marker)).toBe(true);
    expect(threads.restarts).toBe(1);
    expect(log.warnings).toHaveLength(1);
    expect(log.warnings[0]).toMatch(/attempt 1 failed \(worker thread \d+ exited \(code 1\) while running the task\); retrying$/);
    const tree = await readTree(out);
    expect(countsOf(tree, path.join('crash', 'counts-1000'))).toEqual(expectedCounts(keysOf(2000)));
    expect(countsOf(tree, path.join('crash', 'counts-2000'))).toEqual(expectedCounts(keysOf(500)));
    expect(tree.has(path.join('crash', 'counts-2000', '_SUCCESS'))).toBe(true);
  }, 60_000);

  it('rejects every task with the load error of a job file that does not load', async () => {
    const threads = threadsFor(BROKEN, 2, new MemoryBlobStore(), tmp);
    const first = threads.invoke({ protocol: 1 });
    await expect(first).rejects.toThrow(/job file .*broken-job\.ts failed to load: broken-job fixture fails to load on purpose/);
    await expect(threads.ready()).rejects.toThrow(/broken-job fixture fails to load on purpose/);
    await expect(threads.invoke({ protocol: 1 })).rejects.toThrow(/broken-job fixture fails to load on purpose/);
    expect(threads.restarts).toBe(0);
    await threads.close();
    await threads.close();
  });

  it('rejects tasks of a job file that does not exist', async () => {
    const threads = threadsFor(path.join(tmp, 'nope.ts'), 1, new MemoryBlobStore(), tmp);
    await expect(threads.invoke({})).rejects.toThrow(/job file .*nope\.ts does not exist/);
  });

  it('answers a payload of the wrong shape with a non-retryable failure', async () => {
    const threads = threadsFor(PAIRS, 1, new MemoryBlobStore(), tmp);
    const res = (await threads.invoke({ hello: 'world' })) as TaskFailure;
    expect(res.ok).toBe(false);
    expect(res.retryable).toBe(false);
    expect(res.error.name).toBe('TaskPayloadError');
    expect(res.error.message).toMatch(new RegExp(`^not a Sluice task payload: protocol must be ${TASK_PROTOCOL},`));

    const unclonable = (await threads.invoke({ protocol: 1, fn: () => 1 })) as TaskFailure;
    expect(unclonable).toMatchObject({ ok: false, retryable: false });
    expect(unclonable.error.message).toMatch(/^not a Sluice task payload: it cannot be sent to a worker thread \(DataCloneError/);

    // The thread is still there for the next task.
    const again = (await threads.invoke(null)) as TaskFailure;
    expect(again.error.message).toBe('not a Sluice task payload: expected an object, got null');
  });

  it('rejects queued tasks on close, and tasks after it', async () => {
    const threads = threadsFor(PAIRS, 2, new MemoryBlobStore(), tmp);
    const queued = Promise.allSettled([threads.invoke({}), threads.invoke({}), threads.invoke({})]);
    await threads.close();
    for (const q of await queued) expect(q).toMatchObject({ status: 'rejected', reason: { message: 'WorkerThreadInvoker was closed before the task ran' } });
    await expect(threads.invoke({})).rejects.toThrow(/WorkerThreadInvoker is closed/);
  });

  it('refuses a thread count that is not a whole number >= 1', () => {
    expect(() => new WorkerThreadInvoker({ jobFile: PAIRS, threads: 0, blobs: new MemoryBlobStore(), sinksBaseDir: tmp })).toThrow(
      /threads must be a whole number >= 1, got 0/,
    );
  });
});

describe('blob store RPC', () => {
  const decode = (b: unknown) => new TextDecoder().decode(b as Uint8Array);

  it('serves get, put, getRange, list, delete and exists to a worker thread, with errors', async () => {
    const store = new MemoryBlobStore();
    const { port1, port2 } = new MessageChannel();
    const stop = serveBlobStore(port1, store);
    const thread = new Thread(new URL('../fixtures/blob-rpc-thread.mjs', import.meta.url), { workerData: { blobPort: port2 }, transferList: [port2] });
    try {
      const replies = new Map<number, (m: Record<string, unknown>) => void>();
      const started = new Promise<void>((resolve, reject) => {
        thread.on('message', (m: Record<string, unknown>) => (m.ready ? resolve() : replies.get(m.id as number)?.(m)));
        thread.on('error', reject);
      });
      await started;
      let seq = 0;
      const remote = (op: string, ...args: unknown[]) =>
        new Promise<Record<string, unknown>>((resolve) => {
          const id = ++seq;
          replies.set(id, resolve);
          thread.postMessage({ id, op, args });
        });

      expect(await remote('put', 'a/one', 'hello world')).toMatchObject({ ok: true });
      expect(await remote('put', 'a/two', new Uint8Array([1, 2, 3]))).toMatchObject({ ok: true });
      expect(await remote('put', 'b/three', '3')).toMatchObject({ ok: true });
      // The writes happened on the main thread's store.
      expect(decode(await store.get('a/one'))).toBe('hello world');

      const got = await remote('get', 'a/one');
      expect(got.isBytes).toBe(true);
      expect(decode(got.value)).toBe('hello world');
      expect([...((await remote('get', 'a/two')).value as Uint8Array)]).toEqual([1, 2, 3]);
      expect(await remote('get', 'a/missing')).toMatchObject({ ok: true, value: undefined });
      expect(decode((await remote('getRange', 'a/one', 6, 11)).value)).toBe('world');
      expect(decode((await remote('getRange', 'a/one', 6, Number.POSITIVE_INFINITY)).value)).toBe('world');
      expect(await remote('getRange', 'a/missing', 0, 1)).toMatchObject({ ok: true, value: undefined });
      expect((await remote('list', 'a/')).value).toEqual(['a/one', 'a/two']);
      expect((await remote('exists', 'b/three')).value).toBe(true);
      expect((await remote('delete', ['b/three', 'b/never'])).ok).toBe(true);
      expect((await remote('exists', 'b/three')).value).toBe(false);
      // Transferring the reply did not take the bytes away from the store.
      expect(decode(await store.get('a/one'))).toBe('hello world');

      expect(await remote('put', '/etc/passwd', 'x')).toEqual({
        id: expect.any(Number),
        ok: false,
        isError: true,
        name: 'SluiceError',
        message: 'invalid blob key "/etc/passwd": it is absolute (starts with "/")',
      });
      expect(await remote('getRange', 'a/one', 5, 2)).toMatchObject({ ok: false, name: 'SluiceError', message: 'invalid byte range [5, 2) for blob "a/one"' });
      expect(await remote('delete', ['ok', 'a/../b'])).toMatchObject({ ok: false, message: 'invalid blob key "a/../b": it contains a ".." segment' });
    } finally {
      await thread.terminate();
      stop();
      port1.close();
    }
  });

  it('transfers whole buffers, copies views into larger ones, and refuses unknown operations', async () => {
    const pool = new Uint8Array([9, 9, 1, 2, 3, 9]);
    let own = new Uint8Array([4, 5]);
    const store = {
      get: async (key: string) => (key === 'view' ? pool.subarray(2, 5) : (own = new Uint8Array([4, 5]))),
    } as unknown as BlobStore;
    const { port1, port2 } = new MessageChannel();
    const stop = serveBlobStore(port1, store);
    const client = new BlobStoreClient(port2);
    try {
      expect([...((await client.get('view')) ?? [])]).toEqual([1, 2, 3]);
      expect(pool.byteLength).toBe(6); // copied, so the shared buffer is still whole
      expect([...((await client.get('own')) ?? [])]).toEqual([4, 5]);
      expect(own.byteLength).toBe(0); // moved, not copied

      const reply = new Promise<unknown>((r) => port2.once('message', r));
      port2.postMessage({ id: 999, op: 'constructor', args: [] });
      expect(await reply).toEqual({ id: 999, ok: false, error: { name: 'TypeError', message: 'blob store RPC: unknown operation "constructor"' } });
    } finally {
      stop();
      port1.close();
    }
  });

  it('fails pending and later calls once the port closes', async () => {
    const { port1, port2 } = new MessageChannel();
    const client = new BlobStoreClient(port2);
    const pending = client.get('never/answered'); // nobody serves port1
    port1.close();
    await expect(pending).rejects.toThrow('blob store RPC: the port to the main thread closed');
    await expect(client.exists('x')).rejects.toThrow('the port to the main thread closed');
  });
});
