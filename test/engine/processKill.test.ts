// `sluice run` stopped hard and started again on the same state directory: the saved output must
// equal an uninterrupted run's. Two ways to stop it: the CLI's crash hook (SLUICE_CRASH_AT, an exit
// right after a protocol step: deterministic) and a SIGKILL from this process at a seeded moment of
// the batch after an observed commit (what a real crash looks like: anywhere, even mid-write).
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, type ExpectStatic, it } from 'vitest';
import { type Checkpoint, keys } from '../../lib/engine/protocol.ts';
import { FsMetaStore } from '../../lib/local/fsMetaStore.ts';
import { input } from '../fixtures/restart-job.ts';
import { input as statefulInput, OUTPUTS } from '../fixtures/stateful-job.ts';
import { announcedNextBatch, progressLines, runSluice, type SluiceRun, timeOfDay } from '../helpers/cli.ts';
import { readSavedBatches, type SavedBatch } from '../helpers/outputs.ts';
import { mulberry32 } from '../helpers/windows.ts';

const JOB = join(import.meta.dirname, '../fixtures/restart-job.ts');
const JOB_STATEFUL = join(import.meta.dirname, '../fixtures/stateful-job.ts');
/** Both fixtures' batch interval. */
const INTERVAL_MS = 100;
/** Batches of the restart-job's runs, stopped run and restart together: one per input batch. */
const BATCHES = input.length;
/** Batches of the stateful job's runs, stopped run and restart together: the input and two more. */
const N = statefulInput.length + 2;
/** The restart-job writes a directory only for batches with input (writeEmptyBatches is off). */
const COUNTS_WRITTEN = (i: number) => input[i].length > 0;
/**
 * The stateful job runs with SLUICE_WRITE_EMPTY_BATCHES=true: every output writes every batch, so
 * a batch lost or doubled by the restart shows in every output.
 */
const STATEFUL_ENV = { SLUICE_WRITE_EMPTY_BATCHES: 'true' };

/** The checkpoint a stopped run left in its state directory (the local runtime keeps its MetaStore under `meta/`). */
async function checkpointIn(stateDir: string): Promise<Checkpoint> {
  const item = await new FsMetaStore(join(stateDir, 'meta')).get<Checkpoint>(keys.checkpoint);
  if (!item) throw new Error(`no checkpoint in ${stateDir}`);
  return item.value;
}

/** `count` consecutive batch times from `first`. */
function batchTimes(first: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => first + i * INTERVAL_MS);
}

/** Where a SIGKILL lands: after the `afterCommits`-th commit, `percent` % into the next batch's run (drawn from `seed`). */
interface KillPlan {
  readonly afterCommits: number;
  readonly seed: number;
  readonly percent: number;
}

function killPlan(afterCommits: number, seed: number): KillPlan {
  return { afterCommits, seed, percent: Math.floor(mulberry32(seed)() * 100) };
}

/**
 * Runs `sluice` and SIGKILLs it at `plan`'s moment. The k-th progress line says batch k committed
 * (the line is written after the commit); batch k+1 is due one interval after batch k and runs
 * about as long as batch k did (its line says how long), so the kill is sent `percent` % of that
 * after batch k+1 was due: while it cuts, computes, writes or commits.
 */
function runKilled(args: string[], env: Record<string, string>, plan: KillPlan): Promise<SluiceRun> {
  let armed = false;
  return runSluice(args, {
    env,
    onStderr: (all, signal) => {
      const lines = progressLines(all);
      if (armed || lines.length < plan.afterCommits) return;
      armed = true;
      const due = announcedNextBatch(all) + plan.afterCommits * INTERVAL_MS;
      const at = due + (lines[plan.afterCommits - 1].ranMs * plan.percent) / 100;
      setTimeout(() => signal('SIGKILL'), Math.max(0, at - Date.now()));
    },
  });
}

/**
 * The kill came from outside and left a checkpoint strictly between the start and the end: at
 * least the `afterCommits` batches seen committed, and input left that the restart must read.
 */
function expectKilledMidway(expect: ExpectStatic, run: SluiceRun, { lastCompleted }: Checkpoint, plan: KillPlan, inputBatches: number) {
  expect(run.signal, `the run ended by itself before the kill:\n${run.stderr}`).toBe('SIGKILL');
  const first = announcedNextBatch(run.stderr);
  expect(lastCompleted, 'checkpoint before the commits seen').toBeGreaterThanOrEqual(first + (plan.afterCommits - 1) * INTERVAL_MS);
  expect(lastCompleted, 'checkpoint past the last input batch').toBeLessThan(first + (inputBatches - 1) * INTERVAL_MS);
}

