import { resolve } from 'node:path';
import { MessageChannel, Worker as Thread } from 'node:worker_threads';
import { JobDefinitionError, SluiceError } from '../core/errors.ts';
import type { TaskFailure } from '../engine/protocol.ts';
import type { BlobStore, Invoker } from '../ports/index.ts';
import { serveBlobStore } from './blobStoreRpc.ts';
import type { LocalJobOptions } from './jobOptions.ts';
import type { TaskMessage, ThreadMessage, WorkerThreadData } from './workerThreadMain.ts';

/** Options of {@link WorkerThreadInvoker}. */
export interface WorkerThreadInvokerOptions {
  /** The job file; every thread loads it, as the coordinator did. Relative to the working directory. */
  readonly jobFile: string;
  /** Options over the job's own, applied by each thread after loading the job (`sluice run --batch-interval`). */
  readonly jobOptions?: LocalJobOptions;
  /** How many threads, each running one task at a time (Spark's `local[k]`). */
  readonly threads: number;
  /** The job's blob store. It stays in the main thread; threads reach it through a message port. */
  readonly blobs: BlobStore;
  /** Base directory of relative `saveAs*Files` locations, as given to `localSinks`. */
  readonly sinksBaseDir: string;
}

/** What the threads report once they have loaded the job. */
export interface WorkerThreadsReady {
  /** The job name. */
  readonly job: string;
  /** The fingerprint of the plan the threads built; tasks of another plan are refused. */
  readonly fingerprint: string;
}

interface QueuedTask {
  readonly id: number;
  readonly task: unknown;
  resolve(result: unknown): void;
  reject(error: Error): void;
}

interface Slot {
  readonly thread: Thread;
  /** The thread's id (`thread.threadId` becomes -1 once it exits, when messages need it). */
  readonly id: number;
  readonly stopServing: () => void;
  readonly closePort: () => void;
  /** Which of the `threads` lanes it is; a replacement takes the same lane. */
  readonly lane: number;
  ready: boolean;
  running: QueuedTask | undefined;
  /** The uncaught error that is about to end the thread, for the exit message. */
  lastError: Error | undefined;
}

const ENTRY = new URL('./workerThreadEntry.mjs', import.meta.url);

/**
 * Runs tasks on `threads` worker threads (Spark's `local[k]`): `sluice run job.ts --parallelism k`.
 * Each thread loads the job file and builds the same plan as the coordinator; tasks go out as
 * structured-cloned payloads, one at a time per thread, to whichever thread is idle. The blob
 * store stays in the main thread and serves the threads over message ports, so an in-memory
 * store works too. A thread that dies fails the task it was running (the coordinator retries
 * it) and is replaced.
 *
 * @example
 * ```ts
 * const invoker = new WorkerThreadInvoker({ jobFile: 'examples/wordcount.ts', threads: 4, blobs, sinksBaseDir: process.cwd() });
 * try {
 *   const coordinator = new Coordinator(graph, job.options, { ...runtime, invoker });
 *   // ... run batches
 * } finally {
 *   await invoker.close();
 * }
 * ```
 */
export class WorkerThreadInvoker implements Invoker {
  readonly parallelism: number;
  private readonly jobFile: string;
  private readonly jobOptions: LocalJobOptions;
  private readonly sinksBaseDir: string;
  private readonly blobs: BlobStore;
  private readonly slots = new Set<Slot>();
  private readonly queue: QueuedTask[] = [];
  private nextId = 1;
  private replaced = 0;
  private closed = false;
  /** Set when the job cannot load in a thread: every task fails with it, nothing is restarted. */
  private broken: Error | undefined;
  private readonly readiness: Promise<WorkerThreadsReady>;
  private resolveReady!: (info: WorkerThreadsReady) => void;
  private rejectReady!: (error: Error) => void;

