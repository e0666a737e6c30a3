/**
 * How values of one key are folded together, on the map side of a shuffle and again on the
 * reduce side (Spark's `Aggregator`: createCombiner, mergeValue, mergeCombiners).
 */
export interface Aggregator<V, C> {
  create(value: V): C;
  merge(combiner: C, value: V): C;
  combine(a: C, b: C): C;
}

/** The aggregator of `reduceByKey(fn)`. */
export function reducing<V>(fn: (a: V, b: V) => V): Aggregator<V, V> {
  return { create: (v) => v, merge: fn, combine: fn };
}

/** The aggregator of `groupByKey()` and of each side of `cogroup()`. */
export const grouping: Aggregator<unknown, unknown[]> = {
  create: (v) => [v],
  merge: (c, v) => {
    c.push(v);
    return c;
  },
  combine: (a, b) => {
    for (let i = 0; i < b.length; i++) a.push(b[i]);
    return a;
  },
};

/**
 * Per-key combiners of one partition, in first-seen order. String and number keys index the Map
 * directly; other keys go through their canonical encoding and keep the original key beside
 * the combiner. Iteration order is deterministic for a deterministic input.
 */
export class CombinerMap<C> {
  private readonly plain = new Map<unknown, C>();
  private composite: Map<string, [unknown, C]> | undefined;

  get size(): number {
    return this.plain.size + (this.composite?.size ?? 0);
  }

  /** Adds one value. `encode` is only called for keys that are not strings or numbers. */
  addValue<V>(key: unknown, value: V, agg: Aggregator<V, C>, encode: (k: unknown) => string): void {
    const t = typeof key;
    if (t === 'string' || t === 'number') {
      const m = this.plain;
      const c = m.get(key);
      if (c !== undefined || m.has(key)) m.set(key, agg.merge(c as C, value));
      else m.set(key, agg.create(value));
      return;
    }
    const k = encode(key);
    const m = (this.composite ??= new Map());
    const e = m.get(k);
    if (e) e[1] = agg.merge(e[1], value);
    else m.set(k, [key, agg.create(value)]);
  }

  /** Merges a combiner from another partition's map side. */
  addCombiner(key: unknown, combiner: C, combine: (a: C, b: C) => C, encode: (k: unknown) => string): void {
    const t = typeof key;
    if (t === 'string' || t === 'number') {
      const m = this.plain;
      const c = m.get(key);
      if (c !== undefined || m.has(key)) m.set(key, combine(c as C, combiner));
      else m.set(key, combiner);
      return;
    }
    const k = encode(key);
    const m = (this.composite ??= new Map());
    const e = m.get(k);
    if (e) e[1] = combine(e[1], combiner);
    else m.set(k, [key, combiner]);
  }

  /** Whether `key` has a combiner. */
  has(key: unknown, encode: (k: unknown) => string): boolean {
    const t = typeof key;
    if (t === 'string' || t === 'number') return this.plain.has(key);
    return this.composite?.has(encode(key)) ?? false;
  }

  /** The combiner of `key`, if it has one. */
  get(key: unknown, encode: (k: unknown) => string): C | undefined {
    const t = typeof key;
    if (t === 'string' || t === 'number') return this.plain.get(key);
    return this.composite?.get(encode(key))?.[1];
  }

  /** Removes `key` and its combiner. */
  delete(key: unknown, encode: (k: unknown) => string): void {
    const t = typeof key;
    if (t === 'string' || t === 'number') this.plain.delete(key);
    else this.composite?.delete(encode(key));
  }

  /** Calls `fn(key, combiner)` for every key, in first-seen order (plain keys first). */
  forEach(fn: (key: unknown, combiner: C) => void): void {
    for (const [k, c] of this.plain) fn(k, c);
    if (this.composite) for (const [, e] of this.composite) fn(e[0], e[1]);
  }

  /** The entries as `[key, combiner]` pairs. */
  toPairs(): [unknown, C][] {
    const out: [unknown, C][] = new Array(this.size);
    let i = 0;
    this.forEach((k, c) => {
      out[i++] = [k, c];
    });
    return out;
  }
}
