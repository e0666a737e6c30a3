import { formatJobStatus, readJobStatus } from '../engine/jobStatus.ts';
import { debugWanted, EXIT, reportError } from './errors.ts';
import { localStateStores } from './localState.ts';

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
    const { dir, meta, blobs } = await localStateStores(file, flags.stateDir);
    const status = await readJobStatus(meta, blobs);
    process.stdout.write(`state in ${dir}\n${formatJobStatus(status, Date.now())}`);
    return EXIT.ok;
  } catch (e) {
    return reportError(e, { jobFile: file, debug: debugWanted(flags.debug) });
  }
}
