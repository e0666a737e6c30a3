import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { input } from '../fixtures/restart-job.ts';
import { runSluice } from '../helpers/cli.ts';
import { readSavedBatches, type SavedBatch } from '../helpers/outputs.ts';

const JOB = join(import.meta.dirname, '../fixtures/restart-job.ts');

/** Runs `sluice run` on the fixture job; `killAfterMs` sends SIGKILL after that long. */
function sluice(args: string[], env: Record<string, string>, killAfterMs?: number) {
  return runSluice(['run', JOB, '--quiet', ...args], { env, killAfterMs });
}

/** The non-empty batches in order: batch times differ between runs, the sequence must not. */
function contents(batches: SavedBatch[]): Record<string, string>[] {
  return batches.map((b) => b.files).filter((f) => Object.entries(f).some(([name, text]) => name !== '_SUCCESS' && text !== ''));
}

describe('sluice run killed and started again resumes from its checkpoint', () => {
  let dir: string;
  let refDir: string;
  let expected: Record<string, string>[];
  beforeAll(async () => {
    // The uninterrupted run every crashed run is compared with.
    refDir = await mkdtemp(join(tmpdir(), 'sluice-kill-ref-'));
    const reference = await sluice(['--state-dir', join(refDir, 'state'), '--batches', String(input.length)], { SLUICE_TEST_OUT: refDir });
    expect(reference.code, reference.stderr).toBe(0);
    expected = contents(await readSavedBatches(refDir, 'counts'));
    expect(expected).toHaveLength(input.filter((b) => b.length > 0).length);
  }, 30_000);
  afterAll(async () => {
    await rm(refDir, { recursive: true, force: true });
  });
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sluice-kill-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function run(name: string, crash?: string, killAfterMs?: number) {
    const env = { SLUICE_TEST_OUT: join(dir, name), ...(crash ? { SLUICE_CRASH_AT: crash } : {}) };
    const state = ['--state-dir', join(dir, `${name}-state`)];
    const first = await sluice([...state, '--batches', String(input.length + 2)], env, killAfterMs);
    const second = await sluice([...state, '--batches', String(input.length + 2)], { SLUICE_TEST_OUT: join(dir, name) });
    return { first, second, saved: await readSavedBatches(join(dir, name), 'counts') };
  }

  it.each(['cut@3', 'sealed@3', 'stage@3', 'part@3', 'success@3', 'commit@3', 'cleanup@3'])(
    'exit at %s: every batch saved exactly once, equal to an uninterrupted run',
    async (crash) => {
      // Act
      const { first, second, saved } = await run('crashed', crash);

      // Assess
      expect(first.code).toBe(137);
      expect(second.code, second.stderr).toBe(0);
      expect(contents(saved)).toEqual(expected);
      const times = saved.map((b) => b.time);
      expect(new Set(times).size).toBe(times.length);
      for (let i = 1; i < times.length; i++) expect(times[i] - times[i - 1]).toBe(100);
      for (const b of saved) expect(Object.keys(b.files)).toEqual(['_SUCCESS', 'part-00000', 'part-00001', 'part-00002']);
      // No staged write is left beside the batches (the sink's staging directory is gone when idle).
      expect((await readdir(join(dir, 'crashed'))).filter((f) => f.startsWith('.'))).toEqual([]);
    },
    60_000,
  );

  it('SIGKILL at random moments: the output is still exactly the uninterrupted one', async () => {
    for (const ms of [350, 500, 650, 800]) {
      const name = `killed-${ms}`;
      const { second, saved } = await run(name, undefined, ms);
      expect(second.code, second.stderr).toBe(0);
      expect(contents(saved)).toEqual(expected);
      const times = saved.map((b) => b.time);
      expect(new Set(times).size).toBe(times.length);
    }
  }, 120_000);
});

describe('a job with windows and state, killed and started again', () => {
  const JOB_STATEFUL = join(import.meta.dirname, '../fixtures/stateful-job.ts');
  const N = 12;
  let root: string;
  let reference: Record<string, Record<string, string>[]>;

  const run = (args: string[], out: string, killAfterMs?: number, crash?: string) =>
    runSluice(['run', JOB_STATEFUL, '--quiet', '--batches', String(N), ...args], {
      env: { SLUICE_TEST_OUT: out, ...(crash ? { SLUICE_CRASH_AT: crash } : {}) },
      killAfterMs,
    });

  /** The first N batches of every output, by position (batch times differ between runs). */
  async function firstBatches(out: string) {
    const all: Record<string, Record<string, string>[]> = {};
    for (const name of ['inverse', 'window', 'totals', 'sessions']) all[name] = (await readSavedBatches(out, name)).slice(0, N).map((b) => b.files);
    return all;
  }

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'sluice-kill-state-'));
    const r = await run(['--state-dir', join(root, 'ref-state')], join(root, 'ref'));
    expect(r.code, r.stderr).toBe(0);
    reference = await firstBatches(join(root, 'ref'));
    expect(reference.totals).toHaveLength(N);
  }, 30_000);
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it.each(['stage@5', 'part@14', 'commit@4', 'cleanup@7'])('exit at %s, restart: the first batches equal the uninterrupted run', async (crash) => {
    const out = join(root, `crash-${crash}`);
    const state = ['--state-dir', join(root, `state-${crash}`)];
    const first = await run(state, out, undefined, crash);
    expect(first.code).toBe(137);
    const second = await run(state, out);
    expect(second.code, second.stderr).toBe(0);
    expect(await firstBatches(out)).toEqual(reference);
  }, 60_000);

  it('SIGKILL at random moments, restart: the output equals the uninterrupted run', async () => {
    for (const ms of [450, 700, 950]) {
      const out = join(root, `kill-${ms}`);
      const state = ['--state-dir', join(root, `state-kill-${ms}`)];
      await run(state, out, ms);
      const second = await run(state, out);
      expect(second.code, second.stderr).toBe(0);
      expect(await firstBatches(out)).toEqual(reference);
    }
  }, 90_000);
});
