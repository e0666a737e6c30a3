import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ROOT, runSluice } from '../helpers/cli.ts';
import { readSavedBatches } from '../helpers/outputs.ts';

/** Runs an example; `onStderr` sees stderr as it grows (progress lines tell when batches ran), `stop` sends SIGINT. */
function runExample(name: string, args: string[], opts: { cwd: string; env?: Record<string, string>; onStderr?: (all: string, stop: () => void) => void }) {
  const onStderr = opts.onStderr;
  return runSluice(['run', join(ROOT, 'examples', name), ...args], {
    cwd: opts.cwd,
    env: opts.env,
    onStderr: onStderr && ((all, signal) => onStderr(all, () => signal('SIGINT'))),
  });
}

describe('examples run as the README says', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sluice-examples-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('join-historic prints the words that beat their history', async () => {
    const r = await runExample('join-historic.ts', ['--batches', '2'], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.split('\n').filter((l) => l.startsWith('('));
    expect(lines.length).toBeGreaterThan(0);
    for (const l of lines) {
      const m = /^\((\w+),(\d+) (?:> (\d+)|\(new\))\)$/.exec(l);
      expect(m, l).not.toBeNull();
      if (m![3] !== undefined) expect(Number(m![2])).toBeGreaterThan(Number(m![3]));
    }
  }, 30_000);

  it('network-wordcount counts the lines a TCP server sends', async () => {
    // A server on 127.0.0.1 that sends lines to every connection, as `nc -lk` would.
    const sockets = new Set<Socket>();
    const server = createServer((s) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.write('to be or not to be\nthat is the question\n');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    try {
      let printed = '';
      const r = await runExample('network-wordcount.ts', [], {
        cwd: dir,
        env: { SLUICE_HOST: '127.0.0.1', SLUICE_PORT: String(port) },
        onStderr: (all, stop) => {
          // Stop once a batch held the two lines.
          if (/ 2 records /.test(all) && !printed) {
            printed = all;
            stop();
          }
        },
      });
      expect(r.code, r.stderr).toBe(0);
      const counts = r.stdout.split('\n').filter((l) => l.startsWith('('));
      expect(counts.sort()).toEqual(['(be,2)', '(is,1)', '(not,1)', '(or,1)', '(question,1)', '(that,1)', '(the,1)', '(to,2)']);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    }
  }, 30_000);

  it('file-wordcount counts the words of files moved into the folder', async () => {
    const incoming = join(dir, 'incoming');
    await mkdir(incoming);
    let moved = false;
    let stopped = false;
    const r = await runExample('file-wordcount.ts', [], {
      cwd: dir,
      env: { SLUICE_INPUT_DIR: incoming },
      onStderr: (all, stop) => {
        // After the first batch, move a file in; stop once a batch has read its 6 words.
        if (!moved && /^batch /m.test(all)) {
          moved = true;
          void writeFile(join(dir, 'f.txt'), 'To be or not to be\n').then(() => rename(join(dir, 'f.txt'), join(incoming, 'f.txt')));
        }
        if (!stopped && / 1 records /.test(all)) {
          stopped = true;
          stop();
        }
      },
    });
    expect(r.code, r.stderr).toBe(0);
    const saved = await readSavedBatches(join(dir, 'out'), 'file-wordcount');
    const withData = saved.filter((b) => b.files['part-00000'] !== '');
    expect(withData).toHaveLength(1);
    expect(withData[0].files['part-00000'].trim().split('\n').sort()).toEqual(['(be,2)', '(not,1)', '(or,1)', '(to,2)']);
  }, 40_000);
});
