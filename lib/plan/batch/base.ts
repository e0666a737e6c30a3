import { JobDefinitionError } from '../../core/errors.ts';
import type { RecordFailures } from '../recordErrors.ts';
import type { StateIO, StateOwner } from '../state/format.ts';

/*
 * The core of the per-batch dataset, `Batch<T>` (Spark's RDD): what every dataset shares
 * (partitions, scope, lineage, how a partition is computed) and the contract between datasets and
 * the task that computes them (`PartitionReader`). Operators live one family per file next to
 * this one (stateless.ts, pair.ts, joins.ts, sort.ts, actions.ts, sources.ts); each declares its
 * methods on `Batch` by module augmentation and puts them on `Batch.prototype`. Import datasets
 * from lib/plan/batch.ts, which loads every family, so that every method is there.
 */

/** Receives one record; narrow operators are chains of these, fused into one loop per task. */
export type Emit<T> = (record: T) => void;

/**
 * What a task gives a dataset to compute one of its partitions: the inputs read from outside the
 * stage (source splits, shuffle segments, cached partitions), and where the failures of user
 * functions go (see lib/plan/recordErrors.ts).
 */
export interface PartitionReader extends RecordFailures {
  /** The batch time of the running task. */
  readonly time: number;
  /**
   * Whether the task reads partition `partition` of `dataset` from the cache instead of computing
   * it: the coordinator decides which datasets a stage reads cached and says so in the task.
   */
  readsCache(dataset: Batch<unknown>, partition: number): boolean;
  /** Records of split `partition` of source node `nodeId`. */
  source(nodeId: string, partition: number): Promise<readonly unknown[]>;
  /** For each map task of parent `parentIndex` of the shuffle `shuffle`, in map-partition order, the segment of reduce partition `partition`. */
  shuffle(shuffle: Batch<unknown>, parentIndex: number, partition: number): Promise<readonly (readonly unknown[])[]>;
  /** The records of partition `partition` of a cached dataset. */
  cache(dataset: Batch<unknown>, partition: number): Promise<readonly unknown[]>;
  /** Position of the source record being pushed, for dead letters: set by source datasets. */
  position: { nodeId: string; partition: number; offset: number } | undefined;
  /** The durable state of partition `partition` of a stateful dataset. */
  stateIO(dataset: StateOwner, partition: number): StateIO;
  /** Set in a quiet batch (no input, every stateful node at rest): stateful nodes do not run. */
  readonly quiet: boolean;
  /** In a quiet batch, a stateful node's input: throws (the batch then runs in full) when it has a record after all. */
  quietInput(nodeId: string, segments: readonly (readonly unknown[])[]): void;
}

/** What an action asks of every partition of the dataset it runs on. */
export type ResultAction =
  | { readonly kind: 'collect'; readonly limit?: number }
  | { readonly kind: 'count' }
  | { readonly kind: 'output'; readonly outputId: string }
  | { readonly kind: 'foreachPartition'; readonly fn: (records: unknown[], info: PartitionInfo) => unknown };

/**
 * Which partition and batch a `foreachPartition` function is called for.
 * @example
 * ```ts
 * stream.foreachPartition((records, { partition, batchTime }) => console.log(batchTime, partition, records.length));
 * ```
 */
export interface PartitionInfo {
  /** The partition index. */
  readonly partition: number;
  /** The batch time in milliseconds. */
  readonly batchTime: number;
}

/** Runs actions (collect, count, ...) of a batch through the engine. Exists on the coordinator only. */
export interface BatchExecutor {
  /** Computes every partition of `dataset` and applies `action`; the result of each partition, in order. */
  runJob(dataset: Batch<unknown>, action: ResultAction): Promise<unknown[]>;
}

/** A place datasets are registered in, so workers find them again by id. */
export interface Scope {
  /** The batch time, for per-batch plans. */
  readonly time: number | undefined;
  /** Once sealed, datasets created in it exist only on the coordinator (driver side of `foreachRDD`). */
  readonly sealed: boolean;
  readonly defaultParallelism: number | undefined;
  readonly executor: BatchExecutor | undefined;
  register(dataset: Batch<unknown>, prefix: string): string;
  splitCount(nodeId: string): number;
}

