import { JobDefinitionError, RecordError, SluiceError } from '../core/errors.ts';
import { describeValue } from '../core/values.ts';
import { type Aggregator, grouping } from './aggregate.ts';
import { messageOf } from './recordErrors.ts';
import { mergeSegments } from './shuffle.ts';
import type { StateIO, StateOp } from './state.ts';
import type { GraphNode } from './graph.ts';

/** Receives one record; narrow operators are chains of these, fused into one loop per task. */
export type Emit<T> = (record: T) => void;

/**
 * What a task gives a dataset to compute one of its partitions: the inputs read from outside the
 * stage (source splits, shuffle segments, cached partitions).
 */
export interface PartitionReader {
  /** The batch time of the running task. */
  readonly time: number;
  /**
   * Whether the task reads partition `partition` of `dataset` from the cache instead of computing
   * it: the coordinator decides which datasets a stage reads cached and says so in the task.
   */
  readsCache(dataset: Batch<unknown>, partition: number): boolean;
  /** Records of split `partition` of source node `nodeId`. */
  source(nodeId: string, partition: number): Promise<readonly unknown[]>;
  /** For each map task of parent `parentIndex` of `shuffle`, in map-partition order, the segment of reduce partition `partition`. */
  shuffle(shuffle: ShuffledBatch<unknown>, parentIndex: number, partition: number): Promise<readonly (readonly unknown[])[]>;
  /** The records of partition `partition` of a cached dataset. */
  cache(dataset: Batch<unknown>, partition: number): Promise<readonly unknown[]>;
  /**
   * A user function threw on `record` (or the record is malformed for the operator): throws a
   * RecordError (`onRecordError: 'fail'`), or sets the record aside as a dead letter and returns.
   * See lib/plan/recordErrors.ts.
   */
  recordFailed(label: string, record: unknown, error: unknown): void;
  /**
   * A user function threw on the values of `key` (reduce side, state, window): throws a
   * RecordError naming the operator and the key (`'fail'`), or sets the key aside with `records`
   * (the values or combiners it was given) and returns; the caller then leaves the key out of
   * this batch. `note` says what became of the key's state, when it is not plain.
   */
  keyFailed(label: string, key: unknown, records: readonly unknown[], error: unknown, note?: string): void;
  /** Position of the source record being pushed, for dead letters: set by source datasets. */
  position: { nodeId: string; partition: number; offset: number } | undefined;
  /** The durable state of partition `partition` of a stateful node. */
  stateIO(batch: StatefulBatch<unknown>, partition: number): StateIO;
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

function scopeFor(parents: readonly Batch<unknown>[]): Scope {
  for (const p of parents) if (p.scope.time !== undefined) return p.scope;
  return activePlan ?? parents[0].scope;
}

function checkPartitions(n: number | undefined, what: string): number | undefined {
  if (n === undefined) return undefined;
  if (!Number.isInteger(n) || n < 1) {
    throw new JobDefinitionError(`${what}: numPartitions must be a whole number >= 1, got ${String(n)}`);
  }
  return n;
}

/** @internal Whether `r` is a `[key, value]` pair. */
export function isPair(r: unknown): r is [unknown, unknown] {
  return Array.isArray(r) && r.length === 2;
}

/** @internal The error for a record that a pair operator cannot use. */
export function notPair(label: string, record: unknown): RecordError {
  return new RecordError(
    `${label} expects [key, value] pairs, got ${describeValue(record)}; map the stream to pairs first, e.g. .map((x) => [key(x), x])`,
    { nodeId: label },
  );
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

  // ---------------------------------------------------------------- narrow transformations

  /**
   * One output record per input record (Spark's `map`).
   * @example
   * ```ts
   * batch.map((line) => line.length);
   * ```
   */
  map<U>(fn: (record: T) => U, label = 'map'): Batch<U> {
    return new NarrowBatch<T, U>(this, label, (emit, r) => (x) => {
      let y: U;
      try {
        y = fn(x);
      } catch (e) {
        r.recordFailed(label, x, e);
        return;
      }
      emit(y);
    });
  }

  /**
   * Zero or more output records per input record (Spark's `flatMap`).
   * @example
   * ```ts
   * batch.flatMap((line) => line.split(' '));
   * ```
   */
  flatMap<U>(fn: (record: T) => Iterable<U>, label = 'flatMap'): Batch<U> {
    return new NarrowBatch<T, U>(this, label, (emit, r) => (x) => {
      let ys: Iterable<U>;
      try {
        ys = fn(x);
      } catch (e) {
        r.recordFailed(label, x, e);
        return;
      }
      if (Array.isArray(ys)) {
        for (let i = 0; i < ys.length; i++) emit(ys[i]);
        return;
      }
      if (ys == null || typeof (ys as Iterable<U>)[Symbol.iterator] !== 'function') {
        r.recordFailed(label, x, new RecordError(`${label}: the function must return an array or iterable, got ${describeValue(ys)}`, { nodeId: label }));
        return;
      }
      try {
        for (const y of ys) emit(y);
      } catch (e) {
        // Errors of operators further down are theirs (SluiceErrors); anything else came from the iterable.
        if (e instanceof SluiceError) throw e;
        r.recordFailed(label, x, e);
      }
    });
  }

  /**
   * The records for which `fn` is true (Spark's `filter`).
   * @example
   * ```ts
   * batch.filter((line) => line.includes('ERROR'));
   * ```
   */
  filter(fn: (record: T) => boolean, label = 'filter'): Batch<T> {
    return new NarrowBatch<T, T>(this, label, (emit, r) => (x) => {
      let keep: boolean;
      try {
        keep = fn(x);
      } catch (e) {
        r.recordFailed(label, x, e);
        return;
      }
      if (keep) emit(x);
    });
  }

  /**
   * A whole partition at once (Spark's `mapPartitions`): `fn` gets the partition's records and
   * its index and returns the output records. Use it to set up something once per partition.
   * @example
   * ```ts
   * batch.mapPartitions((records) => { const re = /\d+/; return records.filter((r) => re.test(r)); });
   * ```
   */
  mapPartitions<U>(fn: (records: T[], partition: number) => Iterable<U>, label = 'mapPartitions'): Batch<U> {
    return new WholePartitionBatch<T, U>(this, label, fn);
  }

  /**
   * Each partition as one array (Spark's `glom`).
   * @example
   * ```ts
   * batch.glom().map((partition) => partition.length);
   * ```
   */
  glom(label = 'glom'): Batch<T[]> {
    return new WholePartitionBatch<T, T[]>(this, label, (records) => [records]);
  }

  /**
   * The records of this batch and of `others`, partitions side by side (Spark's `union`).
   * @example
   * ```ts
   * a.union(b);
   * ```
   */
  union(...others: Batch<T>[]): Batch<T> {
    return new UnionBatch<T>([this, ...others], 'union');
  }

  /**
   * Spreads the records evenly over `numPartitions` partitions (Spark's `repartition`; the
   * spreading is round-robin and deterministic).
   * @example
   * ```ts
   * batch.repartition(8);
   * ```
   */
  repartition(numPartitions: number, label = 'repartition'): Batch<T> {
    const n = checkPartitions(numPartitions, label);
    if (n === undefined) throw new JobDefinitionError(`${label}: numPartitions is required`);
    return new ShuffledBatch<T>([this], label, { kind: 'repartition' }, n) as unknown as Batch<T>;
  }

  /**
   * The records sorted by `keyFn`, in one partition (Spark's `sortBy` with one output partition).
   * Equal keys keep their input order.
   * @example
   * ```ts
   * counts.transform((b) => b.sortBy(([, n]) => n, false)).print(10); // top 10
   * ```
   */
  sortBy(keyFn: (record: T) => unknown, ascending = true, label = 'sortBy'): Batch<T> {
    return new ShuffledBatch<T>([this], label, { kind: 'sort', keyFn: keyFn as (r: unknown) => unknown, ascending }, 1) as unknown as Batch<T>;
  }

  /**
   * `[record, count]` for each distinct record (Spark's `countByValue`, as a dataset).
   * @example
   * ```ts
   * words.countByValue(); // [['a', 3], ['b', 1]]
   * ```
   */
  countByValue(options: PartitionOptions = {}, label = 'countByValue'): Batch<[T, number]> {
    return this.map((x) => [x, 1] as [T, number], label).reduceByKey((a, b) => a + b, options, label);
  }

  // ---------------------------------------------------------------- pair transformations

  /**
   * Applies `fn` to the value of each `[key, value]` pair (Spark's `mapValues`).
   * @example
   * ```ts
   * pairs.mapValues((v) => v * 2);
   * ```
   */
  mapValues<K, V, U>(this: Batch<[K, V]>, fn: (value: V) => U, label = 'mapValues'): Batch<[K, U]> {
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
  }

  /**
   * Zero or more values per pair, keeping the key (Spark's `flatMapValues`).
   * @example
   * ```ts
   * pairs.flatMapValues((csv) => csv.split(','));
   * ```
   */
  flatMapValues<K, V, U>(this: Batch<[K, V]>, fn: (value: V) => Iterable<U>, label = 'flatMapValues'): Batch<[K, U]> {
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
  }

  /**
   * Combines the values of each key with an associative, commutative function, with map-side
   * combine (Spark's `reduceByKey`).
   * @example
   * ```ts
   * words.map((w) => [w, 1] as [string, number]).reduceByKey((a, b) => a + b);
   * ```
   */
  reduceByKey<K, V>(this: Batch<[K, V]>, fn: (a: V, b: V) => V, options: PartitionOptions = {}, label = 'reduceByKey'): Batch<[K, V]> {
    return this.combineByKey<K, V, V>((v) => v, fn, fn, options, label);
  }

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
    options: PartitionOptions = {},
    label = 'combineByKey',
  ): Batch<[K, C]> {
    const n = checkPartitions(options.numPartitions, label);
    const agg: Aggregator<V, C> = { create, merge: mergeValue, combine: mergeCombiners };
    return new ShuffledBatch<[K, C]>([this], label, { kind: 'combine', aggregator: agg as Aggregator<unknown, unknown> }, n);
  }

