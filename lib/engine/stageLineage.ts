import { SluiceError } from '../core/errors.ts';
import { type Batch, ShuffledBatch, SourceBatch, StatefulBatch, StaticBatch, UnionBatch } from '../plan/batch.ts';
import type { BatchPlan } from '../plan/graph.ts';
import type { InputSplit } from '../ports/index.ts';
import { type BlockRef, type CacheOutput, type Checkpoint, type MapOutput, type StageRef, TASK_PROTOCOL, type TaskDescriptor } from './protocol.ts';

/**
 * The walks over one batch's datasets that decide what a stage reads (Spark's DAGScheduler
 * finding a stage's parents): the stages it depends on, the source splits it reads itself, and
 * the task descriptor that tells a worker where each of its inputs is. Pure functions of the
 * plan and of what the batch has run so far; `BatchRun` (stageScheduler.ts) runs the stages.
 */

/** One stage of a batch: what it computes, and where. */
export interface StageInfo {
  readonly key: string;
  readonly ref: StageRef;
  readonly root: Batch<unknown>;
  readonly plan: BatchPlan;
  readonly local: boolean;
  /** A result stage over a cached dataset reads the cached partitions instead of computing them. */
  readonly fromCache?: boolean;
}

/**
 * The name of a stage within its batch, unique per batch time. Scratch blob names and dead
 * letter names include it.
 *
 * @example
 * ```ts
 * stageKeyOf({ kind: 'map', shuffle: 'reduceByKey-3', parent: 0 }, 1000); // 'map-1000-reduceByKey-3-0'
 * ```
 */
export function stageKeyOf(ref: StageRef, time: number): string {
  switch (ref.kind) {
    case 'map':
      return `map-${time}-${ref.shuffle}-${ref.parent}`;
    case 'cache':
      return `cache-${time}-${ref.dataset}`;
    case 'result':
      return `result-${time}-${ref.dataset}`;
  }
}

/**
 * How many splits each source has.
 *
 * @example
 * ```ts
 * splitCounts({ 'kinesis-1': [a, b] }); // { 'kinesis-1': 2 }
 * ```
 */
export function splitCounts(splits: Record<string, readonly InputSplit[]>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(splits)) out[k] = v.length;
  return out;
}

/**
 * The stages that a stage over `root` reads from: map sides of shuffles, cached datasets.
 * `computes` is the dataset the stage itself computes even if it is cached (the root of a
 * cache stage); undefined when the stage reads its root from the cache. `batchTime` is the time
 * of the batch in flight: a dataset of an earlier batch (from `slice`) cannot be stateful.
 *
 * @example
 * ```ts
 * for (const dep of stageDependencies(dataset, plan, dataset, plan.time)) await ensure(dep);
 * ```
 */
export function stageDependencies(root: Batch<unknown>, plan: BatchPlan, computes: Batch<unknown> | undefined, batchTime: number): StageInfo[] {
  const deps: StageInfo[] = [];
  const seen = new Set<Batch<unknown>>();
  const visit = (d: Batch<unknown>) => {
    if (seen.has(d)) return;
    seen.add(d);
    if (d !== computes && d.cached) {
      const ref: StageRef = { kind: 'cache', dataset: d.id };
      deps.push({ key: stageKeyOf(ref, plan.time), ref, root: d, plan, local: d.driverOnly });
      return;
    }
    if (d instanceof StatefulBatch && plan.time !== batchTime) {
      throw new SluiceError(`${d.node.id}: slice() cannot reach back into a stateful stream's earlier batches; slice the stream it reads from instead`, {
        nodeId: d.node.id,
      });
    }
    if (d instanceof ShuffledBatch) {
      d.parents.forEach((parent, i) => {
        const ref: StageRef = { kind: 'map', shuffle: d.id, parent: i };
        deps.push({ key: stageKeyOf(ref, plan.time), ref, root: parent, plan, local: d.driverOnly || parent.driverOnly });
      });
      return;
    }
    for (const p of d.parents) visit(p);
  };
  visit(root);
  return deps;
}

/**
 * Adds to `out` the source splits that partition `p` of a stage over `root` reads itself (not
 * through a shuffle or a cache), keyed `<nodeId>/<partition>`.
 */
function addSourceReads(root: Batch<unknown>, computes: Batch<unknown> | undefined, p: number, out: Map<string, [string, number]>): void {
  const visit = (d: Batch<unknown>, q: number) => {
    if (d !== computes && d.cached) return;
    if (d instanceof ShuffledBatch || d instanceof StaticBatch) return;
    if (d instanceof SourceBatch) {
      out.set(`${d.nodeId}/${q}`, [d.nodeId, q]);
      return;
    }
    if (d instanceof UnionBatch) {
      const [parent, q2] = d.locate(q);
      visit(parent, q2);
      return;
    }
    visit(d.parents[0], q);
  };
  visit(root, p);
}

/**
 * The source splits every partition of a stage over `root` reads itself.
 *
 * @example
 * ```ts
 * const open = [...stageSourceReads(stage.root, stage.root).values()].filter(([id, q]) => splits[id][q].open);
 * ```
 */
export function stageSourceReads(root: Batch<unknown>, computes: Batch<unknown> | undefined): Map<string, [string, number]> {
  const reads = new Map<string, [string, number]>();
  for (let p = 0; p < root.numPartitions; p++) addSourceReads(root, computes, p, reads);
  return reads;
}

