import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, type ExpectStatic, it } from 'vitest';
import { ROOT, runSluice, type SluiceRun } from '../helpers/cli.ts';
import { readSavedBatches, type SavedBatch } from '../helpers/outputs.ts';

// The windowed and stateful examples, run as the README says (`npx sluice run examples/<file>`), in
// real time: 1 s batches. The tests run concurrently, so the file takes about as long as the longest
// example (8 batches), not the sum.

/** Runs an example in a fresh working directory; `inspect` sees the run and the directory before it is removed. */
async function runExample<R>(name: string, args: string[], env: Record<string, string>, inspect: (r: SluiceRun, dir: string) => Promise<R> | R): Promise<R> {
  const dir = await mkdtemp(join(tmpdir(), `sluice-${name}-`));
  try {
    const r = await runSluice(['run', join(ROOT, 'examples', `${name}.ts`), ...args], { cwd: dir, env, killAfterMs: 40_000 });
    return await inspect(r, dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** One Spark-style print block: its batch time, the record lines, and whether `...` said there were more. */
interface PrintBlock {
  readonly time: number;
  readonly records: string[];
  readonly more: boolean;
}

const RULE = '-------------------------------------------';

/** Splits stdout into print blocks; fails on anything else in stdout. */
function printBlocks(stdout: string): PrintBlock[] {
  const re = new RegExp(`^${RULE}\\nTime: (\\d+) ms\\n${RULE}\\n((?:.+\\n)*)\\n`, 'gm');
  const blocks: PrintBlock[] = [];
  let parsed = 0;
  for (const m of stdout.matchAll(re)) {
    if (m.index !== parsed) throw new Error(`unexpected output before a print block: ${JSON.stringify(stdout.slice(parsed, m.index))}`);
    parsed = m.index + m[0].length;
    const lines = m[2].split('\n').slice(0, -1);
    const more = lines.at(-1) === '...';
    blocks.push({ time: Number(m[1]), records: more ? lines.slice(0, -1) : lines, more });
  }
  if (parsed !== stdout.length) throw new Error(`unexpected output after the print blocks: ${JSON.stringify(stdout.slice(parsed))}`);
  return blocks;
}

/** `(key,12)` -> `['key', 12]` */
function countPair(line: string): [string, number] {
  const m = /^\((.+),(\d+)\)$/.exec(line);
  if (!m) throw new Error(`not a (key,count) pair: ${line}`);
  return [m[1], Number(m[2])];
}

/** `(key,{"a":1})` -> `['key', { a: 1 }]` */
function jsonPair<V>(line: string): [string, V] {
  const m = /^\(([^,]+),(\{.*\})\)$/.exec(line);
  if (!m) throw new Error(`not a (key,{json}) pair: ${line}`);
  return [m[1], JSON.parse(m[2]) as V];
}

/** One block per batch, every batch interval (1 s). */
function expectConsecutive(expect: ExpectStatic, blocks: PrintBlock[], n: number): void {
  expect(blocks).toHaveLength(n);
  for (let i = 1; i < n; i++) expect(blocks[i].time - blocks[i - 1].time).toBe(1000);
}

/**
 * What a top-10 over a window that is still filling must look like: at most 10 records, counts
 * positive and in descending order, and a key's count never drops from one batch to the next
 * (nothing has left the 5-minute window yet). Returns the counts per block.
 */
function expectGrowingTop10(expect: ExpectStatic, blocks: PrintBlock[]): Map<string, number>[] {
  const tops = blocks.map((b) => {
    expect(b.records.length).toBeGreaterThan(0);
    expect(b.records.length).toBeLessThanOrEqual(10);
    const pairs = b.records.map(countPair);
    const counts = pairs.map(([, n]) => n);
    expect(counts, `block ${b.time}`).toEqual([...counts].sort((x, y) => y - x));
    for (const n of counts) expect(n).toBeGreaterThan(0);
    expect(new Set(pairs.map(([k]) => k)).size).toBe(pairs.length);
    return new Map(pairs);
  });
  for (let i = 1; i < tops.length; i++) {
    for (const [k, n] of tops[i - 1]) {
      if (tops[i].has(k)) expect(tops[i].get(k), `${k} at ${blocks[i].time}`).toBeGreaterThanOrEqual(n);
    }
  }
  return tops;
}

describe.concurrent('windowed and stateful examples run as the README says', () => {
  it('top-urls prints the top 10 URLs of the window, by count, every second', async ({ expect }) => {
    await runExample('top-urls', ['--batches', '5'], {}, (r) => {
      expect(r.code, r.stderr).toBe(0);
      const blocks = printBlocks(r.stdout);
      expectConsecutive(expect, blocks, 5);
      const tops = expectGrowingTop10(expect, blocks);
      for (const [i, top] of tops.entries()) {
        // 500 lines a second: the window holds at most 500 per batch so far.
        expect([...top.values()].reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(500 * (i + 1));
        for (const url of top.keys()) expect(url).toMatch(/^\/[^?\s]*$/); // paths, query strings cut off
      }
      // The skew gives a clear leader, and its count climbs while the window fills.
      expect(blocks.at(-1)!.records[0]).toMatch(/^\(\/,\d+\)$/);
      expect(tops.at(-1)!.get('/')!).toBeGreaterThan(tops[0].get('/')!);
    });
  }, 40_000);

  it('hashtags prints the 10 most used hashtags of the window, by count, every second', async ({ expect }) => {
    await runExample('hashtags', ['--batches', '5'], {}, (r) => {
      expect(r.code, r.stderr).toBe(0);
      const blocks = printBlocks(r.stdout);
      expectConsecutive(expect, blocks, 5);
      const tops = expectGrowingTop10(expect, blocks);
      for (const top of tops) for (const tag of top.keys()) expect(tag).toMatch(/^#[a-z0-9_]+$/);
      // 15 distinct tags in play: the print is cut at 10 once they have all come up.
      expect(blocks.at(-1)!.more).toBe(true);
      expect(blocks.at(-1)!.records[0]).toMatch(/^\(#typescript,\d+\)$/);
      expect(tops.at(-1)!.get('#typescript')!).toBeGreaterThan(tops[0].get('#typescript')!);
    });
  }, 40_000);

  it('running-totals keeps per-user totals that only grow, and saves them as JSON', async ({ expect }) => {
    interface Totals {
      count: number;
      total: number;
      mean: number;
    }
    const { blocks, saved } = await runExample('running-totals', ['--batches', '5'], {}, async (r, dir) => {
      expect(r.code, r.stderr).toBe(0);
      return { blocks: printBlocks(r.stdout), saved: await readSavedBatches(join(dir, 'out'), 'running-totals') };
    });
    expectConsecutive(expect, blocks, 5);
    const states = blocks.map((b) => {
      expect(b.more).toBe(false); // print(20) for 20 users: every user is printed
      return new Map(b.records.map((l) => jsonPair<Totals>(l)));
    });
    for (const [i, state] of states.entries()) {
      expect(state.size).toBeLessThanOrEqual(20);
      for (const [user, { count, total, mean }] of state) {
        expect(user).toMatch(/^user-\d\d$/);
        expect(count).toBeGreaterThan(0);
        expect(Number.isInteger(count)).toBe(true);
        expect(total).toBeGreaterThan(0);
        expect(Math.abs(mean - total / count), `${user}: mean ${mean} of ${total} / ${count}`).toBeLessThanOrEqual(0.005 + 1e-9);
      }
      // 100 purchases a second, every one counted exactly once since the start.
      expect([...state.values()].reduce((a, s) => a + s.count, 0)).toBe(100 * (i + 1));
      if (i === 0) continue;
      for (const [user, before] of states[i - 1]) {
        const now = state.get(user);
        expect(now, `${user} lost its state at ${blocks[i].time}`).toBeDefined();
        expect(now!.count).toBeGreaterThanOrEqual(before.count);
        expect(now!.total).toBeGreaterThanOrEqual(before.total);
      }
    }
    expect(states.at(-1)!.size).toBe(20);

    // The saved batches hold the same records as the printed ones, one JSON document per line.
    expect(saved.map((b: SavedBatch) => b.time)).toEqual(blocks.map((b) => b.time));
    for (const [i, b] of saved.entries()) {
      expect(b.files).toHaveProperty('_SUCCESS');
      const parts = Object.keys(b.files).filter((f) => f.startsWith('part-'));
      expect(parts.length).toBeGreaterThan(0);
      const records = parts.flatMap((p) => b.files[p].split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as [string, Totals]));
      expect(new Map(records)).toEqual(states[i]);
      expect(records).toHaveLength(states[i].size);
    }
  }, 40_000);

  it('sessions prints sessions closed by the idle timeout (SLUICE_SESSION_IDLE=2s)', async ({ expect }) => {
    interface Closed {
      clicks: number;
      startedAt: string;
      endedAt: string;
    }
    await runExample('sessions', ['--batches', '8'], { SLUICE_SESSION_IDLE: '2s' }, (r) => {
      expect(r.code, r.stderr).toBe(0);
      const blocks = printBlocks(r.stdout);
      expectConsecutive(expect, blocks, 8);
      const closed = blocks.flatMap((b) => b.records.map((l) => ({ at: b.time, session: jsonPair<Closed>(l) })));
      expect(closed.length).toBeGreaterThan(0);
      const users = new Set<string>();
      for (const { at, session: [user, { clicks, startedAt, endedAt }] } of closed) {
        const start = Date.parse(startedAt);
        const end = Date.parse(endedAt);
        expect(user).toMatch(/^user-\d\d$/);
        expect(clicks).toBeGreaterThan(0);
        expect(clicks).toBeLessThanOrEqual(40 * 8); // 40 clicks a second
        expect(end).toBeGreaterThanOrEqual(start);
        expect(start).toBeGreaterThanOrEqual(blocks[0].time);
        // Closed only once idle for longer than 2 s.
        expect(at - end, `${user} closed at ${at}`).toBeGreaterThan(2000);
        // Each user comes once a minute: one closed session each in 8 s.
        expect(users.has(user)).toBe(false);
        users.add(user);
      }
    });
  }, 40_000);

  it('sessions stay open for 30 s by default (SLUICE_SESSION_IDLE unset)', async ({ expect }) => {
    // Over the same 6 batches that close sessions with a 2 s idle time, the default closes none.
    await runExample('sessions', ['--batches', '6'], { SLUICE_SESSION_IDLE: '' } /* empty: the default, whatever the outer environment says */, (r) => {
      expect(r.code, r.stderr).toBe(0);
      const blocks = printBlocks(r.stdout);
      expectConsecutive(expect, blocks, 6);
      expect(blocks.flatMap((b) => b.records)).toEqual([]);
    });
  }, 40_000);
});
