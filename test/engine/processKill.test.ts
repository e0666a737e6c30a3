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
/** Batches the restart-job's runs ask for: the restart alone then reads all input, whatever was committed before. */
const BATCHES = input.length;
/** Batches the stateful job's runs ask for; the first N batches of every output are compared. */
const N = 12;

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

/**
 * The restart began with the batch after the checkpoint the stopped run left (no committed batch
 * run again, none skipped), and every output has exactly one directory per batch time, from the
 * first run's first batch to the restart's last.
 */
function expectResumedAfterCheckpoint(expect: ExpectStatic, first: SluiceRun, second: SluiceRun, stateAfterFirst: Checkpoint, saved: SavedBatch[][], restartBatches: number) {
  expect(second.code, second.stderr).toBe(0);
  expect(progressLines(second.stderr)[0]?.time, second.stderr).toBe(timeOfDay(stateAfterFirst.lastCompleted + INTERVAL_MS));
  const firstBatch = announcedNextBatch(first.stderr);
  const committedBefore = (stateAfterFirst.lastCompleted - firstBatch) / INTERVAL_MS + 1;
  for (const batches of saved) expect(batches.map((b) => b.time)).toEqual(batchTimes(firstBatch, committedBefore + restartBatches));
}

let root: string;
/** The uninterrupted runs every stopped run is compared with, started together. */
let reference: Promise<{ counts: SavedBatch[]; stateful: SavedBatch[][] }>;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'sluice-kill-'));
  const counts = (async () => {
    const out = join(root, 'ref-counts');
    const r = await runSluice(['run', JOB, '--state-dir', join(root, 'ref-counts-state'), '--batches', String(BATCHES)], { env: { SLUICE_TEST_OUT: out } });
    if (r.code !== 0) throw new Error(`reference run failed:\n${r.stderr}`);
    return readSavedBatches(out, 'counts');
  })();
  const stateful = (async () => {
    const out = join(root, 'ref-stateful');
    const r = await runSluice(['run', JOB_STATEFUL, '--state-dir', join(root, 'ref-stateful-state'), '--batches', String(N)], { env: { SLUICE_TEST_OUT: out } });
    if (r.code !== 0) throw new Error(`reference run failed:\n${r.stderr}`);
    return Promise.all(OUTPUTS.map((name) => readSavedBatches(out, name)));
  })();
  reference = Promise.all([counts, stateful]).then(([c, s]) => ({ counts: c, stateful: s }));
  await reference;
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

