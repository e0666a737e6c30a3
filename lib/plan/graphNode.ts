import type { JsonValue } from '../ports/index.ts';

/**
 * One operator of the job's DStream graph. Its own module, below the datasets and operators that
 * name their node, so that the graph (graph.ts), which holds datasets, can sit above them.
 */
export interface GraphNode {
  /** Stable id: `<kind>-<n>` (the n-th node of that kind) or the name given with `.named()`. */
  id: string;
  readonly kind: string;
  readonly parents: readonly GraphNode[];
  /** Static parameters that change what the node computes (durations, partition counts, paths). */
  readonly params: { readonly [key: string]: JsonValue };
  /** How many user functions the node holds (their text is not compared: transpilers reprint it). */
  readonly fns: number;
  /** Interval (ms) at which the node produces batches. */
  readonly slide: number;
}
