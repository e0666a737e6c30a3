import type { Batch } from '../../plan/batch.ts';
import type { BatchPlan, GraphNode, JobGraph } from '../../plan/graph.ts';
import { toMillis, type Duration } from '../duration.ts';
import { JobDefinitionError } from '../../core/errors.ts';

// The operators are not here: each family (stateless.ts, pair.ts, joins.ts, windows.ts, state.ts,
// outputs.ts) declares its methods on this class by module augmentation and sets them on its
// prototype. Import DStream from lib/api/dstream.ts, which loads every family: a stream made from
// this file alone has none of them.

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

  /**
   * The stable id of this stream's node in the plan: its operator and position (`map-2`), or the
   * name given with {@link DStream.named}.
   * @example
   * ```ts
   * lines.map(parse).id; // 'map-1'
   * ```
   */
  get id(): string {
    return this.node.id;
  }

  /**
   * The interval (ms) at which this stream produces batches (Spark's `slideDuration`): the batch
   * interval, or a window's slide.
   * @example
   * ```ts
   * words.window('30s', '10s').slideDuration; // 10000
   * ```
   */
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

  /**
   * Same as {@link DStream.persist} (Spark's `cache`).
   * @example
   * ```ts
   * const parsed = lines.map(parse).cache();
   * ```
   */
  cache(): this {
    return this.persist();
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
}

/**
 * @internal A stream of one new node of `kind` with `parent` as its only parent, whose batch is
 * `compute` of the parent's batch: the way most operators make their stream.
 */
export function derive<T, U>(
  parent: DStream<T>,
  kind: string,
  compute: (batch: Batch<T>, plan: BatchPlan, id: string) => Batch<U> | undefined,
  params: GraphNode['params'] = {},
  fns: unknown[] = [],
): DStream<U> {
  const node = parent.graph.addNode(kind, [parent.node], params, fns);
  return new DStream<U>(parent.graph, node, (plan) => {
    const b = parent.batchAt(plan);
    return b === undefined ? undefined : compute(b, plan, node.id);
  });
}
