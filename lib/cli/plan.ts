import { buildGraph } from '../api/job.ts';
import { loadJob } from '../node/loadJob.ts';
import { planMermaid, planText } from '../plan/describePlan.ts';
import { debugWanted, EXIT, reportError } from './errors.ts';

/** The flags of `sluice plan`. */
export interface PlanFlags {
  readonly mermaid?: boolean;
  readonly debug?: boolean;
}

/**
 * `sluice plan <job>`: the job's graph and the stages of a batch, as text or as a Mermaid
 * flowchart; nothing runs and no state is read. Resolves to the exit code.
 */
export async function planCommand(file: string, flags: PlanFlags): Promise<number> {
  try {
    const graph = buildGraph(await loadJob(file));
    process.stdout.write(flags.mermaid ? planMermaid(graph) : planText(graph));
    return EXIT.ok;
  } catch (e) {
    return reportError(e, { jobFile: file, debug: debugWanted(flags.debug) });
  }
}