// Every case below runs concurrently with the others: each run mostly sleeps until its next batch is due.
describe.concurrent('process kills', () => {
  describe('sluice run killed and started again resumes from its checkpoint', () => {
    /** The non-empty batches in order: batch times differ between runs, the sequence must not. */
    function contents(batches: SavedBatch[]): Record<string, string>[] {
      return batches.map((b) => b.files).filter((f) => Object.entries(f).some(([name, text]) => name !== '_SUCCESS' && text !== ''));
    }

    /** Stops a first run with `stop`, restarts it, and checks the restart against the uninterrupted run. */
    async function stopAndRestart(expect: ExpectStatic, name: string, stop: (args: string[], env: Record<string, string>) => Promise<SluiceRun>) {
      const out = join(root, name);
      const stateDir = join(root, `${name}-state`);
      const args = ['run', JOB, '--state-dir', stateDir, '--batches', String(BATCHES)];
      const expected = contents((await reference).counts);
      expect(expected).toHaveLength(input.filter((b) => b.length > 0).length);

      // Act
      const first = await stop(args, { SLUICE_TEST_OUT: out });
      const checkpoint = await checkpointIn(stateDir);
      const second = await runSluice(args, { env: { SLUICE_TEST_OUT: out } });

      // Assess
      const saved = await readSavedBatches(out, 'counts');
      expectResumedAfterCheckpoint(expect, first, second, checkpoint, [saved], BATCHES);
      expect(contents(saved)).toEqual(expected);
      // Nothing but the parts and the marker in a batch directory: a write cut short stays in the
      // sink's staging directory beside them.
      for (const b of saved) expect(Object.keys(b.files)).toEqual(['_SUCCESS', 'part-00000', 'part-00001', 'part-00002']);
      return { first, checkpoint, out };
    }

    it.for(['cut@3', 'sealed@3', 'stage@3', 'part@3', 'success@3', 'commit@3', 'cleanup@3'])(
      'exit at %s: every batch saved exactly once, equal to an uninterrupted run',
      async (crash, { expect }) => {
        const { first, out } = await stopAndRestart(expect, `crash-${crash}`, (args, env) => runSluice(args, { env: { ...env, SLUICE_CRASH_AT: crash } }));
        expect(first.code, first.stderr).toBe(137);
        // An exit between protocol steps has no write in flight, so no staging directory is left
        // behind (the sink removes it when idle). A SIGKILL may leave one, swept later by age.
        expect((await readdir(out)).filter((f) => f.startsWith('.'))).toEqual([]);
      },
    );

    it.for([killPlan(1, 1), killPlan(2, 2), killPlan(3, 3)])(
      'SIGKILL after commit $afterCommits, $percent% into the next batch (seed $seed): the output is still exactly the uninterrupted one',
      async (plan, { expect }) => {
        const { first, checkpoint } = await stopAndRestart(expect, `kill-${plan.seed}`, (args, env) => runKilled(args, env, plan));
        expectKilledMidway(expect, first, checkpoint, plan, input.length);
      },
    );
  });

  describe('a job with windows and state, killed and started again', () => {
    /** The first N batches of every output, by position (batch times differ between runs). */
    const firstBatches = (saved: SavedBatch[][]) => saved.map((batches) => batches.slice(0, N).map((b) => b.files));

    async function stopAndRestart(expect: ExpectStatic, name: string, stop: (args: string[], env: Record<string, string>) => Promise<SluiceRun>) {
      const out = join(root, name);
      const stateDir = join(root, `${name}-state`);
      const args = ['run', JOB_STATEFUL, '--state-dir', stateDir, '--batches', String(N)];
      const expected = firstBatches((await reference).stateful);
      for (const batches of expected) expect(batches).toHaveLength(N);

      // Act
      const first = await stop(args, { SLUICE_TEST_OUT: out });
      const checkpoint = await checkpointIn(stateDir);
      const second = await runSluice(args, { env: { SLUICE_TEST_OUT: out } });

      // Assess
      const saved = await Promise.all(OUTPUTS.map((o) => readSavedBatches(out, o)));
      expectResumedAfterCheckpoint(expect, first, second, checkpoint, saved, N);
      expect(firstBatches(saved)).toEqual(expected);
      return { first, checkpoint };
    }

    it.for(['stage@5', 'part@14', 'commit@4', 'cleanup@7'])('exit at %s, restart: the first batches equal the uninterrupted run', async (crash, { expect }) => {
      const { first } = await stopAndRestart(expect, `crash-stateful-${crash}`, (args, env) => runSluice(args, { env: { ...env, SLUICE_CRASH_AT: crash } }));
      expect(first.code, first.stderr).toBe(137);
    });

    // Early, middle and late in the input: the restart rebuilds the windows and the keyed state from
    // a full snapshot plus up to two deltas (checkpointInterval is 3 batches), sessions still open.
    it.for([killPlan(2, 4), killPlan(4, 5), killPlan(7, 6)])(
      'SIGKILL after commit $afterCommits, $percent% into the next batch (seed $seed), restart: the output equals the uninterrupted run',
      async (plan, { expect }) => {
        const { first, checkpoint } = await stopAndRestart(expect, `kill-stateful-${plan.seed}`, (args, env) => runKilled(args, env, plan));
        expectKilledMidway(expect, first, checkpoint, plan, statefulInput.length);
      },
    );
  });
});
