import { LeaseHeldError } from '../core/errors.ts';
import type { JobDefinition } from '../api/job.ts';
import { buildGraph } from '../api/job.ts';
import { Coordinator, type CoordinatorRuntime } from '../engine/coordinator.ts';
import { toFailure, Worker, type WorkerRuntime } from '../engine/worker.ts';
import { readPause } from '../engine/pause.ts';
import { fromWire, toWire } from '../engine/wire.ts';
import type { JobGraph } from '../plan/graph.ts';
import { DEFAULT_PAYLOAD_LIMIT, isIndirect, payloadKey } from './payloads.ts';

/** How often a running coordinator reads the pause record, at a batch's start: `sluice pause` stops it within this (or one batch, if longer). */
export const PAUSE_CHECK_MS = 10_000;

/** The part of the Lambda context the handlers use. */
export interface LambdaContext {
  getRemainingTimeInMillis(): number;
}

/**
 * The worker function's handler: runs one task (the event) and returns its result. A payload of
 * the wrong shape comes back as a non-retryable failure, not as a crash. The job's graph is built
 * once per container and reused by later invocations (so is the state kept in memory). A task sent
 * through the state store is read from there, and a result bigger than `payloadLimit` bytes (Lambda
 * answers at most 6 MB) is written there, with its key returned instead (see `payloads.ts`).
 *
 * @example
 * ```ts
 * // functions/worker.ts
 * export const handler = createWorkerHandler(() => import('./job.ts').then((m) => m.default), (graph) => awsWorkerRuntime(graph));
 * ```
 */
export function createWorkerHandler(
  load: () => Promise<JobDefinition>,
  runtime: (graph: JobGraph) => WorkerRuntime,
  options: { readonly payloadLimit?: number } = {},
): (event: unknown) => Promise<unknown> {
  let worker: Promise<Worker> | undefined;
  return async (event) => {
    worker ??= load().then((job) => {
      const graph = buildGraph(job);
      return new Worker(graph, runtime(graph));
    });
    const w = await worker;
    let task: unknown;
    try {
      if (isIndirect(event)) {
        const bytes = await w.rt.blobs.get(event.sluiceIndirect);
        if (!bytes) throw new Error(`the task payload ${event.sluiceIndirect} is missing from the state store`);
        task = fromWire(new TextDecoder().decode(bytes));
      } else {
        // Lambda parsed the JSON payload already; byte arrays travel as { $bytes } markers.
        task = typeof event === 'string' ? fromWire(event) : fromWire(JSON.stringify(event));
      }
    } catch (e) {
      return toFailure(e);
    }
    const wire = toWire(await w.run(task));
    if (Buffer.byteLength(wire) > (options.payloadLimit ?? DEFAULT_PAYLOAD_LIMIT)) {
      const key = payloadKey(task, 'response', w.rt.nonce);
      await w.rt.blobs.put(key, wire);
      return { sluiceIndirect: key };
    }
    return JSON.parse(wire);
  };
}

/**
 * Gives the lease up so the next invocation need not wait for it to expire; tried three times. A
 * lease that cannot be released is not an error of this run (its batches are committed), but the
 * next run waits until it expires, so it is logged.
 */
async function releaseLease(coordinator: Coordinator, log: ((line: string) => void) | undefined): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await coordinator.releaseLease();
      return;
    } catch (e) {
      if (attempt >= 3) {
        log?.(`warning: coordinator: could not release the lease (${(e as Error).message}); the next run waits until it expires`);
        return;
      }
    }
  }
}

/** Options of {@link createCoordinatorHandler}. */
export interface CoordinatorHandlerOptions {
  /** Stop starting batches this long before the invocation's time runs out (ms). @default 10 000 */
  readonly marginMs?: number;
  /** Where the coordinator writes progress (CloudWatch Logs on AWS). */
  readonly log?: (line: string) => void;
  /**
   * When another coordinator holds the lease, keep asking for it this long (ms) before leaving the
   * minute to it. The scheduled invocation of the next minute usually starts while the last one
   * finishes its batch and hands the lease over: waiting for it keeps the batch clock going
   * instead of losing a minute. @default 0
   */
  readonly waitForLeaseMs?: number;
}

/** What one coordinator invocation did. */
export interface CoordinatorRun {
  readonly batches: number;
  readonly lastCompleted: number;
  /** Set when another coordinator held the lease, so this one did nothing. */
  readonly skipped?: string;
  /** Idle mode: set when the job is idle (this invocation found it so, or left it so). */
  readonly idle?: boolean;
  /** Set when the job is paused (`sluice pause`): when the pause was written. This invocation found it before or between batches. */
  readonly paused?: number;
}

