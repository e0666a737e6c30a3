import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ROOT, type RunSluiceOptions, runSluice, type SluiceRun } from '../helpers/cli.ts';
import { readSavedBatches } from '../helpers/outputs.ts';

const sluice = (args: string[], opts?: RunSluiceOptions) => runSluice(args, opts);

describe('sluice run', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sluice-cli-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('runs the wordcount demo: Spark-style print blocks, saved output, a progress line per batch', async () => {
    const r = await sluice(['run', join(ROOT, 'examples/wordcount.ts'), '--batches', '2'], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    const blocks = r.stdout.split('-------------------------------------------\nTime: ').slice(1);
    expect(blocks).toHaveLength(2);
    for (const b of blocks) {
      expect(b).toMatch(/^\d+ ms\n-{43}\n/);
      expect(b).toContain('(I,1000)\n');
      expect(b).toContain('(dummy,1000)\n');
    }
    expect(r.stderr.match(/^batch \S+ UTC {2}1000 records {2}processed in \d+ ms {2}scheduling delay \d+ ms$/gm)).toHaveLength(2);
    const saved = await readSavedBatches(join(dir, 'out'), 'wordcount');
    expect(saved).toHaveLength(2);
    for (const b of saved) {
      expect(Object.keys(b.files)).toEqual(['_SUCCESS', 'part-00000']);
      const counts = Object.fromEntries(b.files['part-00000'].trim().split('\n').map((l) => [l.slice(1, l.lastIndexOf(',')), Number(l.slice(l.lastIndexOf(',') + 1, -1))]));
      expect(counts.I).toBe(1000);
      expect(Object.values(counts).reduce((a, c) => a + c, 0)).toBe(6000);
    }
    // State went to .sluice/<job> under the working directory.
    expect(await readdir(join(dir, '.sluice'))).toEqual(['wordcount']);
  }, 30_000);

  it('gives the same output on worker threads as in one thread', async () => {
    const job = join(ROOT, 'test/fixtures/restart-job.ts');
    const one = await sluice(['run', job, '--batches', '6', '--quiet', '--state-dir', join(dir, 's1')], { env: { SLUICE_TEST_OUT: join(dir, 'one') } });
    const three = await sluice(['run', job, '--batches', '6', '--quiet', '--parallelism', '3', '--state-dir', join(dir, 's3')], {
      env: { SLUICE_TEST_OUT: join(dir, 'three') },
    });
    expect(one.code, one.stderr).toBe(0);
    expect(three.code, three.stderr).toBe(0);
    // Each batch by its place in the run (the first has input): the third has none and so, by default, no directory.
    const saved = async (out: string) => {
      const batches = await readSavedBatches(join(dir, out), 'counts');
      return batches.map((x) => ({ batch: (x.time - batches[0].time) / 100, files: x.files }));
    };
    const a = await saved('one');
    expect(a.map((x) => x.batch)).toEqual([0, 1, 3, 4, 5]);
    expect(await saved('three')).toEqual(a);
  }, 60_000);

  it('--write-empty-batches, --no-write-empty-batches and SLUICE_WRITE_EMPTY_BATCHES choose whether a batch without input writes its directory', async () => {
    // Prepare: the restart-job's third batch has no input.
    const job = join(ROOT, 'test/fixtures/restart-job.ts');
    const run = (name: string, flags: string[], env: Record<string, string> = {}) =>
      sluice(['run', job, '--batches', '6', '--quiet', '--state-dir', join(dir, `${name}-state`), ...flags], { env: { ...env, SLUICE_TEST_OUT: join(dir, name) } });
    /** Each saved batch by its place in the run (the first has input), with the names of its files. */
    const layout = async (name: string) => {
      const batches = await readSavedBatches(join(dir, name), 'counts');
      return batches.map((b) => [(b.time - batches[0].time) / 100, Object.keys(b.files)]);
    };
    const parts = ['_SUCCESS', 'part-00000', 'part-00001', 'part-00002'];

    // Act
    const runs = await Promise.all([
      run('flag', ['--write-empty-batches']),
      run('env', [], { SLUICE_WRITE_EMPTY_BATCHES: 'true' }),
      run('flag-over-env', ['--no-write-empty-batches'], { SLUICE_WRITE_EMPTY_BATCHES: 'true' }),
    ]);

    // Assess: Spark's layout for every batch, the empty third one included; or no directory for it.
    for (const r of runs) expect(r.code, r.stderr).toBe(0);
    const every = [0, 1, 2, 3, 4, 5].map((b) => [b, parts]);
    expect(await layout('flag')).toEqual(every);
    expect(await layout('env')).toEqual(every);
    expect(await layout('flag-over-env')).toEqual(every.filter(([b]) => b !== 2));
    const empty = (await readSavedBatches(join(dir, 'flag'), 'counts'))[2].files;
    expect(empty).toEqual({ _SUCCESS: '', 'part-00000': '', 'part-00001': '', 'part-00002': '' });
  }, 60_000);

  it('gives the same output for a job with windows and state on worker threads', async () => {
    const job = join(ROOT, 'test/fixtures/stateful-job.ts');
    // --write-empty-batches: every batch writes each output (Spark's layout), on worker threads too.
    const args = ['run', job, '--batches', '12', '--quiet', '--write-empty-batches'];
    const one = await sluice([...args, '--state-dir', join(dir, 's1')], { env: { SLUICE_TEST_OUT: join(dir, 'one') } });
    const three = await sluice([...args, '--parallelism', '3', '--state-dir', join(dir, 's3')], { env: { SLUICE_TEST_OUT: join(dir, 'three') } });
    expect(one.code, one.stderr).toBe(0);
    expect(three.code, three.stderr).toBe(0);
    for (const name of ['inverse', 'window', 'totals', 'sessions']) {
      const a = (await readSavedBatches(join(dir, 'one'), name)).map((b) => b.files);
      const b = (await readSavedBatches(join(dir, 'three'), name)).map((x) => x.files);
      expect(a.length).toBe(12);
      expect(b).toEqual(a);
    }
  }, 60_000);

  it('stops gracefully on Ctrl-C after the current batch', async () => {
    let sent = false;
    const r = await sluice(['run', join(ROOT, 'examples/wordcount.ts')], {
      cwd: dir,
      onStdout: (all, kill) => {
        if (!sent && all.includes('Time: ')) {
          sent = true;
          kill('SIGINT');
        }
      },
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('stopping after the current batch');
    expect(r.stderr).toMatch(/stopped after \d+ batch\(es\)/);
    // Every batch that printed was also saved completely.
    for (const b of await readSavedBatches(join(dir, 'out'), 'wordcount')) expect(b.files._SUCCESS).toBe('');
  }, 30_000);
});

describe('sluice with wrong input', () => {
  it.each([
    [['--help'], 0, /Usage: sluice \[options\] \[command\]/, 'stdout'],
    [[], 2, /Usage: sluice \[options\] \[command\]/, 'stdout'],
    [['run'], 2, /^error: missing required argument 'job' \(see sluice help run\)$/m, 'stderr'],
    [['deploy', 'x.ts'], 2, /^error: unknown command 'deploy' \(see sluice help\)$/m, 'stderr'],
    [['run', 'examples/wordcount.ts', '--batches', '0'], 2, /^error: --batches must be a whole number >= 1, got "0"$/m, 'stderr'],
    [['run', 'examples/wordcount.ts', '--parallelism', 'two'], 2, /--parallelism must be a whole number >= 1/, 'stderr'],
    [['run', 'examples/wordcount.ts', '--duration', 'soon'], 2, /^error: --duration: cannot read "soon" as a duration/m, 'stderr'],
    [['run', 'examples/wordcount.ts', '--frobnicate'], 2, /^error: unknown option '--frobnicate' \(see sluice help run\)$/m, 'stderr'],
    [['run', 'examples/wordcount.ts', '--write-empty-batches=yes'], 2, /^error: unknown option '--write-empty-batches=yes' \(see sluice help run\)$/m, 'stderr'],
    [['run', 'examples/nope.ts'], 1, /^error: JobDefinitionError: job file examples\/nope.ts does not exist$/m, 'stderr'],
    [['run', 'test/fixtures/no-default-export.ts'], 1, /must export a job as its default export/, 'stderr'],
    [['run', 'test/fixtures/throws-on-load.ts'], 1, /failed to load: config file missing/, 'stderr'],
    [['plan'], 2, /^error: missing required argument 'job' \(see sluice help plan\)$/m, 'stderr'],
    [['state', '--limit', 'all', '--state-dir', '.'], 2, /^error: --limit must be a whole number >= 1, got "all"$/m, 'stderr'],
    [['status'], 2, /^error: give the job file \(its state is under \.sluice\/<job name>\) or --state-dir <dir>$/m, 'stderr'],
    [['status', '--state-dir', 'no/such/dir'], 2, /^error: no job state in no\/such\/dir: run the job there first \(sluice run <job>\), or give the --state-dir it runs with$/m, 'stderr'],
    [['plan', 'examples/nope.ts'], 1, /^error: JobDefinitionError: job file examples\/nope.ts does not exist$/m, 'stderr'],
    [['plan', 'test/fixtures/no-default-export.ts'], 1, /must export a job as its default export/, 'stderr'],
  ] as [string[], number, RegExp, 'stdout' | 'stderr'][])('sluice %j exits %i with a clear message', async (args, code, message, stream) => {
    const r = await sluice(args);
    expect(r.code).toBe(code);
    expect(r[stream]).toMatch(message);
  });

  it('SLUICE_WRITE_EMPTY_BATCHES other than true or false: exits 1 naming the variable, before any batch', async () => {
    const r = await sluice(['run', 'examples/wordcount.ts', '--batches', '1'], { env: { SLUICE_WRITE_EMPTY_BATCHES: 'yes' } });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: SluiceError: SLUICE_WRITE_EMPTY_BATCHES must be true or false, got "yes"$/m);
    expect(r.stdout).toBe('');
  });

  it('refuses a second run on the same state directory while the first is running', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sluice-cli-lease-'));
    try {
      let second: SluiceRun | undefined;
      const first = await sluice(['run', join(ROOT, 'examples/wordcount.ts'), '--duration', '20s'], {
        cwd: dir,
        onStdout: (all, kill) => {
          if (!second && all.includes('Time: ')) {
            second = { code: -1, signal: null, stdout: '', stderr: '' };
            void sluice(['run', join(ROOT, 'examples/wordcount.ts'), '--batches', '1'], { cwd: dir }).then((r) => {
              second = r;
              kill('SIGINT');
            });
          }
        },
      });
      expect(first.code).toBe(0);
      expect(second!.code).toBe(1);
      expect(second!.stderr).toMatch(/job wordcount is already running: coordinator .* holds the lease/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 40_000);
});

describe('sluice plan', () => {
  it("prints a job's graph and the stages of a batch without running it, or with --mermaid a flowchart", async () => {
    const text = await sluice(['plan', 'examples/wordcount.ts']);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toContain('job wordcount: a batch every 1000 ms\n');
    expect(text.stdout).toContain('  reduceByKey-1      ← map-1\n');
    expect(text.stdout).toContain('  stage 1  map     generator-1 → flatMap-1 → map-1  (a task per input split)\n');
    expect(text.stdout).toMatch(/^ {2}stage 3 {2}result {2}reduceByKey-1 → saveAsTextFiles-1 {2}\(\d+ tasks?, reads the shuffle of stage 1\)$/m);
    // Nothing ran: no output, no state.
    expect(text.stdout).not.toContain('Time: ');

    const mermaid = await sluice(['plan', 'examples/wordcount.ts', '--mermaid']);
    expect(mermaid.code, mermaid.stderr).toBe(0);
    expect(mermaid.stdout.startsWith('flowchart LR\n')).toBe(true);
    expect(mermaid.stdout).toContain('n_map_1 -. shuffle .-> n_reduceByKey_1');
  }, 30_000);
});

describe('sluice status', () => {
  it('says where a local job stands: after a clean run, and after a run killed in a batch', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sluice-status-'));
    try {
      const job = join(ROOT, 'examples/wordcount.ts');
      const run = await sluice(['run', job, '--batches', '2', '--quiet'], { cwd: dir });
      expect(run.code, run.stderr).toBe(0);
      const clean = await sluice(['status', job], { cwd: dir });
      expect(clean.code, clean.stderr).toBe(0);
      expect(clean.stdout).toMatch(/^state in \.sluice\/wordcount\njob wordcount: a batch every 1000 ms\nlast batch done: {7}\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(batch \d+\), \d+ s ago\n/);
      expect(clean.stdout).toContain('lease:                 free (released)\n');
      expect(clean.stdout).toContain('batches in flight:     none\n');

      // Killed right after its first batch's parts: the lease stays with the dead process, the batch in flight.
      const killed = await sluice(['run', job, '--batches', '2', '--quiet'], { cwd: dir, env: { SLUICE_CRASH_AT: 'part@1' } });
      expect(killed.code).toBe(137);
      const after = await sluice(['status', '--state-dir', '.sluice/wordcount'], { cwd: dir });
      expect(after.code, after.stderr).toBe(0);
      expect(after.stdout).toMatch(/^lease: {17}held by .+ until \S+Z$/m);
      expect(after.stdout).toMatch(/^batches in flight: {5}\d+ \(a run stopped in it; the next run recovers it from its lineage record\)$/m);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 40_000);
});

describe('sluice state', () => {
  it("decodes a job's keyed state as its last commit left it, filtered by key", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sluice-state-'));
    try {
      const job = join(ROOT, 'examples/running-totals.ts');
      expect((await sluice(['run', job, '--batches', '2', '--quiet'], { cwd: dir })).code).toBe(0);
      const all = await sluice(['state', job], { cwd: dir });
      expect(all.code, all.stderr).toBe(0);
      expect(all.stdout).toMatch(/^updateStateByKey-1 as of batch \d+: 20 key\(s\)$/m);
      const one = await sluice(['state', job, '--key', 'user-04'], { cwd: dir });
      expect(one.stdout).toMatch(/^updateStateByKey-1 as of batch \d+: 20 key\(s\), 1 matching user-04\n {2}"user-04" {2}\{"count":\d+,"total":[\d.]+\} {2}\(partition \d, last record in batch \d+\)\n$/);
      const none = await sluice(['state', job, '--node', 'window-9'], { cwd: dir });
      expect(none.code).toBe(2);
      expect(none.stderr).toMatch(/^error: no stateful operator window-9 in \.sluice\/running-totals; run sluice state without --node to see them$/m);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 40_000);
});

describe('sluice dead-letters', () => {
  it('lists the batches that set records aside, shows one, and writes their records back out as lines', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sluice-dead-'));
    try {
      const job = join(ROOT, 'test/fixtures/failing-record-job.ts');
      expect((await sluice(['run', job, '--batches', '2', '--quiet', '--on-record-error', 'dead-letter'], { cwd: dir })).code).toBe(0);
      const list = await sluice(['dead-letters', job], { cwd: dir });
      expect(list.code, list.stderr).toBe(0);
      const [, time] = /^batch (\d+) \(\S+Z\): 1 letter\(s\); first: map-1: cannot handle poison$/m.exec(list.stdout) ?? [];
      expect(time).toBeDefined();
      const one = await sluice(['dead-letters', job, '--batch', time], { cwd: dir });
      expect(one.stdout).toBe(`map-1: cannot handle poison\n  from {"node":"queue-1","partition":0,"offset":1,"split":{"from":0,"to":1,"partition":0,"of":1,"count":3}}\n  record "poison"\n`);
      const back = await sluice(['dead-letters', job, '--redrive-to', join(dir, 'back.txt')], { cwd: dir });
      expect(back.stdout).toBe(`1 record(s) of 1 batch(es) written to ${join(dir, 'back.txt')}, one a line\n`);
      expect(await readFile(join(dir, 'back.txt'), 'utf8')).toBe('poison\n');
      const none = await sluice(['dead-letters', job, '--batch', '5'], { cwd: dir });
      expect(none.code).toBe(2);
      expect(none.stderr).toMatch(/^error: batch 5 set no record aside in \.sluice\/failing-record; sluice dead-letters without --batch lists the batches that did$/m);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 40_000);
});