/** What a task descriptor says beyond the stage and partition: the job, the attempt, and where the batch's inputs are. */
export interface TaskInputs {
  readonly job: string;
  readonly fingerprint: string;
  readonly epoch: number;
  readonly inlineLimit: number;
  readonly state: Checkpoint['state'];
  /** The splits of every source at the stage's batch time. */
  readonly splits: Record<string, InputSplit[]>;
  /** The outputs of the map and cache stages run so far, by stage key. */
  readonly outputs: ReadonlyMap<string, readonly (MapOutput | CacheOutput)[]>;
}

/**
 * The descriptor of attempt `attempt` of partition `p` of `stage`: only the input splits, shuffle
 * segments and cached partitions that this task reads.
 *
 * @example
 * ```ts
 * const task = describeTask(stage, 0, attempt, { job, fingerprint, epoch, inlineLimit, state, splits, outputs });
 * await invoker.invoke(task);
 * ```
 */
export function describeTask(stage: StageInfo, p: number, attempt: number, inputs: TaskInputs): TaskDescriptor {
  const shuffleReads: Record<string, BlockRef[]> = {};
  const cacheReads: Record<string, BlockRef> = {};
  const splits: Record<string, Record<number, InputSplit>> = {};
  const root = stage.root;
  const computes = stage.fromCache ? undefined : root;
  const time = stage.plan.time;
  const all = inputs.splits;
  const visit = (d: Batch<unknown>, q: number) => {
    if (d !== computes && d.cached) {
      const key = stageKeyOf({ kind: 'cache', dataset: d.id }, time);
      cacheReads[`${d.id}/${q}`] = blockRef(key, q, inputs.outputs.get(key)?.[q] as CacheOutput | undefined, undefined);
      return;
    }
    if (d instanceof ShuffledBatch) {
      d.parents.forEach((_parent, i) => {
        const key = stageKeyOf({ kind: 'map', shuffle: d.id, parent: i }, time);
        const outs = (inputs.outputs.get(key) ?? []) as MapOutput[];
        shuffleReads[`${d.id}/${i}/${q}`] = outs.map((o, m) => blockRef(key, m, o, q));
      });
      return;
    }
    if (d instanceof UnionBatch) {
      const [parent, q2] = d.locate(q);
      visit(parent, q2);
      return;
    }
    if (d instanceof SourceBatch) {
      const split = all[d.nodeId]?.[q];
      if (split) (splits[d.nodeId] ??= {})[q] = split;
      return;
    }
    if (d instanceof StaticBatch) return;
    visit(d.parents[0], q);
  };
  // The root of a map or result stage reads its own inputs; a ShuffledBatch root reads its segments.
  visit(root, p);
  return {
    protocol: TASK_PROTOCOL,
    job: inputs.job,
    fingerprint: inputs.fingerprint,
    time,
    stage: stage.ref,
    stageKey: stage.key,
    partition: p,
    attempt,
    epoch: inputs.epoch,
    splitCounts: splitCounts(all),
    splits,
    shuffleReads,
    cacheReads,
    inlineLimit: inputs.inlineLimit,
    state: inputs.state as TaskDescriptor['state'],
    ...(root instanceof StatefulBatch && stage.ref.kind === 'cache' ? { affinity: `${root.node.id}/${p}` } : {}),
  };
}

/** Where partition `q`'s segment of map task `m`'s output (or cached partition `m`) is. */
function blockRef(stageKey: string, m: number, out: MapOutput | CacheOutput | undefined, q: number | undefined): BlockRef {
  if (!out) throw new SluiceError(`internal: no output of stage ${stageKey} partition ${m}`);
  if (q === undefined) {
    const c = out as CacheOutput;
    if (c.inline) return { stage: stageKey, partition: m, inline: c.inline };
    return { stage: stageKey, partition: m, blob: c.blob!, start: 0, end: Number.POSITIVE_INFINITY };
  }
  const o = out as MapOutput;
  if (o.inline) return { stage: stageKey, partition: m, inline: o.inline[q] };
  const start = o.offsets![q];
  const end = o.offsets![q + 1];
  if (start === end) return { stage: stageKey, partition: m, empty: true };
  return { stage: stageKey, partition: m, blob: o.blob!, start, end };
}

/**
 * The labels of the datasets a stage over `root` computes itself, parents first: the operators
 * the Streaming UI draws inside the stage's box. A shuffle's dataset starts the stage (what it
 * shuffles is computed before, by map stages); a cached dataset read from the cache ends the walk.
 *
 * @example
 * ```ts
 * stageOperators(reduced, reduced); // ['reduceByKey-1', 'map-2']
 * ```
 */
export function stageOperators(root: Batch<unknown>, computes: Batch<unknown> | undefined): string[] {
  const out: string[] = [];
  const seen = new Set<Batch<unknown>>();
  const visit = (d: Batch<unknown>) => {
    if (seen.has(d)) return;
    seen.add(d);
    if (d !== computes && d.cached) {
      out.push(`${d.label} (cached)`);
      return;
    }
    if (!(d instanceof ShuffledBatch)) for (const p of d.parents) visit(p);
    out.push(d.label);
  };
  visit(root);
  return out;
}
