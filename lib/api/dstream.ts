import { type Batch, DEFAULT_STATE_PARTITIONS, type PartitionInfo, type PartitionOptions, StatefulBatch, StaticBatch } from '../plan/batch.ts';
import { checkWindow, MAPPED, MapWithStateOp, SNAPSHOT, type State, type StateOp, UpdateStateOp, type WindowKind, WindowOp } from '../plan/state.ts';
import type { BatchPlan, GraphNode, JobGraph, OutputKind, OutputNode } from '../plan/graph.ts';
import { toMillis, type Duration } from './duration.ts';
import { JobDefinitionError, RecordError, SluiceError } from '../core/errors.ts';
import { describeValue } from '../core/values.ts';
import { planFailed } from '../plan/recordErrors.ts';

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
  /** @internal The stateful node this stream reads its state from, when it is derived from one (for `checkpoint()`). */
  stateSource: GraphNode | undefined;

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
    return this.derive('transform', (b, plan, id) => transformed<U>(id, plan, () => fn(b, plan.time)), {}, [fn]);
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
      return transformed<R>(node.id, plan, () => fn(a, b, plan.time));
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

  // ------------------------------------------------------------------ windows and state

  /** @internal Adds a stateful node whose batch is computed at every batch time. */
  protected statefulNode<U>(kind: string, params: GraphNode['params'], fns: unknown[], slideMs: number, numPartitions: number | undefined, makeOp: (node: GraphNode) => StateOp): DStream<U> {
    const node = this.graph.addNode(kind, [this.node], params, fns, slideMs);
    const op = makeOp(node);
    const stateAt = (plan: BatchPlan): StatefulBatch<unknown> => {
      const key = `${node.id}#state`;
      let b = plan.memo.get(key) as StatefulBatch<unknown> | undefined;
      if (!b) {
        // A parent with a longer slide has no batch at some times: the state still moves on, with no input.
        const input = (this.batchAt(plan) as Batch<unknown> | undefined) ?? new StaticBatch<unknown>([], 1, `${node.id}-no-input`, plan);
        b = new StatefulBatch<unknown>(input, node, op, numPartitions);
        plan.memo.set(key, b);
      }
      return b;
    };
    this.graph.stateful.push({ node, batchAt: stateAt, op });
    return new DStream<U>(this.graph, node, (plan) => stateAt(plan) as unknown as Batch<U>);
  }

  private windowSpec(op: string, window: Duration, slide: Duration | undefined): { windowMs: number; slideMs: number } {
    // Named "the window of window()", not "window: window": the operator and its argument share a word.
    const windowMs = toMillis(window, `the window of ${op}()`);
    const slideMs = slide === undefined ? this.node.slide : toMillis(slide, `the slide of ${op}()`);
    checkWindow(op, windowMs, slideMs, this.node.slide, this.id);
    return { windowMs, slideMs };
  }

  /**
   * Every record of the batches in the window `(t - window, t]`, at each multiple of the slide
   * (Spark's `window`). Window and slide are multiples of the batch interval; the slide defaults to it.
   * A window shorter than its slide samples: the batches between windows are in none.
   * @example
   * ```ts
   * hashtags.window('5m', '1s').countByValue().print();
   * readings.window('10s', '1m'); // the last 10 seconds of every minute
   * ```
   */
  window(window: Duration, slide?: Duration, options: PartitionOptions = {}): DStream<T> {
    checkNumPartitions(options, 'window');
    const { windowMs, slideMs } = this.windowSpec('window', window, slide);
    return this.statefulNode<T>('window', { windowMs, slideMs, ...options }, [], slideMs, options.numPartitions, (node) => new WindowOp(node, windowMs, slideMs, { kind: 'raw' }, this.graph.checkpointMs, this.graph.batchInterval));
  }

  /**
   * The number of records in each window (Spark's `countByWindow`); 0 for an empty window.
   * Incremental: each slide adds the entering batches' counts and subtracts the leaving ones.
   * @example
   * ```ts
   * requests.countByWindow('1m', '10s').print();
   * ```
   */
  countByWindow(window: Duration, slide?: Duration): DStream<number> {
    const { windowMs, slideMs } = this.windowSpec('countByWindow', window, slide);
    const ones = this.derive<[null, number]>('countByWindow-ones', (b, _p, id) => b.mapPartitions((records) => (records.length ? [[null, records.length] as [null, number]] : []), id));
    const add = (a: unknown, b: unknown) => (a as number) + (b as number);
    const sub = (a: unknown, b: unknown) => (a as number) - (b as number);
    const windowed = ones.statefulNode<[null, number]>('countByWindow', { windowMs, slideMs }, [], slideMs, 1, (node) =>
      new WindowOp(node, windowMs, slideMs, { kind: 'inverse', reduce: add, inverse: sub }, this.graph.checkpointMs, this.graph.batchInterval),
    );
    return withStateSource(
      windowed.derive<number>('countByWindow-value', (b, plan, id) =>
        b
          .union(new StaticBatch<[null, number]>([[null, 0]], 1, `${id}-zero`, plan))
          .reduceByKey((x, y) => x + y, { numPartitions: 1 }, id)
          .map(([, n]) => n, id),
      ),
      windowed,
    );
  }

  /**
   * Reduces every window to one record (Spark's `reduceByWindow`). With an inverse function
   * (`fn`, `invFn`, window, slide) each slide costs the same whatever the window length.
   * @example
   * ```ts
   * latencies.reduceByWindow((a, b) => Math.max(a, b), '1m', '10s');        // max over the last minute
   * amounts.reduceByWindow((a, b) => a + b, (a, b) => a - b, '1h', '1m');   // running hourly sum
   * ```
   */
  reduceByWindow(fn: (a: T, b: T) => T, window: Duration, slide?: Duration): DStream<T>;
  reduceByWindow(fn: (a: T, b: T) => T, invFn: (a: T, b: T) => T, window: Duration, slide?: Duration): DStream<T>;
  reduceByWindow(fn: (a: T, b: T) => T, a: Duration | ((a: T, b: T) => T), b?: Duration, c?: Duration): DStream<T> {
    checkFn(fn, 'reduceByWindow');
    if (typeof a === 'function') {
      const { windowMs, slideMs } = this.windowSpec('reduceByWindow', b as Duration, c);
      const keyed = this.derive<[null, T]>('reduceByWindow-keyed', (x, _p, id) => x.map((v) => [null, v] as [null, T], id));
      const inv = a;
      const windowedInv = keyed.statefulNode<[null, T]>('reduceByWindow', { windowMs, slideMs, inverse: true }, [fn, inv], slideMs, 1, (node) =>
        new WindowOp(node, windowMs, slideMs, { kind: 'inverse', reduce: fn as (x: unknown, y: unknown) => unknown, inverse: inv as (x: unknown, y: unknown) => unknown }, this.graph.checkpointMs, this.graph.batchInterval),
      );
      return withStateSource(windowedInv.derive<T>('reduceByWindow-value', (x, _p, id) => x.map(([, v]) => v, id)), windowedInv);
    }
    const { windowMs, slideMs } = this.windowSpec('reduceByWindow', a, b);
    // Spark: reduce each batch, window the one-record batches, reduce again.
    const perBatch = this.derive<T>('reduceByWindow-batch', (x, _p, id) =>
      x
        .mapPartitions((records) => (records.length ? [[null, records.reduce(fn)] as [null, T]] : []), id)
        .reduceByKey(fn, { numPartitions: 1 }, id)
        .map(([, v]) => v, id),
    );
    const windowed = perBatch.statefulNode<T>('reduceByWindow', { windowMs, slideMs, inverse: false }, [fn], slideMs, 1, (node) =>
      new WindowOp(node, windowMs, slideMs, { kind: 'raw' }, this.graph.checkpointMs, this.graph.batchInterval),
    );
    return withStateSource(
      windowed.derive<T>('reduceByWindow-value', (x, _p, id) =>
        x
          .mapPartitions((records) => (records.length ? [[null, records.reduce(fn)] as [null, T]] : []), id)
          .reduceByKey(fn, { numPartitions: 1 }, id)
          .map(([, v]) => v, id),
      ),
      windowed,
    );
  }

  /**
   * Combines the values of each key over a sliding window (Spark's `reduceByKeyAndWindow`).
   * Without an inverse function, each slide reduces the per-batch slices in the window again
   * (cost grows with the window). With one (`fn`, `invFn`, ...), the window's value is kept and
   * each slide adds the entering batches and subtracts the leaving ones: the cost per slide does
   * not depend on the window length. Keys whose value returns to the inverse's zero stay unless
   * `filter` drops them, as in Spark.
   * @example
   * ```ts
   * pairs.reduceByKeyAndWindow((a, b) => a + b, '30s', '10s');
   * pairs.reduceByKeyAndWindow((a, b) => a + b, (a, b) => a - b, '300s', '1s', { filter: ([, n]) => n > 0 });
   * ```
   */
  reduceByKeyAndWindow<K, V>(this: DStream<[K, V]>, fn: (a: V, b: V) => V, window: Duration, slide?: Duration, options?: PartitionOptions): DStream<[K, V]>;
  reduceByKeyAndWindow<K, V>(
    this: DStream<[K, V]>,
    fn: (a: V, b: V) => V,
    invFn: (a: V, b: V) => V,
    window: Duration,
    slide?: Duration,
    options?: PartitionOptions & { readonly filter?: (pair: [K, V]) => boolean },
  ): DStream<[K, V]>;
  reduceByKeyAndWindow<K, V>(
    this: DStream<[K, V]>,
    fn: (a: V, b: V) => V,
    a: Duration | ((a: V, b: V) => V),
    b?: Duration,
    c?: Duration | PartitionOptions,
    d?: PartitionOptions & { readonly filter?: (pair: [K, V]) => boolean },
  ): DStream<[K, V]> {
    checkFn(fn, 'reduceByKeyAndWindow');
    const reduce = fn as (x: unknown, y: unknown) => unknown;
    if (typeof a === 'function') {
      const options = d ?? {};
      checkNumPartitions(options, 'reduceByKeyAndWindow');
      if (options.filter !== undefined) checkFn(options.filter, 'reduceByKeyAndWindow filter');
      const { windowMs, slideMs } = this.windowSpec('reduceByKeyAndWindow', b as Duration, c as Duration | undefined);
      const how: WindowKind = { kind: 'inverse', reduce, inverse: a as (x: unknown, y: unknown) => unknown, filter: options.filter as ((p: [unknown, unknown]) => boolean) | undefined };
      return this.statefulNode<[K, V]>(
        'reduceByKeyAndWindow',
        { windowMs, slideMs, inverse: true, numPartitions: options.numPartitions ?? null },
        [fn, a, options.filter],
        slideMs,
        options.numPartitions,
        (node) => new WindowOp(node, windowMs, slideMs, how, this.graph.checkpointMs, this.graph.batchInterval),
      );
    }
    const options = (c as PartitionOptions | undefined) ?? {};
    checkNumPartitions(options, 'reduceByKeyAndWindow');
    const { windowMs, slideMs } = this.windowSpec('reduceByKeyAndWindow', a, b);
    return this.statefulNode<[K, V]>(
      'reduceByKeyAndWindow',
      { windowMs, slideMs, inverse: false, numPartitions: options.numPartitions ?? null },
      [fn],
      slideMs,
      options.numPartitions,
      (node) => new WindowOp(node, windowMs, slideMs, { kind: 'reduce', reduce }, this.graph.checkpointMs, this.graph.batchInterval),
    );
  }

  /**
   * `[record, count]` over each window (Spark's `countByValueAndWindow`), incrementally; values
   * whose count drops to 0 leave the output.
   * @example
   * ```ts
   * urls.countByValueAndWindow('5m', '10s').print();
   * ```
   */
  countByValueAndWindow(window: Duration, slide?: Duration, options: PartitionOptions = {}): DStream<[T, number]> {
    checkNumPartitions(options, 'countByValueAndWindow');
    const { windowMs, slideMs } = this.windowSpec('countByValueAndWindow', window, slide);
    const ones = this.derive<[T, number]>('countByValueAndWindow-ones', (x, _p, id) => x.map((v) => [v, 1] as [T, number], id));
    const add = (p: unknown, q: unknown) => (p as number) + (q as number);
    const sub = (p: unknown, q: unknown) => (p as number) - (q as number);
    return ones.statefulNode<[T, number]>('countByValueAndWindow', { windowMs, slideMs, numPartitions: options.numPartitions ?? null }, [], slideMs, options.numPartitions, (node) =>
      new WindowOp(node, windowMs, slideMs, { kind: 'inverse', reduce: add, inverse: sub, filter: ([, n]) => n !== 0 }, this.graph.checkpointMs, this.graph.batchInterval),
    );
  }

  /**
   * All values of each key over each window (Spark's `groupByKeyAndWindow`).
   * @example
   * ```ts
   * clicksByUser.groupByKeyAndWindow('1m', '10s'); // ['u1', [click, click]]
   * ```
   */
  groupByKeyAndWindow<K, V>(this: DStream<[K, V]>, window: Duration, slide?: Duration, options: PartitionOptions = {}): DStream<[K, V[]]> {
    checkNumPartitions(options, 'groupByKeyAndWindow');
    const { windowMs, slideMs } = this.windowSpec('groupByKeyAndWindow', window, slide);
    const windowed = this.statefulNode<[K, V]>('groupByKeyAndWindow', { windowMs, slideMs, numPartitions: options.numPartitions ?? null }, [], slideMs, options.numPartitions, (node) =>
      new WindowOp(node, windowMs, slideMs, { kind: 'raw' }, this.graph.checkpointMs, this.graph.batchInterval),
    );
    return withStateSource(
      windowed.derive<[K, V[]]>('groupByKeyAndWindow-group', (x, _p, id) => x.groupByKey(options, id)),
      windowed,
    );
  }

  /**
   * Keeps a state per key across batches (Spark's `updateStateByKey`): every batch, `update` is
   * called for every key that has state or new values, with the values of this batch (maybe none)
   * and the previous state (`undefined` at first); returning `undefined` removes the key. The
   * stream holds every key's state after each batch.
   * @example
   * ```ts
   * const totals = purchases.updateStateByKey((amounts, total: number | undefined) => (total ?? 0) + amounts.reduce((a, b) => a + b, 0));
   * ```
   */
  updateStateByKey<K, V, S>(
    this: DStream<[K, V]>,
    update: (values: V[], state: S | undefined, key: K, time: number) => S | undefined,
    options: PartitionOptions & { readonly initial?: readonly (readonly [K, S])[] | Batch<[K, S]> } = {},
  ): DStream<[K, S]> {
    checkFn(update, 'updateStateByKey');
    checkNumPartitions(options, 'updateStateByKey');
    const initial = initialPairs(options.initial, 'updateStateByKey');
    const n = options.numPartitions;
    const partitions = () => n ?? this.graph.defaultParallelism ?? DEFAULT_STATE_PARTITIONS;
    return this.statefulNode<[K, S]>('updateStateByKey', { numPartitions: n ?? null }, [update], this.node.slide, n, (node) =>
      new UpdateStateOp(node, update as (v: unknown[], s: unknown, k: unknown, t: number) => unknown, initial, this.graph.checkpointMs, partitions),
    );
  }

  /**
   * Keeps a state per key and maps each record with it (Spark's `mapWithState`): `fn(key, value,
   * state, time)` runs once per record; keys idle longer than the spec's timeout get one last call
   * with `value === undefined` and `state.isTimingOut()`, then lose their state. Returned values
   * form the stream (`undefined` emits nothing); `.stateSnapshots()` gives every key's state.
   * @example
   * ```ts
   * const spec = StateSpec.function((user: string, click: Click | undefined, state: State<number>) => {
   *   if (state.isTimingOut()) return [user, state.get()] as [string, number]; // session closed
   *   state.update((state.getOption() ?? 0) + 1);
   *   return undefined;
   * }).timeout('30s');
   * clicks.mapWithState(spec).print();
   * ```
   */
  mapWithState<K, V, S, R>(this: DStream<[K, V]>, spec: StateSpec<K, V, S, R>): MapWithStateDStream<K, S, R> {
    if (!(spec instanceof StateSpec)) throw new JobDefinitionError('mapWithState: expected a StateSpec, e.g. StateSpec.function((key, value, state, time) => ...)');
    const n = spec.partitions;
    let op: MapWithStateOp | undefined;
    const st = this.statefulNode<[number, unknown]>('mapWithState', { timeoutMs: spec.timeoutMs ?? null, numPartitions: n ?? null }, [spec.fn], this.node.slide, n, (node) => {
      op = new MapWithStateOp(node, spec.fn as (k: unknown, v: unknown, s: State<unknown>, t: number) => unknown, spec.timeoutMs, spec.initial, this.graph.checkpointMs, () => n ?? this.graph.defaultParallelism ?? DEFAULT_STATE_PARTITIONS);
      return op;
    });
    const mappedNode = this.graph.addNode('mapWithState-values', [st.node]);
    return new MapWithStateDStream<K, S, R>(this.graph, mappedNode, (plan) => st.batchAt(plan)?.flatMap(([tag, x]) => (tag === MAPPED ? [x as R] : []), mappedNode.id), st, op!);
  }

  /**
   * Sets how often a stateful stream writes its whole state (the other batches write only what
   * changed); a restart replays at most this much. A multiple of the batch interval.
   * @example
   * ```ts
   * counts.updateStateByKey(add).checkpoint('1m');
   * ```
   */
  checkpoint(interval: Duration): this {
    const ms = toMillis(interval, 'checkpoint');
    const entry = this.graph.stateful.find((s) => s.node === this.node || s.node === this.stateSource);
    if (!entry) throw new JobDefinitionError(`checkpoint(): ${this.id} keeps no state; it applies to windows, updateStateByKey and mapWithState`, { nodeId: this.id });
    if (ms % this.graph.batchInterval !== 0) throw new JobDefinitionError(`checkpoint(): ${ms} ms is not a multiple of the batch interval (${this.graph.batchInterval} ms)`, { nodeId: this.id });
    entry.op.checkpointMs = ms;
    return this;
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

function initialPairs<K, S>(initial: readonly (readonly [K, S])[] | Batch<[K, S]> | undefined, op: string): (readonly [unknown, unknown])[] | undefined {
  if (initial === undefined) return undefined;
  if (initial instanceof StaticBatch) return (initial.partitions as readonly (readonly [K, S])[][]).flat();
  if (Array.isArray(initial)) {
    for (const p of initial) if (!Array.isArray(p) || p.length !== 2) throw new JobDefinitionError(`${op}: initial state must be [key, state] pairs, got ${describeValue(p)}`);
    return initial as (readonly [unknown, unknown])[];
  }
  throw new JobDefinitionError(`${op}: initial state must be an array of [key, state] pairs or ctx.parallelize(pairs), got ${describeValue(initial)}`);
}

/**
 * What `mapWithState` needs (Spark's `StateSpec`): the mapping function, and optionally an idle
 * timeout, initial state and the number of partitions.
 *
 * @example
 * ```ts
 * const spec = StateSpec.function((key: string, value: number | undefined, state: State<number>) => {
 *   const total = (state.getOption() ?? 0) + (value ?? 0);
 *   if (!state.isTimingOut()) state.update(total);
 *   return [key, total] as [string, number];
 * }).timeout('30s').initialState([['a', 10]]).numPartitions(8);
 * ```
 */
export class StateSpec<K, V, S, R> {
  /** @internal */ timeoutMs: number | undefined;
  /** @internal */ initial: (readonly [unknown, unknown])[] | undefined;
  /** @internal */ partitions: number | undefined;
  private constructor(/** @internal */ readonly fn: (key: K, value: V | undefined, state: State<S>, time: number) => R | undefined) {}

  /** A spec with the mapping function `fn(key, value, state, time)`. */
  static function<K, V, S, R>(fn: (key: K, value: V | undefined, state: State<S>, time: number) => R | undefined): StateSpec<K, V, S, R> {
    checkFn(fn, 'StateSpec.function');
    return new StateSpec(fn);
  }

  /** Keys without a record for longer than this get a last call and lose their state. */
  timeout(idle: Duration): this {
    this.timeoutMs = toMillis(idle, 'StateSpec.timeout');
    return this;
  }

  /** State the keys start with. */
  initialState(pairs: readonly (readonly [K, S])[] | Batch<[K, S]>): this {
    this.initial = initialPairs(pairs, 'StateSpec.initialState');
    return this;
  }

  /** Partitions of the state. @default the job's defaultParallelism, else 4 */
  numPartitions(n: number): this {
    checkNumPartitions({ numPartitions: n }, 'StateSpec.numPartitions');
    this.partitions = n;
    return this;
  }
}

/**
 * The stream `mapWithState` returns: the mapped values, plus `stateSnapshots()`.
 *
 * @example
 * ```ts
 * const sessions = clicks.mapWithState(spec);
 * sessions.stateSnapshots().print(); // every key's state after each batch
 * ```
 */
export class MapWithStateDStream<K, S, R> extends DStream<R> {
  /** @internal */
  constructor(
    graph: JobGraph,
    node: GraphNode,
    compute: (plan: BatchPlan) => Batch<R> | undefined,
    /** @internal */ readonly stateStream: DStream<[number, unknown]>,
    private readonly op: MapWithStateOp,
  ) {
    super(graph, node, compute);
    this.stateSource = stateStream.node;
  }

  /**
   * Every key's state after each batch (Spark's `stateSnapshots`).
   * @example
   * ```ts
   * counts.stateSnapshots().print();
   * ```
   */
  stateSnapshots(): DStream<[K, S]> {
    this.op.snapshots = true;
    const node = this.graph.addNode('stateSnapshots', [this.stateStream.node]);
    return withStateSource(
      new DStream<[K, S]>(this.graph, node, (plan) => this.stateStream.batchAt(plan)?.flatMap(([tag, x]) => (tag === SNAPSHOT ? [x as [K, S]] : []), node.id)),
      this.stateStream,
    );
  }
}

/** Marks `derived` as reading the state of `stateful`, so `checkpoint()` on it reaches the state. */
function withStateSource<U>(derived: DStream<U>, stateful: DStream<unknown>): DStream<U> {
  derived.stateSource = stateful.node;
  return derived;
}
