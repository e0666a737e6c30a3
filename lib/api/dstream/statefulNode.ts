import { type Batch, StatefulBatch, StaticBatch } from '../../plan/batch.ts';
import type { BatchPlan, GraphNode } from '../../plan/graph.ts';
import type { StateOp } from '../../plan/state.ts';
import { DStream } from './base.ts';

// What the window and state families share: a node that keeps state across batches.

/** @internal How a stateful node is made: its kind and fingerprint parameters, its partitions, and its state operator. */
export interface StatefulSpec {
  readonly kind: string;
  readonly params: GraphNode['params'];
  readonly fns: unknown[];
  readonly slideMs: number;
  readonly numPartitions: number | undefined;
  readonly makeOp: (node: GraphNode) => StateOp;
}

/**
 * @internal A stateful node reading `parent`: its batch is computed at every batch time (the state
 * moves on whether or not an output is due), once per plan.
 */
export function statefulNode<U>(parent: DStream<unknown>, spec: StatefulSpec): DStream<U> {
  const graph = parent.graph;
  const node = graph.addNode(spec.kind, [parent.node], spec.params, spec.fns, spec.slideMs);
  const op = spec.makeOp(node);
  const stateAt = (plan: BatchPlan): StatefulBatch<unknown> => {
    const key = `${node.id}#state`;
    let b = plan.memo.get(key) as StatefulBatch<unknown> | undefined;
    if (!b) {
      // A parent with a longer slide has no batch at some times: the state still moves on, with no input.
      const input = parent.batchAt(plan) ?? new StaticBatch<unknown>([], 1, `${node.id}-no-input`, plan);
      b = new StatefulBatch<unknown>(input, node, op, spec.numPartitions);
      plan.memo.set(key, b);
    }
    return b;
  };
  graph.stateful.push({ node, batchAt: stateAt, op });
  return new DStream<U>(graph, node, (plan) => stateAt(plan) as unknown as Batch<U>);
}

/** @internal Marks `derived` as reading the state of `stateful`, so `checkpoint()` on it reaches the state. */
export function withStateSource<U>(derived: DStream<U>, stateful: DStream<unknown>): DStream<U> {
  derived.stateSource = stateful.node;
  return derived;
}
