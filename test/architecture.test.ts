import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..');

async function sources(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(join(ROOT, dir), { withFileTypes: true })) {
    const rel = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await sources(rel)));
    else if (/\.(ts|mts|mjs|js)$/.test(e.name)) out.push(rel);
  }
  return out;
}

/** Every module specifier a file imports (static and dynamic). */
async function imports(file: string): Promise<string[]> {
  const text = await readFile(join(ROOT, file), 'utf8');
  const specs: string[] = [];
  for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g)) {
    specs.push(m[1] ?? m[2]);
  }
  return specs;
}

/** Which imports of files under `dir` match `forbidden`, as "file -> specifier". */
async function violations(dir: string, forbidden: (spec: string, file: string) => boolean): Promise<string[]> {
  const bad: string[] = [];
  // The templates of `sluice init` hold a new project's source as text; their imports are that project's.
  for (const f of (await sources(dir)).filter((f) => !f.startsWith('lib/cli/templates/'))) for (const s of await imports(f)) if (forbidden(s, f)) bad.push(`${f} -> ${s}`);
  return bad;
}

const resolvesInto = (spec: string, file: string, dir: string) =>
  spec.startsWith('.') && relative(ROOT, join(ROOT, file, '..', spec)).startsWith(`${dir}/`);

describe('architecture boundaries (docs/design.md §1)', () => {
  it.each(['lib/api', 'lib/plan', 'lib/engine'])('%s imports neither the AWS SDK, aws-cdk-lib nor the file system', async (dir) => {
    const bad = await violations(dir, (s) => /^(@aws-sdk\/|aws-cdk-lib|constructs$)/.test(s) || /^(node:)?fs(\/promises)?$/.test(s));
    expect(bad).toEqual([]);
  });

  it('lib/api, lib/plan and lib/engine do not reach into adapters', async () => {
    const bad: string[] = [];
    for (const dir of ['lib/api', 'lib/plan', 'lib/engine']) {
      bad.push(...(await violations(dir, (s, f) => ['lib/local', 'lib/aws', 'lib/cli', 'lib/testing'].some((d) => resolvesInto(s, f, d)))));
    }
    expect(bad).toEqual([]);
  });

  it('only lib/aws imports the AWS SDK, only cdk/ imports aws-cdk-lib', async () => {
    const bad: string[] = [];
    for (const dir of ['lib', 'functions']) {
      // `sluice init` reads aws-cdk-lib's table of recommended feature flags (data, no constructs) for the cdk.json it writes.
      const initReadsFlags = (s: string, f: string) => f === 'lib/cli/init.ts' && s === 'aws-cdk-lib/cx-api';
      bad.push(...(await violations(dir, (s, f) => (s.startsWith('@aws-sdk/') && !f.startsWith('lib/aws/')) || (s.startsWith('aws-cdk-lib') && !initReadsFlags(s, f)))));
    }
    expect(bad).toEqual([]);
  });

  it('nothing in lib/ imports cdk/, functions/, tests, the simulation, benchmarks or dev dependencies', async () => {
    const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { devDependencies?: Record<string, string> };
    const dev = Object.keys(pkg.devDependencies ?? {});
    const bad = await violations('lib', (s, f) => ['cdk', 'functions', 'test', 'infra-test', 'bench', 'sim'].some((d) => resolvesInto(s, f, d)) || dev.some((d) => s === d || s.startsWith(`${d}/`)));
    expect(bad).toEqual([]);
  });

  it('the scanner sees imports (guards the guard)', async () => {
    expect(await imports('lib/engine/codec.ts')).toContain('node:v8');
    expect(await imports('lib/local/runtime.ts')).toContain('./workerThreadInvoker.ts');
  });
});
