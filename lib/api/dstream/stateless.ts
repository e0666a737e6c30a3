import { type Batch, type PartitionOptions, StaticBatch } from '../../plan/batch.ts';
import type { BatchPlan, JobGraph } from '../../plan/graph.ts';
import { describeValue } from '../../core/values.ts';
import { planFailed } from '../../plan/recordErrors.ts';
import { JobDefinitionError, RecordError, SluiceError } from '../../core/errors.ts';
import { toMillis, type Duration } from '../duration.ts';
import { derive, DStream } from './base.ts';
import { checkFn, checkNumPartitions, checkSameSlide } from './checks.ts';
import { countPartition, reducePartition, reduceToOne, sum } from './reduceToOne.ts';

// Stateless operators: each batch of the result depends only on the batches of the parents at the
// same time (Spark's MappedDStream, FilteredDStream, TransformedDStream, ...).

/**
 * What a transform function may return: a batch, or a plain array (one partition).
 * @example
 * ```ts
 * stream.transform((batch, time) => (time % 60_000 === 0 ? batch : []));
 * ```
 */
export type BatchLike<U> = Batch<U> | U[];

declare module './base.ts' {
  interface DStream<T> {
    /**
     * One output record per input record (Spark's `map`).
     * @example
     * ```ts
     * lines.map((l) => l.toUpperCase());
     * ```
     */
    map<U>(fn: (record: T) => U): DStream<U>;

    /**
     * Zero or more output records per input record (Spark's `flatMap`).
     * @example
     * ```ts
     * lines.flatMap((l) => l.split(' '));
     * ```
     */
    flatMap<U>(fn: (record: T) => Iterable<U>): DStream<U>;

    /**
     * The records for which `fn` is true (Spark's `filter`).
     * @example
     * ```ts
     * lines.filter((l) => l.includes('ERROR'));
     * ```
     */
    filter(fn: (record: T) => boolean): DStream<T>;

    /**
     * A whole partition at a time (Spark's `mapPartitions`).
     * @example
     * ```ts
     * lines.mapPartitions((records) => [records.length]); // records per partition
     * ```
     */
    mapPartitions<U>(fn: (records: T[], partition: number) => Iterable<U>): DStream<U>;

    /**
     * Each partition of each batch as one array (Spark's `glom`).
     * @example
     * ```ts
     * stream.glom().map((partition) => partition.length).print();
     * ```
     */
    glom(): DStream<T[]>;

    /**
     * Spreads each batch evenly over `numPartitions` partitions (Spark's `repartition`).
     * @example
     * ```ts
     * kinesisLines.repartition(16).map(expensiveParse);
     * ```
     */
    repartition(numPartitions: number): DStream<T>;

    /**
     * The records of this stream and of `others` (Spark's `union`; all must have the same slide).
     * @example
     * ```ts
     * clicksEu.union(clicksUs).countByValue().print();
     * ```
     */
    union(...others: DStream<T>[]): DStream<T>;

    /**
     * The number of records of each batch, as a one-record stream (Spark's `count`; 0 for an empty batch).
     * @example
     * ```ts
     * lines.count().print(); // 1000
     * ```
     */
    count(): DStream<number>;

    /**
     * `[record, count]` for each distinct record of each batch (Spark's `countByValue`).
     * @example
     * ```ts
     * words.countByValue().print(); // (spark,2) (streams,1)
     * ```
     */
    countByValue(options?: PartitionOptions): DStream<[T, number]>;

    /**
     * Reduces each batch to a single record with an associative, commutative function (Spark's
     * `reduce`; an empty batch gives no record).
     * @example
     * ```ts
     * latencies.reduce((a, b) => Math.max(a, b)).print(); // max per batch
     * ```
     */
    reduce(fn: (a: T, b: T) => T): DStream<T>;

