import { type BatchHistory, type BatchSummary, historyCache, readHistory } from '../engine/batchHistory.ts';
import { readDeadLetters, listDeadLetters, type DeadLetter } from '../engine/deadLetters.ts';
import { planMermaid, planStages, type PlanStage } from '../plan/describePlan.ts';
import type { JobGraph } from '../plan/graph.ts';
import type { BlobStore } from '../ports/index.ts';

/**
 * Where the Streaming UI's data comes from: a running coordinator's history ({@link liveSource}),
 * or the history a job's coordinators wrote to its blob store ({@link storedSource}: a stopped
 * local job, a deployed one).
 */

/** What the page's header and job graph show. */
export interface UiJob {
  readonly name: string;
  readonly batchInterval: number;
  /** Whether batches are still being added while the page is open (it then polls every second). */
  readonly live: boolean;
  /** Where the data is read from: a state directory, a stack, a bucket. */
  readonly where: string;
  /** The stages of the job's plan, when the page has the job (not from history alone). */
  readonly plan: readonly PlanStage[] | null;
  readonly mermaid: string | null;
}

/** One row of the batch table (a {@link BatchSummary} without its stages and input). */
export interface BatchRow {
  readonly time: number;
  readonly status: BatchSummary['status'];
  readonly records: number;
  readonly schedulingDelay?: number;
  readonly processingDelay?: number;
  readonly totalDelay?: number;
  readonly processingEndTime?: number;
  readonly deadLetters: number;
  readonly runs: BatchSummary['runs'];
  readonly recovered: boolean;
  readonly tasks: number;
  readonly attempts: number;
  readonly failedAttempts: number;
}

/** What `/api/batches` answers: rows new since `seq` of an earlier answer (`full`: every row, replace what you have). */
export interface BatchRows {
  readonly seq: number;
  readonly full: boolean;
  readonly rows: readonly BatchRow[];
}

/** The Streaming UI's data. */
export interface UiSource {
  job(): Promise<UiJob>;
  batches(since: number): Promise<BatchRows>;
  batch(time: number): Promise<BatchSummary | undefined>;
  deadLetters(time: number): Promise<DeadLetter[]>;
}

/**
 * A batch's row of the table: its tasks counted once each, its attempts all.
 *
 * @example
 * ```ts
 * batchRow(summary).attempts; // 7 (6 tasks, one retried)
 * ```
 */
export function batchRow(b: BatchSummary): BatchRow {
  let tasks = 0;
  let attempts = 0;
  let failedAttempts = 0;
  for (const s of b.stages) {
    const partitions = new Set<number>();
    for (const t of s.tasks) {
      partitions.add(t.partition);
      attempts++;
      if (!t.ok) failedAttempts++;
    }
    tasks += partitions.size;
  }
  return {
    time: b.time,
    status: b.status,
    records: b.records,
    ...(b.schedulingDelay !== undefined ? { schedulingDelay: b.schedulingDelay } : {}),
    ...(b.processingDelay !== undefined ? { processingDelay: b.processingDelay } : {}),
    ...(b.totalDelay !== undefined ? { totalDelay: b.totalDelay } : {}),
    ...(b.processingEndTime !== undefined ? { processingEndTime: b.processingEndTime } : {}),
    deadLetters: b.deadLetters,
    runs: b.runs,
    recovered: b.recovered,
    tasks,
    attempts,
    failedAttempts,
  };
}

/** How far ahead of this machine's clock a stored history is read: a job's clock may run ahead of the user's. */
const AHEAD_MS = 3_600_000;

/** The plan's part of {@link UiJob}, when the page has the job's graph. */
const planOf = (graph: JobGraph | undefined) => (graph ? { plan: planStages(graph), mermaid: planMermaid(graph) } : { plan: null, mermaid: null });

/** The dead letters of one batch. */
async function lettersOf(blobs: BlobStore, time: number): Promise<DeadLetter[]> {
  const batch = (await listDeadLetters(blobs)).find((d) => d.time === time);
  return batch ? readDeadLetters(blobs, batch.files) : [];
}

/**
 * The UI of a job running in this process: the batches its coordinator runs, as they complete,
 * after those earlier runs left in the blob store.
 *
 * @example
 * ```ts
 * const ui = await startUi(liveSource({ graph, history: coordinator.history, blobs: rt.blobs, where: rt.stateDir }));
 * ```
 */
export function liveSource(o: { graph: JobGraph; history: BatchHistory; blobs: BlobStore; where: string }): UiSource {
  let earlier: Promise<BatchSummary[]> | undefined;
  const before = Date.now() + AHEAD_MS;
  // What earlier runs wrote, read once: the batches this run adds come from memory.
  const past = () => (earlier ??= readHistory(o.blobs, { before }).then((h) => h.batches));
  const find = async (time: number) => [...o.history.recent()].reverse().find((b) => b.time === time) ?? (await past()).find((b) => b.time === time);
  return {
    job: async () => ({ name: o.graph.name, batchInterval: o.graph.batchInterval, live: true, where: o.where, ...planOf(o.graph) }),
    batches: async (since) => {
      const seq = o.history.added;
      if (since > 0) return { seq, full: false, rows: o.history.since(since).map(batchRow) };
      const mine = o.history.since(0);
      const first = mine.length ? mine[0].time : Number.POSITIVE_INFINITY;
      return { seq, full: true, rows: [...(await past()).filter((b) => b.time < first), ...mine].map(batchRow) };
    },
    batch: find,
    deadLetters: (time) => lettersOf(o.blobs, time),
  };
}

/**
 * The UI of a job from the history its coordinators wrote (a stopped local job, a deployed one):
 * read again at most every `refreshMs`, so a page over a deployed job follows it minute by minute.
 *
 * @example
 * ```ts
 * const ui = await startUi(storedSource({ blobs: new FsBlobStore('.sluice/clicks/blobs'), where: '.sluice/clicks', graph }));
 * ```
 */
export function storedSource(o: { blobs: BlobStore; where: string; graph?: JobGraph; name?: string; live?: boolean; refreshMs?: number }): UiSource {
  let read: { at: number; batches: Promise<BatchSummary[]>; job?: string; interval?: number } | undefined;
  const refreshMs = o.refreshMs ?? 5000;
  // Each refresh lists the newest groups and reads only files it has not read before.
  const cache = historyCache();
  const history = async () => {
    const now = Date.now();
    if (!read || now - read.at >= refreshMs) {
      // An hour ahead: batches stamped by a clock ahead of this machine's still show.
      const r = readHistory(o.blobs, { before: now + AHEAD_MS, cache });
      const entry: NonNullable<typeof read> = { at: now, batches: r.then((h) => h.batches) };
      read = entry;
      const h = await r;
      entry.job = h.job;
      entry.interval = h.batchInterval;
    }
    return read;
  };
  return {
    job: async () => {
      const h = await history();
      await h.batches;
      const name = o.graph?.name ?? h.job ?? o.name ?? 'unknown job';
      const batchInterval = o.graph?.batchInterval ?? h.interval ?? 0;
      return { name, batchInterval, live: o.live ?? false, where: o.where, ...planOf(o.graph) };
    },
    batches: async () => {
      const batches = await (await history()).batches;
      return { seq: batches.length, full: true, rows: batches.map(batchRow) };
    },
    batch: async (time) => (await (await history()).batches).find((b) => b.time === time),
    deadLetters: (time) => lettersOf(o.blobs, time),
  };
}
