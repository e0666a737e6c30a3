import type { BlobStore } from '../ports/index.ts';

/** One record a batch set aside (`onRecordError: 'dead-letter'`), as written under `dead-letters/`. */
export interface DeadLetter {
  readonly batchTime: number;
  /** The operator whose function threw, or the source whose decoder did. */
  readonly node: string;
  readonly error: string;
  /** Where it came from: source node, partition, offset (null for a key of a shuffle). */
  readonly source: unknown;
  /** The record (null for a key set aside: then `key` and `records`). */
  readonly record: unknown;
  readonly key?: unknown;
  readonly records?: readonly unknown[];
}

/** The dead letters of each batch that has some: file count and letters, oldest batch first. */
export async function listDeadLetters(blobs: BlobStore): Promise<{ time: number; files: string[] }[]> {
  const byTime = new Map<number, string[]>();
  for (const key of await blobs.list('dead-letters/')) {
    const time = Number(/^dead-letters\/(\d+)\//.exec(key)?.[1]);
    if (Number.isFinite(time)) byTime.set(time, [...(byTime.get(time) ?? []), key]);
  }
  return [...byTime].sort((a, b) => a[0] - b[0]).map(([time, files]) => ({ time, files: files.sort() }));
}

/**
 * The dead letters in `files` (from {@link listDeadLetters}), parsed; a line that is not a dead
 * letter is refused with its file and line number rather than skipped.
 *
 * @example
 * ```ts
 * for (const { files } of await listDeadLetters(blobs)) for (const letter of await readDeadLetters(blobs, files)) console.log(letter.error);
 * ```
 */
export async function readDeadLetters(blobs: BlobStore, files: readonly string[]): Promise<DeadLetter[]> {
  const out: DeadLetter[] = [];
  for (const file of files) {
    const bytes = await blobs.get(file);
    const lines = new TextDecoder().decode(bytes ?? new Uint8Array()).split('\n');
    lines.forEach((line, i) => {
      if (!line.trim()) return;
      let letter: DeadLetter;
      try {
        letter = JSON.parse(line) as DeadLetter;
      } catch {
        throw new Error(`${file} line ${i + 1} is not a dead letter (not JSON): ${line.slice(0, 80)}`);
      }
      out.push(letter);
    });
  }
  return out;
}