    /**
     * Applies a batch-to-batch function to every batch (Spark's `transform`): use the full set of
     * batch operators, join with a static dataset, sort. `fn` must be deterministic for a given
     * batch and time, and return a batch (or an array, taken as one partition).
     * @example
     * ```ts
     * const spam = ctx.parallelize(spamWords.map((w) => [w, true] as [string, boolean]));
     * pairs.transform((batch) => batch.leftOuterJoin(spam).filter(([, [, isSpam]]) => !isSpam));
     * ```
     */
    transform<U>(fn: (batch: Batch<T>, time: number) => BatchLike<U>): DStream<U>;

    /**
     * Combines each batch of this stream with the batch of `other` at the same time (Spark's
     * `transformWith`).
     * @example
     * ```ts
     * a.transformWith(b, (x, y) => x.join(y));
     * ```
     */
    transformWith<U, R>(other: DStream<U>, fn: (a: Batch<T>, b: Batch<U>, time: number) => BatchLike<R>): DStream<R>;

    /**
     * The batches of this stream with `from <= time <= to` that are still remembered (see
     * `ctx.remember`), oldest first (Spark's `slice`). Only on the coordinator, e.g. in `foreachRDD`.
     * @example
     * ```ts
     * counts.foreachRDD(async (_b, time) => {
     *   const last3 = await counts.slice(time - 2000, time);
     *   console.log(await Promise.all(last3.map((b) => b.count())));
     * });
     * ```
     */
    slice(from: number, to: number): Promise<Batch<T>[]>;
  }
}

DStream.prototype.map = function map<T, U>(this: DStream<T>, fn: (record: T) => U): DStream<U> {
  checkFn(fn, 'map');
  return derive(this, 'map', (b, _p, id) => b.map(fn, id), {}, [fn]);
};

DStream.prototype.flatMap = function flatMap<T, U>(this: DStream<T>, fn: (record: T) => Iterable<U>): DStream<U> {
  checkFn(fn, 'flatMap');
  return derive(this, 'flatMap', (b, _p, id) => b.flatMap(fn, id), {}, [fn]);
};

DStream.prototype.filter = function filter<T>(this: DStream<T>, fn: (record: T) => boolean): DStream<T> {
  checkFn(fn, 'filter');
  return derive(this, 'filter', (b, _p, id) => b.filter(fn, id), {}, [fn]);
};

DStream.prototype.mapPartitions = function mapPartitions<T, U>(this: DStream<T>, fn: (records: T[], partition: number) => Iterable<U>): DStream<U> {
  checkFn(fn, 'mapPartitions');
  return derive(this, 'mapPartitions', (b, _p, id) => b.mapPartitions(fn, id), {}, [fn]);
};

DStream.prototype.glom = function glom<T>(this: DStream<T>): DStream<T[]> {
  return derive(this, 'glom', (b, _p, id) => b.glom(id));
};

DStream.prototype.repartition = function repartition<T>(this: DStream<T>, numPartitions: number): DStream<T> {
  checkNumPartitions({ numPartitions }, 'repartition');
  return derive(this, 'repartition', (b, _p, id) => b.repartition(numPartitions, id), { numPartitions });
};

DStream.prototype.union = function union<T>(this: DStream<T>, ...others: DStream<T>[]): DStream<T> {
  return unionStreams(this.graph, [this, ...others]);
};

DStream.prototype.count = function count<T>(this: DStream<T>): DStream<number> {
  return derive(this, 'count', (b, plan, id) => reduceToOne({ batch: b, perPartition: countPartition }, sum, id, { value: 0, plan }));
};

DStream.prototype.countByValue = function countByValue<T>(this: DStream<T>, options: PartitionOptions = {}): DStream<[T, number]> {
  checkNumPartitions(options, 'countByValue');
  return derive(this, 'countByValue', (b, _p, id) => b.countByValue(options, id), { ...options });
};

DStream.prototype.reduce = function reduce<T>(this: DStream<T>, fn: (a: T, b: T) => T): DStream<T> {
  checkFn(fn, 'reduce');
  return derive(this, 'reduce', (b, _p, id) => reduceToOne({ batch: b, perPartition: reducePartition(fn) }, fn, id), {}, [fn]);
};

