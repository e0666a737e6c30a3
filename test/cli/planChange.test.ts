import { cp, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { input } from '../fixtures/plan-change-job.ts';
import { ROOT, runSluice, type SluiceRun } from '../helpers/cli.ts';
import { readSavedBatches, type SavedBatch } from '../helpers/outputs.ts';

// README, "Run a job locally": "A job whose plan changed since the checkpoint is refused with the
// nodes that changed; `--allow-plan-change` resumes anyway, `--reset` starts from scratch."
// docs/design.md §3: the fingerprint covers kinds, wiring, parameters and slides.

const JOB = join(ROOT, 'test/fixtures/plan-change-job.ts');
/** Batches the first run commits before the job is changed. */
const FIRST_RUN = 3;

/** The running totals a batch saved (`(word,n)` lines in its parts), by word. */
function totalsIn(batch: SavedBatch): Record<string, number> {
  const totals: Record<string, number> = {};
  for (const [name, text] of Object.entries(batch.files)) {
    if (!name.startsWith('part-')) continue;
    for (const line of text.split('\n').filter(Boolean)) {
      const [word, n] = line.slice(1, -1).split(',');
      totals[word] = Number(n);
    }
  }
  return totals;
}

/** The totals after the first `n` queue entries, counted from the input. */
function countsAfter(n: number): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const w of input.slice(0, n).flat()) counts[w] = (counts[w] ?? 0) + 1;
  return counts;
}

/**
 * Runs `sluice run` on the fixture in `workDir`, with its state in `workDir/state`. Outputs go to
 * `workDir/out` through a relative prefix: the same in every run, as it is part of the plan.
 */
function sluiceIn(workDir: string, args: string[], env: Record<string, string> = {}): Promise<SluiceRun> {
  return runSluice(['run', JOB, '--state-dir', join(workDir, 'state'), ...args], { cwd: workDir, env: { SLUICE_TEST_OUT: 'out', ...env } });
}

describe('sluice run on a job whose plan changed since its checkpoint', () => {
  let dir: string;
  let firstBatches: SavedBatch[];
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sluice-plan-change-'));
    const firstDir = join(dir, 'first');
    await mkdir(firstDir);
    const first = await sluiceIn(firstDir, ['--batches', String(FIRST_RUN), '--quiet']);
    expect(first.code, first.stderr).toBe(0);
    firstBatches = await readSavedBatches(join(firstDir, 'out'), 'totals');
    expect(firstBatches.map(totalsIn)).toEqual(Array.from({ length: FIRST_RUN }, (_, i) => countsAfter(i + 1)));
  }, 30_000);
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** A directory for one test, holding a copy of the state the first run left. */
  async function withStateOfFirstRun(name: string): Promise<string> {
    const workDir = join(dir, name);
    await cp(join(dir, 'first', 'state'), join(workDir, 'state'), { recursive: true });
    return workDir;
  }

  it('a plain resume of the job with an operator added is refused, naming the changed nodes and both flags', async () => {
    const workDir = await withStateOfFirstRun('added');
    const r = await sluiceIn(workDir, ['--batches', '1'], { SLUICE_TEST_FILTER: '1' });
    expect(r.code).toBe(1);
    // The filter is new, and the map now reads from it; the nodes after it kept their wiring.
    expect(r.stderr).toMatch(/^error: CheckpointError: .*made by a different plan of job plan-change-job; nodes changed: filter-1, map-1\. /);
    expect(r.stderr).toContain('--allow-plan-change');
    expect(r.stderr).toContain('--reset');
    expect(await readdir(workDir)).toEqual(['state']);
  }, 30_000);

  it('a change of a parameter only (the window length) is a changed plan too: refused, naming the window node', async () => {
    const workDir = await withStateOfFirstRun('window');
    const r = await sluiceIn(workDir, ['--batches', '1'], { SLUICE_TEST_WINDOW: '400ms' });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/nodes changed: reduceByKeyAndWindow-1\. /);
    expect(await readdir(workDir)).toEqual(['state']);
  }, 30_000);

  it('--allow-plan-change resumes from the checkpoint: the batches go on after the last committed one, and the state carries over', async () => {
    // Prepare
    const workDir = await withStateOfFirstRun('allowed');
    const lastCommitted = firstBatches.at(-1)!.time;
    // Act
    const r = await sluiceIn(workDir, ['--batches', '3', '--allow-plan-change'], { SLUICE_TEST_FILTER: '1' });
    // Assess
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('warning: resuming job plan-change-job with a changed plan (nodes changed: filter-1, map-1)');
    expect(r.stderr).toContain(`resuming after batch ${lastCommitted}`);
    const resumed = await readSavedBatches(join(workDir, 'out'), 'totals');
    expect(resumed).toHaveLength(3);
    expect(resumed[0].time).toBeGreaterThan(lastCommitted);
    // The queue goes on from where the first run left it, and the totals include the first run's words.
    expect(resumed.map(totalsIn)).toEqual([1, 2, 3].map((i) => countsAfter(FIRST_RUN + i)));
  }, 30_000);

  it('--reset deletes the state directory and starts from scratch: the batches and the totals start again', async () => {
    // Prepare: something of the old state that only a deleted directory loses.
    const workDir = await withStateOfFirstRun('reset');
    await writeFile(join(workDir, 'state', 'left-by-the-old-run'), '');
    // Act
    const r = await sluiceIn(workDir, ['--batches', '2', '--reset'], { SLUICE_TEST_FILTER: '1' });
    // Assess
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('fresh state');
    expect(r.stderr).not.toContain('resuming');
    expect(await readdir(join(workDir, 'state'))).not.toContain('left-by-the-old-run');
    const restarted = await readSavedBatches(join(workDir, 'out'), 'totals');
    expect(restarted.map(totalsIn)).toEqual([1, 2].map((i) => countsAfter(i)));
  }, 30_000);
});
