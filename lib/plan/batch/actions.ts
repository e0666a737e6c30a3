import { SluiceError } from '../../core/errors.ts';
import { Batch, type BatchExecutor, type PartitionInfo } from './base.ts';

/*
 * Actions: they run the dataset's plan through the engine and return what it computed. Only the
 * coordinator has an engine to run them (inside `foreachRDD`); transform functions stay lazy.
 */

declare module './base.ts' {
  interface Batch<T> {
    /**
     * All records, in partition order (Spark's `collect`).
     * @example
     * ```ts
     * stream.foreachRDD(async (batch) => console.log(await batch.collect()));
     * ```
     */
    collect(): Promise<T[]>;

    /** @internal Every partition's records. */
    collectPartitions(): Promise<T[][]>;

    /**
     * The first `n` records, in partition order (Spark's `take`).
     * @example
     * ```ts
     * const sample = await batch.take(5);
     * ```
     */
    take(n: number): Promise<T[]>;

    /**
     * The number of records (Spark's `count`).
     * @example
     * ```ts
     * const n = await batch.count();
     * ```
     */
    count(): Promise<number>;

    /**
     * Calls `fn` once per partition with its records (Spark's `foreachPartition`).
     * @example
     * ```ts
     * await batch.foreachPartition(async (records) => { const db = await connect(); await db.insert(records); await db.close(); });
     * ```
     */
    foreachPartition(fn: (records: T[], info: PartitionInfo) => unknown): Promise<void>;
  }
}

/** The engine that runs `action` on `batch`: the coordinator's, which exists only inside `foreachRDD`. */
function executorOf(batch: Batch<unknown>, action: string): BatchExecutor {
  const ex = batch.scope.executor;
  if (!ex) {
    throw new SluiceError(`${action}() runs a job and is only available on the coordinator, inside foreachRDD; transform functions must stay lazy`);
  }
  return ex;
}

Batch.prototype.collect = async function collect<T>(this: Batch<T>): Promise<T[]> {
  const parts = (await executorOf(this, 'collect').runJob(this, { kind: 'collect' })) as T[][];
  return parts.flat();
};

Batch.prototype.collectPartitions = async function collectPartitions<T>(this: Batch<T>): Promise<T[][]> {
  return (await executorOf(this, 'collect').runJob(this, { kind: 'collect' })) as T[][];
};

Batch.prototype.take = async function take<T>(this: Batch<T>, n: number): Promise<T[]> {
  if (!Number.isInteger(n) || n < 0) throw new SluiceError(`take: n must be a whole number >= 0, got ${String(n)}`);
  if (n === 0) return [];
  const parts = (await executorOf(this, 'take').runJob(this, { kind: 'collect', limit: n })) as T[][];
  return parts.flat().slice(0, n);
};

Batch.prototype.count = async function count(this: Batch<unknown>): Promise<number> {
  const parts = (await executorOf(this, 'count').runJob(this, { kind: 'count' })) as number[];
  let total = 0;
  for (const c of parts) total += c;
  return total;
};

Batch.prototype.foreachPartition = async function foreachPartition<T>(this: Batch<T>, fn: (records: T[], info: PartitionInfo) => unknown): Promise<void> {
  await executorOf(this, 'foreachPartition').runJob(this, {
    kind: 'foreachPartition',
    fn: fn as (records: unknown[], info: PartitionInfo) => unknown,
  });
};
