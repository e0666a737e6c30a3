import { JobDefinitionError, SluiceError } from '../../core/errors.ts';
import { type Aggregator, grouping } from '../aggregate.ts';
import { isPair, notPair } from '../keys.ts';
import { mergeSegments, type ShuffleSpec } from '../shuffle.ts';
import { Batch, checkPartitions, type Emit, type PartitionOptions, type PartitionReader } from './base.ts';
import { NarrowBatch } from './stateless.ts';

/*
 * Operators of `[key, value]` pairs and the shuffle they rest on: mapValues and flatMapValues
 * (narrow), reduceByKey, combineByKey, groupByKey and countByValue (a shuffle with map-side
 * combine), and repartition (a shuffle of records). Joins (joins.ts) and sortBy (sort.ts) shuffle
 * through the same dataset, ShuffledBatch.
 */

/**
 * The reduce side of a shuffle: its partitions are read from the map outputs of its parents'
 * stages. Stages are split here.
 */
export class ShuffledBatch<T> extends Batch<T> {
  readonly explicitPartitions: number | undefined;
  constructor(
    parents: readonly Batch<unknown>[],
    label: string,
    readonly spec: ShuffleSpec,
    numPartitions: number | undefined,
  ) {
    super(parents, label);
    this.explicitPartitions = numPartitions;
  }
  get numPartitions(): number {
    if (this.explicitPartitions !== undefined) return this.explicitPartitions;
    if (this.scope.defaultParallelism !== undefined) return this.scope.defaultParallelism;
    let n = 1;
    for (const p of this.parents) n = Math.max(n, p.numPartitions);
    return n;
  }
  protected async compute(p: number, r: PartitionReader, emit: Emit<T>): Promise<void> {
    const segments: (readonly (readonly unknown[])[])[] = [];
    for (let i = 0; i < this.parents.length; i++) segments.push(await r.shuffle(this as Batch<unknown>, i, p));
    mergeSegments(this, segments, emit as Emit<unknown>, r);
  }
}

declare module './base.ts' {
  interface Batch<T> {
    /**
     * Applies `fn` to the value of each `[key, value]` pair (Spark's `mapValues`).
     * @example
     * ```ts
     * pairs.mapValues((v) => v * 2);
     * ```
     */
    mapValues<K, V, U>(this: Batch<[K, V]>, fn: (value: V) => U, label?: string): Batch<[K, U]>;

    /**
     * Zero or more values per pair, keeping the key (Spark's `flatMapValues`).
     * @example
     * ```ts
     * pairs.flatMapValues((csv) => csv.split(','));
     * ```
     */
    flatMapValues<K, V, U>(this: Batch<[K, V]>, fn: (value: V) => Iterable<U>, label?: string): Batch<[K, U]>;

    /**
     * Combines the values of each key with an associative, commutative function, with map-side
     * combine (Spark's `reduceByKey`).
     * @example
     * ```ts
     * words.map((w) => [w, 1] as [string, number]).reduceByKey((a, b) => a + b);
     * ```
     */
    reduceByKey<K, V>(this: Batch<[K, V]>, fn: (a: V, b: V) => V, options?: PartitionOptions, label?: string): Batch<[K, V]>;

    /**
     * Combines the values of each key into a combiner of another type (Spark's `combineByKey`):
     * `create` makes a combiner from a key's first value in a partition, `mergeValue` adds a value,
     * `mergeCombiners` merges two partitions' combiners.
     * @example
     * ```ts
     * // average per key
     * pairs.combineByKey((v) => [v, 1], ([s, n], v) => [s + v, n + 1], ([s1, n1], [s2, n2]) => [s1 + s2, n1 + n2])
     *      .mapValues(([s, n]) => s / n);
     * ```
     */
    combineByKey<K, V, C>(
      this: Batch<[K, V]>,
      create: (value: V) => C,
      mergeValue: (combiner: C, value: V) => C,
      mergeCombiners: (a: C, b: C) => C,
      options?: PartitionOptions,
      label?: string,
    ): Batch<[K, C]>;

