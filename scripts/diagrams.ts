/**
 * The README's pictures that come from the code: the layers of `lib/` (which room imports which,
 * read from the import statements) and the batch protocol's steps (`PROTOCOL_STEPS`, in the order
 * the coordinator reports them). `npm run diagrams` prints them; test/diagrams.test.ts keeps the
 * README's copies equal to them.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { PROTOCOL_STEPS, type ProtocolStep } from '../lib/engine/coordinator.ts';

const ROOT = resolve(import.meta.dirname, '..');

/** Every .ts file below `dir`. */
function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
}

/**
 * Which room of `lib/` (its first-level folders) imports which, as a Mermaid flowchart, an arrow
 * from importer to imported.
 *
 * @example
 * ```ts
 * layerDiagram(); // 'flowchart TD\n  api --> core\n  …'
 * ```
 */
export function layerDiagram(root = ROOT): string {
  const lib = join(root, 'lib');
  const edges = new Set<string>();
  for (const file of sources(lib)) {
    const room = relative(lib, file).split('/')[0];
    if (room.endsWith('.ts')) continue;
    for (const m of readFileSync(file, 'utf8').matchAll(/from '(\.[^']+)'/g)) {
      const target = relative(lib, resolve(dirname(file), m[1])).split('/')[0];
      if (target !== room && !target.startsWith('..') && !target.endsWith('.ts')) edges.add(`${room} --> ${target}`);
    }
  }
  return `flowchart TD\n${[...edges]
    .sort()
    .map((e) => `  ${e}`)
    .join('\n')}\n`;
}

/** What each protocol step is, in a few words. */
const STEP_WORDS: Record<ProtocolStep, string> = {
  cut: 'cut: choose the input ranges',
  sealed: 'sealed: the lineage record written',
  lease: 'lease renewed (fences a superseded coordinator)',
  stage: 'stages run (tasks on workers or in the coordinator)',
  part: 'output parts written',
  success: '_SUCCESS written',
  commit: 'commit: one conditional write of the checkpoint',
  cleanup: 'cleanup of obsolete blobs',
};

/**
 * The batch protocol's steps in order (`PROTOCOL_STEPS`), after taking the lease, as a Mermaid flowchart.
 *
 * @example
 * ```ts
 * protocolDiagram(); // 'flowchart LR\n  start(["take the lease, take the checkpoint over"]) --> cut…'
 * ```
 */
export function protocolDiagram(): string {
  const lines = ['flowchart LR', '  start(["take the lease, take the checkpoint over"])'];
  let prev = 'start';
  for (const step of PROTOCOL_STEPS) {
    lines.push(`  ${prev} --> ${step}["${STEP_WORDS[step]}"]`);
    prev = step;
  }
  lines.push(`  ${prev} -->|next batch| cut`);
  return `${lines.join('\n')}\n`;
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.filename)) {
  process.stdout.write(`layers:\n${layerDiagram()}\nprotocol:\n${protocolDiagram()}`);
}
