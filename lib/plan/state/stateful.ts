import { type Aggregator, CombinerMap, grouping } from '../aggregate.ts';
import type { Batch, Emit, PartitionReader } from '../batch/base.ts';
import { ShuffledBatch } from '../batch/pair.ts';
import type { GraphNode } from '../graphNode.ts';
import { canonicalKey, partitionOf } from '../keys.ts';
import type { RecordFailures } from '../recordErrors.ts';
import type { CheckpointPolicy, StateIO, StatePointer } from './format.ts';

/*
 * What every stateful operator (updateStateByKey.ts, mapWithState.ts, window.ts) shares: the
 * contract of an operator (StateOp) and the dataset that runs it at each batch (StatefulBatch).
 * Their durable state is in the format of format.ts.
 */

/** The operator-specific part of a stateful node. */
export interface StateOp extends CheckpointPolicy {
  /** What the map side does with the input: combine values per key, group them, or spread raw records. */
  readonly mapSide: { readonly kind: 'combine'; readonly aggregator: Aggregator<unknown, unknown> } | { readonly kind: 'repartition' };
  /** How long slices are kept (windows), ms; 0 for none. */
  readonly keepSlicesMs: number;
  /** Whether batch `time` writes a slice (a later batch reads it); every batch does when absent. */
  keepsSlice?(time: number): boolean;
  /**
   * Runs one partition: `segments` are the map outputs of this batch for it. A user function that
   * throws goes to `r.keyFailed`; when that returns (dead letter), the key is left out of this batch.
   */
  run(segments: readonly (readonly unknown[])[], io: StateIO, emit: Emit<unknown>, r: RecordFailures): Promise<void>;
  /**
   * Whether batch `time`, given no input, would emit nothing and leave the node's state as it is:
   * then a quiet batch need not run it (the coordinator's idle batches). `pointer` is the state
   * after the last batch that ran it (undefined before its first), `lastInput` the last batch
   * that had any input at all (undefined: none yet).
   */
  restsAt(time: number, pointer: StatePointer | undefined, lastInput: number | undefined): boolean;
  /**
   * The first batch time from which, given no input, the node rests at every batch (`restsAt`):
   * idle mode sleeps only once every node does. `-Infinity` when it rests already, `Infinity`
   * while it has work left that only a batch can do (a key to time out, to pass to updateStateByKey).
   */
  restsFrom(pointer: StatePointer | undefined, lastInput: number | undefined): number;
}

/** Partitions of a stateful node when neither it nor the job says: state needs a fixed count. */
export const DEFAULT_STATE_PARTITIONS = 4;

/**
 * The batch of a stateful node (window, updateStateByKey, mapWithState) at one time: this batch's
 * input is shuffled by key to a fixed number of partitions, and each partition's task combines it
 * with the node's durable state (see lib/plan/state/format.ts). Computed every batch, whether or
 * not an output is due, and cached, so it runs once per batch.
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
    const segments = await r.shuffle(this, 0, p);
    // A quiet batch runs only nodes at rest (restsAt): without input they emit nothing and change nothing.
    if (r.quiet) return r.quietInput(this.node.id, segments);
    await this.op.run(segments, r.stateIO(this, p), emit as Emit<unknown>, r);
  }
}

/** A partition's input to a state operator: the values of each key, merged over the map tasks' segments. */
export function mergeGroups(segments: readonly (readonly unknown[])[], label: string): CombinerMap<unknown[]> {
  const merged = new CombinerMap<unknown[]>();
  const encode = (k: unknown) => canonicalKey(k, label);
  for (const seg of segments) for (const e of seg as [unknown, unknown[]][]) merged.addCombiner(e[0], e[1].slice(), grouping.combine as (a: unknown[], b: unknown[]) => unknown[], encode);
  return merged;
}

/** Initial state entries of partition `p` out of `n`, from an array of pairs. */
export function initialFor(initial: readonly (readonly [unknown, unknown])[] | undefined, p: number, n: number, label: string): () => Iterable<readonly [unknown, unknown]> {
  return () => (initial ?? []).filter(([k]) => partitionOf(k, n, label) === p);
}
