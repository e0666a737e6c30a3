import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';

// The import rules of docs/design.md §1, checked by dependency-cruiser with the project's own
// configuration (.dependency-cruiser.cjs): lib/ has layers, a folder never imports a higher one,
// nothing in lib/ forms a cycle (type-only imports count), and lib/ never imports tooling or dev
// dependencies. Any violation fails here: there is no list of known ones.

const ROOT = join(import.meta.dirname, '..');
const DEPCRUISE = join(ROOT, 'node_modules/dependency-cruiser/bin/dependency-cruise.mjs');
const CONFIG = join(ROOT, '.dependency-cruiser.cjs');

interface Violation {
  readonly from: string;
  readonly to: string;
  readonly rule: { readonly name: string; readonly severity: string };
  readonly cycle?: readonly { readonly name: string }[];
}

/** Runs dependency-cruiser over `lib` in `cwd`; the violations it reports. */
function cruise(cwd: string): Promise<Violation[]> {
  const args = [DEPCRUISE, 'lib', '--config', CONFIG, '--output-type', 'json'];
  return new Promise((resolve, reject) => {
    execFile(process.execPath, args, { cwd, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      // It exits non-zero when it finds errors; the report is on stdout either way.
      if (!stdout) return reject(new Error(`dependency-cruiser failed: ${stderr || error?.message}`));
      const report = JSON.parse(stdout) as { summary: { violations: Violation[] } };
      resolve(report.summary.violations.filter((v) => v.rule.severity !== 'ignore'));
    });
  });
}

const describeViolation = (v: Violation) => `${v.rule.name}: ${v.cycle ? [v.from, ...v.cycle.map((c) => c.name)].join(' -> ') : `${v.from} -> ${v.to}`}`;

/** Sources under a temporary folder laid out like lib/, for checking that the rules fire. */
async function fixture(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-architecture-'));
  await writeFile(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: { module: 'NodeNext', allowImportingTsExtensions: true, noEmit: true } }));
  for (const [path, text] of Object.entries(files)) {
    await mkdir(join(dir, dirname(path)), { recursive: true });
    await writeFile(join(dir, path), text);
  }
  return dir;
}

describe('architecture boundaries (docs/design.md §1)', () => {
  it('lib/ has no import cycle, no import of a higher layer, of tooling or of a dev dependency (dependency-cruiser)', async () => {
    expect((await cruise(ROOT)).map(describeViolation)).toEqual([]);
  }, 60_000);

  it('the rules fire: a cycle, an upward import (lib/plan -> lib/api, lib/aws -> lib/local) and an import of tests are each reported', async () => {
    const dir = await fixture({
      'lib/core/errors.ts': "export class E extends Error {}\n",
      'lib/plan/a.ts': "import { b } from './b.ts';\nimport { api } from '../api/api.ts';\nexport const a = () => b() + api;\n",
      'lib/plan/b.ts': "import { a } from './a.ts';\nexport const b = () => (a ? 1 : 0);\n",
      'lib/api/api.ts': "import { E } from '../core/errors.ts';\nexport const api = E ? 1 : 0;\n",
      'lib/local/clock.ts': 'export const now = () => 0;\n',
      'lib/aws/runtime.ts': "import { now } from '../local/clock.ts';\nimport { helper } from '../../test/helper.ts';\nexport const t = now() + helper;\n",
      'test/helper.ts': 'export const helper = 1;\n',
    });
    try {
      expect((await cruise(dir)).map(describeViolation).sort()).toEqual([
        'aws-imports-no-higher-layer: lib/aws/runtime.ts -> lib/local/clock.ts',
        'lib-imports-no-tooling: lib/aws/runtime.ts -> test/helper.ts',
        'no-cycles: lib/plan/a.ts -> lib/plan/b.ts -> lib/plan/a.ts',
        'plan-imports-no-higher-layer: lib/plan/a.ts -> lib/api/api.ts',
      ]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('a cycle made only of type imports is reported too: types tie modules as tightly for a reader', async () => {
    const dir = await fixture({
      'lib/plan/batch.ts': "import type { Graph } from './graph.ts';\nexport interface Batch { graph: Graph }\n",
      'lib/plan/graph.ts': "import type { Batch } from './batch.ts';\nexport interface Graph { batches: Batch[] }\n",
    });
    try {
      expect((await cruise(dir)).map(describeViolation)).toEqual(['no-cycles: lib/plan/batch.ts -> lib/plan/graph.ts -> lib/plan/batch.ts']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);
});

// What the layers cannot say: which packages a folder may use.

async function sources(dir: string): Promise<string[]> {
  const { readdir } = await import('node:fs/promises');
  const out: string[] = [];
  for (const e of await readdir(join(ROOT, dir), { withFileTypes: true })) {
    const rel = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await sources(rel)));
    else if (/\.(ts|mts|mjs|js)$/.test(e.name)) out.push(rel);
  }
  return out;
}

/** The packages a file imports (static and dynamic). */
async function packagesImported(file: string): Promise<string[]> {
  const text = await readFile(join(ROOT, file), 'utf8');
  const specs: string[] = [];
  for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g)) specs.push(m[1] ?? m[2]);
  return specs.filter((s) => !s.startsWith('.'));
}

describe('package boundaries (docs/design.md §1)', () => {
  /** Which package imports of files under `dir` match `forbidden`, as "file -> package". */
  async function violations(dir: string, forbidden: (spec: string, file: string) => boolean): Promise<string[]> {
    const bad: string[] = [];
    // The templates of `sluice init` hold a new project's source as text; their imports are that project's.
    for (const f of (await sources(dir)).filter((f) => !f.startsWith('lib/cli/templates/'))) for (const s of await packagesImported(f)) if (forbidden(s, f)) bad.push(`${f} -> ${s}`);
    return bad;
  }

  it.each(['lib/core', 'lib/ports', 'lib/api', 'lib/plan', 'lib/engine'])('%s imports neither the AWS SDK, aws-cdk-lib nor the file system', async (dir) => {
    const bad = await violations(dir, (s) => /^(@aws-sdk\/|aws-cdk-lib|constructs$)/.test(s) || /^(node:)?fs(\/promises)?$/.test(s));
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

  it('the scanner sees package imports (guards the guard)', async () => {
    expect(await packagesImported('lib/engine/codec.ts')).toContain('node:v8');
    expect(await packagesImported('lib/aws/clients.ts')).toContain('@aws-sdk/client-s3');
  });
});
