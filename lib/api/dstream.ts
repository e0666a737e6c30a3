import { type Batch, type PartitionInfo, type PartitionOptions, StaticBatch } from '../plan/batch.ts';
import type { BatchPlan, GraphNode, JobGraph, OutputKind, OutputNode } from '../plan/graph.ts';
import { toMillis, type Duration } from './duration.ts';
import { JobDefinitionError, SluiceError } from './errors.ts';
import { describeValue } from '../plan/keys.ts';

/**
 * What a transform function may return: a batch, or a plain array (one partition).
 * @example
 * ```ts
 * stream.transform((batch, time) => (time % 60_000 === 0 ? batch : []));
 * ```
 */
export type BatchLike<U> = Batch<U> | U[];

function checkFn(fn: unknown, op: string): void {
  if (typeof fn !== 'function') throw new JobDefinitionError(`${op}: expected a function, got ${describeValue(fn)}`);
}

function checkNumPartitions(options: PartitionOptions | undefined, op: string): void {
  const n = options?.numPartitions;
  if (n !== undefined && (!Number.isInteger(n) || n < 1)) {
    throw new JobDefinitionError(`${op}: numPartitions must be a whole number >= 1, got ${String(n)}`);
  }
}

/** @internal Turns a transform function's result into a batch, or fails the batch clearly. */
export function toBatch<U>(out: unknown, nodeId: string, plan: BatchPlan): Batch<U> {
  if (Array.isArray(out)) return new StaticBatch<U>(out as U[], 1, `${nodeId}-array`, plan);
  if (out && typeof out === 'object' && 'numPartitions' in out && 'scope' in out) return out as Batch<U>;
  throw new SluiceError(
    `${nodeId}: a transform function must return a batch (or an array), got ${describeValue(out)}`,
    { nodeId, batchTime: plan.time },
  );
}

/** @internal Runs a user's planning-time function; its errors name the node. */
export function callTransform<R>(nodeId: string, time: number, fn: () => R): R {
  try {
    return fn();
  } catch (e) {
    if (e instanceof SluiceError) throw e;
    const msg = e instanceof Error ? e.message : String(e);
    throw new SluiceError(`${nodeId}: the transform function threw: ${msg}`, { nodeId, batchTime: time, cause: e });
  }
}

/**
 * A discretized stream (Spark's `DStream`): a sequence of batches, one per batch interval.
 * Operators build the job's plan; nothing runs until the job runs. Pair operators (`reduceByKey`,
 * `join`, ...) exist only on streams of `[key, value]` pairs.
 *
 * @example
 * ```ts
 * const counts = lines
 *   .flatMap((l) => l.split(' '))
 *   .map((w) => [w, 1] as [string, number])
 *   .reduceByKey((a, b) => a + b);
 * counts.print();
 * ```
 */
export class DStream<T> {
  /** @internal */
  constructor(
    /** @internal */ readonly graph: JobGraph,
    /** @internal */ readonly node: GraphNode,
    private computeFn: (plan: BatchPlan) => Batch<T> | undefined,
  ) {}

  /** The stable id of this stream's node in the plan. */
  get id(): string {
    return this.node.id;
  }

  /** The interval (ms) at which this stream produces batches. */
  get slideDuration(): number {
    return this.node.slide;
  }

  /**
   * Gives the node a name of your own, used as its id in the plan, checkpoints and errors
   * (keep names stable across releases of a job).
   * @example
   * ```ts
   * const counts = words.countByValue().named('word-counts');
   * ```
   */
  named(name: string): this {
    this.graph.rename(this.node, name);
    return this;
  }

  /** @internal This stream's batch in `plan`, computed once per plan. */
  batchAt(plan: BatchPlan): Batch<T> | undefined {
    const key = this.node.id;
    if (plan.memo.has(key)) return plan.memo.get(key) as Batch<T> | undefined;
    // Batch times are multiples of the batch interval since the epoch, so a stream with a
    // longer slide produces at the times that are multiples of its slide.
    const b = plan.time % this.node.slide === 0 ? this.computeFn(plan) : undefined;
    plan.memo.set(key, b as Batch<unknown> | undefined);
    return b;
  }

  /** @internal */
  protected derive<U>(kind: string, compute: (parent: Batch<T>, plan: BatchPlan, id: string) => Batch<U> | undefined, params: GraphNode['params'] = {}, fns: unknown[] = []): DStream<U> {
    const node = this.graph.addNode(kind, [this.node], params, fns);
    return new DStream<U>(this.graph, node, (plan) => {
      const b = this.batchAt(plan);
      return b === undefined ? undefined : compute(b, plan, node.id);
    });
  }

