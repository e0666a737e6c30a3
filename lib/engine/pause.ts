import { SluiceError } from '../core/errors.ts';
import type { BlobStore, Clock, MetaStore } from '../ports/index.ts';
import { CommitLog } from './commitLog.ts';
import { type Lease, keys } from './protocol.ts';

// Pausing, resuming and resetting a deployed job (`sluice pause`, `resume`, `reset`; docs/design.md
// §4, "Pause and reset"). The pause is one item of the job's MetaStore partition, which the AWS
// coordinator handler reads before it takes the lease and before every batch: it survives a
// redeploy (the table stays) and stops the job within a batch. No coordinator ever writes it, so
// it needs no epoch: creating it is conditional on its absence, removing it is idempotent.

/** The pause record (MetaStore key `pause`). */
export interface Pause {
  readonly [key: string]: string | number;
  /** When it was written (ms). */
  since: number;
  /** Who wrote it (user@host). */
  by: string;
}

/** Whether `v` is a pause record (anything else under the key is refused rather than guessed at). */
function isPause(v: unknown): v is Pause {
  return typeof v === 'object' && v !== null && typeof (v as Pause).since === 'number' && typeof (v as Pause).by === 'string';
}

/**
 * The job's pause, or undefined when it runs. One strongly consistent read of one small item: what
 * a paused job's coordinator invocation does, and all it does.
 *
 * @example
 * ```ts
 * const pause = await readPause(meta);
 * if (pause) console.log(`paused since ${new Date(pause.since).toISOString()} by ${pause.by}`);
 * ```
 */
export async function readPause(meta: MetaStore): Promise<Pause | undefined> {
  const item = await meta.get(keys.pause);
  if (item === undefined) return undefined;
  if (!isPause(item.value)) throw new SluiceError(`the pause record of this job is not one Sluice wrote: ${JSON.stringify(item.value).slice(0, 120)}`);
  return item.value;
}

/**
 * Pauses the job: writes the pause record unless one exists. Idempotent under overlap: of two
 * pauses at once, one creates the record (a write conditional on its absence) and the other finds
 * it and answers `already: true` with the first one's record. A running coordinator finishes its
 * batch, releases the lease and returns; later invocations read the record and do nothing else.
 *
 * @example
 * ```ts
 * const { pause, already } = await pauseJob(meta, { by: 'ana@laptop', now: Date.now() });
 * ```
 */
export async function pauseJob(meta: MetaStore, by: { readonly by: string; readonly now: number }): Promise<{ pause: Pause; already: boolean }> {
  const pause: Pause = { since: by.now, by: by.by };
  for (let tries = 0; tries < 5; tries++) {
    if ((await meta.put(keys.pause, pause, { expectedVersion: 0, epoch: 0 })) !== undefined) return { pause, already: false };
    const there = await readPause(meta);
    if (there) return { pause: there, already: true };
    // Resumed between our write and our read: write again.
  }
  throw new SluiceError('could not pause the job: its pause record was written and removed five times while this command ran (another pause and resume at the same time?)');
}

/**
 * Resumes the job: removes the pause record, and returns it (undefined when the job was not
 * paused). Idempotent: two resumes at once both end with no record. The next coordinator
 * invocation goes on from the checkpoint, missed batches first.
 *
 * @example
 * ```ts
 * const was = await resumeJob(meta); // the pause removed, or undefined
 * ```
 */
export async function resumeJob(meta: MetaStore): Promise<Pause | undefined> {
  const was = await readPause(meta);
  // The record is written with epoch 0 and never by a coordinator: a delete at epoch 0 always applies.
  if (was) await meta.delete(keys.pause, { epoch: 0 });
  return was;
}

/** What a reset keeps under the job's prefix: records set aside, and the record of past batches. Neither is state. */
const KEPT = ['dead-letters/', 'history/'] as const;

/** What {@link resetJob} removed. */
export interface ResetDone {
  /** The last batch the removed checkpoint had committed (undefined: there was none). */
  readonly lastCompleted?: number;
  /** Batch records removed. */
  readonly batchRecords: number;
  /** Blobs removed from the state store (state, lineage parts, spilled items, scratch). */
  readonly blobs: number;
  /** Dead-letter files kept (`dead-letters/`): records set aside are the user's to redrive or drop. */
  readonly deadLetterFiles: number;
  /** Batch history files kept (`history/`, the Streaming UI's record of past batches): what happened, not state. */
  readonly historyFiles: number;
}

/** Options of {@link resetJob}. */
export interface ResetOptions {
  /** The job's name, for messages. */
  readonly job: string;
  /** Who resets, in the lease while it runs (`sluice reset (ana@laptop)`). */
  readonly owner: string;
  readonly clock: Clock;
  /** How long the reset's lease lasts without renewal; it is renewed before every chunk of deletes. @default 60 000 */
  readonly leaseMs?: number;
  /** Blobs deleted per request. @default 1000 (S3's DeleteObjects) */
  readonly chunk?: number;
  /** Called after each step: the lease taken (and the pause read again), then each kind of removal (tests overlap a resume or a coordinator here). */
  readonly onStep?: (step: 'lease' | 'checkpoint' | 'records' | 'blobs') => void | Promise<void>;
}

