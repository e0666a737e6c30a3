import { buildGraph } from '../api/job.ts';
import type { JobGraph } from '../plan/graph.ts';
import { loadJob } from '../node/loadJob.ts';
import { startUi } from '../ui/server.ts';
import { storedSource } from '../ui/sources.ts';
import { debugWanted, EXIT, reportError } from './errors.ts';
import { type JobStoreFlags, jobStores, withStores } from './jobStores.ts';
import { portFlag } from './options.ts';

/** The flags of `sluice ui`: where the job is (a state directory, a stack, a table and bucket), and the port. */
export interface UiFlags extends JobStoreFlags {
  readonly port?: string;
  readonly debug?: boolean;
}

/**
 * `sluice ui [job]`: the Streaming UI of a job that does not run in this process, from the history
 * its coordinators wrote: a stopped local job (its state directory), or a deployed one (`--stack`,
 * or `--table` and `--bucket`), followed as it runs. Serves until Ctrl-C.
 */
export async function uiCommand(file: string | undefined, flags: UiFlags): Promise<number> {
  try {
    const port = portFlag(flags.port ?? '4040', '--port')!;
    const graph: JobGraph | undefined = file ? buildGraph(await loadJob(file)) : undefined;
    return await withStores(jobStores(file, flags), async (stores) => {
      // A deployed job goes on running: the page follows it (its history grows a file a minute).
      const source = storedSource({ blobs: stores.blobs, where: stores.where, graph, name: stores.jobName, live: stores.deployed !== undefined });
      const ui = await startUi(source, port);
      process.stderr.write(`Streaming UI of ${stores.jobName} (${stores.where}) at ${ui.url} (Ctrl-C stops)\n`);
      await new Promise<void>((resolve) => process.once('SIGINT', resolve));
      await ui.close();
      return EXIT.ok;
    });
  } catch (e) {
    return reportError(e, { jobFile: file, debug: debugWanted(flags.debug) });
  }
}