/**
 * The coordinator function's handler. EventBridge can only fire once a minute, so each invocation
 * runs the batch clock for about a minute: every due batch (missed ones first, as fast as they
 * run), then sleeps to the next batch time, until its remaining time gets short; then it releases
 * the lease so the next invocation takes over at once. If another coordinator still holds the
 * lease, this invocation returns without doing anything.
 *
 * Idle mode (the job's `idleAfter`): an invocation that finds the job idle and no input returns at
 * once, having written nothing; one that finds input, or a job not idle, runs as above, and stops
 * early (releasing the lease marked idle) once the job becomes idle.
 *
 * Pause (`sluice pause`, lib/engine/pause.ts): the pause record is read before anything else and
 * again before a batch once {@link PAUSE_CHECK_MS} have passed since the last read. A paused job's invocation reads that one item and returns: no lease, no
 * stream read, no write. One running when the pause is written stops before its next batch and
 * releases the lease as at the end of its minute; `sluice resume` removes the record, and the next
 * invocation goes on from the checkpoint, missed batches first.
 *
 * @example
 * ```ts
 * // functions/coordinator.ts
 * export const handler = createCoordinatorHandler(loadJob, (graph, job) => awsCoordinatorRuntime(graph, job));
 * ```
 */
export function createCoordinatorHandler(
  load: () => Promise<JobDefinition>,
  runtime: (graph: JobGraph, job: JobDefinition) => CoordinatorRuntime,
  options: CoordinatorHandlerOptions = {},
): (event: unknown, context?: LambdaContext) => Promise<CoordinatorRun> {
  return async (_event, context) => {
    const job = await load();
    const graph = buildGraph(job);
    const rt = runtime(graph, job);
    const remaining = context?.getRemainingTimeInMillis() ?? 60_000;
    // The lease lasts the whole invocation: quiet batches then renew nothing, and an idle minute
    // costs two writes (take, release). A coordinator that dies keeps the next one waiting that long.
    const coordinator = new Coordinator(graph, job.options, { ...rt, leaseMs: rt.leaseMs ?? Math.max(30_000, 3 * job.options.batchInterval, remaining) });
    const margin = options.marginMs ?? 10_000;
    const deadline = rt.clock.now() + remaining - margin;
    const waitUntil = rt.clock.now() + (options.waitForLeaseMs ?? 0);
    const paused = await readPause(rt.meta);
    if (paused) {
      options.log?.(`coordinator: job ${graph.name} is paused since ${new Date(paused.since).toISOString()} (by ${paused.by}); nothing to do until sluice resume`);
      await rt.invoker.close();
      return { batches: 0, lastCompleted: -1, paused: paused.since };
    }
    if (job.options.idleAfter !== undefined) {
      const through = await coordinator.idleWithoutInput();
      if (through !== undefined) {
        options.log?.(`coordinator: idle since batch ${through}, no new input`);
        await coordinator.stop();
        await rt.invoker.close();
        return { batches: 0, lastCompleted: through, idle: true };
      }
    }
    for (;;) {
      try {
        await coordinator.start();
        break;
      } catch (e) {
        if (!(e instanceof LeaseHeldError)) throw e;
        if (rt.clock.now() >= waitUntil) {
          options.log?.(`coordinator: ${(e as Error).message}; leaving this minute to it`);
          return { batches: 0, lastCompleted: -1, skipped: (e as Error).message };
        }
        // The holder releases the lease when its time is up: ask again shortly.
        await rt.clock.sleepUntil(Math.min(waitUntil, rt.clock.now() + 250));
      }
    }
    let batches = 0;
    let pausedSince: number | undefined;
    let pauseReadAt = rt.clock.now();
    try {
      for (;;) {
        const t = coordinator.nextBatchTime;
        // Behind schedule, batch times stay before the deadline long after the clock has passed it.
        if (t > deadline || rt.clock.now() > deadline) break;
        await rt.clock.sleepUntil(t);
        // Paused since the last look (or while this invocation waited for the lease): stop here,
        // releasing the lease below. One read every PAUSE_CHECK_MS at most, not one per batch: at 1 s
        // batches that would be 2.6 million reads a month for a record that is almost never there.
        let pause: Awaited<ReturnType<typeof readPause>>;
        if (rt.clock.now() - pauseReadAt >= PAUSE_CHECK_MS) {
          pauseReadAt = rt.clock.now();
          pause = await readPause(rt.meta);
        }
        if (pause) {
          pausedSince = pause.since;
          options.log?.(`coordinator: job ${graph.name} paused (since ${new Date(pause.since).toISOString()}, by ${pause.by}); stopping after batch ${coordinator.lastCompleted}`);
          break;
        }
        try {
          await coordinator.runNextBatch();
        } catch (e) {
          rt.metrics?.batchFailed?.({ job: graph.name, batchTime: t });
          throw e;
        }
        batches++;
        // Idle: the rest of the minute is not billed; the next invocations only look for input.
        if (coordinator.idle) break;
      }
    } finally {
      await coordinator.stop();
      await releaseLease(coordinator, options.log);
      await rt.invoker.close();
    }
    return { batches, lastCompleted: coordinator.lastCompleted, ...(coordinator.idle ? { idle: true } : {}), ...(pausedSince === undefined ? {} : { paused: pausedSince }) };
  };
}