  // ------------------------------------------------------------------ stateless

  /**
   * One output record per input record (Spark's `map`).
   * @example
   * ```ts
   * lines.map((l) => l.toUpperCase());
   * ```
   */
  map<U>(fn: (record: T) => U): DStream<U> {
    checkFn(fn, 'map');
    return this.derive('map', (b, _p, id) => b.map(fn, id), {}, [fn]);
  }

  /**
   * Zero or more output records per input record (Spark's `flatMap`).
   * @example
   * ```ts
   * lines.flatMap((l) => l.split(' '));
   * ```
   */
  flatMap<U>(fn: (record: T) => Iterable<U>): DStream<U> {
    checkFn(fn, 'flatMap');
    return this.derive('flatMap', (b, _p, id) => b.flatMap(fn, id), {}, [fn]);
  }

  /**
   * The records for which `fn` is true (Spark's `filter`).
   * @example
   * ```ts
   * lines.filter((l) => l.includes('ERROR'));
   * ```
   */
  filter(fn: (record: T) => boolean): DStream<T> {
    checkFn(fn, 'filter');
    return this.derive('filter', (b, _p, id) => b.filter(fn, id), {}, [fn]);
  }

  /**
   * A whole partition at a time (Spark's `mapPartitions`).
   * @example
   * ```ts
   * lines.mapPartitions((records) => [records.length]); // records per partition
   * ```
   */
  mapPartitions<U>(fn: (records: T[], partition: number) => Iterable<U>): DStream<U> {
    checkFn(fn, 'mapPartitions');
    return this.derive('mapPartitions', (b, _p, id) => b.mapPartitions(fn, id), {}, [fn]);
  }

  /**
   * Each partition of each batch as one array (Spark's `glom`).
   * @example
   * ```ts
   * stream.glom().map((partition) => partition.length).print();
   * ```
   */
  glom(): DStream<T[]> {
    return this.derive('glom', (b, _p, id) => b.glom(id));
  }

  /**
   * Spreads each batch evenly over `numPartitions` partitions (Spark's `repartition`).
   * @example
   * ```ts
   * kinesisLines.repartition(16).map(expensiveParse);
   * ```
   */
  repartition(numPartitions: number): DStream<T> {
    checkNumPartitions({ numPartitions }, 'repartition');
    return this.derive('repartition', (b, _p, id) => b.repartition(numPartitions, id), { numPartitions });
  }

  /**
   * The records of this stream and of `others` (Spark's `union`; all must have the same slide).
   * @example
   * ```ts
   * clicksEu.union(clicksUs).countByValue().print();
   * ```
   */
  union(...others: DStream<T>[]): DStream<T> {
    return unionStreams(this.graph, [this, ...others]);
  }

  /**
   * The number of records of each batch, as a one-record stream (Spark's `count`; 0 for an empty batch).
   * @example
   * ```ts
   * lines.count().print(); // 1000
   * ```
   */
  count(): DStream<number> {
    return this.derive('count', (b, plan, id) =>
      b
        .mapPartitions((records) => [[null, records.length] as [null, number]], id)
        .union(new StaticBatch<[null, number]>([[null, 0]], 1, `${id}-zero`, plan))
        .reduceByKey((x, y) => x + y, { numPartitions: 1 }, id)
        .map(([, n]) => n, id),
    );
  }

  /**
   * `[record, count]` for each distinct record of each batch (Spark's `countByValue`).
   * @example
   * ```ts
   * words.countByValue().print(); // (spark,2) (streams,1)
   * ```
   */
  countByValue(options: PartitionOptions = {}): DStream<[T, number]> {
    checkNumPartitions(options, 'countByValue');
    return this.derive('countByValue', (b, _p, id) => b.countByValue(options, id), { ...options });
  }

  /**
   * Reduces each batch to a single record with an associative, commutative function (Spark's
   * `reduce`; an empty batch gives no record).
   * @example
   * ```ts
   * latencies.reduce((a, b) => Math.max(a, b)).print(); // max per batch
   * ```
   */
  reduce(fn: (a: T, b: T) => T): DStream<T> {
    checkFn(fn, 'reduce');
    return this.derive(
      'reduce',
      (b, _p, id) =>
        b
          .mapPartitions((records) => (records.length ? [[null, records.reduce(fn)] as [null, T]] : []), id)
          .reduceByKey(fn, { numPartitions: 1 }, id)
          .map(([, v]) => v, id),
      {},
      [fn],
    );
  }

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
  transform<U>(fn: (batch: Batch<T>, time: number) => BatchLike<U>): DStream<U> {
    checkFn(fn, 'transform');
    return this.derive('transform', (b, plan, id) => toBatch<U>(callTransform(id, plan.time, () => fn(b, plan.time)), id, plan), {}, [fn]);
  }

