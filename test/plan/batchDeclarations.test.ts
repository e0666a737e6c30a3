import { dirname, join } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

// Batch's operators live in one file per family (lib/plan/batch/*.ts), each adding its methods to
// the class by module augmentation. A package user gets them only if the .d.ts files keep every
// augmentation reachable from the entry point: here the package's declarations are emitted (in
// memory, as the build's tsc does) and a user's file is type-checked against them alone.

const ROOT = join(import.meta.dirname, '../..');
const OUT = join(ROOT, 'declarations-under-test');

/** A package user's code: every family's operators, and two wrong uses that must be refused. */
const USER = `import type { Batch } from './lib/index.js';
declare const words: Batch<string>;
declare const pairs: Batch<[string, number]>;
export const counts: Batch<[string, number]> = words.map((w): [string, number] => [w, 1]).reduceByKey((a, b) => a + b, { numPartitions: 2 });
export const joined: Batch<[string, [number, number | undefined]]> = pairs.leftOuterJoin(pairs);
export const inner: Batch<[string, [number, number]]> = pairs.join(pairs);
export const groups: Batch<[string, [number[], number[]]]> = pairs.cogroup(pairs);
export const sorted: Promise<string[]> = words.flatMap((w) => w.split('')).filter((c) => c !== ' ').sortBy((c) => c).collect();
export const grouped: Batch<[string, number[]]> = pairs.groupByKey().repartition(2);
export const parts: Batch<string[]> = words.glom().union(words.mapPartitions((r) => [r]));
export const n: Promise<number> = pairs.mapValues(String).flatMapValues((s) => [s]).countByValue().persist().count();
export const first: Promise<[string, number][]> = pairs.combineByKey((v) => v, (c, v) => c + v, (a, b) => a + b).take(1);
export const each: Promise<void> = words.foreachPartition((records, { partition }) => records.length + partition);
export const badOptions = pairs.cogroup(pairs, { numPartitions: 'two' });
export const notPairs = words.groupByKey();
`;

/** Declarations of lib/index.ts as the package build emits them, by file name. */
function emitDeclarations(): Map<string, string> {
  const program = ts.createProgram([join(ROOT, 'lib/index.ts')], {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    strict: true,
    skipLibCheck: true,
    types: ['node'],
    allowImportingTsExtensions: true,
    rewriteRelativeImportExtensions: true,
    declaration: true,
    emitDeclarationOnly: true,
    rootDir: ROOT,
    outDir: OUT,
  });
  const files = new Map<string, string>();
  const { diagnostics } = program.emit(undefined, (name, text) => files.set(name, text));
  expect(diagnostics.map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'))).toEqual([]);
  return files;
}

/** Type-checks `source` as a file beside the emitted declarations, seeing nothing of lib/'s sources; its errors as `line: message`. */
function check(files: Map<string, string>, source: string): string[] {
  const user = join(OUT, 'user.ts');
  files.set(user, source);
  const options: ts.CompilerOptions = { module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, target: ts.ScriptTarget.ES2022, strict: true, noEmit: true, types: ['node'] };
  const host = ts.createCompilerHost(options);
  const { getSourceFile, fileExists, readFile, directoryExists } = host;
  const dirs = new Set<string>();
  for (const f of files.keys()) for (let d = dirname(f); d.startsWith(OUT); d = dirname(d)) dirs.add(d);
  host.fileExists = (f) => files.has(f) || (!f.startsWith(OUT) && fileExists.call(host, f));
  host.readFile = (f) => files.get(f) ?? (f.startsWith(OUT) ? undefined : readFile.call(host, f));
  host.directoryExists = (d) => dirs.has(d) || (!d.startsWith(OUT) && (directoryExists?.call(host, d) ?? true));
  host.getSourceFile = (f, lang, ...rest) => (files.has(f) ? ts.createSourceFile(f, files.get(f)!, lang) : getSourceFile.call(host, f, lang, ...rest));
  const program = ts.createProgram([user], options, host);
  return ts.getPreEmitDiagnostics(program).map((d) => {
    const where = d.file ? `${d.file.fileName === user ? '' : `${d.file.fileName} `}${d.file.getLineAndCharacterOfPosition(d.start!).line + 1}` : '?';
    return `${where}: ${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`;
  });
}

describe("Batch's operators in the package's declarations", () => {
  it('every family file is re-exported by lib/plan/batch.ts and keeps its augmentation of Batch', () => {
    const files = emitDeclarations();
    const batch = files.get(join(OUT, 'lib/plan/batch.d.ts'))!;
    for (const family of ['stateless', 'pair', 'joins', 'sort', 'actions']) {
      expect(batch).toContain(`export * from './batch/${family}.ts';`);
      expect(files.get(join(OUT, `lib/plan/batch/${family}.d.ts`))).toContain("declare module './base.ts' {");
    }
  }, 60_000);

  it("a package user's code sees every operator with its types, and wrong uses are refused", () => {
    const lineOf = (text: string) => USER.split('\n').findIndex((l) => l.includes(text)) + 1;
    const errors = check(emitDeclarations(), USER);
    expect(errors).toHaveLength(2);
    expect(errors[0]).toMatch(new RegExp(`^${lineOf('badOptions')}: Type 'string' is not assignable to type 'number'`));
    expect(errors[1]).toMatch(new RegExp(`^${lineOf('notPairs')}: The 'this' context of type 'Batch<string>' is not assignable to method's 'this' of type 'Batch<\\[unknown, unknown\\]>'`));
  }, 60_000);
});
