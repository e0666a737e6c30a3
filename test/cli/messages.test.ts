// Issue 12: each message a user meets says what went wrong and what to do, in the exact words below.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { defineJob } from '../../lib/api/job.ts';
import { buildGraph } from '../../lib/api/job.ts';
import { announcedNextBatch, progressLines, ROOT, runSluice, timeOfDay } from '../helpers/cli.ts';

describe('sluice messages (exact command, exact text)', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sluice-messages-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('sluice run examples/wordcount.ts --bogus: names the option and where the options are listed', async () => {
    const r = await runSluice(['run', 'examples/wordcount.ts', '--bogus']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe("error: unknown option '--bogus' (see sluice help run)\n");
  });

  it('sluice run examples/wordcount.ts --duration -5s: says the duration is negative', async () => {
    const r = await runSluice(['run', 'examples/wordcount.ts', '--duration', '-5s']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`error: --duration: "-5s" is negative; a duration must be positive, like '500ms', '2s', '5m'\n`);
  });

  it('sluice run examples/nope.ts: a fatal error prints as error:, not warning:', async () => {
    const r = await runSluice(['run', 'examples/nope.ts']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('error: JobDefinitionError: job file examples/nope.ts does not exist\n');
  });

  it('sluice run test/fixtures/typo-job.ts: a TypeError while the job is built points at its line in the job file', async () => {
    const file = 'test/fixtures/typo-job.ts';
    const lines = (await readFile(join(ROOT, file), 'utf8')).split('\n');
    const line = lines.findIndex((l) => l.includes('.prnt('));
    const column = lines[line].indexOf('prnt') + 1;
    const r = await runSluice(['run', file, '--batches', '1'], { env: { SLUICE_DEBUG: '' } });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`error: TypeError: lines.prnt is not a function\n  at ${file}:${line + 1}:${column}\n`);
  });

  it('sluice run test/fixtures/failing-record-job.ts: a batch failing on every attempt names the record and what to do', async () => {
    const r = await runSluice(['run', 'test/fixtures/failing-record-job.ts', '--batches', '1', '--quiet', '--state-dir', join(dir, 'state')]);
    expect(r.code).toBe(1);
    const time = /\(batch (\d+), partition 0\)/.exec(r.stderr)?.[1];
    expect(r.stderr.split('\n').filter((l) => l.startsWith('error:'))).toEqual([
      `error: RecordError: map-1 threw on the string "poison": cannot handle poison (batch ${time}, partition 0) [task result-${time}-1.map-1, failed on all 2 attempt(s)]. ` +
        "The batch cannot complete while this record is in it: set onRecordError: 'dead-letter' in the job (or run with --on-record-error dead-letter) to set such records aside and go on, fix the function, or start over from fresh state with --reset",
    ]);
  });

  it.each([
    ['--batch-interval 300ms', ['--batch-interval', '300ms'], {}],
    ['SLUICE_BATCH_INTERVAL=300ms', [], { SLUICE_BATCH_INTERVAL: '300ms' }],
    ['--batch-interval 300ms on worker threads', ['--batch-interval', '300ms', '--parallelism', '2'], {}],
  ] as [string, string[], Record<string, string>][])('sluice run examples/wordcount.ts %s: batches come at that interval, not the job\'s 1s', async (_, args, env) => {
    const r = await runSluice(['run', join(ROOT, 'examples/wordcount.ts'), '--batches', '3', ...args], { cwd: dir, env });
    expect(r.code, r.stderr).toBe(0);
    const first = announcedNextBatch(r.stderr);
    expect(progressLines(r.stderr).map((l) => l.time)).toEqual([0, 1, 2].map((i) => timeOfDay(first + i * 300)));
  });

  it('sluice run: progress lines name the time zone of their times', async () => {
    const r = await runSluice(['run', join(ROOT, 'examples/wordcount.ts'), '--batches', '1'], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    const line = r.stderr.split('\n').find((l) => l.startsWith('batch '));
    expect(line).toMatch(new RegExp(`^batch ${timeOfDay(announcedNextBatch(r.stderr)).replace('.', '\\.')} UTC {2}1000 records {2}processed in \\d+ ms {2}scheduling delay \\d+ ms$`));
  });
});

describe('duration messages of the API', () => {
  const build = (make: (lines: ReturnType<Parameters<Parameters<typeof defineJob>[1]>[0]['queueStream']>) => { print(): void }) =>
    buildGraph(defineJob({ name: 'j', batchInterval: '1s' }, (ctx) => make(ctx.queueStream<string>([])).print()));

  it('window(0) names the window once: "the window of window()", no "window: window:"', () => {
    expect(() => build((s) => s.window(0))).toThrow(/^the window of window\(\): must be a positive whole number of milliseconds, got 0$/);
  });

  it("window('-5s') says negative, not that it cannot be read", () => {
    expect(() => build((s) => s.window('-5s'))).toThrow(`the window of window(): "-5s" is negative; a duration must be positive, like '500ms', '2s', '5m'`);
  });

  it('a negative batch interval in milliseconds says negative too', () => {
    expect(() => defineJob({ name: 'j', batchInterval: -1000 }, () => undefined)).toThrow('job j: batchInterval: -1000 is negative');
  });
});