    /**
     * All values of each key as an array (Spark's `groupByKey`).
     * @example
     * ```ts
     * pairs.groupByKey(); // [['a', [1, 2]], ['b', [3]]]
     * ```
     */
    groupByKey<K, V>(this: Batch<[K, V]>, options?: PartitionOptions, label?: string): Batch<[K, V[]]>;

    /**
     * `[record, count]` for each distinct record (Spark's `countByValue`, as a dataset).
     * @example
     * ```ts
     * words.countByValue(); // [['a', 3], ['b', 1]]
     * ```
     */
    countByValue(options?: PartitionOptions, label?: string): Batch<[T, number]>;

    /**
     * Spreads the records evenly over `numPartitions` partitions (Spark's `repartition`; the
     * spreading is round-robin and deterministic).
     * @example
     * ```ts
     * batch.repartition(8);
     * ```
     */
    repartition(numPartitions: number, label?: string): Batch<T>;
  }
}

Batch.prototype.mapValues = function mapValues<K, V, U>(this: Batch<[K, V]>, fn: (value: V) => U, label = 'mapValues'): Batch<[K, U]> {
  return new NarrowBatch<[K, V], [K, U]>(this, label, (emit, r) => (x) => {
    if (!isPair(x)) {
      r.recordFailed(label, x, notPair(label, x));
      return;
    }
    let y: U;
    try {
      y = fn(x[1]);
    } catch (e) {
      r.recordFailed(label, x, e);
      return;
    }
    emit([x[0], y]);
  });
};

Batch.prototype.flatMapValues = function flatMapValues<K, V, U>(this: Batch<[K, V]>, fn: (value: V) => Iterable<U>, label = 'flatMapValues'): Batch<[K, U]> {
  return new NarrowBatch<[K, V], [K, U]>(this, label, (emit, r) => (x) => {
    if (!isPair(x)) {
      r.recordFailed(label, x, notPair(label, x));
      return;
    }
    let ys: Iterable<U>;
    try {
      ys = fn(x[1]);
    } catch (e) {
      r.recordFailed(label, x, e);
      return;
    }
    try {
      for (const y of ys) emit([x[0], y]);
    } catch (e) {
      if (e instanceof SluiceError) throw e;
      r.recordFailed(label, x, e);
    }
  });
};

Batch.prototype.reduceByKey = function reduceByKey<K, V>(this: Batch<[K, V]>, fn: (a: V, b: V) => V, options: PartitionOptions = {}, label = 'reduceByKey'): Batch<[K, V]> {
  return this.combineByKey<K, V, V>((v) => v, fn, fn, options, label);
};

Batch.prototype.combineByKey = function combineByKey<K, V, C>(
  this: Batch<[K, V]>,
  create: (value: V) => C,
  mergeValue: (combiner: C, value: V) => C,
  mergeCombiners: (a: C, b: C) => C,
  options: PartitionOptions = {},
  label = 'combineByKey',
): Batch<[K, C]> {
  const n = checkPartitions(options.numPartitions, label);
  const agg: Aggregator<V, C> = { create, merge: mergeValue, combine: mergeCombiners };
  return new ShuffledBatch<[K, C]>([this], label, { kind: 'combine', aggregator: agg as Aggregator<unknown, unknown> }, n);
};

Batch.prototype.groupByKey = function groupByKey<K, V>(this: Batch<[K, V]>, options: PartitionOptions = {}, label = 'groupByKey'): Batch<[K, V[]]> {
  const n = checkPartitions(options.numPartitions, label);
  return new ShuffledBatch<[K, V[]]>([this], label, { kind: 'combine', aggregator: grouping }, n);
};

Batch.prototype.countByValue = function countByValue<T>(this: Batch<T>, options: PartitionOptions = {}, label = 'countByValue'): Batch<[T, number]> {
  return this.map((x) => [x, 1] as [T, number], label).reduceByKey((a, b) => a + b, options, label);
};

Batch.prototype.repartition = function repartition<T>(this: Batch<T>, numPartitions: number, label = 'repartition'): Batch<T> {
  const n = checkPartitions(numPartitions, label);
  if (n === undefined) throw new JobDefinitionError(`${label}: numPartitions is required`);
  return new ShuffledBatch<T>([this], label, { kind: 'repartition' }, n);
};
