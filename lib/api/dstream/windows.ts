import type { GraphNode } from '../../plan/graph.ts';
import type { PartitionOptions } from '../../plan/batch.ts';
import { checkWindow, type WindowKind, WindowOp } from '../../plan/state.ts';
import { toMillis, type Duration } from '../duration.ts';
import { derive, DStream } from './base.ts';
import { checkFn, checkNumPartitions } from './checks.ts';
import { reducePartition, reduceToOne, sum } from './reduceToOne.ts';
import { statefulNode, withStateSource } from './statefulNode.ts';
import { type InverseWindowOptions, type Reducer, type ReduceByKeyAndWindowArgs, type ReduceByWindowArgs, reduceByKeyAndWindowArgs, reduceByWindowArgs } from './windowArgs.ts';

// Window operators (Spark's WindowedDStream, ReducedWindowedDStream): the batches in the window
// `(t - window, t]` at each multiple of the slide. Each keeps its slices as state (WindowOp).

declare module './base.ts' {
  interface DStream<T> {
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
    window(window: Duration, slide?: Duration, options?: PartitionOptions): DStream<T>;

    /**
     * The number of records in each window (Spark's `countByWindow`); 0 for an empty window.
     * Incremental: each slide adds the entering batches' counts and subtracts the leaving ones.
     * @example
     * ```ts
     * requests.countByWindow('1m', '10s').print();
     * ```
     */
    countByWindow(window: Duration, slide?: Duration): DStream<number>;

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

    /**
     * `[record, count]` over each window (Spark's `countByValueAndWindow`), incrementally; values
     * whose count drops to 0 leave the output.
     * @example
     * ```ts
     * urls.countByValueAndWindow('5m', '10s').print();
     * ```
     */
    countByValueAndWindow(window: Duration, slide?: Duration, options?: PartitionOptions): DStream<[T, number]>;

    /**
     * All values of each key over each window (Spark's `groupByKeyAndWindow`).
     * @example
     * ```ts
     * clicksByUser.groupByKeyAndWindow('1m', '10s'); // ['u1', [click, click]]
     * ```
     */
    groupByKeyAndWindow<K, V>(this: DStream<[K, V]>, window: Duration, slide?: Duration, options?: PartitionOptions): DStream<[K, V[]]>;
  }
}

DStream.prototype.window = function window<T>(this: DStream<T>, window: Duration, slide?: Duration, options: PartitionOptions = {}): DStream<T> {
  checkNumPartitions(options, 'window');
  const span = windowSpan(this, 'window', window, slide);
  return windowNode<T>(this, span, { kind: 'window', params: { ...span, ...options }, numPartitions: options.numPartitions, how: { kind: 'raw' } });
};

DStream.prototype.countByWindow = function countByWindow<T>(this: DStream<T>, window: Duration, slide?: Duration): DStream<number> {
  const span = windowSpan(this, 'countByWindow', window, slide);
  const ones = derive(this, 'countByWindow-ones', (b, _p, id) => b.mapPartitions((records) => (records.length ? [[null, records.length] as [null, number]] : []), id));
  const windowed = windowNode<[null, number]>(ones, span, { kind: 'countByWindow', params: { ...span }, numPartitions: 1, how: { kind: 'inverse', reduce: addCounts, inverse: subtractCounts } });
  return withStateSource(
    derive(windowed, 'countByWindow-value', (b, plan, id) => reduceToOne({ partials: b }, sum, id, { value: 0, plan })),
    windowed,
  );
};

DStream.prototype.reduceByWindow = function reduceByWindow<T>(this: DStream<T>, fn: Reducer<T>, ...rest: ReduceByWindowArgs<T>): DStream<T> {
  checkFn(fn, 'reduceByWindow');
  const { invFn, window, slide } = reduceByWindowArgs(rest);
  const span = windowSpan(this, 'reduceByWindow', window, slide);
  if (invFn) {
    // One key for the whole stream: the window keeps its one value and slides by adding and subtracting.
    const keyed = derive(this, 'reduceByWindow-keyed', (x, _p, id) => x.map((v) => [null, v] as [null, T], id));
    const how: WindowKind = { kind: 'inverse', reduce: untyped(fn), inverse: untyped(invFn) };
    const windowedInv = windowNode<[null, T]>(keyed, span, { kind: 'reduceByWindow', params: { ...span, inverse: true }, fns: [fn, invFn], numPartitions: 1, how });
    return withStateSource(derive(windowedInv, 'reduceByWindow-value', (x, _p, id) => x.map(([, v]) => v, id)), windowedInv);
  }
  // Spark: reduce each batch, window the one-record batches, reduce again.
  const perBatch = derive(this, 'reduceByWindow-batch', (x, _p, id) => reduceToOne({ batch: x, perPartition: reducePartition(fn) }, fn, id));
  const windowed = windowNode<T>(perBatch, span, { kind: 'reduceByWindow', params: { ...span, inverse: false }, fns: [fn], numPartitions: 1, how: { kind: 'raw' } });
  return withStateSource(
    derive(windowed, 'reduceByWindow-value', (x, _p, id) => reduceToOne({ batch: x, perPartition: reducePartition(fn) }, fn, id)),
    windowed,
  );
};

