import { JobDefinitionError, SluiceError } from '../core/errors.ts';
import type { StreamingListener } from '../core/listener.ts';
import type { SourceSpec } from '../ports/index.ts';
import type { Batch, BatchExecutor, Scope } from './batch/base.ts';
import type { GraphNode } from './graphNode.ts';
import type { StatefulBatch, StateOp } from './state/stateful.ts';

export type { GraphNode } from './graphNode.ts';

/** The kinds of output operation. */
export type OutputKind =
  | 'print'
  | 'saveAsTextFiles'
  | 'saveAsJsonFiles'
  | 'foreachRDD'
  | 'foreachPartition'
  | 'capture';

/** One output operation: what runs for a stream at every batch it produces. */
export interface OutputNode {
  readonly node: GraphNode;
  readonly kind: OutputKind;
  /** The stream's batch at a plan, or undefined when it has none at that time. */
  readonly batchAt: (plan: BatchPlan) => Batch<unknown> | undefined;
  readonly num?: number;
  readonly prefix?: string;
  readonly suffix?: string;
  readonly fn?: (...args: any[]) => unknown;
}

const NAME = /^[A-Za-z0-9_.-]{1,80}$/;

/**
 * The DStream graph of a job: nodes with stable ids, sources, outputs, and the datasets made at
 * build time (`ctx.parallelize`). Coordinator and workers build the same graph from the same
 * code; nothing but ids crosses between them.
 */
export class JobGraph implements Scope {
  readonly nodes: GraphNode[] = [];
  readonly sources: SourceSpec[] = [];
  readonly outputs: OutputNode[] = [];
  readonly statics = new Map<string, Batch<unknown>>();
  private readonly counters = new Map<string, number>();
  private staticSeq = 0;
  /** Set once `build` has returned: later static datasets exist on the coordinator only. */
  sealed = false;
  readonly time = undefined;
  readonly executor: BatchExecutor | undefined = undefined;
  /** How long batches stay available to `slice()` (ms). */
  rememberMs = 0;
  /** Set by the coordinator: the plan of an earlier batch, for `slice()`. */
  planAt: ((time: number) => Promise<BatchPlan | undefined>) | undefined;
  /** Listeners added with `ctx.addListener`. */
  readonly listeners: StreamingListener[] = [];
  /** Stateful nodes: their batch is computed at every batch time, output due or not. */
  readonly stateful: { readonly node: GraphNode; readonly batchAt: (plan: BatchPlan) => StatefulBatch<unknown>; readonly op: StateOp }[] = [];
  /** Full state checkpoint interval of stateful nodes that do not set their own (ms). */
  checkpointMs: number;

  constructor(
    readonly name: string,
    readonly batchInterval: number,
    readonly defaultParallelism: number | undefined,
    /** What a task does with a record a user function throws on: fail the batch, or set it aside. */
    readonly onRecordError: 'fail' | 'dead-letter' = 'fail',
    checkpointMs?: number,
  ) {
    this.checkpointMs = checkpointMs ?? 10 * batchInterval;
  }

  /** Adds a node with the next id of its kind. */
  addNode(kind: string, parents: readonly GraphNode[], params: GraphNode['params'] = {}, fns: readonly unknown[] = [], slide?: number): GraphNode {
    if (this.sealed) {
      throw new JobDefinitionError(`cannot add a ${kind} operator after the job was built; create every stream inside the job's build function`);
    }
    const n = (this.counters.get(kind) ?? 0) + 1;
    this.counters.set(kind, n);
    const node: GraphNode = {
      id: `${kind}-${n}`,
      kind,
      parents,
      params,
      fns: fns.length,
      slide: slide ?? (parents.length ? parents[0].slide : this.batchInterval),
    };
    this.nodes.push(node);
    return node;
  }

  /** Gives a node a user-chosen id. */
  rename(node: GraphNode, name: string): void {
    if (typeof name !== 'string' || !NAME.test(name)) {
      throw new JobDefinitionError(`named(): a name is 1-80 letters, digits, '_', '.' or '-', got ${JSON.stringify(name)}`, { nodeId: node.id });
    }
    if (this.nodes.some((n) => n !== node && n.id === name)) {
      throw new JobDefinitionError(`Duplicate stream name "${name}". Use named(...) to give each stream a unique name.`, { nodeId: node.id });
    }
    const spec = this.sources.findIndex((s) => s.nodeId === node.id);
    if (spec >= 0) this.sources[spec] = { ...this.sources[spec], nodeId: name };
    node.id = name;
  }