/** The `(key,count)` pairs of a saved batch's parts, as a map; throws on a key written twice. */
function savedCounts(batch: SavedBatch): Map<string, number> {
  const counts = new Map<string, number>();
  for (const [file, text] of Object.entries(batch.files)) {
    if (!file.startsWith('part-')) continue;
    for (const m of text.matchAll(/^\((.*),(\d+)\)$/gm)) {
      if (counts.has(m[1])) throw new Error(`key ${m[1]} saved twice in batch ${batch.time}`);
      counts.set(m[1], Number(m[2]));
    }
  }
  return counts;
}

/** Adds one to `counts` for each of `keys`. */
function countInto(counts: Map<string, number>, keys: readonly string[]): Map<string, number> {
  for (const k of keys) counts.set(k, (counts.get(k) ?? 0) + 1);
  return counts;
}

/** How many batches a stopped run committed, by the checkpoint it left. */
function committedBy(run: SluiceRun, { lastCompleted }: Checkpoint): number {
  return (lastCompleted - announcedNextBatch(run.stderr)) / INTERVAL_MS + 1;
}

/**
 * Stops a first run of `job` with `stop`, then restarts it for the batches left of `batches`.
 * Checks that the restart began with the batch after the checkpoint the stopped run left (no
 * committed batch run again, none skipped) and that every output has exactly one directory per
 * batch time that `written` picks, from the first run's first batch to the restart's last.
 */
async function stopAndRestart(
  expect: ExpectStatic,
  opts: { job: string; name: string; batches: number; outputs: readonly string[]; written: (batch: number) => boolean; env?: Record<string, string> },
  stop: (args: string[], env: Record<string, string>) => Promise<SluiceRun>,
) {
  const out = join(root, opts.name);
  const stateDir = join(root, `${opts.name}-state`);
  const env = { ...opts.env, SLUICE_TEST_OUT: out };
  const run = (batches: number) => ['run', opts.job, '--state-dir', stateDir, '--batches', String(batches)];

  // Act
  const first = await stop(run(opts.batches), env);
  const checkpoint = await checkpointIn(stateDir);
  const second = await runSluice(run(opts.batches - committedBy(first, checkpoint)), { env });

  // Assess
  expect(second.code, second.stderr).toBe(0);
  expect(progressLines(second.stderr)[0]?.time, second.stderr).toBe(timeOfDay(checkpoint.lastCompleted + INTERVAL_MS));
  const saved = await Promise.all(opts.outputs.map((o) => readSavedBatches(out, o)));
  const times = batchTimes(announcedNextBatch(first.stderr), opts.batches).filter((_, i) => opts.written(i));
  for (const batches of saved) expect(batches.map((b) => b.time)).toEqual(times);
  return { first, checkpoint, out, saved };
}

let root: string;
/** The uninterrupted runs every stopped run is compared with, started together. */
let reference: { counts: SavedBatch[]; stateful: SavedBatch[][] };

/** Runs `job` for `batches` batches, uninterrupted; resolves to its output directory. */
async function uninterrupted(job: string, name: string, batches: number, env: Record<string, string> = {}): Promise<string> {
  const out = join(root, name);
  const r = await runSluice(['run', job, '--state-dir', join(root, `${name}-state`), '--batches', String(batches)], { env: { ...env, SLUICE_TEST_OUT: out } });
  if (r.code !== 0) throw new Error(`the uninterrupted run of ${job} failed:\n${r.stderr}`);
  return out;
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'sluice-kill-'));
  const [counts, stateful] = await Promise.all([
    uninterrupted(JOB, 'ref-counts', BATCHES).then((out) => readSavedBatches(out, 'counts')),
    uninterrupted(JOB_STATEFUL, 'ref-stateful', N, STATEFUL_ENV).then((out) => Promise.all(OUTPUTS.map((o) => readSavedBatches(out, o)))),
  ]);
  reference = { counts, stateful };
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