  /**
   * All values of each key as an array (Spark's `groupByKey`).
   * @example
   * ```ts
   * pairs.groupByKey(); // [['a', [1, 2]], ['b', [3]]]
   * ```
   */
  groupByKey<K, V>(this: Batch<[K, V]>, options: PartitionOptions = {}, label = 'groupByKey'): Batch<[K, V[]]> {
    const n = checkPartitions(options.numPartitions, label);
    return new ShuffledBatch<[K, V[]]>([this], label, { kind: 'combine', aggregator: grouping }, n);
  }

  /**
   * For each key in either batch, the values from each side (Spark's `cogroup`).
   * @example
   * ```ts
   * a.cogroup(b); // [['k', [[1, 2], ['x']]]]
   * ```
   */
  cogroup<K, V, W>(this: Batch<[K, V]>, other: Batch<[K, W]>, options: PartitionOptions = {}, label = 'cogroup'): Batch<[K, [V[], W[]]]> {
    const n = checkPartitions(options.numPartitions, label);
    return new ShuffledBatch<[K, [V[], W[]]]>([this, other as Batch<unknown>], label, { kind: 'cogroup' }, n);
  }

  /**
   * Inner join on the key: one `[key, [v, w]]` per pair of matching values (Spark's `join`).
   * @example
   * ```ts
   * clicks.join(users); // [['u1', [click, user]]]
   * ```
   */
  join<K, V, W>(this: Batch<[K, V]>, other: Batch<[K, W]>, options: PartitionOptions = {}, label = 'join'): Batch<[K, [V, W]]> {
    return this.cogroup(other, options, label).flatMap(([k, [vs, ws]]) => {
      const out: [K, [V, W]][] = [];
      for (const v of vs) for (const w of ws) out.push([k, [v, w]]);
      return out;
    }, label);
  }

