import { type Aggregator, CombinerMap } from './aggregate.ts';
import { type Emit, isPair, notPair, type ShuffledBatch, userError } from './batch.ts';
import { canonicalKey, partitionOf } from './keys.ts';

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

  constructor(
    shuffle: ShuffledBatch<unknown>,
    mapPartition: number,
    readonly numReducers: number,
    /** Where records the shuffle cannot take go (see `PartitionReader.recordFailed`). */
    fail: (label: string, record: unknown, error: unknown) => void = (label, record, e) => {
      throw userError(label, record, e);
    },
  ) {
    const n = numReducers;
    const label = shuffle.label;
    this.label = label;
    const agg = shuffle.mapAggregator();
    const encode = (k: unknown) => canonicalKey(k, label);
    if (agg) {
      // One map for the whole map partition: keys are hashed to their reduce partition once
      // each when the segments are cut, not once per record.
      const map = new CombinerMap<unknown>();
      this.combiners = map;
      this.emit = (r) => {
        if (!isPair(r)) {
          fail(label, r, notPair(label, r));
          return;
        }
        this.records++;
        try {
          map.addValue(r[0], r[1], agg as Aggregator<unknown, unknown>, encode);
        } catch (e) {
          fail(label, r, e);
        }
      };
    } else {
      const lists: unknown[][] = Array.from({ length: n }, () => []);
      this.lists = lists;
      if (shuffle.spec.kind === 'repartition') {
        // Round-robin from a start that depends on the map partition, so small partitions do
        // not all pile into reducer 0 (Spark starts at a random position seeded the same way).
        let next = mapPartition % n;
        this.emit = (r) => {
          this.records++;
          lists[next].push(r);
          if (++next === n) next = 0;
        };
      } else {
        this.emit = (r) => {
          this.records++;
          lists[0].push(r);
        };
      }
    }
  }

  /** The bucket of every reduce partition: `[key, combiner]` pairs for keyed shuffles, records otherwise. */
  segments(): unknown[][] {
    const map = this.combiners;
    if (!map) return this.lists!;
    const n = this.numReducers;
    if (n === 1) return [map.toPairs()];
    const out: unknown[][] = Array.from({ length: n }, () => []);
    map.forEach((k, c) => {
      out[partitionOf(k, n, this.label)].push([k, c]);
    });
    return out;
  }
}

function emptyGroups(n: number): unknown[][] {
  const g: unknown[][] = new Array(n);
  for (let i = 0; i < n; i++) g[i] = [];
  return g;
}

/**
 * The reduce side: merges the segments that every map task wrote for one reduce partition
 * (`segments[parentIndex][mapPartition]`) and emits the result, in a deterministic order:
 * keys in first-seen order over map partitions taken in order.
 */
export function mergeSegments(shuffle: ShuffledBatch<unknown>, segments: readonly (readonly (readonly unknown[])[])[], emit: Emit<unknown>): void {
  const spec = shuffle.spec;
  const label = shuffle.label;
  const encode = (k: unknown) => canonicalKey(k, label);
  switch (spec.kind) {
    case 'combine': {
      const combine = spec.aggregator.combine;
      const merged = new CombinerMap<unknown>();
      for (const seg of segments[0]) {
        for (let i = 0; i < seg.length; i++) {
          const e = seg[i] as [unknown, unknown];
          try {
            merged.addCombiner(e[0], e[1], combine, encode);
          } catch (err) {
            throw userError(label, e, err);
          }
        }
      }
      merged.forEach((k, c) => {
        emit([k, c]);
      });
      return;
    }
    case 'cogroup': {
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
      for (const seg of segments[0]) for (let i = 0; i < seg.length; i++) keyed.push([spec.keyFn(seg[i]), seg[i]]);
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
