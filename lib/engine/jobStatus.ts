import type { BlobStore, MetaStore } from '../ports/index.ts';
import { listDeadLetters } from './deadLetters.ts';
import { type Pause, readPause } from './pause.ts';
import { type BatchRecord, type Checkpoint, keys, type Lease, type QuietRun } from './protocol.ts';
import { SpillingMetaStore } from './spillingMetaStore.ts';

/** Where a job stands, read from its stores (`sluice status`): nothing is written. */
export interface JobStatus {
  /** Undefined when the job never ran (no checkpoint). */
  readonly checkpoint?: {
    readonly job: string;
    readonly batchInterval: number;
    /** The last committed batch. */
    readonly lastCompleted: number;
    /** The last batch done: committed, or quiet after it (the lease's release says). */
    readonly lastDone: number;
    /** The last batch that had input, when the checkpoint knows it. */
    readonly lastInput?: number;
    readonly stateful: readonly string[];
  };
  readonly lease?: { readonly owner: string; readonly expiresAt: number; readonly idle: boolean };
  /** A deployed job's pause (`sluice pause`): when, and by whom. */
  readonly paused?: Pause;
  /** Lineage records after the last committed batch: a run stopped in them (the next run recovers the first). */
  readonly inFlight: readonly number[];
  /** Batches with dead letters, newest last, and how many files they hold. */
  readonly deadLetters: readonly { readonly time: number; readonly files: number }[];
}

/**
 * Reads a job's status from its meta and blob stores, as a coordinator would read them (spilled
 * values included), without taking the lease or writing anything.
 *
 * @example
 * ```ts
 * const status = await readJobStatus(new FsMetaStore('.sluice/wordcount/meta'), new FsBlobStore('.sluice/wordcount/blobs'));
 * status.checkpoint?.lastDone; // 1796162158000
 * ```
 */
export async function readJobStatus(meta: MetaStore, blobs: BlobStore): Promise<JobStatus> {
  const store = new SpillingMetaStore(meta, blobs);
  const checkpoint = await store.get<Checkpoint>(keys.checkpoint);
  const lease = await store.get<Lease>(keys.lease);
  const quiet = lease?.value.quiet as QuietRun | undefined;
  const c = checkpoint?.value;
  const lastDone = c && quiet && quiet.checkpointVersion === checkpoint.version && quiet.through > c.lastCompleted ? quiet.through : c?.lastCompleted;
  const inFlight: number[] = [];
  for (const key of await store.list('batch/')) {
    const record = c ? await store.get<BatchRecord>(key) : undefined;
    if (record && record.value.status === 'RUNNING' && record.value.time > c!.lastCompleted) inFlight.push(record.value.time);
  }
  const letters = await listDeadLetters(blobs);
  const paused = await readPause(meta);
  return {
    ...(paused ? { paused } : {}),
    ...(c
      ? {
          checkpoint: {
            job: c.job,
            batchInterval: c.batchInterval,
            lastCompleted: c.lastCompleted,
            lastDone: lastDone!,
            ...(typeof c.lastInput === 'number' ? { lastInput: c.lastInput } : {}),
            stateful: Object.keys(c.state),
          },
        }
      : {}),
    ...(lease ? { lease: { owner: lease.value.owner, expiresAt: lease.value.expiresAt, idle: quiet?.idle === true } } : {}),
    inFlight: inFlight.sort((a, b) => a - b),
    deadLetters: letters.map(({ time, files }) => ({ time, files: files.length })),
  };
}

/**
 * The status as lines for a terminal, times in UTC, ages against `now`.
 *
 * @example
 * ```ts
 * process.stdout.write(formatJobStatus(status, Date.now()));
 * ```
 */
export function formatJobStatus(s: JobStatus, now: number): string {
  const at = (t: number) => `${new Date(t).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC')} (batch ${t})`;
  const ago = (t: number) => {
    const ms = now - t;
    return ms < 0 ? 'ahead of this clock' : ms < 120_000 ? `${Math.round(ms / 1000)} s ago` : ms < 7_200_000 ? `${Math.round(ms / 60_000)} min ago` : `${Math.round(ms / 3_600_000)} h ago`;
  };
  const c = s.checkpoint;
  const row = (label: string, text: string) => `${`${label}:`.padEnd(23)}${text}`;
  const paused = s.paused ? row('paused', `since ${at(s.paused.since).replace(/ \(batch \d+\)$/, '')}, ${ago(s.paused.since)}, by ${s.paused.by} (sluice resume goes on from the checkpoint)`) : undefined;
  if (!c) return `no checkpoint: the job has not committed a batch here yet\n${paused ? `${paused}\n` : ''}`;
  const lines = [`job ${c.job}: a batch every ${c.batchInterval} ms`];
  if (paused) lines.push(paused);
  lines.push(row('last batch done', `${at(c.lastDone)}, ${ago(c.lastDone)}${c.lastDone > c.lastCompleted ? ` (quiet since the last commit, ${at(c.lastCompleted)})` : ''}`));
  if (c.lastInput !== undefined) lines.push(row('last batch with input', `${at(c.lastInput)}, ${ago(c.lastInput)}`));
  const l = s.lease;
  lines.push(
    !l
      ? row('lease', 'never taken')
      : l.owner === ''
        ? row('lease', `free (released${l.idle ? '; the job is idle: each run only looks for input' : ''})`)
        : row('lease', `held by ${l.owner} until ${new Date(l.expiresAt).toISOString()}${l.expiresAt < now ? ' (expired: the holder stopped without releasing it)' : ''}`),
  );
  lines.push(
    s.inFlight.length
      ? row('batches in flight', `${s.inFlight.join(', ')} (a run stopped in ${s.inFlight.length === 1 ? 'it' : 'them'}; the next run recovers ${s.inFlight.length === 1 ? 'it' : 'the first'} from its lineage record)`)
      : row('batches in flight', 'none'),
  );
  const files = s.deadLetters.reduce((n, d) => n + d.files, 0);
  lines.push(
    files
      ? row('dead letters', `${files} file(s) in ${s.deadLetters.length} batch(es), the latest ${at(s.deadLetters[s.deadLetters.length - 1].time)}`)
      : row('dead letters', 'none'),
  );
  lines.push(row('stateful operators', c.stateful.length ? c.stateful.join(', ') : 'none'));
  return `${lines.join('\n')}\n`;
}
