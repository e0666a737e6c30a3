import { type MessagePort, parentPort, threadId, workerData } from 'node:worker_threads';
import { buildGraph } from '../api/job.ts';
import type { TaskFailure } from '../engine/protocol.ts';
import { Worker } from '../engine/worker.ts';
import { BlobStoreClient } from './blobStoreRpc.ts';
import { type LocalJobOptions, withLocalJobOptions } from './jobOptions.ts';
import { loadJob } from '../node/loadJob.ts';
import { localSinks } from './sinks.ts';
import { localSources } from './sourceFactory.ts';

/** What the {@link WorkerThreadInvoker} hands each thread at start. */
export interface WorkerThreadData {
  /** Absolute path of the job file. */
  readonly jobFile: string;
  /** Options over the job's own, as the coordinator's job has them. */
  readonly jobOptions: LocalJobOptions;
  /** Base directory of relative `saveAs*Files` locations. */
  readonly sinksBaseDir: string;
  /** The client end of the blob store RPC (see {@link serveBlobStore}). */
  readonly blobPort: MessagePort;
}

/** Main thread to worker thread: run one task. */
export interface TaskMessage {
  readonly type: 'task';
  readonly id: number;
  readonly task: unknown;
}

/** Worker thread to main thread. */
export type ThreadMessage =
  /** The job loaded; tasks may come. */
  | { readonly type: 'ready'; readonly job: string; readonly fingerprint: string }
  /** The job file did not load (or built no graph); the thread runs nothing. */
  | { readonly type: 'loadFailed'; readonly name: string; readonly message: string }
  /** The answer to task `id`: a TaskResult or TaskFailure. */
  | { readonly type: 'result'; readonly id: number; readonly result: unknown };

/**
 * The body of a worker thread of the {@link WorkerThreadInvoker}: loads the job file, builds its
 * graph with the same code the coordinator ran (so the fingerprints match), and runs the tasks it
 * is sent one at a time on an engine {@link Worker}. Blob calls go to the main thread's store.
 * Started by `workerThreadEntry.mjs`, which registers tsx first; not meant to be called elsewhere.
 *
 * @example
 * ```ts
 * // workerThreadEntry.mjs
 * const { runWorkerThread } = await import('./workerThreadMain.ts');
 * await runWorkerThread();
 * ```
 */
export async function runWorkerThread(): Promise<void> {
  const port = parentPort;
  if (!port) throw new Error('runWorkerThread must run in a worker thread started by WorkerThreadInvoker');
  const data = workerData as WorkerThreadData;
  const send = (m: ThreadMessage) => port.postMessage(m);

  let worker: Worker;
  try {
    const job = withLocalJobOptions(await loadJob(data.jobFile), data.jobOptions);
    const graph = buildGraph(job);
    worker = new Worker(graph, { blobs: new BlobStoreClient(data.blobPort), sources: localSources(), sinks: localSinks(data.sinksBaseDir) });
    send({ type: 'ready', job: graph.name, fingerprint: worker.fingerprint });
  } catch (e) {
    const err = e instanceof Error ? e : new Error(String(e));
    send({ type: 'loadFailed', name: err.name, message: err.message });
    // Stay alive until the invoker terminates us: exiting now could make the exit event race the
    // message, and the invoker would report a bare "exited before the job loaded".
    port.on('message', () => {});
    return;
  }

  port.on('message', async (m: TaskMessage) => {
    if (m?.type !== 'task') return;
    const result = await worker.run(m.task);
    try {
      port.postMessage({ type: 'result', id: m.id, result } satisfies ThreadMessage);
    } catch (e) {
      // A collect() of records holding functions or class handles cannot be cloned. Running the
      // task again would fail the same way, so say so instead of retrying.
      const err = e instanceof Error ? e : new Error(String(e));
      const failure: TaskFailure = {
        ok: false,
        error: { name: err.name, message: `the result of the task cannot be sent back from worker thread ${threadId}: ${err.message}` },
        retryable: false,
      };
      send({ type: 'result', id: m.id, result: failure });
    }
  });
}
