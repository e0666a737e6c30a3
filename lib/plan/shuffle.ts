import { RecordError, SluiceError } from '../core/errors.ts';
import { type Aggregator, CombinerMap, grouping } from './aggregate.ts';
import type { Emit } from './batch/base.ts';
import { canonicalKey, describeKey, isPair, mapKey, notPair, partitionOf } from './keys.ts';
import type { RecordFailures } from './recordErrors.ts';

/**
 * How records move between stages at a shuffle: the map side (`ShuffleWriter`) buckets each map
 * partition's records by reduce partition, combining values per key on the way when the shuffle
 * is keyed; the reduce side (`mergeSegments`) merges what every map task wrote for its partition.
 * The datasets that shuffle (`ShuffledBatch` in batch/pair.ts and its kin) describe one with a
 * {@link ShuffleSpec}.
 */

/** How a shuffle moves and merges records. */
export type ShuffleSpec =
  | { readonly kind: 'combine'; readonly aggregator: Aggregator<unknown, unknown> }
  | { readonly kind: 'cogroup' }
  | { readonly kind: 'repartition' }
  | { readonly kind: 'sort'; readonly keyFn: (record: unknown) => unknown; readonly ascending: boolean };

/** A shuffle as its two sides see it: the operator (in errors and dead letters) and its spec. */
export interface Shuffle {
  readonly label: string;
  readonly spec: ShuffleSpec;
}

/** The aggregator the map side combines values per key with, when the shuffle is keyed. */
export function mapSideAggregator(spec: ShuffleSpec): Aggregator<unknown, unknown> | undefined {
  if (spec.kind === 'combine') return spec.aggregator;
  if (spec.kind === 'cogroup') return grouping;
  return undefined;
}

/** Keys whose merge threw, with the values or combiners that could not be merged and the first error. Made on a failure only. */
type FailedKeys = Map<unknown, [key: unknown, unmerged: unknown[], error: unknown]>;

function noteFailure(failed: FailedKeys, label: string, key: unknown, unmerged: unknown[], error: unknown): void {
  const mk = mapKey(key, label);
  const f = failed.get(mk);
  if (f) for (const u of unmerged) f[1].push(u);
  else failed.set(mk, [key, unmerged, error]);
}

/**
 * Takes the failed keys out of `merged` and hands each to the reader with all it had: its
 * combiner (what did merge, later values included: a failed key is not skipped, which would cost
 * a look-up per record) and what did not. A key with nothing to hand on is only left out.
 */
function setAsideKeys<C>(r: Pick<RecordFailures, 'keyFailed'>, label: string, failed: FailedKeys, merged: CombinerMap<C>, note?: string): void {
  const encode = (k: unknown) => canonicalKey(k, label);
  for (const [key, unmerged, error] of failed.values()) {
    const records = merged.has(key, encode) ? [merged.get(key, encode), ...unmerged] : unmerged;
    merged.delete(key, encode);
    if (records.length) r.keyFailed(label, key, records, error, note);
  }
}

/**
 * The map side of a shuffle: records of one map partition go into one bucket per reduce
 * partition, combined per key on the way in (map-side combine) when the shuffle is keyed.
 */
export class ShuffleWriter {
  /** Pushes one record of the map partition; pass it as the end of the fused operator chain. */
  readonly emit: Emit<unknown>;
  private readonly combiners: CombinerMap<unknown> | undefined;
  private readonly lists: unknown[][] | undefined;
  records = 0;
  private readonly label: string;
  /** Keys whose map-side merge threw. */
  private failed: FailedKeys | undefined;

  constructor(
    shuffle: Shuffle,
    mapPartition: number,
    readonly numReducers: number,
    /** Where records and keys the shuffle cannot take go (see lib/plan/recordErrors.ts). */
    private readonly r: RecordFailures,
  ) {
    const n = numReducers;
    const label = shuffle.label;
    this.label = label;
    const agg = mapSideAggregator(shuffle.spec);
    const encode = (k: unknown) => canonicalKey(k, label);
    if (agg) {
      // One map for the whole map partition: keys are hashed to their reduce partition once
      // each when the segments are cut, not once per record.
      const map = new CombinerMap<unknown>();
      this.combiners = map;
      this.emit = (x) => {
        if (!isPair(x)) {
          r.recordFailed(label, x, notPair(label, x));
          return;
        }
        this.records++;
        // Map-side combine calls the user's create and merge functions inside the map.
        try {
          map.addValue(x[0], x[1], agg as Aggregator<unknown, unknown>, encode);
        } catch (e) {
          // A key that cannot be a key, or create() on the key's first value: the record is at fault.
          if (e instanceof SluiceError || !map.has(x[0], encode)) {
            r.recordFailed(label, x, e);
            return;
          }
          // merge() threw: which side is wrong cannot be told, so the key is set aside, as on the reduce side.
          noteFailure((this.failed ??= new Map()), label, x[0], [x[1]], e);
        }
      };
    } else {
      const lists: unknown[][] = Array.from({ length: n }, () => []);
      this.lists = lists;
      if (shuffle.spec.kind === 'repartition') {
        // Round-robin from a start that depends on the map partition, so small partitions do
        // not all pile into reducer 0 (Spark starts at a random position seeded the same way).
        let next = mapPartition % n;
        this.emit = (x) => {
          this.records++;
          lists[next].push(x);
          if (++next === n) next = 0;
        };
      } else {
        this.emit = (x) => {
          this.records++;
          lists[0].push(x);
        };
      }
    }
  }

