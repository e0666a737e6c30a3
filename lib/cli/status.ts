import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { formatJobStatus, readJobStatus } from '../engine/jobStatus.ts';
import { FsBlobStore } from '../local/fsBlobStore.ts';
import { FsMetaStore } from '../local/fsMetaStore.ts';
import { loadJob } from '../node/loadJob.ts';
import { debugWanted, EXIT, reportError, UsageError } from './errors.ts';

/** The flags of `sluice status`. */
export interface StatusFlags {
  readonly stateDir?: string;
  readonly debug?: boolean;
}

/**
 * `sluice status [job]`: where a local job stands — the last batch done, the lease, batches a run
 * stopped in, dead letters — read from its state directory without taking the lease. The job file
 * names the directory (`.sluice/<job name>`); `--state-dir` gives it instead.
 */
export async function statusCommand(file: string | undefined, flags: StatusFlags): Promise<number> {
  try {
    let dir = flags.stateDir;
    if (dir === undefined) {
      if (file === undefined) throw new UsageError('give the job file (its state is under .sluice/<job name>) or --state-dir <dir>');
      dir = join('.sluice', (await loadJob(file)).options.name);
    }
    if (!existsSync(resolve(dir, 'meta'))) throw new UsageError(`no job state in ${dir}: run the job there first (sluice run <job>), or give the --state-dir it runs with`);
    const status = await readJobStatus(new FsMetaStore(resolve(dir, 'meta')), new FsBlobStore(resolve(dir, 'blobs')));
    process.stdout.write(`state in ${dir}\n${formatJobStatus(status, Date.now())}`);
    return EXIT.ok;
  } catch (e) {
    return reportError(e, { jobFile: file, debug: debugWanted(flags.debug) });
  }
}
