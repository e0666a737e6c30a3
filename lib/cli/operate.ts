import { hostname, userInfo } from 'node:os';
import { createInterface } from 'node:readline/promises';
import { type Lease, keys } from '../engine/protocol.ts';
import { pauseJob, ResetRefusedError, readPause, resetJob, resumeJob } from '../engine/pause.ts';
import { WallClock } from '../node/clock.ts';
import { debugWanted, EXIT, reportError, UsageError } from './errors.ts';
import { type JobStoreFlags, type JobStores, jobStores, withStores } from './jobStores.ts';

/** The flags of `sluice pause`, `sluice resume` and `sluice reset`. */
export interface OperateFlags extends JobStoreFlags {
  /** Do it without asking (needed when stdin is not a terminal). */
  readonly yes?: boolean;
  readonly debug?: boolean;
}

/** What the three commands do, for the question and the messages. */
export type Operation = 'pause' | 'resume' | 'reset';

/** Where the confirmation is asked: a terminal's input and output (tests give their own). */
export interface Prompt {
  readonly input: NodeJS.ReadableStream & { readonly isTTY?: boolean };
  readonly output: NodeJS.WritableStream;
}

/** Who is operating the job, in the pause record and the reset's lease. */
function operator(): string {
  let user = 'someone';
  try {
    user = userInfo().username;
  } catch {
    // No user entry (a container's uid): the host still says where.
  }
  return `${user}@${hostname()}`;
}

const QUESTION: Record<Operation, string> = {
  pause: 'stops it after its current batch; it stays stopped, through deployments, until sluice resume',
  resume: 'its next coordinator invocation goes on from the checkpoint',
  reset: 'removes its checkpoint, batch records and state (not its sink, dead letters or batch history): it starts again from its stream\'s initial position',
};

/**
 * Asks for the job's name on a terminal before `operation`; `--yes` skips the question. Without a
 * terminal and without `--yes`, a {@link UsageError} says to add `--yes`. Resolves to whether the
 * name was typed.
 *
 * @example
 * ```ts
 * if (!(await confirmed('pause', stores, flags.yes))) return EXIT.failed;
 * ```
 */
export async function confirmed(operation: Operation, stores: Pick<JobStores, 'jobName' | 'where'>, yes: boolean | undefined, prompt: Prompt = { input: process.stdin, output: process.stderr }): Promise<boolean> {
  if (yes) return true;
  if (!prompt.input.isTTY) throw new UsageError(`sluice ${operation} asks you to type the job's name, and its input is not a terminal: add --yes to ${operation} job ${stores.jobName} without the question`);
  const rl = createInterface({ input: prompt.input, output: prompt.output });
  try {
    const answer = await rl.question(`${operation} job ${stores.jobName} (${stores.where})? This ${QUESTION[operation]}.\nType the job's name to ${operation} it: `);
    return answer.trim() === stores.jobName;
  } finally {
    rl.close();
  }
}

/** A time for a person: `2026-11-23 14:05:09 UTC`. */
function utc(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
}

/** The stores of the deployed job the flags name; a local job is refused first, before any AWS lookup. */
async function deployedJob(operation: Operation, file: string | undefined, flags: OperateFlags): Promise<JobStores> {
  if (flags.stack === undefined && flags.table === undefined && flags.bucket === undefined) {
    throw new UsageError(
      `sluice ${operation} operates a deployed job: give --stack NAME, or --table and --bucket (and --job). A local job ${operation === 'reset' ? 'starts from scratch with sluice run --reset' : 'stops with Ctrl-C and resumes when run again'}`,
    );
  }
  return jobStores(file, flags);
}

