import { readState } from '../engine/stateDump.ts';
import { debugWanted, EXIT, reportError, UsageError } from './errors.ts';
import { type JobStoreFlags, jobStores, withStores } from './jobStores.ts';
import { positiveInt } from './options.ts';

/** The flags of `sluice state`. */
export interface StateFlags extends JobStoreFlags {
  readonly node?: string;
  readonly key?: string;
  readonly limit?: string;
  readonly debug?: boolean;
}

/** A value as one line of JSON, or its text when JSON cannot hold it. */
function shown(v: unknown): string {
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

/**
 * `sluice state [job]`: the keys and values of the job's stateful operators as the last commit
 * left them, decoded from the state blobs; `--key` keeps the keys whose JSON or text is the one
 * given. A local job's, or with `--stack` / `--table` a deployed job's (from its state bucket).
 * Reads only.
 */
export async function stateCommand(file: string | undefined, flags: StateFlags): Promise<number> {
  try {
    const limit = positiveInt(flags.limit, '--limit') ?? 100;
    return await withStores(jobStores(file, flags), async (stores) => {
      const nodes = await readState(stores.meta, stores.blobs, flags.node);
      if (flags.node !== undefined && nodes.length === 0) throw new UsageError(`no stateful operator ${flags.node} in ${stores.where}; run sluice state without --node to see them`);
      const lines: string[] = [];
      if (nodes.length === 0) lines.push('no keyed state: the job has no stateful operator, or has not committed a batch');
      for (const n of nodes) {
        const picked = flags.key === undefined ? n.entries : n.entries.filter((e) => shown(e.key) === flags.key || String(e.key) === flags.key);
        lines.push(`${n.nodeId} as of batch ${n.time}: ${n.entries.length} key(s)${flags.key === undefined ? '' : `, ${picked.length} matching ${flags.key}`}`);
        if (n.entries.length === 0) lines.push('  (no keys; a window without an inverse function keeps its batches\' slices, not keys)');
        for (const e of picked.slice(0, limit)) lines.push(`  ${shown(e.key)}  ${shown(e.value)}  (partition ${e.partition}, last record in batch ${e.lastSeen})`);
        if (picked.length > limit) lines.push(`  … ${picked.length - limit} more (--limit)`);
      }
      process.stdout.write(`${lines.join('\n')}\n`);
      return EXIT.ok;
    });
  } catch (e) {
    return reportError(e, { jobFile: file, debug: debugWanted(flags.debug) });
  }
}