/**
 * Resets a paused job: removes its checkpoint, its batch records and its blobs in the state store
 * (the sink is left alone, and so are its dead letters and its batch history), so that the next run starts from each
 * source's initial position. Refused unless the job is paused and no coordinator holds a live
 * lease. The reset itself takes the lease, as a coordinator would (a new epoch), so that:
 *
 * - a coordinator cannot start while it runs (a resume racing the reset makes the next invocation
 *   wait for the lease, and start from scratch once it is released);
 * - every delete of a MetaStore item is fenced by that epoch, and the checkpoint goes first, read
 *   back: should the reset's lease run out and a coordinator take the job over meanwhile, the
 *   checkpoint it wrote survives, and the reset stops before it deletes a blob;
 * - the blobs deleted are those listed once the checkpoint was gone, while the reset held the lease:
 *   a coordinator that starts afresh later writes under other names (later batch times, a greater
 *   epoch), so a late delete never removes its work.
 *
 * The lease is released at the end (not deleted: epochs keep growing, so coordinators older than
 * the reset stay fenced).
 *
 * @example
 * ```ts
 * const done = await resetJob(meta, blobs, { job: 'wordcount', owner: 'sluice reset (ana@laptop)', clock: new WallClock() });
 * console.log(`removed the checkpoint at ${done.lastCompleted}, ${done.batchRecords} batch records, ${done.blobs} blobs`);
 * ```
 */
export async function resetJob(meta: MetaStore, blobs: BlobStore, options: ResetOptions): Promise<ResetDone> {
  if (!(await readPause(meta))) throw new ResetRefusedError('the job is not paused: pause it first (sluice pause), then reset it');
  const log = new CommitLog(meta, { job: options.job, owner: options.owner, clock: options.clock, leaseMs: options.leaseMs ?? 60_000 });
  try {
    await log.acquireLease();
  } catch (e) {
    const lease = (await meta.get<Lease>(keys.lease))?.value;
    const until = lease ? ` until ${new Date(lease.expiresAt).toISOString()}` : '';
    throw new ResetRefusedError(
      `a coordinator still holds the job's lease${until} (${lease?.owner ?? 'unknown'}): a paused coordinator stops within 10 s and releases it; wait for that (sluice status shows the lease), then reset`,
      { cause: e },
    );
  }
  let released = false;
  try {
    // Resumed between the first read and the lease: a coordinator may have run since. Not a reset's to undo.
    if (!(await readPause(meta))) throw new ResetRefusedError('the job was resumed while the reset started; nothing was removed: pause it again to reset it');
    await options.onStep?.('lease');
    const checkpoint = await meta.get(keys.checkpoint);
    await meta.delete(keys.checkpoint, { epoch: log.epoch });
    const still = await meta.get(keys.checkpoint);
    if (still && still.epoch > log.epoch) throw log.fenced('remove the checkpoint (nothing was removed)');
    await options.onStep?.('checkpoint');
    const records = await meta.list('batch/');
    for (const key of records) await meta.delete(key, { epoch: log.epoch });
    await options.onStep?.('records');
    const listed = await blobs.list('');
    const gone = listed.filter((k) => !KEPT.some((prefix) => k.startsWith(prefix)));
    const chunk = options.chunk ?? 1000;
    for (let i = 0; i < gone.length; i += chunk) {
      // A renewal that fails means someone took the job over: stop deleting at once.
      await log.renewLease();
      await blobs.delete(gone.slice(i, i + chunk));
    }
    await options.onStep?.('blobs');
    await log.releaseLease();
    released = true;
    const last = (checkpoint?.value as { lastCompleted?: unknown } | undefined)?.lastCompleted;
    return {
      ...(typeof last === 'number' ? { lastCompleted: last } : {}),
      batchRecords: records.length,
      blobs: gone.length,
      deadLetterFiles: listed.filter((k) => k.startsWith(KEPT[0])).length,
      historyFiles: listed.filter((k) => k.startsWith(KEPT[1])).length,
    };
  } finally {
    // A reset that stopped midway gives the lease up too: the job stays paused, and a second reset finishes it.
    if (!released) await log.releaseLease().catch(() => undefined);
  }
}

/**
 * A reset the job's state does not allow now (not paused, a coordinator running); the message says what to do.
 *
 * @example
 * ```ts
 * try { await resetJob(meta, blobs, options); } catch (e) { if (e instanceof ResetRefusedError) console.error(e.message); }
 * ```
 */
export class ResetRefusedError extends SluiceError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ResetRefusedError';
  }
}