async function pause(stores: JobStores): Promise<string> {
  const { pause: p, already } = await pauseJob(stores.meta, { by: operator(), now: Date.now() });
  if (already) return `job ${stores.jobName} was already paused, since ${utc(p.since)} by ${p.by}; nothing changed\n`;
  return (
    `paused job ${stores.jobName} (${stores.where}) at ${utc(p.since)}\n` +
    'a coordinator running now stops within 10 s, at a batch boundary, and releases the lease; later invocations read the pause and do nothing else.\n' +
    'sluice status shows it; sluice resume goes on from the checkpoint\n'
  );
}

async function resume(stores: JobStores): Promise<string> {
  const was = await resumeJob(stores.meta);
  if (!was) return `job ${stores.jobName} was not paused; nothing changed\n`;
  const lease = (await stores.meta.get<Lease>(keys.lease))?.value;
  const resetting = lease && lease.owner.startsWith('sluice reset') && lease.expiresAt > Date.now() ? ` (a reset holds the lease until ${utc(lease.expiresAt)}: the job starts afresh once it is done)` : '';
  const last = ((await stores.meta.get(keys.checkpoint))?.value as { lastCompleted?: number } | undefined)?.lastCompleted;
  return (
    `resumed job ${stores.jobName} (paused since ${utc(was.since)} by ${was.by})${resetting}\n` +
    `its next coordinator invocation (within a minute) goes on from ${last === undefined ? "the stream's initial position (no checkpoint)" : `the checkpoint, after batch ${last} (${utc(last)}), missed batches first`}\n`
  );
}

async function reset(stores: JobStores): Promise<string> {
  try {
    const done = await resetJob(stores.meta, stores.blobs, { job: stores.jobName, owner: `sluice reset (${operator()})`, clock: new WallClock() });
    return (
      `reset job ${stores.jobName}: removed ${done.lastCompleted === undefined ? 'no checkpoint (there was none)' : `the checkpoint (last batch ${done.lastCompleted}, ${utc(done.lastCompleted)})`}, ` +
      `${done.batchRecords} batch record(s) and ${done.blobs} blob(s) under ${stores.deployed ? `s3://${stores.deployed.bucket}/${stores.deployed.prefix}` : stores.where}; kept ${done.deadLetterFiles} dead-letter file(s), ${done.historyFiles} batch history file(s) and the sink\n` +
      "the job is still paused: sluice resume starts it from its stream's initial position\n"
    );
  } catch (e) {
    if (e instanceof ResetRefusedError) throw new UsageError(`cannot reset job ${stores.jobName} now: ${e.message}`);
    throw e;
  }
}

const RUN: Record<Operation, (stores: JobStores) => Promise<string>> = { pause, resume, reset };

/**
 * `sluice pause|resume|reset`: operates a deployed job (`--stack`, or `--table --bucket [--job]`),
 * after the job's name is typed on a terminal or with `--yes`. Pause writes the pause record the
 * coordinator reads before it takes the lease and between batches; resume removes it; reset
 * (only while paused, with no coordinator holding the lease) removes the checkpoint, the batch
 * records and the state blobs, so the job starts again from its stream's initial position.
 *
 * @example
 * ```ts
 * process.exitCode = await operateCommand('pause', undefined, { stack: 'sluice-clicks', yes: true });
 * ```
 */
export async function operateCommand(operation: Operation, file: string | undefined, flags: OperateFlags): Promise<number> {
  try {
    return await withStores(deployedJob(operation, file, flags), async (stores) => {
      // Nothing to confirm for a resume of a job that runs, or a reset refused anyway: say so first.
      if (operation === 'reset' && !(await readPause(stores.meta))) throw new UsageError(`cannot reset job ${stores.jobName}: it is not paused; pause it first (sluice pause), then reset it`);
      if (!(await confirmed(operation, stores, flags.yes))) {
        process.stderr.write(`error: the job's name was not typed; nothing was done\n`);
        return EXIT.failed;
      }
      process.stdout.write(await RUN[operation](stores));
      return EXIT.ok;
    });
  } catch (e) {
    return reportError(e, { jobFile: file, debug: debugWanted(flags.debug) });
  }
}
