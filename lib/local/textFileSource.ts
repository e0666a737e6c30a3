import { open, readdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { SluiceError } from '../core/errors.ts';
import { refusalOf } from '../core/sources.ts';
import { boundedSeenState, ignoredInputName, parseSeenNames, textLines } from '../engine/newFiles.ts';
import type { InputSplit, JsonValue, RecordSource, SourceIO, SourceSpec } from '../ports/index.ts';

/** Options of {@link TextFileSource} (the defaults are what jobs get; tests shrink them). */
export interface TextFileSourceOptions {
  /** How long the name of a file that is gone is still remembered (ms). @default 600000 (10 minutes) */
  readonly forgetAfterMs?: number;
  /** Most file names remembered; beyond that the oldest are replaced by a time watermark. @default 10000 */
  readonly maxRemembered?: number;
}

const decoder = new TextDecoder('utf-8');

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
    // Thrown when the runtime builds its sources, i.e. before the first batch, not at a cut.
    const refused = refusalOf({ ...spec, kind: 'textFile' }, 'local');
    if (refused) throw new SluiceError(refused, { nodeId: spec.nodeId });
    // Resolved once, so the sealed paths do not depend on a later change of working directory.
    this.directory = resolve(dir);
    this.includeExisting = spec.params.includeExisting === true;
    this.forgetAfterMs = options.forgetAfterMs ?? 10 * 60_000;
    this.maxRemembered = options.maxRemembered ?? 10_000;
  }

  async cut(time: number, state: JsonValue | undefined): Promise<{ splits: InputSplit[]; state: JsonValue }> {
    const first = state === undefined;
    const prev = parseSeenNames(state, this.spec.nodeId);
    const seen = new Map(prev.seen);
    let names: string[];
    try {
      const entries = await readdir(this.directory, { withFileTypes: true });
      names = entries.filter((e) => !e.isDirectory() && !ignoredInputName(e.name)).map((e) => e.name);
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

    return { splits, state: boundedSeenState({ ignoreBefore: prev.ignoreBefore, seen }, present, time, this.forgetAfterMs, this.maxRemembered) };
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
}