  /**
   * Combines each batch of this stream with the batch of `other` at the same time (Spark's
   * `transformWith`).
   * @example
   * ```ts
   * a.transformWith(b, (x, y) => x.join(y));
   * ```
   */
  transformWith<U, R>(other: DStream<U>, fn: (a: Batch<T>, b: Batch<U>, time: number) => BatchLike<R>): DStream<R> {
    checkFn(fn, 'transformWith');
    checkSameSlide([this, other], 'transformWith');
    const node = this.graph.addNode('transformWith', [this.node, other.node], {}, [fn]);
    return new DStream<R>(this.graph, node, (plan) => {
      const a = this.batchAt(plan);
      const b = other.batchAt(plan);
      if (a === undefined || b === undefined) return undefined;
      return toBatch<R>(callTransform(node.id, plan.time, () => fn(a, b, plan.time)), node.id, plan);
    });
  }

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
  async slice(from: number, to: number): Promise<Batch<T>[]> {
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
  }

  /**
   * Computes each batch of this stream once, however many outputs and operators read it
   * (Spark's `persist`). Sluice already does this for streams with several consumers.
   * @example
   * ```ts
   * const parsed = lines.map(JSON.parse).persist();
   * ```
   */
  persist(): this {
    const compute = this.computeFn;
    this.computeFn = (plan) => compute(plan)?.persist();
    return this;
  }

  /** Same as {@link DStream.persist} (Spark's `cache`). */
  cache(): this {
    return this.persist();
  }

  // ------------------------------------------------------------------ pairs

  /**
   * Applies `fn` to each value, keeping keys (Spark's `mapValues`).
   * @example
   * ```ts
   * pairs.mapValues((v) => v * 10);
   * ```
   */
  mapValues<K, V, U>(this: DStream<[K, V]>, fn: (value: V) => U): DStream<[K, U]> {
    checkFn(fn, 'mapValues');
    return this.derive('mapValues', (b, _p, id) => b.mapValues(fn, id), {}, [fn]);
  }

  /**
   * Zero or more values per pair, keeping keys (Spark's `flatMapValues`).
   * @example
   * ```ts
   * pairs.flatMapValues((tags) => tags.split(','));
   * ```
   */
  flatMapValues<K, V, U>(this: DStream<[K, V]>, fn: (value: V) => Iterable<U>): DStream<[K, U]> {
    checkFn(fn, 'flatMapValues');
    return this.derive('flatMapValues', (b, _p, id) => b.flatMapValues(fn, id), {}, [fn]);
  }

  /**
   * All values of each key in a batch (Spark's `groupByKey`).
   * @example
   * ```ts
   * pairs.groupByKey(); // ['k', [1, 2, 3]]
   * ```
   */
  groupByKey<K, V>(this: DStream<[K, V]>, options: PartitionOptions = {}): DStream<[K, V[]]> {
    checkNumPartitions(options, 'groupByKey');
    return this.derive('groupByKey', (b, _p, id) => b.groupByKey(options, id), { ...options });
  }

