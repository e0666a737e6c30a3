import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { ROOT } from '../helpers/cli.ts';

// The new user's path (issue 12): the package as `npm pack` makes it, installed from its tarball into
// a fresh `npm init -y` project (no "type": "module"), then used the ways a user would: the `sluice`
// command on job files of every extension, `sluice/testing` from plain Node, a CommonJS CDK app run
// by ts-node, and type-checking. Only the npm registry is reached, and little of it: the npm cache
// that `npm ci` filled holds our exact versions (--prefer-offline). The steps share one tarball and
// one project, and run side by side.

/** The queueStream batches of every job file below; the expected output is computed from them. */
const INPUT = [
  ['a', 'b', 'a'],
  ['c', 'a'],
];
const BATCH_INTERVAL = '200ms';

/** The versions the repository itself uses, so the npm cache has them. */
const manifest = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as {
  exports: Record<string, string | Record<string, string>>;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};
const versionOf = (name: string) => `${name}@${manifest.dependencies[name] ?? manifest.devDependencies[name]}`;

/**
 * The environment of the npm commands: ours, without what an outer `npm test` exported about this
 * repository (npm_config_local_prefix would point a nested npm at it), keeping how npm fetches.
 */
const env = Object.fromEntries(
  Object.entries(process.env).filter(
    ([name]) => !name.toLowerCase().startsWith('npm_') || /^npm_config_(cache|userconfig|globalconfig|registry|cafile|proxy|https_proxy|noproxy)$/i.test(name),
  ),
);

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

