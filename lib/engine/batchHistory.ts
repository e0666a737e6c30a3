import type { BlobStore, InputSplit } from '../ports/index.ts';

/**
 * What the Streaming UI shows of each batch: its timing (as `BatchInfo`), its stages and every
 * task attempt, the input it sealed, the outputs it wrote. The coordinator keeps the recent
 * batches in memory (a live page reads them) and writes them to the blob store now and then
 * (`history/`), so a page can show a job's past after the coordinator is gone: a stopped local
 * job, or a deployed one whose coordinators come and go every minute.
 *
 * History is a view, not part of the protocol: nothing reads it to decide anything. Each writer
 * names its files with its epoch and a nonce, so overlapping coordinators never overwrite each
 * other's; a batch two of them report (the one that committed it, and a superseded one whose
 * commit was refused) reads as completed. Quiet batches (no input, nothing written) stay in memory
 * only: an idle job writes no history, as it writes nothing else.
 */

/** One attempt of one task, as the coordinator saw it. */
export interface TaskAttemptSummary {
  readonly partition: number;
  readonly attempt: number;
  /** When it was sent, in ms after the batch's time (so its scheduling delay, and then how far into the run). */
  readonly start: number;
  /** How long until it answered, in ms. */
  readonly duration: number;
  readonly ok: boolean;
  /** Where it ran: inside the coordinator, or on a worker. */
  readonly where: 'coordinator' | 'worker';
  /** Records it read: from sources, shuffle segments and cached partitions. */
  readonly recordsIn?: number;
  /** Records it wrote: shuffle records, a cached partition, or what its action took. */
  readonly recordsOut?: number;
  /** Why it failed (a failed attempt). */
  readonly error?: string;
}

/** One stage of a batch: its tasks, and the stages whose output it read. */
export interface StageSummary {
  readonly key: string;
  readonly kind: 'map' | 'cache' | 'result';
  /** The operators it runs, parents first, by their labels. */
  readonly nodes: readonly string[];
  /** The batch whose data it computes (an earlier one for `slice`). */
  readonly planTime: number;
  readonly partitions: number;
  /** Keys of the stages whose shuffle or cache output it reads. */
  readonly reads: readonly string[];
  readonly tasks: readonly TaskAttemptSummary[];
}

/** One batch, as the Streaming UI shows it. Times are epoch ms, delays ms (as in `BatchInfo`). */
export interface BatchSummary {
  readonly time: number;
  /** `quiet`: done without a lineage record or a commit (no input, nothing changed). */
  readonly status: 'completed' | 'quiet' | 'failed';
  readonly records: number;
  readonly processingStartTime?: number;
  readonly processingEndTime?: number;
  readonly schedulingDelay?: number;
  readonly processingDelay?: number;
  readonly totalDelay?: number;
  readonly deadLetters: number;
  readonly runs: 'coordinator' | 'workers';
  /** Recovered from the lineage record of a coordinator that stopped in it. */
  readonly recovered: boolean;
  readonly stages: readonly StageSummary[];
  /** The input it read, sealed: each source's split per partition (shard and sequence range, file, block). */
  readonly input: { readonly [nodeId: string]: readonly InputSplit[] };
  /** Where its outputs wrote. */
  readonly outputs: readonly string[];
  /** Why it failed (a failed batch). */
  readonly error?: string;
}

/** A file of history: the batches one coordinator ran, in order. */
export interface HistoryFile {
  job: string;
  batchInterval: number;
  batches: BatchSummary[];
}

const HISTORY = 'history/';
const t15 = (time: number) => String(time).padStart(15, '0');
/** Files are listed in groups by the first 8 digits of their first batch's time: 10^7 ms, under 3 hours (at most 167 files of a minute each). */
const GROUP_DIGITS = 8;
/** Files read at once. */
const READ_AT_ONCE = 8;
const GROUP_MS = 10 ** (15 - GROUP_DIGITS);

/** Where a history file goes: its first and last batch, and who wrote it. */
export const historyKey = (first: number, last: number, writer: string): string => `${HISTORY}${t15(first)}-${t15(last)}-${writer}.json`;

/** How often a coordinator writes what it ran: after this many batches, or this long after the first unwritten one, and when it stops. */
export interface HistoryOptions {
  /** Batches kept in memory for a live page. @default 1000 (Spark's spark.streaming.ui.retainedBatches) */
  readonly retained?: number;
  /** @default 60 */
  readonly flushBatches?: number;
  /** @default 60_000 */
  readonly flushMs?: number;
}

/**
 * The batches a coordinator ran: the recent ones in memory, and written to `history/` in the blob
 * store in files of up to `flushBatches` batches (a minute of 1 s batches: one put a minute).
 *
 * @example
 * ```ts
 * const history = new BatchHistory(blobs, { job: 'clicks', batchInterval: 1000, writer: 'e7-1a2b' });
 * history.add(summary, Date.now());
 * await history.flush();
 * history.recent(); // the last 1000 batches, oldest first
 * ```
 */
