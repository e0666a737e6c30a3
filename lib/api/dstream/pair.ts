import type { PartitionOptions } from '../../plan/batch.ts';
import { derive, DStream } from './base.ts';
import { checkFn, checkNumPartitions } from './checks.ts';

// Operators on streams of `[key, value]` pairs that work on one stream (Spark's
// PairDStreamFunctions): the values of a key, and the shuffles that bring a key's values together.
// Their `this: DStream<[K, V]>` keeps them off streams of anything else. Joins are in joins.ts.

declare module './base.ts' {
  // An augmentation repeats the class's type parameters; these methods type `this` instead of using T.
  // eslint-disable-next-line @typescript-eslint/no-unused-vars
  interface DStream<T> {
    /**
     * Applies `fn` to each value, keeping keys (Spark's `mapValues`).
     * @example
     * ```ts
     * pairs.mapValues((v) => v * 10);
     * ```
     */
    mapValues<K, V, U>(this: DStream<[K, V]>, fn: (value: V) => U): DStream<[K, U]>;

    /**
     * Zero or more values per pair, keeping keys (Spark's `flatMapValues`).
     * @example
     * ```ts
     * pairs.flatMapValues((tags) => tags.split(','));
     * ```
     */
    flatMapValues<K, V, U>(this: DStream<[K, V]>, fn: (value: V) => Iterable<U>): DStream<[K, U]>;

    /**
     * All values of each key in a batch (Spark's `groupByKey`).
     * @example
     * ```ts
     * pairs.groupByKey(); // ['k', [1, 2, 3]]
     * ```
     */
    groupByKey<K, V>(this: DStream<[K, V]>, options?: PartitionOptions): DStream<[K, V[]]>;

    /**
     * Combines the values of each key in a batch with an associative, commutative function
     * (Spark's `reduceByKey`), with map-side combine.
     * @example
     * ```ts
     * words.map((w) => [w, 1] as [string, number]).reduceByKey((a, b) => a + b);
     * ```
     */
    reduceByKey<K, V>(this: DStream<[K, V]>, fn: (a: V, b: V) => V, options?: PartitionOptions): DStream<[K, V]>;

    /**
     * Combines the values of each key into a combiner (Spark's `combineByKey`).
     * @example
     * ```ts
     * const avg = pairs
     *   .combineByKey((v) => [v, 1] as [number, number], ([s, n], v) => [s + v, n + 1] as [number, number], ([a, b], [c, d]) => [a + c, b + d] as [number, number])
     *   .mapValues(([s, n]) => s / n);
     * ```
     */
    combineByKey<K, V, C>(
      this: DStream<[K, V]>,
      create: (value: V) => C,
      mergeValue: (combiner: C, value: V) => C,
      mergeCombiners: (a: C, b: C) => C,
      options?: PartitionOptions,
    ): DStream<[K, C]>;
  }
}

DStream.prototype.mapValues = function mapValues<K, V, U>(this: DStream<[K, V]>, fn: (value: V) => U): DStream<[K, U]> {
  checkFn(fn, 'mapValues');
  return derive(this, 'mapValues', (b, _p, id) => b.mapValues(fn, id), {}, [fn]);
};

DStream.prototype.flatMapValues = function flatMapValues<K, V, U>(this: DStream<[K, V]>, fn: (value: V) => Iterable<U>): DStream<[K, U]> {
  checkFn(fn, 'flatMapValues');
  return derive(this, 'flatMapValues', (b, _p, id) => b.flatMapValues(fn, id), {}, [fn]);
};

DStream.prototype.groupByKey = function groupByKey<K, V>(this: DStream<[K, V]>, options: PartitionOptions = {}): DStream<[K, V[]]> {
  checkNumPartitions(options, 'groupByKey');
  return derive(this, 'groupByKey', (b, _p, id) => b.groupByKey(options, id), { ...options });
};

DStream.prototype.reduceByKey = function reduceByKey<K, V>(this: DStream<[K, V]>, fn: (a: V, b: V) => V, options: PartitionOptions = {}): DStream<[K, V]> {
  checkFn(fn, 'reduceByKey');
  checkNumPartitions(options, 'reduceByKey');
  return derive(this, 'reduceByKey', (b, _p, id) => b.reduceByKey(fn, options, id), { ...options }, [fn]);
};

DStream.prototype.combineByKey = function combineByKey<K, V, C>(
  this: DStream<[K, V]>,
  create: (value: V) => C,
  mergeValue: (combiner: C, value: V) => C,
  mergeCombiners: (a: C, b: C) => C,
  options: PartitionOptions = {},
): DStream<[K, C]> {
  checkFn(create, 'combineByKey');
  checkFn(mergeValue, 'combineByKey');
  checkFn(mergeCombiners, 'combineByKey');
  checkNumPartitions(options, 'combineByKey');
  return derive(this, 'combineByKey', (b, _p, id) => b.combineByKey(create, mergeValue, mergeCombiners, options, id), { ...options }, [create, mergeValue, mergeCombiners]);
};
