import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

/** One saved batch: its directory name's time and the content of every file in it. */
export interface SavedBatch {
  readonly time: number;
  readonly files: Record<string, string>;
}

/** Reads every `<name>-<time>/` output directory under `dir`, ordered by time. */
export async function readSavedBatches(dir: string, name: string): Promise<SavedBatch[]> {
  const out: SavedBatch[] = [];
  for (const entry of await readdir(dir)) {
    const m = new RegExp(`^${name}-(\\d+)$`).exec(entry);
    if (!m) continue;
    const files: Record<string, string> = {};
    for (const f of (await readdir(join(dir, entry))).sort()) files[f] = await readFile(join(dir, entry, f), 'utf8');
    out.push({ time: Number(m[1]), files });
  }
  return out.sort((a, b) => a.time - b.time);
}
