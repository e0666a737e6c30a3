import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** The parts of sluice's own package.json the command uses. */
export interface PackageInfo {
  readonly version: string;
  readonly dependencies: Readonly<Record<string, string>>;
  readonly devDependencies: Readonly<Record<string, string>>;
}

let cached: PackageInfo | undefined;

/**
 * sluice's package.json, found upwards from this file: from the sources (lib/cli/) and from a
 * compiled copy alike, wherever the build puts it.
 */
export function packageInfo(): PackageInfo {
  if (cached) return cached;
  for (let dir = import.meta.dirname; ; dir = dirname(dir)) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string } & Partial<PackageInfo>;
      if (pkg.name === 'sluice') {
        cached = { version: pkg.version ?? '0.0.0', dependencies: pkg.dependencies ?? {}, devDependencies: pkg.devDependencies ?? {} };
        return cached;
      }
    }
    if (dirname(dir) === dir) throw new Error(`sluice: no package.json of sluice above ${import.meta.dirname}`);
  }
}