DStream.prototype.transform = function transform<T, U>(this: DStream<T>, fn: (batch: Batch<T>, time: number) => BatchLike<U>): DStream<U> {
  checkFn(fn, 'transform');
  return derive(this, 'transform', (b, plan, id) => transformed<U>(id, plan, () => fn(b, plan.time)), {}, [fn]);
};

DStream.prototype.transformWith = function transformWith<T, U, R>(
  this: DStream<T>,
  other: DStream<U>,
  fn: (a: Batch<T>, b: Batch<U>, time: number) => BatchLike<R>,
): DStream<R> {
  checkFn(fn, 'transformWith');
  checkSameSlide([this, other], 'transformWith');
  const node = this.graph.addNode('transformWith', [this.node, other.node], {}, [fn]);
  return new DStream<R>(this.graph, node, (plan) => {
    const a = this.batchAt(plan);
    const b = other.batchAt(plan);
    if (a === undefined || b === undefined) return undefined;
    return transformed<R>(node.id, plan, () => fn(a, b, plan.time));
  });
};

DStream.prototype.slice = async function slice<T>(this: DStream<T>, from: number, to: number): Promise<Batch<T>[]> {
  const planAt = this.graph.planAt;
  if (!planAt) throw new SluiceError('slice() needs a running job and is only available on the coordinator (in foreachRDD)', { nodeId: this.id });
  if (!Number.isFinite(from) || !Number.isFinite(to) || from > to) {
    throw new SluiceError(`slice(${from}, ${to}): from and to must be times with from <= to`, { nodeId: this.id });
  }
  const slide = this.node.slide;
  const first = Math.ceil(from / slide) * slide;
  const out: Batch<T>[] = [];
  for (let t = first; t <= to; t += slide) {
    const plan = await planAt(t);
    const b = plan && this.batchAt(plan);
    if (b) out.push(b);
  }
  return out;
};

/**
 * @internal The batch a transform function of node `nodeId` makes at `plan` (called while the plan
 * is built). One that throws or returns no batch fails the batch, or under
 * `onRecordError: 'dead-letter'` is set aside and the stream has an empty batch at this time.
 */
export function transformed<U>(nodeId: string, plan: BatchPlan, fn: () => unknown): Batch<U> {
  let out: unknown;
  try {
    out = fn();
  } catch (e) {
    planFailed(plan, nodeId, e);
    return new StaticBatch<U>([], 1, `${nodeId}-empty`, plan);
  }
  if (Array.isArray(out)) return new StaticBatch<U>(out as U[], 1, `${nodeId}-array`, plan);
  if (out && typeof out === 'object' && 'numPartitions' in out && 'scope' in out) return out as Batch<U>;
  planFailed(plan, nodeId, new RecordError(`${nodeId}: a transform function must return a batch (or an array), got ${describeValue(out)}`, { nodeId, batchTime: plan.time }));
  return new StaticBatch<U>([], 1, `${nodeId}-empty`, plan);
}

/** @internal Union of several streams with the same slide (`stream.union` and `ctx.union`). */
export function unionStreams<T>(graph: JobGraph, streams: readonly DStream<T>[]): DStream<T> {
  if (!Array.isArray(streams) || streams.length === 0) throw new JobDefinitionError('union: needs at least one stream');
  for (const s of streams) if (!(s instanceof DStream)) throw new JobDefinitionError(`union: expected streams, got ${describeValue(s)}`);
  checkSameSlide(streams, 'union');
  const node = graph.addNode('union', streams.map((s) => s.node));
  return new DStream<T>(graph, node, (plan) => {
    const batches: Batch<T>[] = [];
    for (const s of streams) {
      const b = s.batchAt(plan);
      if (b) batches.push(b);
    }
    if (batches.length === 0) return undefined;
    return batches.length === 1 ? batches[0] : batches[0].union(...batches.slice(1));
  });
}

/** @internal Used by `ctx.remember`: how long `slice()` can reach back. */
export function rememberFor(graph: JobGraph, d: Duration): void {
  graph.rememberMs = Math.max(graph.rememberMs, toMillis(d, 'remember'));
}
