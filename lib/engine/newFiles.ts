import { SluiceError } from '../core/errors.ts';
import type { JsonValue } from '../ports/index.ts';

/**
 * Bookkeeping shared by the sources that watch a folder for new files (a local directory, an S3
 * prefix): which names were already taken, kept in the lineage record and the checkpoint.
 */

/** The names already taken or skipped with their modification time, and a watermark below which names count as seen. */
export interface SeenNames {
  ignoreBefore: number;
  seen: Map<string, number>;
}

/**
 * Whether a name is someone's file in progress rather than input: hidden names and Hadoop's
 * conventions (`_temporary`, `_SUCCESS`, `_COPYING_`, and the `name._COPYING_` that
 * `hdfs dfs -put` writes before renaming).
 */
export function ignoredInputName(name: string): boolean {
  return name.startsWith('.') || name.startsWith('_') || name.endsWith('._COPYING_');
}

/** Reads the state a previous cut returned (`undefined` at the first cut gives an empty one). */
export function parseSeenNames(state: JsonValue | undefined, nodeId: string): SeenNames {
  if (state === undefined) return { ignoreBefore: 0, seen: new Map() };
  const s = state as { ignoreBefore?: unknown; seen?: unknown } | null;
  if (!s || typeof s !== 'object' || typeof s.ignoreBefore !== 'number' || !s.seen || typeof s.seen !== 'object' || Array.isArray(s.seen)) {
    throw new SluiceError(`${nodeId}: unreadable textFileStream position in the checkpoint: ${JSON.stringify(state)}`, { nodeId });
  }
  const seen = new Map<string, number>();
  for (const [name, modified] of Object.entries(s.seen as Record<string, unknown>)) if (typeof modified === 'number') seen.set(name, modified);
  return { ignoreBefore: s.ignoreBefore, seen };
}

/**
 * The state to keep after a cut at `time`, bounded. A name must be remembered as long as its file
 * is listed (`present`), or the file would be read again; names of files that are gone are dropped
 * once their modification time is older than `forgetAfterMs` (the grace period keeps a file that
 * briefly disappears, replaced or missed by one listing, from being read twice). A folder whose
 * files are never removed would still grow the state without bound, so past `maxRemembered` names
 * the oldest are replaced by a watermark: files modified at or before `ignoreBefore` count as seen
 * (Spark's FileInputDStream has the same rule for its remember window).
 */
export function boundedSeenState(names: SeenNames, present: ReadonlySet<string>, time: number, forgetAfterMs: number, maxRemembered: number): JsonValue {
  const { seen } = names;
  for (const [name, modified] of seen) {
    if (!present.has(name) && modified < time - forgetAfterMs) seen.delete(name);
  }
  let ignoreBefore = names.ignoreBefore;
  if (seen.size > maxRemembered) {
    const byAge = [...seen].sort((a, b) => a[1] - b[1] || (a[0] < b[0] ? -1 : 1));
    for (const [name, modified] of byAge.slice(0, seen.size - maxRemembered)) {
      seen.delete(name);
      ignoreBefore = Math.max(ignoreBefore, modified);
    }
  }
  const seenJson: { [name: string]: JsonValue } = {};
  for (const name of [...seen.keys()].sort()) seenJson[name] = seen.get(name)!;
  return { ignoreBefore, seen: seenJson };
}

/**
 * Splits text into lines: `\n` ends a line and a `\r` before it is dropped; the empty part after
 * a final newline is not a line (so `"a\nb\n"` is two lines and an empty file none).
 */
export function textLines(text: string): string[] {
  if (text === '') return [];
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  for (let i = 0; i < lines.length; i++) if (lines[i].endsWith('\r')) lines[i] = lines[i].slice(0, -1);
  return lines;
}