  /**
   * Like `join`, keeping keys that only this side has, with `undefined` for the missing value
   * (Spark's `leftOuterJoin`, whose `Option` becomes `W | undefined`).
   * @example
   * ```ts
   * a.leftOuterJoin(b); // [['k', [1, undefined]]] when b has no 'k'
   * ```
   */
  leftOuterJoin<K, V, W>(this: Batch<[K, V]>, other: Batch<[K, W]>, options: PartitionOptions = {}, label = 'leftOuterJoin'): Batch<[K, [V, W | undefined]]> {
    return this.cogroup(other, options, label).flatMap(([k, [vs, ws]]) => {
      const out: [K, [V, W | undefined]][] = [];
      for (const v of vs) {
        if (ws.length === 0) out.push([k, [v, undefined]]);
        else for (const w of ws) out.push([k, [v, w]]);
      }
      return out;
    }, label);
  }

  /**
   * Like `join`, keeping keys that only the other side has (Spark's `rightOuterJoin`).
   * @example
   * ```ts
   * a.rightOuterJoin(b); // [['k', [undefined, 'x']]] when a has no 'k'
   * ```
   */
  rightOuterJoin<K, V, W>(this: Batch<[K, V]>, other: Batch<[K, W]>, options: PartitionOptions = {}, label = 'rightOuterJoin'): Batch<[K, [V | undefined, W]]> {
    return this.cogroup(other, options, label).flatMap(([k, [vs, ws]]) => {
      const out: [K, [V | undefined, W]][] = [];
      for (const w of ws) {
        if (vs.length === 0) out.push([k, [undefined, w]]);
        else for (const v of vs) out.push([k, [v, w]]);
      }
      return out;
    }, label);
  }