  /**
   * Combines the values of each key in a batch with an associative, commutative function
   * (Spark's `reduceByKey`), with map-side combine.
   * @example
   * ```ts
   * words.map((w) => [w, 1] as [string, number]).reduceByKey((a, b) => a + b);
   * ```
   */
  reduceByKey<K, V>(this: DStream<[K, V]>, fn: (a: V, b: V) => V, options: PartitionOptions = {}): DStream<[K, V]> {
    checkFn(fn, 'reduceByKey');
    checkNumPartitions(options, 'reduceByKey');
    return this.derive('reduceByKey', (b, _p, id) => b.reduceByKey(fn, options, id), { ...options }, [fn]);
  }

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
    options: PartitionOptions = {},
  ): DStream<[K, C]> {
    checkFn(create, 'combineByKey');
    checkFn(mergeValue, 'combineByKey');
    checkFn(mergeCombiners, 'combineByKey');
    checkNumPartitions(options, 'combineByKey');
    return this.derive('combineByKey', (b, _p, id) => b.combineByKey(create, mergeValue, mergeCombiners, options, id), { ...options }, [
      create,
      mergeValue,
      mergeCombiners,
    ]);
  }

  /**
   * Inner join of each pair of batches at the same time (Spark's `join`).
   * @example
   * ```ts
   * impressions.join(clicks); // ['ad-7', [impression, click]]
   * ```
   */
  join<K, V, W>(this: DStream<[K, V]>, other: DStream<[K, W]>, options: PartitionOptions = {}): DStream<[K, [V, W]]> {
    return pairJoin(this, other, 'join', options, (a, b, id) => a.join(b, options, id));
  }

  /**
   * Left outer join; a missing right value is `undefined` (Spark's `leftOuterJoin`).
   * @example
   * ```ts
   * orders.leftOuterJoin(payments); // ['o1', [order, undefined]] until paid
   * ```
   */
  leftOuterJoin<K, V, W>(this: DStream<[K, V]>, other: DStream<[K, W]>, options: PartitionOptions = {}): DStream<[K, [V, W | undefined]]> {
    return pairJoin(this, other, 'leftOuterJoin', options, (a, b, id) => a.leftOuterJoin(b, options, id));
  }

  /**
   * Right outer join; a missing left value is `undefined` (Spark's `rightOuterJoin`).
   * @example
   * ```ts
   * orders.rightOuterJoin(payments); // ['o9', [undefined, payment]]
   * ```
   */
  rightOuterJoin<K, V, W>(this: DStream<[K, V]>, other: DStream<[K, W]>, options: PartitionOptions = {}): DStream<[K, [V | undefined, W]]> {
    return pairJoin(this, other, 'rightOuterJoin', options, (a, b, id) => a.rightOuterJoin(b, options, id));
  }

  /**
   * Full outer join; a missing value on either side is `undefined` (Spark's `fullOuterJoin`).
   * @example
   * ```ts
   * a.fullOuterJoin(b);
   * ```
   */
  fullOuterJoin<K, V, W>(this: DStream<[K, V]>, other: DStream<[K, W]>, options: PartitionOptions = {}): DStream<[K, [V | undefined, W | undefined]]> {
    return pairJoin(this, other, 'fullOuterJoin', options, (a, b, id) => a.fullOuterJoin(b, options, id));
  }

  /**
   * For each key in either batch, the values of each side (Spark's `cogroup`).
   * @example
   * ```ts
   * a.cogroup(b); // ['k', [[1, 2], ['x']]]
   * ```
   */
  cogroup<K, V, W>(this: DStream<[K, V]>, other: DStream<[K, W]>, options: PartitionOptions = {}): DStream<[K, [V[], W[]]]> {
    return pairJoin(this, other, 'cogroup', options, (a, b, id) => a.cogroup(b, options, id));
  }

  // ------------------------------------------------------------------ outputs

  private addOutput(kind: OutputKind, extra: Partial<OutputNode> & { params?: GraphNode['params']; fns?: unknown[] }): void {
    const node = this.graph.addNode(kind, [this.node], extra.params ?? {}, extra.fns ?? []);
    this.graph.outputs.push({ ...extra, node, kind, batchAt: (plan) => this.batchAt(plan) as Batch<unknown> | undefined });
  }

  /**
   * Prints the first `num` records of every batch on the coordinator, in Spark's format
   * (a `Time: <ms> ms` header, then one record per line, `...` when there are more).
   * @example
   * ```ts
   * counts.print(20);
   * ```
   */
  print(num = 10): void {
    if (!Number.isInteger(num) || num < 1) throw new JobDefinitionError(`print: num must be a whole number >= 1, got ${String(num)}`);
    this.addOutput('print', { num, params: { num } });
  }

  /**
   * Saves every batch as text files, one record per line: `<prefix>-<batchTimeMs>[.<suffix>]/part-00000`,
   * `part-00001`, ... and `_SUCCESS` once all parts exist (Spark's `saveAsTextFiles`). The prefix is
   * a local path, or `s3://bucket/key` on AWS. A batch that is run again writes the same bytes to the
   * same files, so every batch is saved exactly once.
   * @example
   * ```ts
   * counts.saveAsTextFiles('out/wordcount');           // out/wordcount-1700000001000/part-00000
   * counts.saveAsTextFiles('s3://my-bucket/counts', 'txt');
   * ```
   */
  saveAsTextFiles(prefix: string, suffix?: string): void {
    checkPrefix(prefix, suffix, 'saveAsTextFiles');
    this.addOutput('saveAsTextFiles', { prefix, suffix, params: { prefix, suffix: suffix ?? null } });
  }

  /**
   * Like `saveAsTextFiles`, one JSON document per line.
   * @example
   * ```ts
   * events.saveAsJsonFiles('out/events', 'jsonl');
   * ```
   */
  saveAsJsonFiles(prefix: string, suffix?: string): void {
    checkPrefix(prefix, suffix, 'saveAsJsonFiles');
    this.addOutput('saveAsJsonFiles', { prefix, suffix, params: { prefix, suffix: suffix ?? null } });
  }

  /**
   * Runs `fn` on the coordinator for every batch (Spark's `foreachRDD`); use the batch's actions
   * (`collect`, `count`, `foreachPartition`, ...) inside. Runs again if the batch is recomputed
   * after a failure (at least once), like Spark.
   * @example
   * ```ts
   * counts.foreachRDD(async (batch, time) => {
   *   const top = await batch.take(3);
   *   console.log(new Date(time).toISOString(), top);
   * });
   * ```
   */
  foreachRDD(fn: (batch: Batch<T>, time: number) => unknown): void {
    checkFn(fn, 'foreachRDD');
    this.addOutput('foreachRDD', { fn, fns: [fn] });
  }

  /** Same as {@link DStream.foreachRDD}. */
  foreachBatch(fn: (batch: Batch<T>, time: number) => unknown): void {
    this.foreachRDD(fn);
  }

  /**
   * Runs `fn` on the workers once per partition of every batch: open one connection per
   * partition here to write to a custom sink (Spark's `foreachRDD(rdd => rdd.foreachPartition(...))`).
   * @example
   * ```ts
   * counts.foreachPartition(async (records, { partition, batchTime }) => {
   *   const db = await connect();
   *   await db.upsert(records.map(([k, n]) => ({ k, n, batchTime, partition })));
   *   await db.close();
   * });
   * ```
   */
  foreachPartition(fn: (records: T[], info: PartitionInfo) => unknown): void {
    checkFn(fn, 'foreachPartition');
    this.addOutput('foreachPartition', { fn, fns: [fn] });
  }

  /** @internal The test harness's output: hands every batch's partitions to `fn` on the coordinator. */
  capture(fn: (time: number, partitions: T[][]) => void): void {
    this.addOutput('capture', { fn });
  }
}

