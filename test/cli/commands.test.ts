import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EMULATOR_PACKAGES } from '../../lib/aws/dev/emulators.ts';
import { ROOT, runSluice } from '../helpers/cli.ts';

describe('sluice commands', () => {
  it('sluice --version prints the version of package.json', async () => {
    const { version } = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    const r = await runSluice(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${version}\n`);
  });

  it.each(['run', 'init', 'produce', 'dev-aws'])('sluice help %s prints the same help as sluice %s --help', async (command) => {
    const [viaHelp, viaFlag] = await Promise.all([runSluice(['help', command]), runSluice([command, '--help'])]);
    expect(viaHelp.code).toBe(0);
    expect(viaHelp.stdout).toMatch(new RegExp(`^Usage: sluice ${command} \\[options\\]`));
    expect(viaFlag.stdout).toBe(viaHelp.stdout);
  });

  it('sluice produce without --stream says which option is missing', async () => {
    const r = await runSluice(['produce']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe("error: required option '--stream <name>' not specified (see sluice help produce)\n");
  });

  it('dev-aws asks for the emulator versions package.json declares as optional peers (installed only by those who want dev-aws)', async () => {
    const manifest = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as {
      peerDependencies: Record<string, string>;
      peerDependenciesMeta: Record<string, { optional?: boolean }>;
      devDependencies: Record<string, string>;
    };
    expect(manifest.peerDependencies).toEqual(EMULATOR_PACKAGES);
    for (const [name, version] of Object.entries(EMULATOR_PACKAGES)) {
      expect(manifest.peerDependenciesMeta[name]).toEqual({ optional: true });
      // The tests use the same versions.
      expect(manifest.devDependencies[name]).toBe(version);
    }
  });
});