  /**
   * Like `join`, keeping keys of either side (Spark's `fullOuterJoin`).
   * @example
   * ```ts
   * a.fullOuterJoin(b); // [['only-a', [1, undefined]], ['only-b', [undefined, 'x']]]
   * ```
   */
  fullOuterJoin<K, V, W>(this: Batch<[K, V]>, other: Batch<[K, W]>, options: PartitionOptions = {}, label = 'fullOuterJoin'): Batch<[K, [V | undefined, W | undefined]]> {
    return this.cogroup(other, options, label).flatMap(([k, [vs, ws]]) => {
      const out: [K, [V | undefined, W | undefined]][] = [];
      if (vs.length === 0) for (const w of ws) out.push([k, [undefined, w]]);
      else if (ws.length === 0) for (const v of vs) out.push([k, [v, undefined]]);
      else for (const v of vs) for (const w of ws) out.push([k, [v, w]]);
      return out;
    }, label);
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

  /** Same as {@link Batch.persist} (Spark's `cache`). */
  cache(): this {
    return this.persist();
  }

  // ---------------------------------------------------------------- actions (coordinator only)

  private executor(action: string): BatchExecutor {
    const ex = this.scope.executor;
    if (!ex) {
      throw new SluiceError(
        `${action}() runs a job and is only available on the coordinator, inside foreachRDD; transform functions must stay lazy`,
      );
    }
    return ex;
  }

  /**
   * All records, in partition order (Spark's `collect`).
   * @example
   * ```ts
   * stream.foreachRDD(async (batch) => console.log(await batch.collect()));
   * ```
   */
  async collect(): Promise<T[]> {
    const parts = (await this.executor('collect').runJob(this, { kind: 'collect' })) as T[][];
    return parts.flat();
  }

  /** @internal Every partition's records. */
  async collectPartitions(): Promise<T[][]> {
    return (await this.executor('collect').runJob(this, { kind: 'collect' })) as T[][];
  }

  /**
   * The first `n` records, in partition order (Spark's `take`).
   * @example
   * ```ts
   * const sample = await batch.take(5);
   * ```
   */
  async take(n: number): Promise<T[]> {
    if (!Number.isInteger(n) || n < 0) throw new SluiceError(`take: n must be a whole number >= 0, got ${String(n)}`);
    if (n === 0) return [];
    const parts = (await this.executor('take').runJob(this, { kind: 'collect', limit: n })) as T[][];
    return parts.flat().slice(0, n);
  }

  /**
   * The number of records (Spark's `count`).
   * @example
   * ```ts
   * const n = await batch.count();
   * ```
   */
  async count(): Promise<number> {
    const parts = (await this.executor('count').runJob(this, { kind: 'count' })) as number[];
    let total = 0;
    for (const c of parts) total += c;
    return total;
  }

  /**
   * Calls `fn` once per partition with its records (Spark's `foreachPartition`).
   * @example
   * ```ts
   * await batch.foreachPartition(async (records) => { const db = await connect(); await db.insert(records); await db.close(); });
   * ```
   */
  async foreachPartition(fn: (records: T[], info: PartitionInfo) => unknown): Promise<void> {
    await this.executor('foreachPartition').runJob(this, {
      kind: 'foreachPartition',
      fn: fn as (records: unknown[], info: PartitionInfo) => unknown,
    });
  }
}

/** A chain link of fused narrow operators. */
export class NarrowBatch<T, U> extends Batch<U> {
  constructor(
    readonly parent: Batch<T>,
    label: string,
    /** Turns the downstream receiver into this operator's receiver. */
    readonly link: (emit: Emit<U>, r: PartitionReader) => Emit<T>,
  ) {
    super([parent as Batch<unknown>], label);
  }
  get numPartitions(): number {
    return this.parent.numPartitions;
  }
  protected compute(p: number, r: PartitionReader, emit: Emit<U>): Promise<void> {
    return this.parent.push(p, r, this.link(emit, r));
  }
}

/** An operator that needs a whole partition (mapPartitions, glom): the fused loop stops here. */
export class WholePartitionBatch<T, U> extends Batch<U> {
  constructor(
    readonly parent: Batch<T>,
    label: string,
    readonly fn: (records: T[], partition: number) => Iterable<U>,
  ) {
    super([parent as Batch<unknown>], label);
  }
  get numPartitions(): number {
    return this.parent.numPartitions;
  }
  protected async compute(p: number, r: PartitionReader, emit: Emit<U>): Promise<void> {
    const records: T[] = [];
    await this.parent.push(p, r, (x) => {
      records.push(x);
    });
    let out: U[];
    try {
      out = this.output(records, p);
    } catch (e) {
      // The partition is the record: when the function fails on it, the whole partition is set aside.
      r.recordFailed(this.label, records, e);
      return;
    }
    for (let i = 0; i < out.length; i++) emit(out[i]);
  }

