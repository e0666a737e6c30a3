import { Batch } from './base.ts';
import { ShuffledBatch } from './pair.ts';

/*
 * Sorting: sortBy shuffles every record to one partition, where the reduce side sorts them by
 * their key (`mergeSegments` and `compareKeys` in lib/plan/shuffle.ts).
 */

declare module './base.ts' {
  interface Batch<T> {
    /**
     * The records sorted by `keyFn`, in one partition (Spark's `sortBy` with one output partition).
     * Equal keys keep their input order.
     * @example
     * ```ts
     * counts.transform((b) => b.sortBy(([, n]) => n, false)).print(10); // top 10
     * ```
     */
    sortBy(keyFn: (record: T) => unknown, ascending?: boolean, label?: string): Batch<T>;
  }
}

Batch.prototype.sortBy = function sortBy<T>(this: Batch<T>, keyFn: (record: T) => unknown, ascending = true, label = 'sortBy'): Batch<T> {
  return new ShuffledBatch<T>([this], label, { kind: 'sort', keyFn: keyFn as (r: unknown) => unknown, ascending }, 1);
};