DStream.prototype.reduceByKeyAndWindow = function reduceByKeyAndWindow<K, V>(this: DStream<[K, V]>, fn: Reducer<V>, ...rest: ReduceByKeyAndWindowArgs<K, V>): DStream<[K, V]> {
  checkFn(fn, 'reduceByKeyAndWindow');
  const { invFn, window, slide, options } = reduceByKeyAndWindowArgs(rest);
  checkNumPartitions(options, 'reduceByKeyAndWindow');
  if (invFn && options.filter !== undefined) checkFn(options.filter, 'reduceByKeyAndWindow filter');
  const span = windowSpan(this, 'reduceByKeyAndWindow', window, slide);
  const params = { ...span, inverse: invFn !== undefined, numPartitions: options.numPartitions ?? null };
  const reduce = untyped(fn);
  if (invFn) {
    const how: WindowKind = { kind: 'inverse', reduce, inverse: untyped(invFn), filter: options.filter as InverseWindowOptions<unknown, unknown>['filter'] };
    return windowNode<[K, V]>(this, span, { kind: 'reduceByKeyAndWindow', params, fns: [fn, invFn, options.filter], numPartitions: options.numPartitions, how });
  }
  return windowNode<[K, V]>(this, span, { kind: 'reduceByKeyAndWindow', params, fns: [fn], numPartitions: options.numPartitions, how: { kind: 'reduce', reduce } });
};

DStream.prototype.countByValueAndWindow = function countByValueAndWindow<T>(this: DStream<T>, window: Duration, slide?: Duration, options: PartitionOptions = {}): DStream<[T, number]> {
  checkNumPartitions(options, 'countByValueAndWindow');
  const span = windowSpan(this, 'countByValueAndWindow', window, slide);
  const ones = derive(this, 'countByValueAndWindow-ones', (x, _p, id) => x.map((v) => [v, 1] as [T, number], id));
  return windowNode<[T, number]>(ones, span, {
    kind: 'countByValueAndWindow',
    params: { ...span, numPartitions: options.numPartitions ?? null },
    numPartitions: options.numPartitions,
    how: { kind: 'inverse', reduce: addCounts, inverse: subtractCounts, filter: ([, n]) => n !== 0 },
  });
};

DStream.prototype.groupByKeyAndWindow = function groupByKeyAndWindow<K, V>(this: DStream<[K, V]>, window: Duration, slide?: Duration, options: PartitionOptions = {}): DStream<[K, V[]]> {
  checkNumPartitions(options, 'groupByKeyAndWindow');
  const span = windowSpan(this, 'groupByKeyAndWindow', window, slide);
  const windowed = windowNode<[K, V]>(this, span, { kind: 'groupByKeyAndWindow', params: { ...span, numPartitions: options.numPartitions ?? null }, numPartitions: options.numPartitions, how: { kind: 'raw' } });
  return withStateSource(
    derive(windowed, 'groupByKeyAndWindow-group', (x, _p, id) => x.groupByKey(options, id)),
    windowed,
  );
};

/** A window's length and slide in ms; also the first parameters of every window node, in this order. */
interface WindowSpan {
  readonly windowMs: number;
  readonly slideMs: number;
}

/** Reads and checks a window and slide (default: the parent's slide) when the job is built. */
function windowSpan(parent: DStream<unknown>, op: string, window: Duration, slide: Duration | undefined): WindowSpan {
  // Named "the window of window()", not "window: window": the operator and its argument share a word.
  const windowMs = toMillis(window, `the window of ${op}()`);
  const slideMs = slide === undefined ? parent.slideDuration : toMillis(slide, `the slide of ${op}()`);
  checkWindow(op, windowMs, slideMs, parent.slideDuration, parent.id);
  return { windowMs, slideMs };
}

/** How a window node is made: the graph node's kind and fingerprint parameters, and what it computes. */
interface WindowNodeSpec {
  readonly kind: string;
  readonly params: GraphNode['params'];
  readonly fns?: unknown[];
  readonly numPartitions: number | undefined;
  readonly how: WindowKind;
}

/** A stateful window node over `parent`, output at each multiple of the slide. */
function windowNode<U>(parent: DStream<unknown>, span: WindowSpan, spec: WindowNodeSpec): DStream<U> {
  const graph = parent.graph;
  return statefulNode<U>(parent, {
    kind: spec.kind,
    params: spec.params,
    fns: spec.fns ?? [],
    slideMs: span.slideMs,
    numPartitions: spec.numPartitions,
    makeOp: (node) => new WindowOp(node, span.windowMs, span.slideMs, spec.how, graph.checkpointMs, graph.batchInterval),
  });
}

/** A reduce function as WindowOp holds it: the plan's state operators do not know their value types. */
function untyped<V>(fn: Reducer<V>): Reducer<unknown> {
  return fn as Reducer<unknown>;
}

// Counts in a window, added as batches enter and subtracted as they leave.
const addCounts = untyped(sum);
const subtractCounts = untyped((a: number, b: number) => a - b);
