import { open, readdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { SluiceError } from '../api/errors.ts';
import type { InputSplit, JsonValue, RecordSource, SourceIO, SourceSpec } from '../ports/index.ts';

/** Options of {@link TextFileSource} (the defaults are what jobs get; tests shrink them). */
export interface TextFileSourceOptions {
  /** How long the name of a file that is gone is still remembered (ms). @default 600000 (10 minutes) */
  readonly forgetAfterMs?: number;
  /** Most file names remembered; beyond that the oldest are replaced by a time watermark. @default 10000 */
  readonly maxRemembered?: number;
}

/**
 * What a {@link TextFileSource} keeps between cuts (in the lineage record and the checkpoint):
 * the names already taken or skipped with their mtime, and a watermark below which files count
 * as seen even though their names were forgotten.
 */
interface TextFileState {
  ignoreBefore: number;
  seen: Map<string, number>;
}

const decoder = new TextDecoder('utf-8');

/**
 * Whether a directory entry is someone's file in progress rather than input: hidden files and
 * Hadoop's conventions (`_temporary`, `_SUCCESS`, `_COPYING_`, and the `name._COPYING_` that
 * `hdfs dfs -put` writes before renaming).
 */
function ignoredName(name: string): boolean {
  return name.startsWith('.') || name.startsWith('_') || name.endsWith('._COPYING_');
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

/**
 * `ctx.textFileStream(directory)` on the local file system (Spark's `textFileStream`): at each
 * batch cut, the files that appeared in the directory since the previous cut form the batch, one
 * input partition per file. Move files in atomically (write elsewhere, then rename): the size is
 * sealed at the cut, and names starting with `.` or `_` are ignored. Subdirectories are ignored.
 *
 * Each split is `{ path, size }`: a recomputation reads exactly `size` bytes, so appending to a
 * file afterwards does not change a batch (the appended bytes are never read: the file was taken).
 *
 * @example
 * ```ts
 * const source = new TextFileSource({ nodeId: 'textFile-1', kind: 'textFile', params: { directory: 'incoming', includeExisting: false } }, io);
 * let { splits, state } = await source.cut(1000, undefined); // first cut: existing files are skipped
 * // ... mv /tmp/staging/a.txt incoming/a.txt
 * ({ splits, state } = await source.cut(2000, state));     // [{ path: '/…/incoming/a.txt', size: 42 }]
 * const { records } = await source.read(splits[0]);        // the lines of a.txt
 * ```
 */
export class TextFileSource implements RecordSource {
  private readonly directory: string;
  private readonly includeExisting: boolean;
  private readonly forgetAfterMs: number;
  private readonly maxRemembered: number;

  constructor(
    private readonly spec: SourceSpec,
    _io: SourceIO,
    options: TextFileSourceOptions = {},
  ) {
    const dir = spec.params.directory;
    if (typeof dir !== 'string' || dir === '') {
      throw new SluiceError(`${spec.nodeId}: textFileStream needs a directory, got ${JSON.stringify(dir)}`, { nodeId: spec.nodeId });
    }
    if (dir.startsWith('s3://')) {
      // Thrown when the runtime builds its sources, i.e. before the first batch, not at a cut.
      throw new SluiceError(`${spec.nodeId}: textFileStream('${dir}'): s3:// directories need the AWS runtime; the local runtime reads local directories only`, {
        nodeId: spec.nodeId,
      });
    }
    // Resolved once, so the sealed paths do not depend on a later change of working directory.
    this.directory = resolve(dir);
    this.includeExisting = spec.params.includeExisting === true;
    this.forgetAfterMs = options.forgetAfterMs ?? 10 * 60_000;
    this.maxRemembered = options.maxRemembered ?? 10_000;
  }

  async cut(time: number, state: JsonValue | undefined): Promise<{ splits: InputSplit[]; state: JsonValue }> {
    const first = state === undefined;
    const prev = first ? { ignoreBefore: 0, seen: new Map<string, number>() } : this.parseState(state);
    const seen = new Map(prev.seen);
    let names: string[];
    try {
      const entries = await readdir(this.directory, { withFileTypes: true });
      names = entries.filter((e) => !e.isDirectory() && !ignoredName(e.name)).map((e) => e.name);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      const why = code === 'ENOENT' ? 'does not exist' : code === 'ENOTDIR' ? 'is not a directory' : `cannot be listed (${code ?? String(e)})`;
      throw new SluiceError(`${this.spec.nodeId}: the textFileStream directory ${this.directory} ${why}`, { nodeId: this.spec.nodeId, batchTime: time, cause: e });
    }
    // Sorted, so the partitions of a batch come in the same order on every platform.
    names.sort();

    const present = new Set<string>();
    const splits: InputSplit[] = [];
    for (const name of names) {
      if (seen.has(name)) {
        present.add(name);
        continue;
      }
      const path = join(this.directory, name);
      let info: Awaited<ReturnType<typeof stat>>;
      try {
        info = await stat(path); // follows symlinks: a link to a file is a file
      } catch {
        continue; // removed between the listing and now: it was never there for this batch
      }
      if (!info.isFile()) continue;
      present.add(name);
      const mtime = info.mtimeMs;
      // Forgotten by the size cap below: old enough to have been seen already.
      if (mtime <= prev.ignoreBefore) continue;
      seen.set(name, mtime);
      // The very first cut skips what was there before the job started (unless asked not to).
      if (first && !this.includeExisting) continue;
      splits.push({ path, size: info.size });
    }

    // Bounding the state. A name must be remembered as long as its file is in the directory, or
    // the file would be read again. Names of files that are gone are dropped once their mtime is
    // older than 10 minutes: exact, and enough when processed files are moved away, which is the
    // usual way to use a watched directory. The grace period keeps a file that briefly disappears
    // (replaced by unlink-and-recreate, or missed by one listing) from being read twice.
    for (const [name, mtime] of seen) {
      if (!present.has(name) && mtime < time - this.forgetAfterMs) seen.delete(name);
    }
    // A directory whose files are never removed would still grow the state (and the checkpoint
    // written every batch) without bound, so past ~10k names the oldest names are replaced by a
    // watermark: files modified at or before `ignoreBefore` count as seen. A file moved in later
    // with an mtime that old is skipped then (Spark's FileInputDStream has the same rule for its
    // remember window), which is why this only applies to very large directories.
    let ignoreBefore = prev.ignoreBefore;
    if (seen.size > this.maxRemembered) {
      const byAge = [...seen].sort((a, b) => a[1] - b[1] || (a[0] < b[0] ? -1 : 1));
      for (const [name, mtime] of byAge.slice(0, seen.size - this.maxRemembered)) {
        seen.delete(name);
        ignoreBefore = Math.max(ignoreBefore, mtime);
      }
    }

    const seenJson: { [name: string]: JsonValue } = {};
    for (const name of [...seen.keys()].sort()) seenJson[name] = seen.get(name)!;
    return { splits, state: { ignoreBefore, seen: seenJson } };
  }

  async read(split: InputSplit): Promise<{ records: unknown[] }> {
    const { path, size } = split;
    if (typeof path !== 'string' || typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
      throw new SluiceError(`${this.spec.nodeId}: malformed input split ${JSON.stringify(split)}`, { nodeId: this.spec.nodeId });
    }
    let file: Awaited<ReturnType<typeof open>>;
    try {
      file = await open(path, 'r');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new SluiceError(`${this.spec.nodeId}: the input file ${path} was removed before its batch was processed`, { nodeId: this.spec.nodeId, cause: e });
      }
      throw new SluiceError(`${this.spec.nodeId}: cannot open the input file ${path}: ${(e as Error).message}`, { nodeId: this.spec.nodeId, cause: e });
    }
    try {
      // Exactly the bytes sealed at the cut: a file appended to since reads the same.
      const bytes = new Uint8Array(size);
      let got = 0;
      while (got < size) {
        const { bytesRead } = await file.read(bytes, got, size - got, got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      if (got < size) {
        throw new SluiceError(`${this.spec.nodeId}: the input file ${path} has ${got} bytes, fewer than the ${size} it had when its batch was cut; it cannot be read again`, {
          nodeId: this.spec.nodeId,
        });
      }
      return { records: textLines(decoder.decode(bytes)) };
    } finally {
      await file.close();
    }
  }

  private parseState(state: JsonValue): TextFileState {
    const s = state as { ignoreBefore?: unknown; seen?: unknown } | null;
    if (!s || typeof s !== 'object' || typeof s.ignoreBefore !== 'number' || !s.seen || typeof s.seen !== 'object' || Array.isArray(s.seen)) {
      throw new SluiceError(`${this.spec.nodeId}: unreadable textFileStream position in the checkpoint: ${JSON.stringify(state)}`, { nodeId: this.spec.nodeId });
    }
    const seen = new Map<string, number>();
    for (const [name, mtime] of Object.entries(s.seen as Record<string, unknown>)) if (typeof mtime === 'number') seen.set(name, mtime);
    return { ignoreBefore: s.ignoreBefore, seen };
  }
}
