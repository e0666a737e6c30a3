import { hostname } from 'node:os';
import { join } from 'node:path';
import type { JobDefinition } from '../api/job.ts';
import type { CoordinatorRuntime, ProtocolStep } from '../engine/coordinator.ts';
import { Worker } from '../engine/worker.ts';
import type { JobGraph } from '../plan/graph.ts';
import type { Clock, Invoker, Metrics, OutputLog } from '../ports/index.ts';
import { WallClock } from '../node/clock.ts';
import { FsBlobStore } from './fsBlobStore.ts';
import { FsMetaStore } from './fsMetaStore.ts';
import type { LocalJobOptions } from './jobOptions.ts';
import { InProcessInvoker } from './inProcessInvoker.ts';
import { consoleLog } from './log.ts';
import { localSinks } from './sinks.ts';
import { localSources } from './sourceFactory.ts';

/** Options of {@link createLocalRuntime}. */
export interface LocalRuntimeOptions {
  /** The job file, needed to start worker threads. */
  readonly jobFile?: string;
  /** State directory. @default `.sluice/<job name>` under `baseDir` */
  readonly stateDir?: string;
  /** Relative output locations and the default state directory are resolved against it. @default process.cwd() */
  readonly baseDir?: string;
  /** Tasks at once: 1 runs them in this thread, k > 1 on k worker threads (Spark's `local[k]`). @default 1 */
  readonly parallelism?: number;
  readonly clock?: Clock;
  readonly log?: OutputLog;
  readonly metrics?: Metrics;
  readonly onStep?: (step: ProtocolStep, time: number) => void | Promise<void>;
  readonly allowPlanChange?: boolean;
  /**
   * Options the job was run with over its own (`--batch-interval`): the job given is expected to
   * carry them already; worker threads, which load the job file themselves, apply them too.
   */
  readonly jobOptions?: LocalJobOptions;
}

/** A local runtime and what it holds open. */
export interface LocalRuntime extends CoordinatorRuntime {
  readonly stateDir: string;
  close(): Promise<void>;
}

/** A lease owner string: host, process id, and a nonce for several coordinators in one process. */
export function localOwner(): string {
  return `${hostname()}:${process.pid}:${Math.random().toString(36).slice(2, 8)}`;
}

/** True when `owner` was a process on this host that no longer runs: its lease need not be waited out. */
export function localOwnerGone(owner: string): boolean {
  const [host, pidText] = owner.split(':');
  const pid = Number(pidText);
  if (host !== hostname() || !Number.isInteger(pid) || pid <= 0 || pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/**
 * The embedded runtime of `sluice run`: file-system stores under the state directory, the wall
 * clock, and tasks in this thread or on worker threads.
 *
 * @example
 * ```ts
 * const job = await loadJob('examples/wordcount.ts');
 * const graph = buildGraph(job);
 * const rt = await createLocalRuntime(job, graph, { jobFile: 'examples/wordcount.ts', parallelism: 2 });
 * const coordinator = new Coordinator(graph, job.options, rt);
 * ```
 */
export async function createLocalRuntime(job: JobDefinition, graph: JobGraph, options: LocalRuntimeOptions = {}): Promise<LocalRuntime> {
  const baseDir = options.baseDir ?? process.cwd();
  const stateDir = options.stateDir ?? join(baseDir, '.sluice', job.options.name);
  const blobs = new FsBlobStore(join(stateDir, 'blobs'));
  const meta = new FsMetaStore(join(stateDir, 'meta'));
  const base = { blobs, sources: localSources(), sinks: localSinks(baseDir) };
  const k = options.parallelism ?? 1;
  let invoker: Invoker;
  if (k > 1) {
    if (!options.jobFile) throw new Error('createLocalRuntime: parallelism > 1 needs the job file, to load it in each worker thread');
    // Loaded only when threads are asked for: a single-threaded run never starts the thread machinery.
    const { WorkerThreadInvoker } = await import('./workerThreadInvoker.ts');
    invoker = new WorkerThreadInvoker({ jobFile: options.jobFile, threads: k, blobs, sinksBaseDir: baseDir, jobOptions: options.jobOptions });
  } else {
    invoker = new InProcessInvoker(new Worker(graph, base));
  }
  return {
    ...base,
    meta,
    invoker,
    stateDir,
    clock: options.clock ?? new WallClock(),
    log: options.log ?? consoleLog(),
    metrics: options.metrics,
    owner: localOwner(),
    ownerGone: localOwnerGone,
    onStep: options.onStep,
    allowPlanChange: options.allowPlanChange,
    stateLocation: stateDir,
    close: () => invoker.close(),
  };
}