  constructor(options: WorkerThreadInvokerOptions) {
    const { threads } = options;
    if (!Number.isInteger(threads) || threads < 1) throw new SluiceError(`WorkerThreadInvoker: threads must be a whole number >= 1, got ${String(threads)}`);
    this.parallelism = threads;
    this.jobFile = resolve(options.jobFile);
    this.jobOptions = options.jobOptions ?? {};
    this.sinksBaseDir = resolve(options.sinksBaseDir);
    this.blobs = options.blobs;
    this.readiness = new Promise((res, rej) => {
      this.resolveReady = res;
      this.rejectReady = rej;
    });
    // Nobody has to wait for readiness; invoke() failures carry the same error.
    this.readiness.catch(() => {});
    for (let i = 0; i < threads; i++) this.startThread(i);
  }

  /** How many threads were started to replace threads that died. */
  get restarts(): number {
    return this.replaced;
  }

  /**
   * Resolves once every thread has loaded the job, with the plan the threads built (a caller can
   * compare its fingerprint with the coordinator's and fail early); rejects with the load error.
   * Calling it is optional: tasks wait for their thread anyway.
   *
   * @example
   * ```ts
   * const { fingerprint } = await invoker.ready();
   * if (fingerprint !== graph.fingerprint()) throw new Error('threads built a different plan');
   * ```
   */
  ready(): Promise<WorkerThreadsReady> {
    return this.readiness;
  }

  /**
   * Runs a task on the next idle thread and resolves with what the engine worker returned (a
   * TaskResult or TaskFailure; a payload of the wrong shape is a non-retryable failure). Rejects
   * when the thread dies while running it, when the job failed to load, or after {@link close}.
   */
  invoke(task: unknown): Promise<unknown> {
    if (this.broken) return Promise.reject(this.broken);
    if (this.closed) return Promise.reject(new SluiceError('WorkerThreadInvoker is closed'));
    return new Promise((resolve, reject) => {
      this.queue.push({ id: this.nextId++, task, resolve, reject });
      this.pump();
    });
  }

  /** Terminates every thread; queued and running tasks reject. Safe to call more than once. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const error = new SluiceError('WorkerThreadInvoker was closed before the task ran');
    this.rejectReady(error);
    for (const q of this.queue.splice(0)) q.reject(error);
    const slots = [...this.slots];
    this.slots.clear();
    for (const s of slots) {
      s.running?.reject(new SluiceError('WorkerThreadInvoker was closed while the task ran'));
      s.running = undefined;
    }
    await Promise.all(
      slots.map(async (s) => {
        await s.thread.terminate();
        s.stopServing();
        s.closePort();
      }),
    );
  }

  private startThread(lane: number): void {
    const { port1, port2 } = new MessageChannel();
    const stopServing = serveBlobStore(port1, this.blobs);
    const data: WorkerThreadData = { jobFile: this.jobFile, jobOptions: this.jobOptions, sinksBaseDir: this.sinksBaseDir, blobPort: port2 };
    const thread = new Thread(ENTRY, { workerData: data, transferList: [port2] });
    const slot: Slot = { thread, id: thread.threadId, stopServing, closePort: () => port1.close(), lane, ready: false, running: undefined, lastError: undefined };
    this.slots.add(slot);
    thread.on('message', (m: ThreadMessage) => this.onMessage(slot, m));
    thread.on('error', (e) => {
      slot.lastError = e;
    });
    thread.on('messageerror', (e) => {
      // A result that did not deserialise: fail that task (retryable) rather than hang it.
      const q = slot.running;
      slot.running = undefined;
      q?.reject(new SluiceError(`the result of a task could not be received from worker thread ${slot.id}: ${e.message}`));
      this.pump();
    });
    thread.on('exit', (code) => this.onExit(slot, code));
  }

  private onMessage(slot: Slot, m: ThreadMessage): void {
    switch (m?.type) {
      case 'ready': {
        slot.ready = true;
        if ([...this.slots].every((s) => s.ready)) this.resolveReady({ job: m.job, fingerprint: m.fingerprint });
        this.pump();
        return;
      }
      case 'loadFailed': {
        // The same file fails the same way in every thread: fail everything now instead of
        // restarting threads that cannot work.
        const detail = m.name === 'JobDefinitionError' ? m.message : `job file ${this.jobFile} failed to build in a worker thread: ${m.name}: ${m.message}`;
        this.breakDown(new JobDefinitionError(detail));
        return;
      }
      case 'result': {
        const q = slot.running;
        if (!q || q.id !== m.id) return;
        slot.running = undefined;
        q.resolve(m.result);
        this.pump();
        return;
      }
    }
  }

  private onExit(slot: Slot, code: number): void {
    if (!this.slots.delete(slot)) return; // closed or broken: we terminated it
    slot.stopServing();
    slot.closePort();
    const why = slot.lastError ? `: ${slot.lastError.name}: ${slot.lastError.message}` : '';
    if (!slot.ready) {
      // It died before the job loaded: a replacement would die the same way, over and over.
      this.breakDown(new SluiceError(`worker thread ${slot.id} exited (code ${code}) before the job loaded${why}`));
      return;
    }
    const q = slot.running;
    slot.running = undefined;
    q?.reject(new SluiceError(`worker thread ${slot.id} exited (code ${code}) while running the task${why}`));
    if (this.closed || this.broken) return;
    this.replaced++;
    this.startThread(slot.lane);
    this.pump();
  }

  /** Fails every task, now and later, with `error`, and stops the threads. */
  private breakDown(error: Error): void {
    if (this.broken || this.closed) return;
    this.broken = error;
    this.rejectReady(error);
    for (const q of this.queue.splice(0)) q.reject(error);
    const slots = [...this.slots];
    this.slots.clear();
    for (const s of slots) {
      s.running?.reject(error);
      s.running = undefined;
      s.stopServing();
      s.closePort();
      void s.thread.terminate();
    }
  }

