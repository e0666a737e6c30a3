import { RecordError } from '../core/errors.ts';
import { describeValue } from '../core/values.ts';

/**
 * Keys of pair operators: strings, numbers, booleans, null/undefined, and arrays or plain objects
 * of these. Strings and numbers are used directly as Map keys (a Map tells `1` from `'1'`);
 * composite keys get a canonical text encoding so equal tuples meet in one Map entry.
 */
export type Key = unknown;

/** Marks canonical encodings so they can never equal a user's own string key. */
const COMPOSITE = '\u0000k:';

function encodeInto(k: unknown, nodeId: string | undefined): string {
  switch (typeof k) {
    case 'string':
      return JSON.stringify(k);
    case 'number':
      // -0 and 0 are the same key, as in a Map; NaN is one key.
      return Object.is(k, -0) ? 'n0' : `n${k}`;
    case 'boolean':
      return k ? 'T' : 'F';
    case 'bigint':
      return `b${k}`;
    case 'undefined':
      return 'U';
    case 'object': {
      if (k === null) return 'N';
      if (Array.isArray(k)) {
        let s = '[';
        for (let i = 0; i < k.length; i++) s += (i ? ',' : '') + encodeInto(k[i], nodeId);
        return `${s}]`;
      }
      const proto = Object.getPrototypeOf(k);
      if (proto === Object.prototype || proto === null) {
        const names = Object.keys(k).sort();
        let s = '{';
        for (let i = 0; i < names.length; i++) {
          s += `${i ? ',' : ''}${JSON.stringify(names[i])}:${encodeInto((k as Record<string, unknown>)[names[i]], nodeId)}`;
        }
        return `${s}}`;
      }
      if (k instanceof Date) return `D${k.getTime()}`;
      break;
    }
  }
  throw new RecordError(
    `${nodeId ?? 'a pair operator'}: a key must be a string, number, boolean, null, or an array or plain object of these; got ${describeValue(k)}`,
    { nodeId },
  );
}

/**
 * The Map key that stands for `k`: the key itself for strings and numbers (no allocation on
 * the hot path), a canonical string for everything else.
 */
export function mapKey(k: unknown, nodeId?: string): unknown {
  const t = typeof k;
  if (t === 'string') return k;
  if (t === 'number') return Object.is(k, -0) ? 0 : k;
  return COMPOSITE + encodeInto(k, nodeId);
}

/** Canonical text of a key: equal keys give equal text in every process and every run. */
export function canonicalKey(k: unknown, nodeId?: string): string {
  return encodeInto(k, nodeId);
}

/** FNV-1a over UTF-16 code units, 32 bit. Stable across processes, platforms and runs. */
function fnv1a(s: string, h = 0x811c9dc5): number {
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** Finaliser from MurmurHash3: spreads FNV's weak low bits so `% n` balances well. */
function mix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * Hash of a key that is the same in every process and run (unlike anything based on object
 * identity or a per-process seed).
 */
export function keyHash(k: unknown, nodeId?: string): number {
  // Strings are hashed directly so the common case allocates nothing.
  if (typeof k === 'string') return mix(fnv1a(k, 0x9747b28c));
  return mix(fnv1a(encodeInto(k, nodeId)));
}

/**
 * The partition of `key` among `n` partitions.
 *
 * @example
 * ```ts
 * partitionOf('spark', 4); // the same number in every worker, every run
 * ```
 */
export function partitionOf(key: unknown, n: number, nodeId?: string): number {
  return n === 1 ? 0 : keyHash(key, nodeId) % n;
}

/** A key as it is written in the job (JSON), shortened, for error messages. */
export function describeKey(k: unknown): string {
  let s: string | undefined;
  try {
    s = JSON.stringify(k);
  } catch {
    s = undefined;
  }
  if (s === undefined) return describeValue(k);
  return s.length > 60 ? `${s.slice(0, 60)}…` : s;
}

/** Whether `r` is a `[key, value]` pair. */
export function isPair(r: unknown): r is [unknown, unknown] {
  return Array.isArray(r) && r.length === 2;
}

/** The error for a record that pair operator `label` cannot use: it is no `[key, value]` pair. */
export function notPair(label: string, record: unknown): RecordError {
  return new RecordError(
    `${label} expects [key, value] pairs, got ${describeValue(record)}; map the stream to pairs first, e.g. .map((x) => [key(x), x])`,
    { nodeId: label, record },
  );
}