function run(command: string, args: string[], cwd: string): Promise<Run> {
  return new Promise((resolve) => {
    execFile(command, args, { cwd, env, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** Runs a command that must succeed; its output is the failure message otherwise. */
async function succeed(command: string, args: string[], cwd: string): Promise<Run> {
  const r = await run(command, args, cwd);
  if (r.code !== 0) throw new Error(`${command} ${args.join(' ')} failed (${r.code}):\n${r.stdout}\n${r.stderr}`);
  return r;
}

/**
 * A job printing the word counts of each batch and the running count of each word (mapWithState:
 * its StateSpec comes from the job's own `sluice`, and the command's copy checks it with
 * `instanceof`, so two copies of the package fail the job). `typed` adds TypeScript-only syntax.
 */
function jobSource(name: string, typed: boolean): string {
  const word = typed ? 'w: string' : 'w';
  const state = typed ? 'state: { getOption(): number | undefined; update(n: number): void }' : 'state';
  return `import { defineJob, StateSpec } from 'sluice';

export default defineJob({ name: '${name}', batchInterval: '${BATCH_INTERVAL}' }, (ctx) => {
  const words = ctx.queueStream(${JSON.stringify(INPUT)});
  words.countByValue().print();
  words
    .map((${word}) => [w, 1])
    .mapWithState(StateSpec.function((word, one, ${state}) => {
      const total = (state.getOption() ?? 0) + (one ?? 0);
      state.update(total);
      return [word, total];
    }))
    .print();
});
`;
}

/** The record lines the job prints over all batches, sorted: per batch its counts, then a running total per record. */
function expectedRecordLines(): string[] {
  const lines: string[] = [];
  const totals = new Map<string, number>();
  for (const batch of INPUT) {
    const counts = new Map<string, number>();
    for (const w of batch) counts.set(w, (counts.get(w) ?? 0) + 1);
    for (const [w, n] of counts) lines.push(`(${w},${n})`);
    for (const w of batch) {
      totals.set(w, (totals.get(w) ?? 0) + 1);
      lines.push(`(${w},${totals.get(w)})`);
    }
  }
  return lines.sort();
}

/** The same running totals as runBatches returns them: one [word, total] per record, per batch. */
function expectedTotalsPerBatch(): [string, number][][] {
  const totals = new Map<string, number>();
  return INPUT.map((batch) =>
    batch.map((w): [string, number] => {
      totals.set(w, (totals.get(w) ?? 0) + 1);
      return [w, totals.get(w)!];
    }),
  );
}

/** A plain Node script using `sluice/testing` by `require` and by `import` (one copy of the package serves both). */
const TESTING_SCRIPT = `
const { StateSpec } = require('sluice');
const { runBatches: requiredRunBatches } = require('sluice/testing');

const build = (ctx) =>
  ctx.queueStream(${JSON.stringify(INPUT)})
    .map((w) => [w, 1])
    .mapWithState(StateSpec.function((word, one, state) => {
      const total = (state.getOption() ?? 0) + one;
      state.update(total);
      return [word, total];
    }));

(async () => {
  const { runBatches: importedRunBatches } = await import('sluice/testing');
  const options = { batchInterval: 1000, batches: ${INPUT.length} };
  const required = await requiredRunBatches(options, build);
  const imported = await importedRunBatches(options, build);
  const sorted = (out) => out.map((b) => b.data.map((r) => JSON.stringify(r)).sort());
  console.log(JSON.stringify({ required: sorted(required), imported: sorted(imported) }));
})();
`;

/** A CDK app as older `cdk init app --language typescript` made it: CommonJS, run by ts-node. */
const CDK_APP = `import { App, Stack } from 'aws-cdk-lib';
import { SluiceJob } from 'sluice/cdk';

const app = new App({ outdir: 'cdk.out' });
const stack = new Stack(app, 'Counting');
// The job's own 200 ms interval is for the local runs above; on AWS it runs at 1 s.
new SluiceJob(stack, 'Job', { entry: 'job.ts', batchInterval: '1s' });
type Fn = { Type: string; Properties: { Handler: string; Code: { S3Key: string } } };
const template = app.synth().getStackByName('Counting').template as { Resources: Record<string, Fn> };
const functions = Object.values(template.Resources).filter((r) => r.Type === 'AWS::Lambda::Function');
// Each function's bundle, as CDK staged it in the cloud assembly: cdk.out/asset.<hash>.
const assets = functions.map((f) => ({ handler: f.Properties.Handler, dir: 'cdk.out/asset.' + f.Properties.Code.S3Key.replace(/\\.zip$/, '') }));
console.log(JSON.stringify({ functions: functions.length, assets }));
`;

/**
 * Loads a function's bundle as Lambda does (the handler names the file and the export) and runs it
 * once: the worker on a payload of the wrong shape, which it answers without calling AWS.
 */
const BUNDLE_CHECK = `const [dir, handler] = process.argv.slice(2);
const [file, name] = handler.split('.');
const mod = await import(new URL(dir + '/' + file + '.mjs', 'file://' + process.cwd() + '/').href);
const out = name === 'worker' ? await mod.worker({ hello: 'world' }) : typeof mod[name];
console.log(JSON.stringify({ exports: Object.keys(mod), out }));
`;

/** The tsconfig of such an app (the `cdk init` template before it moved to NodeNext). */
const CDK_TSCONFIG = {
  compilerOptions: {
    target: 'ES2020',
    module: 'commonjs',
    lib: ['es2020'],
    declaration: true,
    strict: true,
    noImplicitAny: true,
    strictNullChecks: true,
    noImplicitThis: true,
    alwaysStrict: true,
    noImplicitReturns: true,
    inlineSourceMap: true,
    inlineSources: true,
    experimentalDecorators: true,
    strictPropertyInitialization: false,
    typeRoots: ['./node_modules/@types'],
  },
  exclude: ['node_modules', 'cdk.out', 'nodenext'],
};

/** Uses each entry point's types; the @ts-expect-error lines fail the check if the types were `any`. */
const TYPES_CHECK = `import { App, Stack } from 'aws-cdk-lib';
import { defineJob, StateSpec } from 'sluice';
import { runBatches } from 'sluice/testing';
import { SluiceJob } from 'sluice/cdk';

const job = defineJob({ name: 'typed', batchInterval: '1s' }, (ctx) => {
  ctx.queueStream([['a']]).map((w): [string, number] => [w, 1]).print();
});
export const spec = StateSpec.function<string, number, number, number>((_word, one, state) => (state.getOption() ?? 0) + (one ?? 0));
export const out: Promise<{ time: number; data: number[] }[]> = runBatches({ batchInterval: '1s', batches: 1 }, (ctx) => ctx.queueStream([[1]]));
new SluiceJob(new Stack(new App(), 'S'), 'Job', { entry: 'job.ts' });
// @ts-expect-error a job is not a number
export const notANumber: number = job;
// @ts-expect-error SluiceJob needs its props
new SluiceJob(new Stack(new App(), 'T'), 'Job');
`;

/** A project as `cdk init` makes it today: module NodeNext, and still no "type" in package.json. */
const NODENEXT_TSCONFIG = {
  compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', lib: ['es2022'], strict: true, skipLibCheck: true, noEmit: true, typeRoots: ['../node_modules/@types'] },
  include: ['*.ts'],
};

const JOB_FILES = ['job.ts', 'job.mts', 'job.cts', 'job.js', 'job.mjs'] as const;

describe.concurrent('sluice installed from its tarball into a new project', () => {
  let work: string;
  let project: string;
  let packed: { filename: string; files: { path: string }[] };
  /** The project `sluice init` made, installed. */
  let made: string;
  let initialised: Promise<void>;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'sluice-package-'));
    project = join(work, 'project');
    made = join(work, 'made');
    await mkdir(project);
    // npm builds dist/ (the prepare script) and lists what it packed.
    const pack = await succeed('npm', ['pack', '--json', '--pack-destination', work], ROOT);
    [packed] = JSON.parse(pack.stdout) as (typeof packed)[];
    const tarball = join(work, packed.filename);
    await succeed('npm', ['init', '-y'], project);
    await succeed(
      'npm',
      ['install', '--prefer-offline', '--no-audit', '--no-fund', tarball, ...['ts-node', 'typescript', 'aws-cdk-lib', 'constructs', '@types/node'].map(versionOf)],
      project,
    );
    // The installed command makes a project of its own, depending on the same tarball; its npm install
    // runs while the files below are written and the other tests start.
    initialised = (async () => {
      await succeed('npx', ['--no', '--', 'sluice', 'init', '../made', '--sluice', tarball], project);
      await succeed('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund'], made);
    })();
    initialised.catch(() => undefined);
    const esm = join(project, 'esm');
    const nodenext = join(project, 'nodenext');
    await Promise.all([mkdir(esm), mkdir(nodenext)]);
    await Promise.all([
      // Each job has a name of its own, so each run has a state folder (.sluice/<name>) of its own.
      ...JOB_FILES.map((f) => writeFile(join(project, f), jobSource(`count-${f.replace('.', '-')}`, /\.[mc]?ts$/.test(f)))),
      // The nearest package.json decides what .ts and .js files are: these two are ES modules.
      writeFile(join(project, 'threads.cts'), jobSource('count-threads', true)),
      writeFile(join(esm, 'package.json'), JSON.stringify({ type: 'module' })),
      writeFile(join(esm, 'job.ts'), jobSource('count-esm-ts', true)),
      writeFile(join(esm, 'job.js'), jobSource('count-esm-js', false)),
      writeFile(join(project, 'testing.cjs'), TESTING_SCRIPT),
      writeFile(join(project, 'app.ts'), CDK_APP),
      writeFile(join(project, 'bundle-check.mjs'), BUNDLE_CHECK),
      writeFile(join(project, 'tsconfig.json'), JSON.stringify(CDK_TSCONFIG, null, 2)),
      writeFile(join(nodenext, 'tsconfig.json'), JSON.stringify(NODENEXT_TSCONFIG, null, 2)),
      writeFile(join(nodenext, 'check.ts'), TYPES_CHECK),
    ]);
  }, 240_000);

  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('the tarball holds every export and the sluice command, and no tests, benchmarks, fixtures, simulations or examples', ({ expect }) => {
    const files = packed.files.map((f) => f.path);
    const targets = Object.values(manifest.exports).flatMap((t) => (typeof t === 'string' ? [t] : Object.values(t)));
    for (const target of targets) expect(files).toContain(target.replace(/^\.\//, ''));
    expect(files).toContain('bin/sluice.mjs');
    // Copied next to the compiled invoker that starts worker threads with it.
    expect(files).toContain('dist/lib/local/workerThreadEntry.mjs');
    const unwanted = files.filter((f) => /(^|\/)(test|infra-test|bench|sim|examples|fixtures)\//.test(f) || /\.test\.|\.ts$/.test(f.replace(/\.d\.ts$/, '')));
    expect(unwanted).toEqual([]);
  });

  const runs = [
    ...JOB_FILES.map((file) => ({ dir: '.', file, threads: [] as string[] })),
    { dir: 'esm', file: 'job.ts', threads: [] },
    { dir: 'esm', file: 'job.js', threads: [] },
    // Worker threads start from dist/lib/local/workerThreadEntry.mjs and load the job themselves.
    { dir: '.', file: 'threads.cts', threads: ['--parallelism', '2'] },
  ];
  for (const { dir, file, threads } of runs) {
    const where = dir === '.' ? 'without "type"' : 'with "type": "module"';
    it(`npx sluice run ${[file, ...threads].join(' ')} (package.json ${where}) prints the job's Time: blocks, the job sharing the command's copy of sluice`, async ({ expect }) => {
      const r = await run('npx', ['--no', '--', 'sluice', 'run', file, '--batches', String(INPUT.length), ...threads], join(project, dir));
      expect(r.stderr).not.toMatch(/warning|error/i);
      expect(r.code).toBe(0);
      const times = r.stdout.split('\n').filter((l) => l.startsWith('Time: '));
      // Two prints per batch.
      expect(times).toHaveLength(2 * INPUT.length);
      expect(new Set(times).size).toBe(INPUT.length);
      const records = r.stdout.split('\n').filter((l) => /^\(.*\)$/.test(l));
      expect(records.sort()).toEqual(expectedRecordLines());
    });
  }

  it("plain Node runs runBatches from require('sluice/testing') and from import('sluice/testing')", async ({ expect }) => {
    const r = await succeed('node', ['testing.cjs'], project);
    const expected = expectedTotalsPerBatch().map((batch) => batch.map((rec) => JSON.stringify(rec)).sort());
    expect(JSON.parse(r.stdout)).toEqual({ required: expected, imported: expected });
  });

  it("a CommonJS CDK app run by ts-node imports sluice/cdk and synthesises a SluiceJob with its two functions, whose bundles load and run as Lambda runs them", async ({ expect }) => {
    const r = await succeed('npx', ['--no', '--', 'ts-node', 'app.ts'], project);
    const synth = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { functions: number; assets: { handler: string; dir: string }[] };
    expect(synth.functions).toBe(2);
    expect(synth.assets.map((a) => a.handler).sort()).toEqual(['index.coordinator', 'index.worker']);
    expect(new Set(synth.assets.map((a) => a.dir)).size).toBe(2);
    // The bundles were built by the installed package (dist/cdk/bundle.js) from its compiled files.
    for (const { handler, dir } of synth.assets) {
      const checked = await new Promise<Run>((resolve) =>
        execFile('node', ['bundle-check.mjs', dir, handler], { cwd: project, env: { PATH: process.env.PATH ?? '', SLUICE_STATE_BUCKET: 'state', SLUICE_TABLE: 'table', AWS_REGION: 'us-east-1' } }, (error, stdout, stderr) =>
          resolve({ code: error ? 1 : 0, stdout, stderr }),
        ),
      );
      expect(checked.code, checked.stderr).toBe(0);
      const { exports, out } = JSON.parse(checked.stdout) as { exports: string[]; out: unknown };
      if (handler === 'index.worker') {
        expect(exports).toEqual(['worker']);
        expect(out).toMatchObject({ ok: false, retryable: false, error: { name: 'TaskPayloadError' } });
      } else {
        expect(exports).toEqual(['coordinator']);
        expect(out).toBe('function');
      }
    }
  }, 120_000);

  it('tsc type-checks sluice, sluice/testing and sluice/cdk in a project with module NodeNext and no "type"', async ({ expect }) => {
    const r = await run('npx', ['--no', '--', 'tsc', '-p', 'nodenext'], project);
    expect(r.stdout + r.stderr).toBe('');
    expect(r.code).toBe(0);
  }, 120_000);

  it("sluice init makes a project whose own npm test passes and whose cdk synth makes the job's stack", async ({ expect }) => {
    await initialised;
    const tests = await run('npm', ['test'], made);
    expect(tests.code, tests.stdout + tests.stderr).toBe(0);
    // eslint-disable-next-line no-control-regex -- vitest colours its summary
    expect(tests.stdout.replace(/\x1b\[[0-9;]*m/g, '')).toMatch(/Tests\s+1 passed \(1\)/);
    // The made test checks the counts: against a job that counts every word twice, it fails.
    const job = await readFile(join(made, 'job.ts'), 'utf8');
    await writeFile(join(made, 'job.ts'), job.replace('[word, 1]', '[word, 2]'));
    try {
      expect((await run('npm', ['test'], made)).code).not.toBe(0);
    } finally {
      await writeFile(join(made, 'job.ts'), job);
    }
    const synth = await run('npx', ['--no', '--', 'cdk', 'synth', '--quiet'], made);
    expect(synth.code, synth.stdout + synth.stderr).toBe(0);
    // The stack is named after the project (the folder); its template has the job's two functions and its stream.
    const template = JSON.parse(await readFile(join(made, 'cdk.out', 'made.template.json'), 'utf8')) as { Resources: Record<string, { Type: string }> };
    const types = Object.values(template.Resources).map((r) => r.Type);
    expect(types.filter((t) => t === 'AWS::Lambda::Function')).toHaveLength(2);
    expect(types).toContain('AWS::Kinesis::Stream');
    // cdk.json carries the flags cdk init writes: the CLI has none to warn about.
    expect(synth.stderr).not.toMatch(/feature flags are not configured/);
  }, 180_000);
});