export class BatchHistory {
  private readonly kept: BatchSummary[] = [];
  private pending: BatchSummary[] = [];
  private pendingSince = 0;
  private count = 0;
  private readonly retained: number;
  private readonly flushBatches: number;
  private readonly flushMs: number;
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly blobs: BlobStore,
    private readonly file: { readonly job: string; readonly batchInterval: number; writer: string },
    options: HistoryOptions = {},
  ) {
    this.retained = options.retained ?? 1000;
    this.flushBatches = options.flushBatches ?? 60;
    this.flushMs = options.flushMs ?? 60_000;
  }

  /** Who writes the next files (the coordinator's epoch is known only once it holds the lease). */
  set writer(w: string) {
    this.file.writer = w;
  }

  /** Adds a batch; writes the unwritten ones when there are enough or they are old enough. Quiet batches are kept in memory only. */
  add(b: BatchSummary, now: number): Promise<void> {
    this.kept.push(b);
    this.count++;
    if (this.kept.length > this.retained) this.kept.splice(0, this.kept.length - this.retained);
    if (b.status === 'quiet') return Promise.resolve();
    if (this.pending.length === 0) this.pendingSince = now;
    this.pending.push(b);
    return this.pending.length >= this.flushBatches || now - this.pendingSince >= this.flushMs ? this.flush() : Promise.resolve();
  }

  /** The batches kept in memory, oldest first. */
  recent(): readonly BatchSummary[] {
    return this.kept;
  }

  /** How many batches were added so far: a live page asks for those after the count it saw. */
  get added(): number {
    return this.count;
  }

  /** The batches kept in memory that were added after the first `seen`. */
  since(seen: number): readonly BatchSummary[] {
    const n = Math.min(this.kept.length, Math.max(0, this.count - seen));
    return this.kept.slice(this.kept.length - n);
  }

  /** Writes the batches not yet written, as one file. */
  flush(): Promise<void> {
    const batches = this.pending;
    if (batches.length === 0) return this.flushing;
    this.pending = [];
    const body: HistoryFile = { job: this.file.job, batchInterval: this.file.batchInterval, batches };
    const key = historyKey(batches[0].time, batches[batches.length - 1].time, this.file.writer);
    this.flushing = this.flushing.then(() => this.blobs.put(key, JSON.stringify(body)));
    return this.flushing;
  }
}

/**
 * What {@link readHistory} may keep between reads, for a page that reads a job's history again and
 * again: history files never change once written, nor do the listings of groups before the last two.
 * @example
 * ```ts
 * const cache = historyCache();
 * await readHistory(blobs, { cache }); // lists and reads
 * await readHistory(blobs, { cache }); // lists the newest groups, reads only new files
 * ```
 */
export interface HistoryCache {
  readonly files: Map<string, HistoryFile>;
  readonly groups: Map<string, string[]>;
}

/**
 * An empty {@link HistoryCache}.
 * @example
 * ```ts
 * const source = { cache: historyCache() };
 * ```
 */
export function historyCache(): HistoryCache {
  return { files: new Map(), groups: new Map() };
}

/** What {@link readHistory} read: the batches, oldest first, one per batch time. */
export interface HistoryRead {
  readonly job?: string;
  readonly batchInterval?: number;
  readonly batches: BatchSummary[];
}

/**
 * The batches a job's coordinators wrote to `history/`, newest `limit` of them up to `before`
 * (oldest first), one per batch time: a completed report wins over a failed one (a superseded
 * coordinator's refused commit), and a later failure over an earlier one. Lists the blob store
 * group by group backwards from `before` (a group covers under 3 hours), so a page over a
 * long-running job reads only its recent files; `lookBackMs` bounds how far (default 7 days).
 *
 * @example
 * ```ts
 * const { batches } = await readHistory(new FsBlobStore('.sluice/clicks/blobs'), { limit: 500 });
 * ```
 */
export async function readHistory(
  blobs: BlobStore,
  opts: { before?: number; limit?: number; lookBackMs?: number; cache?: HistoryCache } = {},
): Promise<HistoryRead> {
  const before = opts.before ?? Date.now();
  const limit = opts.limit ?? 1000;
  const oldest = before - (opts.lookBackMs ?? 7 * 24 * 3_600_000);
  const byTime = new Map<number, BatchSummary>();
  let job: string | undefined;
  let batchInterval: number | undefined;
  const add = (file: HistoryFile) => {
    job ??= file.job;
    batchInterval ??= file.batchInterval;
    for (const b of file.batches) {
      if (b.time > before || b.time < oldest) continue;
      const seen = byTime.get(b.time);
      if (!seen || (seen.status !== 'completed' && (b.status === 'completed' || (b.processingEndTime ?? 0) > (seen.processingEndTime ?? 0)))) byTime.set(b.time, b);
    }
  };
  const cache = opts.cache;
  const newest = Math.floor(before / GROUP_MS);
  const read = async (key: string): Promise<HistoryFile | undefined> => {
    const known = cache?.files.get(key);
    if (known) return known;
    const bytes = await blobs.get(key);
    if (!bytes?.byteLength) return undefined;
    const file = JSON.parse(new TextDecoder().decode(bytes)) as HistoryFile;
    cache?.files.set(key, file);
    return file;
  };
  // Group prefixes from `before` back; a file is listed under its first batch's group, newest files first.
  for (let g = newest; g >= Math.floor(oldest / GROUP_MS) && byTime.size < limit; g--) {
    const prefix = `${HISTORY}${t15(g * GROUP_MS).slice(0, GROUP_DIGITS)}`;
    let keys = cache?.groups.get(prefix);
    if (!keys) {
      keys = (await blobs.list(prefix)).reverse();
      // A group two before the newest gets no more files: a coordinator writes its batches within
      // a minute of the first, and a group spans hours. Its listing is kept; newer ones are listed again.
      if (g < newest - 1) cache?.groups.set(prefix, keys);
    }
    for (let i = 0; i < keys.length && byTime.size < limit; i += READ_AT_ONCE) {
      for (const file of await Promise.all(keys.slice(i, i + READ_AT_ONCE).map(read))) if (file) add(file);
    }
  }
  const batches = [...byTime.values()].sort((a, b) => a.time - b.time).slice(-limit);
  return { ...(job !== undefined ? { job } : {}), ...(batchInterval !== undefined ? { batchInterval } : {}), batches };
}