// Every case below runs concurrently with the others: each run mostly sleeps until its next batch is due.
describe.concurrent('process kills', () => {
  describe('sluice run killed and started again resumes from its checkpoint', () => {
    /** Stops and restarts the restart-job; every batch's files equal the uninterrupted run's, by position (times differ). */
    async function stopAndRestartCounts(expect: ExpectStatic, name: string, stop: (args: string[], env: Record<string, string>) => Promise<SluiceRun>) {
      const r = await stopAndRestart(expect, { job: JOB, name, batches: BATCHES, outputs: ['counts'], written: COUNTS_WRITTEN }, stop);
      // File names included: nothing but the parts and the marker in a batch directory (a write
      // cut short stays in the sink's staging directory beside them).
      expect(r.saved[0].map((b) => b.files)).toEqual(reference.counts.map((b) => b.files));
      return r;
    }

    it('the uninterrupted run it is compared with holds the word counts of each input batch', async ({ expect }) => {
      expect(reference.counts.map(savedCounts)).toEqual(input.filter((_, i) => COUNTS_WRITTEN(i)).map((lines) => countInto(new Map(), lines.flatMap((l) => l.split(' ')))));
    });

    it.for(['cut@3', 'sealed@3', 'stage@3', 'part@3', 'success@3', 'commit@3', 'cleanup@3'])(
      'exit at %s: every batch saved exactly once, equal to an uninterrupted run',
      async (crash, { expect }) => {
        const { first, out } = await stopAndRestartCounts(expect, `crash-${crash}`, (args, env) => runSluice(args, { env: { ...env, SLUICE_CRASH_AT: crash } }));
        expect(first.code, first.stderr).toBe(137);
        // An exit between protocol steps has no write in flight, so no staging directory is left
        // behind (the sink removes it when idle). A SIGKILL may leave one, swept later by age.
        expect((await readdir(out)).filter((f) => f.startsWith('.'))).toEqual([]);
      },
    );

    it.for([killPlan(1, 1), killPlan(2, 2), killPlan(3, 3)])(
      'SIGKILL after commit $afterCommits, $percent% into the next batch (seed $seed): the output is still exactly the uninterrupted one',
      async (plan, { expect }) => {
        const { first, checkpoint } = await stopAndRestartCounts(expect, `kill-${plan.seed}`, (args, env) => runKilled(args, env, plan));
        expectKilledMidway(expect, first, checkpoint, plan, input.length);
      },
    );
  });

  describe('a job with windows and state, killed and started again', () => {
    /** Stops and restarts the stateful job; every output's batches equal the uninterrupted run's, by position (times differ). */
    async function stopAndRestartStateful(expect: ExpectStatic, name: string, stop: (args: string[], env: Record<string, string>) => Promise<SluiceRun>) {
      const r = await stopAndRestart(expect, { job: JOB_STATEFUL, name, batches: N, outputs: OUTPUTS, written: () => true, env: STATEFUL_ENV }, stop);
      const files = (saved: SavedBatch[][]) => saved.map((batches) => batches.map((b) => b.files));
      expect(files(r.saved)).toEqual(files(reference.stateful));
      return r;
    }

    it('the uninterrupted run it is compared with holds the running click totals of each batch', async ({ expect }) => {
      const totals = reference.stateful[OUTPUTS.indexOf('totals')];
      const running = new Map<string, number>();
      const expected = Array.from({ length: N }, (_, i) => new Map(countInto(running, statefulInput[i] ?? [])));
      expect(totals.map(savedCounts)).toEqual(expected);
    });

    it.for(['stage@5', 'part@14', 'commit@4', 'cleanup@7'])('exit at %s, restart: every output equals the uninterrupted run', async (crash, { expect }) => {
      const { first } = await stopAndRestartStateful(expect, `crash-stateful-${crash}`, (args, env) => runSluice(args, { env: { ...env, SLUICE_CRASH_AT: crash } }));
      expect(first.code, first.stderr).toBe(137);
    });

    // Early, middle and late in the input: the restart rebuilds the windows and the keyed state from
    // a full snapshot plus up to two deltas (checkpointInterval is 3 batches), sessions still open.
    it.for([killPlan(2, 4), killPlan(4, 5), killPlan(7, 6)])(
      'SIGKILL after commit $afterCommits, $percent% into the next batch (seed $seed), restart: the output equals the uninterrupted run',
      async (plan, { expect }) => {
        const { first, checkpoint } = await stopAndRestartStateful(expect, `kill-stateful-${plan.seed}`, (args, env) => runKilled(args, env, plan));
        expectKilledMidway(expect, first, checkpoint, plan, statefulInput.length);
      },
    );
  });
});
