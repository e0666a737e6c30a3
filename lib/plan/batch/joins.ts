import { Batch, checkPartitions, type PartitionOptions } from './base.ts';
import { ShuffledBatch } from './pair.ts';

/*
 * Joins of two pair datasets: cogroup shuffles both sides by key into one dataset; each join is
 * a flatMap of the cogroup that pairs up the values of a key (as Spark's joins on RDDs).
 */

declare module './base.ts' {
  // An augmentation repeats the class's type parameters; the joins' own come with `this`.
  // eslint-disable-next-line @typescript-eslint/no-unused-vars
  interface Batch<T> {
    /**
     * For each key in either batch, the values from each side (Spark's `cogroup`).
     * @example
     * ```ts
     * a.cogroup(b); // [['k', [[1, 2], ['x']]]]
     * ```
     */
    cogroup<K, V, W>(this: Batch<[K, V]>, other: Batch<[K, W]>, options?: PartitionOptions, label?: string): Batch<[K, [V[], W[]]]>;

    /**
     * Inner join on the key: one `[key, [v, w]]` per pair of matching values (Spark's `join`).
     * @example
     * ```ts
     * clicks.join(users); // [['u1', [click, user]]]
     * ```
     */
    join<K, V, W>(this: Batch<[K, V]>, other: Batch<[K, W]>, options?: PartitionOptions, label?: string): Batch<[K, [V, W]]>;

    /**
     * Like `join`, keeping keys that only this side has, with `undefined` for the missing value
     * (Spark's `leftOuterJoin`, whose `Option` becomes `W | undefined`).
     * @example
     * ```ts
     * a.leftOuterJoin(b); // [['k', [1, undefined]]] when b has no 'k'
     * ```
     */
    leftOuterJoin<K, V, W>(this: Batch<[K, V]>, other: Batch<[K, W]>, options?: PartitionOptions, label?: string): Batch<[K, [V, W | undefined]]>;

    /**
     * Like `join`, keeping keys that only the other side has (Spark's `rightOuterJoin`).
     * @example
     * ```ts
     * a.rightOuterJoin(b); // [['k', [undefined, 'x']]] when a has no 'k'
     * ```
     */
    rightOuterJoin<K, V, W>(this: Batch<[K, V]>, other: Batch<[K, W]>, options?: PartitionOptions, label?: string): Batch<[K, [V | undefined, W]]>;

    /**
     * Like `join`, keeping keys of either side (Spark's `fullOuterJoin`).
     * @example
     * ```ts
     * a.fullOuterJoin(b); // [['only-a', [1, undefined]], ['only-b', [undefined, 'x']]]
     * ```
     */
    fullOuterJoin<K, V, W>(this: Batch<[K, V]>, other: Batch<[K, W]>, options?: PartitionOptions, label?: string): Batch<[K, [V | undefined, W | undefined]]>;
  }
}

Batch.prototype.cogroup = function cogroup<K, V, W>(this: Batch<[K, V]>, other: Batch<[K, W]>, options: PartitionOptions = {}, label = 'cogroup'): Batch<[K, [V[], W[]]]> {
  const n = checkPartitions(options.numPartitions, label);
  return new ShuffledBatch<[K, [V[], W[]]]>([this, other as Batch<unknown>], label, { kind: 'cogroup' }, n);
};

Batch.prototype.join = function join<K, V, W>(this: Batch<[K, V]>, other: Batch<[K, W]>, options: PartitionOptions = {}, label = 'join'): Batch<[K, [V, W]]> {
  return this.cogroup(other, options, label).flatMap(([k, [vs, ws]]) => {
    const out: [K, [V, W]][] = [];
    for (const v of vs) for (const w of ws) out.push([k, [v, w]]);
    return out;
  }, label);
};

Batch.prototype.leftOuterJoin = function leftOuterJoin<K, V, W>(this: Batch<[K, V]>, other: Batch<[K, W]>, options: PartitionOptions = {}, label = 'leftOuterJoin'): Batch<[K, [V, W | undefined]]> {
  return this.cogroup(other, options, label).flatMap(([k, [vs, ws]]) => {
    const out: [K, [V, W | undefined]][] = [];
    for (const v of vs) {
      if (ws.length === 0) out.push([k, [v, undefined]]);
      else for (const w of ws) out.push([k, [v, w]]);
    }
    return out;
  }, label);
};

Batch.prototype.rightOuterJoin = function rightOuterJoin<K, V, W>(this: Batch<[K, V]>, other: Batch<[K, W]>, options: PartitionOptions = {}, label = 'rightOuterJoin'): Batch<[K, [V | undefined, W]]> {
  return this.cogroup(other, options, label).flatMap(([k, [vs, ws]]) => {
    const out: [K, [V | undefined, W]][] = [];
    for (const w of ws) {
      if (vs.length === 0) out.push([k, [undefined, w]]);
      else for (const v of vs) out.push([k, [v, w]]);
    }
    return out;
  }, label);
};

Batch.prototype.fullOuterJoin = function fullOuterJoin<K, V, W>(
  this: Batch<[K, V]>,
  other: Batch<[K, W]>,
  options: PartitionOptions = {},
  label = 'fullOuterJoin',
): Batch<[K, [V | undefined, W | undefined]]> {
  return this.cogroup(other, options, label).flatMap(([k, [vs, ws]]) => {
    const out: [K, [V | undefined, W | undefined]][] = [];
    if (vs.length === 0) for (const w of ws) out.push([k, [undefined, w]]);
    else if (ws.length === 0) for (const v of vs) out.push([k, [v, undefined]]);
    else for (const v of vs) for (const w of ws) out.push([k, [v, w]]);
    return out;
  }, label);
};
