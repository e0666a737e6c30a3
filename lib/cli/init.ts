import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { EXIT, reportError, UsageError } from './errors.ts';
import { durationMs } from './options.ts';
import { packageInfo } from './packageInfo.ts';
import { type ProjectSpec, projectFiles } from './templates/project.ts';

/** The flags of `sluice init`, as commander hands them over. */
export interface InitFlags {
  readonly name?: string;
  readonly batchInterval?: string;
  readonly source?: string;
  readonly sluice?: string;
}

/** An npm package name: lower case, no spaces, as `npm init` would accept it. */
function packageName(name: string): string {
  if (!/^[a-z0-9][a-z0-9._-]*$/.test(name)) {
    throw new UsageError(`--name must be a lower-case npm package name (letters, digits, - . _), got "${name}"`);
  }
  return name;
}

/**
 * The feature flags `cdk init` writes into a new project's cdk.json: aws-cdk-lib's table of
 * recommended flags, read from the aws-cdk-lib sluice depends on, at init time.
 */
async function recommendedFlags(): Promise<Record<string, unknown>> {
  const { CURRENTLY_RECOMMENDED_FLAGS } = await import('aws-cdk-lib/cx-api');
  return { ...CURRENTLY_RECOMMENDED_FLAGS };
}

/** `sluice init [dir]`: writes a new project into `dir` (made if missing, refused if not empty); resolves to the exit code. */
export async function initCommand(dirArg: string | undefined, flags: InitFlags): Promise<number> {
  try {
    const dir = resolve(dirArg ?? '.');
    const name = packageName(flags.name ?? basename(dir).toLowerCase().replace(/[^a-z0-9._-]+/g, '-'));
    const batchInterval = flags.batchInterval ?? '1s';
    // The project deploys with SluiceJob, whose schedule allows no batch shorter than a second.
    if (durationMs(batchInterval, '--batch-interval')! < 1000) throw new UsageError(`--batch-interval must be at least 1s, the shortest a deployed job runs, got ${batchInterval}`);
    const source = flags.source ?? 'local';
    if (source !== 'local' && source !== 'kinesis') throw new UsageError(`--source must be local or kinesis, got "${source}"`);
    const entries = await readdir(dir).catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? [] : Promise.reject(e)));
    if (entries.length > 0) {
      throw new UsageError(`${relative(process.cwd(), dir) || '.'} is not empty (${entries.slice(0, 3).join(', ')}${entries.length > 3 ? ', …' : ''}); sluice init makes a project in an empty or new folder`);
    }
    const pkg = packageInfo();
    const version = (n: string) => pkg.dependencies[n] ?? pkg.devDependencies[n] ?? 'latest';
    const spec: ProjectSpec = {
      name,
      batchInterval,
      source,
      sluice: flags.sluice ?? `^${pkg.version}`,
      versions: {
        'aws-cdk-lib': version('aws-cdk-lib'),
        constructs: version('constructs'),
        'aws-cdk': version('aws-cdk'),
        typescript: version('typescript'),
        vitest: version('vitest'),
        tsx: version('tsx'),
        '@types/node': version('@types/node'),
      },
      featureFlags: await recommendedFlags(),
    };
    for (const [file, text] of Object.entries(projectFiles(spec))) {
      await mkdir(dirname(join(dir, file)), { recursive: true });
      await writeFile(join(dir, file), text);
    }
    const cd = relative(process.cwd(), dir);
    process.stdout.write(
      `Created ${name} in ${cd || '.'}. Next:\n${cd ? `  cd ${cd}\n` : ''}  npm install\n  ${source === 'kinesis' ? 'npx sluice dev-aws job.ts' : 'npx sluice run job.ts'}\n  npm test\n  npx cdk synth\n`,
    );
    return EXIT.ok;
  } catch (e) {
    return reportError(e);
  }
}
