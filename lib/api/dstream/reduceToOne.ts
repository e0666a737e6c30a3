import { type Batch, StaticBatch } from '../../plan/batch.ts';
import type { BatchPlan } from '../../plan/graph.ts';

/**
 * @internal What {@link reduceToOne} reduces: a batch with the step that turns each of its
 * partitions into at most one `[null, value]`, or a batch that already holds such pairs.
 */
export type Partials<R, V> = { readonly batch: Batch<R>; readonly perPartition: (records: R[]) => [null, V][] } | { readonly partials: Batch<[null, V]> };

/**
 * @internal Spark's `reduce` of a whole batch, as count, reduce, countByWindow and reduceByWindow
 * compute it: each partition is reduced first (one small record per partition crosses the
 * shuffle), those values meet in one partition under `fn`, and the batch holds the one value. An
 * empty batch holds none, or `zero.value` when `zero` is given (a count of nothing is 0).
 */
export function reduceToOne<R, V>(from: Partials<R, V>, fn: (a: V, b: V) => V, id: string, zero?: { readonly value: V; readonly plan: BatchPlan }): Batch<V> {
  const partials = 'partials' in from ? from.partials : from.batch.mapPartitions(from.perPartition, id);
  const all = zero === undefined ? partials : partials.union(new StaticBatch<[null, V]>([[null, zero.value]], 1, `${id}-zero`, zero.plan));
  return all.reduceByKey(fn, { numPartitions: 1 }, id).map(([, v]) => v, id);
}

/** @internal The step of {@link reduceToOne} that reduces one partition's records with `fn`; an empty partition gives none. */
export function reducePartition<T>(fn: (a: T, b: T) => T): (records: T[]) => [null, T][] {
  return (records) => (records.length ? [[null, records.reduce(fn)]] : []);
}

/** @internal The step of {@link reduceToOne} that counts one partition's records. */
export function countPartition(records: unknown[]): [null, number][] {
  return [[null, records.length]];
}

/** @internal The reduce function of counts. */
export function sum(a: number, b: number): number {
  return a + b;
}
