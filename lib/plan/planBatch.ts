import { type Batch, withActivePlan } from './batch.ts';
import { BatchPlan, type JobGraph } from './graph.ts';

/**
 * Builds the plan of the batch at `time`: every output's dataset, in output order, then marks the
 * datasets that more than one consumer reads as cached, so each is computed once per batch.
 * Coordinator and workers call this with the same arguments and get the same dataset ids.
 */
export function planBatch(graph: JobGraph, time: number, splitCounts: Readonly<Record<string, number>>): BatchPlan {
  const plan = new BatchPlan(graph, time, splitCounts);
  withActivePlan(plan, () => {
    for (const o of graph.outputs) plan.outputBatches.push(o.batchAt(plan));
    // State moves on every batch, so stateful nodes are planned even when no output is due.
    for (const s of graph.stateful) plan.statefulBatches.push(s.batchAt(plan));
  });
  const consumers = new Map<Batch<unknown>, number>();
  const count = (d: Batch<unknown>) => {
    if (d.scope === plan) consumers.set(d, (consumers.get(d) ?? 0) + 1);
  };
  for (const d of plan.datasets.values()) for (const p of d.parents) count(p);
  for (const d of plan.outputBatches) if (d) count(d);
  for (const [d, n] of consumers) if (n > 1) d.cached = true;
  plan.sealed = true;
  return plan;
}