  /** The function's output as an array: a lazy iterable is run here, so its errors are the function's and not those of operators further down. */
  private output(records: T[], p: number): U[] {
    try {
      const out = this.fn(records, p);
      if (Array.isArray(out)) return out as U[];
      if (out == null || typeof (out as Iterable<U>)[Symbol.iterator] !== 'function') {
        throw new RecordError(`${this.label}: the function must return an array or iterable, got ${describeValue(out)}`, { nodeId: this.label });
      }
      return Array.from(out);
    } catch (e) {
      if (e instanceof SluiceError) throw e;
      // The record is the partition: name it, rather than describe an array.
      throw new RecordError(`${this.label} threw on partition ${p} (${records.length} records): ${messageOf(e)}`, { nodeId: this.label, cause: e });
    }
  }
}

/** Partitions of several datasets side by side. */
export class UnionBatch<T> extends Batch<T> {
  constructor(parents: readonly Batch<T>[], label: string) {
    super(parents as readonly Batch<unknown>[], label);
  }
  get numPartitions(): number {
    let n = 0;
    for (const p of this.parents) n += p.numPartitions;
    return n;
  }
  /** The parent and its partition that partition `p` of the union is. */
  locate(p: number): [Batch<unknown>, number] {
    let q = p;
    for (const parent of this.parents) {
      const n = parent.numPartitions;
      if (q < n) return [parent, q];
      q -= n;
    }
    throw new SluiceError(`${this.label}: partition ${p} out of range`);
  }
  protected compute(p: number, r: PartitionReader, emit: Emit<T>): Promise<void> {
    const [parent, q] = this.locate(p);
    return parent.push(q, r, emit as Emit<unknown>);
  }
}

/** Records of one source node in one batch: one partition per input split. */
export class SourceBatch<T> extends Batch<T> {
  constructor(
    scope: Scope,
    readonly nodeId: string,
  ) {
    super([], nodeId, scope);
  }
  get numPartitions(): number {
    return this.scope.splitCount(this.nodeId);
  }
  protected async compute(p: number, r: PartitionReader, emit: Emit<T>): Promise<void> {
    const records = await r.source(this.nodeId, p);
    // The position is kept up to date only for dead letters to name where a bad record came from.
    const pos = { nodeId: this.nodeId, partition: p, offset: 0 };
    const outer = r.position;
    r.position = pos;
    for (let i = 0; i < records.length; i++) {
      pos.offset = i;
      emit(records[i] as T);
    }
    r.position = outer;
  }
}

/** Records held in memory in every process: `ctx.parallelize` data, or an array a transform returned. */
export class StaticBatch<T> extends Batch<T> {
  readonly partitions: readonly (readonly T[])[];
  constructor(data: readonly T[], numPartitions: number, label: string, scope?: Scope) {
    super([], label, scope ?? activePlan);
    // Spark's parallelize slices into contiguous, nearly equal ranges.
    const parts: T[][] = [];
    for (let i = 0; i < numPartitions; i++) {
      parts.push(data.slice(Math.floor((i * data.length) / numPartitions), Math.floor(((i + 1) * data.length) / numPartitions)));
    }
    this.partitions = parts;
  }
  get numPartitions(): number {
    return this.partitions.length;
  }
  protected compute(p: number, _r: PartitionReader, emit: Emit<T>): Promise<void> {
    const part = this.partitions[p];
    for (let i = 0; i < part.length; i++) emit(part[i]);
    return Promise.resolve();
  }
}

/** How a shuffle moves and merges records. */
export type ShuffleSpec =
  | { readonly kind: 'combine'; readonly aggregator: Aggregator<unknown, unknown> }
  | { readonly kind: 'cogroup' }
  | { readonly kind: 'repartition' }
  | { readonly kind: 'sort'; readonly keyFn: (record: unknown) => unknown; readonly ascending: boolean };

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
  /** The aggregator used on the map side for parent `i`, if the records are keyed. */
  mapAggregator(): Aggregator<unknown, unknown> | undefined {
    const s = this.spec;
    if (s.kind === 'combine') return s.aggregator;
    if (s.kind === 'cogroup') return grouping;
    return undefined;
  }
  protected async compute(p: number, r: PartitionReader, emit: Emit<T>): Promise<void> {
    const segments: (readonly (readonly unknown[])[])[] = [];
    for (let i = 0; i < this.parents.length; i++) segments.push(await r.shuffle(this as ShuffledBatch<unknown>, i, p));
    mergeSegments(this as ShuffledBatch<unknown>, segments, emit as Emit<unknown>, r);
  }
}


/** Partitions of a stateful node when neither it nor the job says: state needs a fixed count. */
export const DEFAULT_STATE_PARTITIONS = 4;

/**
 * The batch of a stateful node (window, updateStateByKey, mapWithState) at one time: this batch's
 * input is shuffled by key to a fixed number of partitions, and each partition's task combines it
 * with the node's durable state (see lib/plan/state.ts). Computed every batch, whether or not an
 * output is due, and cached, so it runs once per batch.
 */
export class StatefulBatch<T> extends ShuffledBatch<T> {
  constructor(
    input: Batch<unknown>,
    readonly node: GraphNode,
    readonly op: StateOp,
    numPartitions: number | undefined,
  ) {
    super([input], node.id, op.mapSide, numPartitions);
    this.cached = true;
  }
  override get numPartitions(): number {
    return this.explicitPartitions ?? this.scope.defaultParallelism ?? DEFAULT_STATE_PARTITIONS;
  }
  protected override async compute(p: number, r: PartitionReader, emit: Emit<T>): Promise<void> {
    const segments = await r.shuffle(this as ShuffledBatch<unknown>, 0, p);
    await this.op.run(segments, r.stateIO(this as StatefulBatch<unknown>, p), emit as Emit<unknown>, r);
  }
}