/** The plan being built right now (transform functions run synchronously inside it). */
let activePlan: Scope | undefined;

/** Runs `fn` with `plan` as the scope of datasets created from static ones. */
export function withActivePlan<R>(plan: Scope, fn: () => R): R {
  const prev = activePlan;
  activePlan = plan;
  try {
    return fn();
  } finally {
    activePlan = prev;
  }
}

/** The plan being built right now, if any: datasets without a parent that are made in a transform function belong to it. */
export function activeScope(): Scope | undefined {
  return activePlan;
}

function scopeFor(parents: readonly Batch<unknown>[]): Scope {
  for (const p of parents) if (p.scope.time !== undefined) return p.scope;
  return activePlan ?? parents[0].scope;
}

/** @internal `n` when it is a valid partition count (undefined: the default), else a JobDefinitionError. */
export function checkPartitions(n: number | undefined, what: string): number | undefined {
  if (n === undefined) return undefined;
  if (!Number.isInteger(n) || n < 1) {
    throw new JobDefinitionError(`${what}: numPartitions must be a whole number >= 1, got ${String(n)}`);
  }
  return n;
}

/**
 * Pair-operator options.
 * @example
 * ```ts
 * pairs.reduceByKey((a, b) => a + b, { numPartitions: 16 });
 * ```
 */
export interface PartitionOptions {
  /** Number of reduce partitions (Spark's `numPartitions`); default: the job's `defaultParallelism`, else the largest parent's partition count. */
  readonly numPartitions?: number;
}

/**
 * One batch of a stream: a lazy, partitioned dataset (Spark's RDD). It is what `transform`,
 * `transformWith`, `ctx.transform` and `foreachRDD` hand you. Transformations build a plan and
 * run nothing; actions (`collect`, `take`, `count`, `foreachPartition`) run the plan through
 * the engine and exist on the coordinator only (inside `foreachRDD`).
 *
 * @example
 * ```ts
 * words.transform((batch) => batch.map((w) => [w, 1] as [string, number]).reduceByKey((a, b) => a + b));
 * counts.foreachRDD(async (batch, time) => console.log(time, await batch.take(3)));
 * ```
 */
export abstract class Batch<T> {
  /** Stable id: workers find the dataset again by it. */
  readonly id: string;
  /** Where it is registered. */
  readonly scope: Scope;
  /** True for datasets that only the coordinator knows (created inside `foreachRDD`). */
  readonly driverOnly: boolean;
  /** The operator that made it (in error messages). */
  readonly label: string;
  /** @internal Marked datasets are computed once per batch and read by each consumer. */
  cached = false;

  protected constructor(
    /** The datasets it is computed from (its lineage). */
    readonly parents: readonly Batch<unknown>[],
    label: string,
    scope?: Scope,
  ) {
    this.scope = scope ?? scopeFor(parents);
    this.driverOnly = this.scope.sealed || parents.some((p) => p.driverOnly);
    this.label = label;
    this.id = this.scope.register(this as Batch<unknown>, label.replace(/[^A-Za-z0-9_.-]/g, '_'));
  }

  /** Number of partitions. */
  abstract get numPartitions(): number;

  /** @internal Pushes the records of partition `p` into `emit`. */
  protected abstract compute(p: number, r: PartitionReader, emit: Emit<T>): Promise<void>;

  /** @internal Pushes the records of partition `p` into `emit`, reading it from the cache when it was computed before. */
  push(p: number, r: PartitionReader, emit: Emit<T>): Promise<void> {
    if (r.readsCache(this, p)) {
      return r.cache(this, p).then((records) => {
        for (let i = 0; i < records.length; i++) emit(records[i] as T);
      });
    }
    return this.compute(p, r, emit);
  }

  /**
   * Marks the batch to be computed once and read by every consumer (Spark's `persist`).
   * @example
   * ```ts
   * const parsed = batch.map(parse).persist();
   * ```
   */
  persist(): this {
    this.cached = true;
    return this;
  }

  /**
   * Same as {@link Batch.persist} (Spark's `cache`).
   * @example
   * ```ts
   * stream.foreachRDD(async (batch) => { const parsed = batch.map(parse).cache(); console.log(await parsed.count(), await parsed.take(3)); });
   * ```
   */
  cache(): this {
    return this.persist();
  }
}