  /**
   * Hands queued tasks to idle, ready threads. A task with an `affinity` (the stateful partitions)
   * always goes to the same lane, so the state that thread kept in memory from the last batch is
   * used instead of being rebuilt from blobs.
   */
  private pump(): void {
    for (let i = 0; i < this.queue.length; ) {
      const q = this.queue[i];
      const lane = affinityLane(q.task, this.parallelism);
      let slot: Slot | undefined;
      for (const s of this.slots) {
        if (s.ready && !s.running && (lane === undefined || s.lane === lane)) {
          slot = s;
          break;
        }
      }
      if (!slot) {
        i++;
        continue;
      }
      this.queue.splice(i, 1);
      this.dispatch(slot, q);
    }
  }

  private dispatch(slot: Slot, q: QueuedTask): void {
    slot.running = q;
    try {
      slot.thread.postMessage({ type: 'task', id: q.id, task: q.task } satisfies TaskMessage);
    } catch (e) {
      // The payload cannot be cloned (a function, a handle): no thread can ever run it, so it is
      // a payload error, not a retryable failure. The thread stays idle for the next task.
      slot.running = undefined;
      const err = e instanceof Error ? e : new Error(String(e));
      const failure: TaskFailure = {
        ok: false,
        error: { name: 'TaskPayloadError', message: `not a Sluice task payload: it cannot be sent to a worker thread (${err.name}: ${err.message})` },
        retryable: false,
      };
      q.resolve(failure);
    }
  }
}

/** The lane a task with an `affinity` string must run on, or undefined for any lane. */
function affinityLane(task: unknown, lanes: number): number | undefined {
  const a = (task as { affinity?: unknown } | null)?.affinity;
  if (typeof a !== 'string') return undefined;
  let h = 0x811c9dc5;
  for (let i = 0; i < a.length; i++) h = Math.imul(h ^ a.charCodeAt(i), 0x01000193);
  return (h >>> 0) % lanes;
}
