import type { Batch, PartitionOptions } from '../../plan/batch.ts';
import { describeValue } from '../../core/values.ts';
import { JobDefinitionError } from '../../core/errors.ts';
import { DStream } from './base.ts';
import { checkNumPartitions, checkSameSlide } from './checks.ts';

// Joins of two pair streams, batch by batch at the same time (Spark's PairDStreamFunctions.join
// and its outer variants, cogroup). Windowed joins are a join of two windows.

declare module './base.ts' {
  // An augmentation repeats the class's type parameters; these methods type `this` instead of using T.
  // eslint-disable-next-line @typescript-eslint/no-unused-vars
  interface DStream<T> {
    /**
     * Inner join of each pair of batches at the same time (Spark's `join`).
     * @example
     * ```ts
     * impressions.join(clicks); // ['ad-7', [impression, click]]
     * ```
     */
    join<K, V, W>(this: DStream<[K, V]>, other: DStream<[K, W]>, options?: PartitionOptions): DStream<[K, [V, W]]>;

    /**
     * Left outer join; a missing right value is `undefined` (Spark's `leftOuterJoin`).
     * @example
     * ```ts
     * orders.leftOuterJoin(payments); // ['o1', [order, undefined]] until paid
     * ```
     */
    leftOuterJoin<K, V, W>(this: DStream<[K, V]>, other: DStream<[K, W]>, options?: PartitionOptions): DStream<[K, [V, W | undefined]]>;

    /**
     * Right outer join; a missing left value is `undefined` (Spark's `rightOuterJoin`).
     * @example
     * ```ts
     * orders.rightOuterJoin(payments); // ['o9', [undefined, payment]]
     * ```
     */
    rightOuterJoin<K, V, W>(this: DStream<[K, V]>, other: DStream<[K, W]>, options?: PartitionOptions): DStream<[K, [V | undefined, W]]>;

    /**
     * Full outer join; a missing value on either side is `undefined` (Spark's `fullOuterJoin`).
     * @example
     * ```ts
     * a.fullOuterJoin(b);
     * ```
     */
    fullOuterJoin<K, V, W>(this: DStream<[K, V]>, other: DStream<[K, W]>, options?: PartitionOptions): DStream<[K, [V | undefined, W | undefined]]>;

    /**
     * For each key in either batch, the values of each side (Spark's `cogroup`).
     * @example
     * ```ts
     * a.cogroup(b); // ['k', [[1, 2], ['x']]]
     * ```
     */
    cogroup<K, V, W>(this: DStream<[K, V]>, other: DStream<[K, W]>, options?: PartitionOptions): DStream<[K, [V[], W[]]]>;
  }
}

DStream.prototype.join = function join<K, V, W>(this: DStream<[K, V]>, other: DStream<[K, W]>, options: PartitionOptions = {}): DStream<[K, [V, W]]> {
  return pairJoin(this, other, 'join', options, (a, b, id) => a.join(b, options, id));
};

DStream.prototype.leftOuterJoin = function leftOuterJoin<K, V, W>(this: DStream<[K, V]>, other: DStream<[K, W]>, options: PartitionOptions = {}): DStream<[K, [V, W | undefined]]> {
  return pairJoin(this, other, 'leftOuterJoin', options, (a, b, id) => a.leftOuterJoin(b, options, id));
};

DStream.prototype.rightOuterJoin = function rightOuterJoin<K, V, W>(this: DStream<[K, V]>, other: DStream<[K, W]>, options: PartitionOptions = {}): DStream<[K, [V | undefined, W]]> {
  return pairJoin(this, other, 'rightOuterJoin', options, (a, b, id) => a.rightOuterJoin(b, options, id));
};

DStream.prototype.fullOuterJoin = function fullOuterJoin<K, V, W>(
  this: DStream<[K, V]>,
  other: DStream<[K, W]>,
  options: PartitionOptions = {},
): DStream<[K, [V | undefined, W | undefined]]> {
  return pairJoin(this, other, 'fullOuterJoin', options, (a, b, id) => a.fullOuterJoin(b, options, id));
};

DStream.prototype.cogroup = function cogroup<K, V, W>(this: DStream<[K, V]>, other: DStream<[K, W]>, options: PartitionOptions = {}): DStream<[K, [V[], W[]]]> {
  return pairJoin(this, other, 'cogroup', options, (a, b, id) => a.cogroup(b, options, id));
};

/** A node of kind `kind` over `a` and `b` whose batch is `op` of their batches at the same time. */
function pairJoin<K, V, W, R>(
  a: DStream<[K, V]>,
  b: DStream<[K, W]>,
  kind: string,
  options: PartitionOptions,
  op: (x: Batch<[K, V]>, y: Batch<[K, W]>, id: string) => Batch<R>,
): DStream<R> {
  if (!(b instanceof DStream)) throw new JobDefinitionError(`${kind}: the other side must be a stream, got ${describeValue(b)}`);
  checkNumPartitions(options, kind);
  checkSameSlide([a, b], kind);
  const node = a.graph.addNode(kind, [a.node, b.node], { ...options });
  return new DStream<R>(a.graph, node, (plan) => {
    const x = a.batchAt(plan);
    const y = b.batchAt(plan);
    if (x === undefined || y === undefined) return undefined;
    return op(x, y, node.id);
  });
}
