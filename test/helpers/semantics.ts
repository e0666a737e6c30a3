import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BatchOutput } from 'sluice/testing';

/**
 * Canonical text of a value for sorting and comparing: like JSON, but `undefined` (a missing
 * side of an outer join) stays distinct from `null`.
 */
export function canon(v: unknown): string {
  if (v === undefined) return '~undefined';
  if (Array.isArray(v)) return `[${v.map(canon).join(',')}]`;
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canon(o[k])}`)
      .join(',')}}`;
  }
  return `${typeof v}:${String(v)}`;
}

/** The records in a canonical order (for comparing multisets). */
export function sorted<T>(records: readonly T[]): T[] {
  return [...records].sort((a, b) => {
    const x = canon(a);
    const y = canon(b);
    return x < y ? -1 : x > y ? 1 : 0;
  });
}

/** Each batch's time and its records in canonical order. */
export function sortedByTime<T>(out: readonly BatchOutput<T>[]): { time: number; data: T[] }[] {
  return out.map((b) => ({ time: b.time, data: sorted(b.data) }));
}

/** Each batch's time and its records as produced. */
export function dataByTime<T>(out: readonly BatchOutput<T>[]): { time: number; data: T[] }[] {
  return out.map((b) => ({ time: b.time, data: b.data }));
}

/**
 * For pair outputs: which partition each key landed in, over all batches. Fails (throws) if a key
 * appears in two partitions, within a batch or across batches.
 */
export function keyPartitions<K, V>(out: readonly BatchOutput<[K, V]>[]): Map<string, number> {
  const where = new Map<string, number>();
  for (const b of out) {
    b.partitions.forEach((part, p) => {
      for (const [k] of part) {
        const c = canon(k);
        const seen = where.get(c);
        if (seen !== undefined && seen !== p) {
          throw new Error(`key ${c} is in partition ${seen} and in partition ${p} (batch ${b.time})`);
        }
        where.set(c, p);
      }
    });
  }
  return where;
}

/** A fresh temporary directory; remove it with {@link removeTempDir}. */
export function makeTempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'sluice-semantics-'));
}

export function removeTempDir(dir: string): Promise<void> {
  return rm(dir, { recursive: true, force: true });
}

/** Every file of a directory (not recursive) and its text, names sorted. */
export async function readDirFiles(dir: string): Promise<Record<string, string>> {
  const files: Record<string, string> = {};
  for (const f of (await readdir(dir)).sort()) files[f] = await readFile(join(dir, f), 'utf8');
  return files;
}

/** Runs `fn` and returns what it threw or rejected with (fails if it did not). */
export async function caught(fn: () => unknown): Promise<Error> {
  try {
    await fn();
  } catch (e) {
    if (e instanceof Error) return e;
    throw new Error(`threw a non-Error: ${String(e)}`, { cause: e });
  }
  throw new Error('expected an error, but none was thrown');
}
