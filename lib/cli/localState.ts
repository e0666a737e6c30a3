import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { FsBlobStore } from '../local/fsBlobStore.ts';
import { FsMetaStore } from '../local/fsMetaStore.ts';
import { loadJob } from '../node/loadJob.ts';
import { UsageError } from './errors.ts';

/**
 * The stores of a local job's state, for the commands that read it (`status`, `state`): under
 * `stateDir`, or `.sluice/<job name>` for the job file. Refuses a directory without state.
 */
export async function localStateStores(file: string | undefined, stateDir: string | undefined): Promise<{ dir: string; meta: FsMetaStore; blobs: FsBlobStore }> {
  let dir = stateDir;
  if (dir === undefined) {
    if (file === undefined) throw new UsageError('give the job file (its state is under .sluice/<job name>) or --state-dir <dir>');
    dir = join('.sluice', (await loadJob(file)).options.name);
  }
  if (!existsSync(resolve(dir, 'meta'))) throw new UsageError(`no job state in ${dir}: run the job there first (sluice run <job>), or give the --state-dir it runs with`);
  return { dir, meta: new FsMetaStore(resolve(dir, 'meta')), blobs: new FsBlobStore(resolve(dir, 'blobs')) };
}
