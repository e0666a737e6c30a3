// `sluice init`: the files it writes and what it refuses. That the project it makes works (npm
// install, npm test, cdk synth) is checked from the packed tarball, in test/package/installedPackage.test.ts.
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CURRENTLY_RECOMMENDED_FLAGS } from 'aws-cdk-lib/cx-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, runSluice } from '../helpers/cli.ts';

const ourPackage = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string; devDependencies: Record<string, string> };

describe('sluice init', () => {
  let base: string;
  let project: string;
  let initRun: Awaited<ReturnType<typeof runSluice>>;
  beforeAll(async () => {
    base = await mkdtemp(join(tmpdir(), 'sluice-init-'));
    project = join(base, 'clicks');
    initRun = await runSluice(['init', project, '--batch-interval', '2s', '--sluice', 'file:../sluice'], { cwd: base });
  });
  afterAll(async () => {
    await rm(base, { recursive: true, force: true });
  });

  it('writes a project: package.json with the sluice spec given and our exact tool versions, job, test, CDK app, cdk.json with the recommended flags', async () => {
    expect(initRun.code, initRun.stderr).toBe(0);
    expect((await readdir(project, { recursive: true })).sort()).toEqual(
      ['.gitignore', 'README.md', 'cdk', 'cdk.json', 'cdk/app.ts', 'job.test.ts', 'job.ts', 'package.json', 'tsconfig.json'].sort(),
    );
    const pkg = JSON.parse(await readFile(join(project, 'package.json'), 'utf8'));
    expect(pkg.name).toBe('clicks');
    expect(pkg.dependencies.sluice).toBe('file:../sluice');
    for (const tool of ['vitest', 'typescript', 'aws-cdk', 'tsx']) expect(pkg.devDependencies[tool]).toBe(ourPackage.devDependencies[tool] ?? (ourPackage as unknown as { dependencies: Record<string, string> }).dependencies[tool]);
    const cdkJson = JSON.parse(await readFile(join(project, 'cdk.json'), 'utf8'));
    expect(cdkJson.context).toEqual(JSON.parse(JSON.stringify(CURRENTLY_RECOMMENDED_FLAGS)));
    expect(await readFile(join(project, 'job.ts'), 'utf8')).toContain("defineJob({ name: 'clicks', batchInterval: '2s' }");
  });

  it('writes "sluice": "^<our version>" when no --sluice is given', async () => {
    const dir = join(base, 'plain');
    const r = await runSluice(['init', dir]);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')).dependencies.sluice).toBe(`^${ourPackage.version}`);
  });

  it('sluice init x --batch-interval 500ms: refuses an interval SluiceJob cannot deploy', async () => {
    const r = await runSluice(['init', join(base, 'fast'), '--batch-interval', '500ms']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('error: --batch-interval must be at least 1s, the shortest a deployed job runs, got 500ms\n');
  });

  it('refuses a folder that is not empty, and writes nothing into it', async () => {
    const dir = join(base, 'taken');
    await mkdir(dir);
    await writeFile(join(dir, 'notes.txt'), 'mine');
    const r = await runSluice(['init', dir], { cwd: base });
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('error: taken is not empty (notes.txt); sluice init makes a project in an empty or new folder\n');
    expect(await readdir(dir)).toEqual(['notes.txt']);
  });
});