  node(id: string): GraphNode | undefined {
    return this.nodes.find((n) => n.id === id);
  }

  source(nodeId: string): SourceSpec {
    const s = this.sources.find((x) => x.nodeId === nodeId);
    if (!s) throw new SluiceError(`unknown source node ${nodeId}`, { nodeId });
    return s;
  }

  output(nodeId: string): OutputNode {
    const o = this.outputs.find((x) => x.node.id === nodeId);
    if (!o) throw new SluiceError(`unknown output node ${nodeId}`, { nodeId });
    return o;
  }

  // Scope for datasets made at build time.
  register(dataset: Batch<unknown>, prefix: string): string {
    const id = `s${this.staticSeq++}.${prefix}`;
    this.statics.set(id, dataset);
    return id;
  }
  splitCount(nodeId: string): number {
    throw new SluiceError(`source ${nodeId} has no input outside a batch`, { nodeId });
  }

  /**
   * Each node's signature: kind, parents, parameters, slide. Function bodies are left out on
   * purpose: tsx, vitest and the Lambda bundler print the same function differently, and a
   * fingerprint that changed with the transpiler would refuse every resume after an upgrade.
   */
  signatures(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const n of this.nodes) {
      out[n.id] = hashText(
        JSON.stringify([n.kind, n.parents.map((p) => p.id), n.params, n.slide, n.fns]),
      );
    }
    return out;
  }

  /** One hash of the whole plan. */
  fingerprint(): string {
    const sigs = this.signatures();
    return hashText(JSON.stringify([this.name, this.batchInterval, this.defaultParallelism ?? null, Object.entries(sigs)]));
  }
}

/** The nodes whose signatures differ between two plans (added, removed or changed). */
export function changedNodes(a: Record<string, string>, b: Record<string, string>): string[] {
  const ids = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...ids].filter((id) => a[id] !== b[id]).sort();
}

/** 64-bit FNV-1a of a string, as 16 hex digits. Stable everywhere. */
export function hashText(s: string): string {
  let h = 0xcbf29ce484222325n;
  const prime = 0x100000001b3n;
  const mask = 0xffffffffffffffffn;
  for (let i = 0; i < s.length; i++) {
    h ^= BigInt(s.charCodeAt(i));
    h = (h * prime) & mask;
  }
  return h.toString(16).padStart(16, '0');
}

/**
 * The plan of one batch: the datasets every output needs at time `time`, created in output
 * order so ids are the same in every process that plans the same batch.
 */
export class BatchPlan implements Scope {
  readonly datasets = new Map<string, Batch<unknown>>();
  /** DStream node id → its batch at this time (Spark's generatedRDDs). */
  readonly memo = new Map<string, Batch<unknown> | undefined>();
  /** Each output's batch, in output order (undefined when the stream has none at this time). */
  readonly outputBatches: (Batch<unknown> | undefined)[] = [];
  /** Every stateful node's batch at this time, in node order. */
  readonly statefulBatches: StatefulBatch<unknown>[] = [];
  /** Transform functions that failed while this plan was built, set aside under `onRecordError: 'dead-letter'` (see `planFailed`). */
  readonly deadLetters: { readonly node: string; readonly error: string }[] = [];
  private seq = 0;
  sealed = false;
  executor: BatchExecutor | undefined;

  constructor(
    readonly graph: JobGraph,
    readonly time: number,
    private readonly splitCounts: Readonly<Record<string, number>>,
  ) {}

  get defaultParallelism(): number | undefined {
    return this.graph.defaultParallelism;
  }

  register(dataset: Batch<unknown>, prefix: string): string {
    const id = `${this.seq++}.${prefix}`;
    this.datasets.set(id, dataset);
    return id;
  }

  splitCount(nodeId: string): number {
    const n = this.splitCounts[nodeId];
    if (n === undefined) throw new SluiceError(`batch ${this.time} has no input splits for source ${nodeId}`, { nodeId, batchTime: this.time });
    return n;
  }

  /** Finds a dataset of this plan or of the job by id. */
  lookup(id: string): Batch<unknown> {
    const d = this.datasets.get(id) ?? this.graph.statics.get(id);
    if (!d) {
      throw new SluiceError(
        `dataset ${id} is not in the plan of batch ${this.time}; transform functions must build the same plan in every process`,
        { batchTime: this.time },
      );
    }
    return d;
  }
}
