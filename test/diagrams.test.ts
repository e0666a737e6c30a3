import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { layerDiagram, protocolDiagram } from '../scripts/diagrams.ts';

// The README's pictures of the code stay true: each is what scripts/diagrams.ts draws from the
// code now (`npm run diagrams` prints them to paste after a change).

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
const block = (name: string) => new RegExp(`<!-- diagram: ${name} -->\\n\`\`\`mermaid\\n([\\s\\S]*?)\`\`\``).exec(readme)?.[1];

describe("the README's diagrams of the code", () => {
  it("the layers of lib/: which room imports which, as the import statements say", () => {
    expect(block('layers')).toBe(layerDiagram());
    // The engine stays below the adapters: it never imports them.
    expect(layerDiagram()).not.toMatch(/engine --> (aws|local|node|cli)/);
  });

  it('the batch protocol: the steps the coordinator reports, in order', () => {
    expect(block('protocol')).toBe(protocolDiagram());
    expect(protocolDiagram()).toContain('  success --> commit["commit: one conditional write of the checkpoint"]\n');
  });
});
