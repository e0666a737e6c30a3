import { join } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..');
/** The package's public entry points, as `exports` in package.json names them. */
const ENTRIES = ['lib/index.ts', 'lib/testing/index.ts', 'cdk/sluiceJob.ts'];

const program = ts.createProgram(
  ENTRIES.map((e) => join(ROOT, e)),
  { module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, allowImportingTsExtensions: true, noEmit: true, skipLibCheck: true },
);
const checker = program.getTypeChecker();

const resolve = (s: ts.Symbol) => (s.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(s) : s);
const docOf = (s: ts.Symbol, c = checker) => ts.displayPartsToString(s.getDocumentationComment(c)).trim();
const tagged = (s: ts.Symbol, tag: string, c = checker) => s.getJsDocTags(c).some((t) => t.name === tag);
const ours = (s: ts.Symbol) => (s.declarations ?? []).some((d) => !d.getSourceFile().fileName.includes('node_modules'));

function exportsOf(entry: string): ts.Symbol[] {
  const file = program.getSourceFile(join(ROOT, entry));
  if (!file) throw new Error(`${entry} is not in the program`);
  return checker.getExportsOfModule(checker.getSymbolAtLocation(file)!);
}

/** Public members of an exported class or interface that are neither documented nor marked `@internal`. */
function undocumentedMembers(name: string, s: ts.Symbol, c = checker): string[] {
  if (!(s.flags & (ts.SymbolFlags.Class | ts.SymbolFlags.Interface))) return [];
  const out: string[] = [];
  const members = c.getPropertiesOfType(c.getDeclaredTypeOfSymbol(s));
  const statics = s.flags & ts.SymbolFlags.Class ? c.getPropertiesOfType(c.getTypeOfSymbol(s)).filter((m) => m.name !== 'prototype') : [];
  for (const m of [...members, ...statics]) {
    const decl = m.declarations?.[0];
    if (!decl || !ours(m)) continue; // inherited from Error, Construct and the like
    if (ts.getCombinedModifierFlags(decl) & (ts.ModifierFlags.Private | ts.ModifierFlags.Protected)) continue;
    if (m.name.startsWith('#') || tagged(m, 'internal', c)) continue;
    if (!docOf(m, c)) out.push(`${name}.${m.name}`);
  }
  return out;
}

describe('public API documentation (every export documented with an example)', () => {
  it.each(ENTRIES)('%s: every export has a doc comment with an @example', (entry) => {
    const exported = exportsOf(entry);
    expect(exported.length).toBeGreaterThan(0);
    const missing = exported.filter((s) => !docOf(resolve(s)) || !tagged(resolve(s), 'example')).map((s) => s.name);
    expect(missing).toEqual([]);
  });

  it.each(ENTRIES)('%s: every public member of an exported class or interface is documented or marked @internal', (entry) => {
    const missing = exportsOf(entry).flatMap((s) => undocumentedMembers(s.name, resolve(s)));
    expect(missing).toEqual([]);
  });

  it('the member check finds an undocumented member and passes documented and @internal ones', () => {
    const source = [
      'export class Probe {',
      '  bare = 1;',
      '  /** Documented. */',
      '  doc = 2;',
      '  /** @internal */',
      '  hidden = 3;',
      '  private secret = 4;',
      '  /** Made. */',
      '  static make() {}',
      '  static loose() {}',
      '}',
    ].join('\n');
    const probe = ts.createSourceFile('probe.ts', source, ts.ScriptTarget.ES2022, true);
    const host = ts.createCompilerHost({});
    const get = host.getSourceFile;
    host.getSourceFile = (name, ...rest) => (name === 'probe.ts' ? probe : get.call(host, name, ...rest));
    const p = ts.createProgram(['probe.ts'], { noEmit: true }, host);
    const c = p.getTypeChecker();
    const sym = c.getExportsOfModule(c.getSymbolAtLocation(p.getSourceFile('probe.ts')!)!)[0];
    expect(undocumentedMembers('Probe', sym, c)).toEqual(['Probe.bare', 'Probe.loose']);
  });
});