  /**
   * The bucket of every reduce partition: `[key, combiner]` pairs for keyed shuffles, records
   * otherwise. A key set aside here goes to its reducer as `[key]`, so that the reducer leaves
   * it out too, whatever other map partitions hold of it.
   */
  segments(): unknown[][] {
    const map = this.combiners;
    if (!map) return this.lists!;
    const label = this.label;
    const failed = this.failed;
    if (failed) setAsideKeys(this.r, label, failed, map);
    const n = this.numReducers;
    let out: unknown[][];
    if (n === 1) out = [map.toPairs()];
    else {
      out = Array.from({ length: n }, () => []);
      map.forEach((k, c) => {
        out[partitionOf(k, n, label)].push([k, c]);
      });
    }
    if (failed) for (const [key] of failed.values()) out[partitionOf(key, n, label)].push([key]);
    return out;
  }
}

function emptyGroups(n: number): unknown[][] {
  const g: unknown[][] = new Array(n);
  for (let i = 0; i < n; i++) g[i] = [];
  return g;
}

/**
 * Merges `[key, combiner]` pairs per key with `combine`, keys in first-seen order over `sources`
 * taken in order. A key whose merge throws is left out: the reader gets it with its combiners
 * (`RecordFailures.keyFailed`, with `note`), and it is added to `failedKeys` when that is given.
 * A `[key]` entry is a key a map task set aside: it is left out too, and what the other map tasks
 * sent for it is set aside here.
 */
export function mergeByKey<C>(
  r: RecordFailures,
  label: string,
  sources: Iterable<readonly unknown[]>,
  combine: (a: C, b: C) => C,
  note?: string,
  failedKeys?: unknown[],
): CombinerMap<C> {
  const merged = new CombinerMap<C>();
  const encode = (k: unknown) => canonicalKey(k, label);
  let failed: FailedKeys | undefined;
  for (const seg of sources) {
    for (let i = 0; i < seg.length; i++) {
      const e = seg[i] as [unknown, C] | [unknown];
      if (e.length === 1) {
        const err = new RecordError(`${label}: set aside with key ${describeKey(e[0])}, whose merge threw in another map task`, { nodeId: label });
        noteFailure((failed ??= new Map()), label, e[0], [], err);
        continue;
      }
      try {
        merged.addCombiner(e[0], e[1], combine, encode);
      } catch (err) {
        noteFailure((failed ??= new Map()), label, e[0], [e[1]], err);
      }
    }
  }
  // Once the merge is done, so the dead letter holds every combiner of the key.
  if (failed) {
    for (const [key] of failed.values()) failedKeys?.push(key);
    setAsideKeys(r, label, failed, merged, note);
  }
  return merged;
}

/**
 * The reduce side: merges the segments that every map task wrote for one reduce partition
 * (`segments[parentIndex][mapPartition]`) and emits the result, in a deterministic order:
 * keys in first-seen order over map partitions taken in order.
 */
export function mergeSegments(shuffle: Shuffle, segments: readonly (readonly (readonly unknown[])[])[], emit: Emit<unknown>, r: RecordFailures): void {
  const spec = shuffle.spec;
  const label = shuffle.label;
  switch (spec.kind) {
    case 'combine': {
      mergeByKey(r, label, segments[0], spec.aggregator.combine).forEach((k, c) => {
        emit([k, c]);
      });
      return;
    }
    case 'cogroup': {
      const encode = (k: unknown) => canonicalKey(k, label);
      const n = segments.length;
      const merged = new CombinerMap<unknown[][]>();
      for (let side = 0; side < n; side++) {
        const combine = (a: unknown[][], b: unknown[][]) => {
          const into = a[side];
          const from = b[side];
          for (let i = 0; i < from.length; i++) into.push(from[i]);
          return a;
        };
        for (const seg of segments[side]) {
          for (let i = 0; i < seg.length; i++) {
            const e = seg[i] as [unknown, unknown[]];
            const groups = emptyGroups(n);
            groups[side] = e[1].slice();
            merged.addCombiner(e[0], groups, combine, encode);
          }
        }
      }
      merged.forEach((k, groups) => {
        emit([k, groups]);
      });
      return;
    }
    case 'repartition': {
      for (const seg of segments[0]) for (let i = 0; i < seg.length; i++) emit(seg[i]);
      return;
    }
    case 'sort': {
      const keyed: [unknown, unknown][] = [];
      for (const seg of segments[0]) {
        for (let i = 0; i < seg.length; i++) {
          let k: unknown;
          try {
            k = spec.keyFn(seg[i]);
          } catch (e) {
            r.recordFailed(label, seg[i], e);
            continue;
          }
          keyed.push([k, seg[i]]);
        }
      }
      const dir = spec.ascending ? 1 : -1;
      keyed.sort((a, b) => dir * compareKeys(a[0], b[0]));
      for (let i = 0; i < keyed.length; i++) emit(keyed[i][1]);
      return;
    }
  }
}

/** Total order on sort keys: numbers before strings before everything else; arrays element-wise. */
export function compareKeys(a: unknown, b: unknown): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (typeof a === 'string' && typeof b === 'string') return a < b ? -1 : a > b ? 1 : 0;
  if (Array.isArray(a) && Array.isArray(b)) {
    const n = Math.min(a.length, b.length);
    for (let i = 0; i < n; i++) {
      const c = compareKeys(a[i], b[i]);
      if (c !== 0) return c;
    }
    return a.length - b.length;
  }
  const ra = rank(a);
  const rb = rank(b);
  if (ra !== rb) return ra - rb;
  const sa = canonicalKey(a);
  const sb = canonicalKey(b);
  return sa < sb ? -1 : sa > sb ? 1 : 0;
}

function rank(v: unknown): number {
  if (typeof v === 'number') return 0;
  if (typeof v === 'string') return 1;
  if (typeof v === 'boolean') return 2;
  if (Array.isArray(v)) return 3;
  return 4;
}
