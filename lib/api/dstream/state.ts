import { type Batch, DEFAULT_STATE_PARTITIONS, type PartitionOptions, StaticBatch } from '../../plan/batch.ts';
import type { BatchPlan, GraphNode, JobGraph } from '../../plan/graph.ts';
import { describeValue } from '../../core/values.ts';
import { MAPPED, MapWithStateOp, SNAPSHOT, type State, UpdateStateOp } from '../../plan/state.ts';
import { JobDefinitionError } from '../../core/errors.ts';
import { toMillis, type Duration } from '../duration.ts';
import { DStream } from './base.ts';
import { checkFn, checkNumPartitions } from './checks.ts';
import { statefulNode, withStateSource } from './statefulNode.ts';

// Keyed state across batches (Spark's StateDStream and MapWithStateDStream): updateStateByKey,
// mapWithState with its StateSpec, and the state snapshots of mapWithState.

declare module './base.ts' {
  // An augmentation repeats the class's type parameters; these methods type `this` instead of using T.
  // eslint-disable-next-line @typescript-eslint/no-unused-vars
  interface DStream<T> {
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
      options?: PartitionOptions & { readonly initial?: readonly (readonly [K, S])[] | Batch<[K, S]> },
    ): DStream<[K, S]>;

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
    mapWithState<K, V, S, R>(this: DStream<[K, V]>, spec: StateSpec<K, V, S, R>): MapWithStateDStream<K, S, R>;
  }
}

DStream.prototype.updateStateByKey = function updateStateByKey<K, V, S>(
  this: DStream<[K, V]>,
  update: (values: V[], state: S | undefined, key: K, time: number) => S | undefined,
  options: PartitionOptions & { readonly initial?: readonly (readonly [K, S])[] | Batch<[K, S]> } = {},
): DStream<[K, S]> {
  checkFn(update, 'updateStateByKey');
  checkNumPartitions(options, 'updateStateByKey');
  const initial = initialPairs(options.initial, 'updateStateByKey');
  const n = options.numPartitions;
  const graph = this.graph;
  const partitions = () => n ?? graph.defaultParallelism ?? DEFAULT_STATE_PARTITIONS;
  return statefulNode<[K, S]>(this, {
    kind: 'updateStateByKey',
    params: { numPartitions: n ?? null },
    fns: [update],
    slideMs: this.node.slide,
    numPartitions: n,
    makeOp: (node) => new UpdateStateOp(node, update as (v: unknown[], s: unknown, k: unknown, t: number) => unknown, initial, graph.checkpointMs, partitions),
  });
};

DStream.prototype.mapWithState = function mapWithState<K, V, S, R>(this: DStream<[K, V]>, spec: StateSpec<K, V, S, R>): MapWithStateDStream<K, S, R> {
  if (!(spec instanceof StateSpec)) throw new JobDefinitionError('mapWithState: expected a StateSpec, e.g. StateSpec.function((key, value, state, time) => ...)');
  const n = spec.partitions;
  const graph = this.graph;
  let op: MapWithStateOp | undefined;
  const st = statefulNode<[number, unknown]>(this, {
    kind: 'mapWithState',
    params: { timeoutMs: spec.timeoutMs ?? null, numPartitions: n ?? null },
    fns: [spec.fn],
    slideMs: this.node.slide,
    numPartitions: n,
    makeOp: (node) => {
      const fn = spec.fn as (k: unknown, v: unknown, s: State<unknown>, t: number) => unknown;
      op = new MapWithStateOp(node, fn, spec.timeoutMs, spec.initial, graph.checkpointMs, () => n ?? graph.defaultParallelism ?? DEFAULT_STATE_PARTITIONS);
      return op;
    },
  });
  const mappedNode = graph.addNode('mapWithState-values', [st.node]);
  return new MapWithStateDStream<K, S, R>(graph, mappedNode, (plan) => st.batchAt(plan)?.flatMap(([tag, x]) => (tag === MAPPED ? [x as R] : []), mappedNode.id), st, op!);
};

/** The initial state of updateStateByKey or a StateSpec as `[key, state]` pairs, checked. */
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

  /**
   * A spec with the mapping function `fn(key, value, state, time)` (Spark's `StateSpec.function`).
   * @example
   * ```ts
   * const spec = StateSpec.function((key: string, n: number | undefined, state: State<number>) => state.update((state.getOption() ?? 0) + (n ?? 0)));
   * ```
   */
  static function<K, V, S, R>(fn: (key: K, value: V | undefined, state: State<S>, time: number) => R | undefined): StateSpec<K, V, S, R> {
    checkFn(fn, 'StateSpec.function');
    return new StateSpec(fn);
  }

  /**
   * Keys without a record for longer than this get a last call (`state.isTimingOut()`) and lose
   * their state.
   * @example
   * ```ts
   * StateSpec.function(track).timeout('30m');
   * ```
   */
  timeout(idle: Duration): this {
    this.timeoutMs = toMillis(idle, 'StateSpec.timeout');
    return this;
  }

  /**
   * State the keys start with: `[key, state]` pairs, or `ctx.parallelize(pairs)`.
   * @example
   * ```ts
   * StateSpec.function(track).initialState([['alice', 3], ['bob', 1]]);
   * ```
   */
  initialState(pairs: readonly (readonly [K, S])[] | Batch<[K, S]>): this {
    this.initial = initialPairs(pairs, 'StateSpec.initialState');
    return this;
  }

  /**
   * Partitions of the state. @default the job's defaultParallelism, else 4
   * @example
   * ```ts
   * StateSpec.function(track).numPartitions(16);
   * ```
   */
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