function checkPrefix(prefix: unknown, suffix: unknown, op: string): void {
  if (typeof prefix !== 'string' || prefix.trim() === '') {
    throw new JobDefinitionError(`${op}: prefix must be a non-empty path or s3:// location, got ${describeValue(prefix)}`);
  }
  if (suffix !== undefined && (typeof suffix !== 'string' || /[/\\]/.test(suffix))) {
    throw new JobDefinitionError(`${op}: suffix must be a string without slashes, got ${describeValue(suffix)}`);
  }
}

function checkSameSlide(streams: readonly DStream<unknown>[], op: string): void {
  const slides = new Set(streams.map((s) => s.slideDuration));
  if (slides.size > 1) {
    throw new JobDefinitionError(
      `${op}: all streams must produce batches at the same interval, got ${streams.map((s) => `${s.id} every ${s.slideDuration} ms`).join(', ')}`,
    );
  }
}

function pairJoin<K, V, W, R>(
  a: DStream<[K, V]>,
  b: DStream<[K, W]>,
  kind: string,
  options: PartitionOptions,
  op: (x: Batch<[K, V]>, y: Batch<[K, W]>, id: string) => Batch<R>,
): DStream<R> {
  if (!(b instanceof DStream)) throw new JobDefinitionError(`${kind}: the other side must be a stream, got ${describeValue(b)}`);
  checkNumPartitions(options, kind);
  checkSameSlide([a as DStream<unknown>, b as DStream<unknown>], kind);
  const node = a.graph.addNode(kind, [a.node, b.node], { ...options });
  return new DStream<R>(a.graph, node, (plan) => {
    const x = a.batchAt(plan);
    const y = b.batchAt(plan);
    if (x === undefined || y === undefined) return undefined;
    return op(x, y, node.id);
  });
}

/** @internal Union of several streams with the same slide. */
export function unionStreams<T>(graph: JobGraph, streams: readonly DStream<T>[]): DStream<T> {
  if (!Array.isArray(streams) || streams.length === 0) throw new JobDefinitionError('union: needs at least one stream');
  for (const s of streams) if (!(s instanceof DStream)) throw new JobDefinitionError(`union: expected streams, got ${describeValue(s)}`);
  checkSameSlide(streams as readonly DStream<unknown>[], 'union');
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

/** @internal Used by `ctx.remember`. */
export function rememberFor(graph: JobGraph, d: Duration): void {
  graph.rememberMs = Math.max(graph.rememberMs, toMillis(d, 'remember'));
}
