import { FetchFailedError, NotQuietError, RecordError, SluiceError } from '../core/errors.ts';
import { type Batch, type ResultAction, ShuffledBatch } from '../plan/batch.ts';
import type { BatchPlan, JobGraph } from '../plan/graph.ts';
import { planBatch } from '../plan/planBatch.ts';
import { inTask } from '../plan/recordErrors.ts';
import { ShuffleWriter } from '../plan/shuffle.ts';
import type { BlobStore, RecordSource, SinkResolver, SourceFactory } from '../ports/index.ts';
import { encodeRecords } from './codec.ts';
import { formatRecord, jsonLine, outputLocation, partName } from './format.ts';
import { keys, type TaskDescriptor, type TaskFailure, type TaskResult } from './protocol.ts';
import { TaskPayloadError, validateTask } from './taskPayload.ts';
import { type TaskHost, TaskReader } from './taskReader.ts';
import type { StateCache } from './taskState.ts';

/** What a worker needs from its environment. */
export interface WorkerRuntime {
  /** Shuffle output, cached partitions and received blocks. */
  readonly blobs: BlobStore;
  /** Builds source adapters to read input splits. */
  readonly sources: SourceFactory;
  /** Resolves output locations of `saveAs*Files`. */
  readonly sinks: SinkResolver;
  /**
   * A name no other run of a task uses (scratch blob names carry it, so two runs of one attempt —
   * an Invoke the SDK retried while the first still runs — never write the same blob).
   * @default a random UUID
   */
  readonly nonce?: () => string;
}

const PLAN_CACHE = 8;

/** Turns any error into a task failure message. */
export function toFailure(e: unknown): TaskFailure {
  const err = e instanceof Error ? e : new Error(String(e));
  const ctx = e instanceof SluiceError ? { nodeId: e.nodeId, batchTime: e.batchTime, partition: e.partition } : {};
  return {
    ok: false,
    error: { name: err.name, message: err.message, stack: err.stack, ...ctx, ...(e instanceof RecordError ? calledOn(e) : {}) },
    fetchFailed: e instanceof FetchFailedError ? { stage: e.mapStage, partition: e.mapPartition } : undefined,
    retryable: !(e instanceof TaskPayloadError || e instanceof NotQuietError),
  };
}

/**
 * The largest record or key, as JSON text, that a failure carries back: it travels in a Lambda
 * response (6 MB at most), and the record of a mapPartitions function is its whole partition.
 */
const FAILURE_VALUE_CHARS = 16 * 1024;

/** What the function of a record error was called on, as JSON, when that is small enough to travel. */
function calledOn(e: RecordError): { record?: unknown; key?: unknown } {
  const out: { record?: unknown; key?: unknown } = {};
  if ('record' in e) {
    const record = smallJson(e.record);
    if (record) out.record = record.value;
  }
  if ('key' in e) {
    const key = smallJson(e.key);
    if (key) out.key = key.value;
  }
  return out;
}

/**
 * `v` as it travels in JSON (`undefined` as null, what JSON cannot hold as its text), when its
 * JSON is at most FAILURE_VALUE_CHARS long; undefined otherwise. A failure must always be
 * reportable: nothing here throws, and a partition too long to travel is not stringified at all.
 */
function smallJson(v: unknown): { value: unknown } | undefined {
  // Each element takes at least two characters (a value and a comma).
  if (Array.isArray(v) && v.length * 2 > FAILURE_VALUE_CHARS) return undefined;
  let value = v === undefined ? null : v;
  let json: string | undefined;
  try {
    json = JSON.stringify(value);
  } catch {
    try {
      value = String(v);
      json = JSON.stringify(value);
    } catch {
      return undefined;
    }
  }
  return json !== undefined && json.length <= FAILURE_VALUE_CHARS ? { value } : undefined;
}

/**
 * Runs tasks: rebuilds the batch's plan from the job's code (nothing but ids arrives), computes one
 * partition through the fused operator chain, and writes shuffle output, a cached partition, or
 * an output part.
 */
export class Worker implements TaskHost {
  private readonly plans = new Map<string, BatchPlan>();
  /**
   * The last state each stateful partition saved in this process: the next batch starts from it
   * without reading blobs. At most {@link STATE_CACHE_PARTITIONS} partitions, least recently used out first.
   */
  readonly stateCache: StateCache = new Map();
  private readonly adapters = new Map<string, RecordSource>();
  private fingerprintMemo: string | undefined;

  constructor(
    readonly graph: JobGraph,
    readonly rt: WorkerRuntime,
  ) {}

  get fingerprint(): string {
    this.fingerprintMemo ??= this.graph.fingerprint();
    return this.fingerprintMemo;
  }

  /** The adapter that reads splits of source `nodeId`. */
  adapter(nodeId: string): RecordSource {
    let a = this.adapters.get(nodeId);
    if (!a) {
      a = this.rt.sources(this.graph.source(nodeId), { blobs: this.rt.blobs, job: this.graph.name, batchInterval: this.graph.batchInterval });
      this.adapters.set(nodeId, a);
    }
    return a;
  }

  /** Runs one task payload. Never throws: a failure comes back as a {@link TaskFailure}. */
  async run(payload: unknown): Promise<TaskResult | TaskFailure> {
    try {
      const task = validateTask(payload);
      if (task.job !== this.graph.name) throw new TaskPayloadError(`task for job ${task.job} sent to a worker of job ${this.graph.name}`);
      if (task.fingerprint !== this.fingerprint) {
        throw new TaskPayloadError(
          `task of plan ${task.fingerprint} sent to a worker with plan ${this.fingerprint}: coordinator and workers run different versions of job ${task.job}`,
        );
      }
      return await this.execute(task, this.planFor(task));
    } catch (e) {
      return toFailure(e);
    }
  }

  private planFor(task: TaskDescriptor): BatchPlan {
    const counts = task.splitCounts;
    const key = `${task.time}:${JSON.stringify(counts)}`;
    let plan = this.plans.get(key);
    if (!plan) {
      plan = planBatch(this.graph, task.time, counts);
      this.plans.set(key, plan);
      if (this.plans.size > PLAN_CACHE) this.plans.delete(this.plans.keys().next().value as string);
    }
    return plan;
  }

  /**
   * Runs a task against a plan. The coordinator calls this directly, with its own plan, for stages
   * that only it can run (datasets made inside `foreachRDD`, `foreachPartition` functions there).
   */
  async execute(task: TaskDescriptor, plan: BatchPlan, localAction?: ResultAction): Promise<TaskResult> {
    const stage = task.stage;
    const p = task.partition;
    let shuffle: ShuffledBatch<unknown> | undefined;
    let root: Batch<unknown>;
    if (stage.kind === 'map') {
      const s = plan.lookup(stage.shuffle);
      if (!(s instanceof ShuffledBatch)) throw new TaskPayloadError(`dataset ${stage.shuffle} is not a shuffle`);
      shuffle = s;
      root = s.parents[stage.parent];
      if (!root) throw new TaskPayloadError(`shuffle ${stage.shuffle} has no parent ${stage.parent}`);
    } else {
      root = plan.lookup(stage.dataset);
    }
    if (p >= root.numPartitions) throw new TaskPayloadError(`partition ${p} of ${root.id} does not exist (it has ${root.numPartitions})`);
    const reader = new TaskReader(task, this);
    // What every answer carries: the input read, the ranges consumed from open splits, dead letters.
    const read = (recordsOut: number) => ({
      ok: true as const,
      inputRecords: reader.inputRecords,
      recordsIn: reader.inputRecords + reader.blockRecords,
      recordsOut,
      sealed: reader.sealed,
      sourceReads: reader.reads,
      deadLetters: reader.deadLetters,
      held: reader.held,
    });
    try {
      switch (stage.kind) {
        case 'map': {
          const writer = new ShuffleWriter(shuffle!, p, shuffle!.numPartitions, reader);
          await root.push(p, reader, writer.emit);
          // Cutting the segments may set keys aside too: before the answer's dead letters are taken.
          const segments = writer.segments();
          let out = 0;
          for (const segment of segments) out += segment.length;
          const map = await this.storeSegments(task, segments);
          return { ...read(out), map };
        }
        case 'cache': {
          const records: unknown[] = [];
          await root.push(p, reader, (x) => {
            records.push(x);
          });
          const bytes = encodeRecords(records);
          // A quiet batch writes no blob: its empty partitions travel inline whatever the limit.
          if (bytes.byteLength <= task.inlineLimit || (task.quiet && records.length === 0)) return { ...read(records.length), cache: { inline: bytes } };
          notQuiet(task, records.length);
          const blob = keys.cache(task.time, task.stageKey, p, this.runTag(task));
          await this.rt.blobs.put(blob, bytes);
          return { ...read(records.length), cache: { blob } };
        }
        case 'result': {
          const action = localAction ?? (stage.action as ResultAction);
          const { value, records } = await this.act(task, root, reader, action);
          return { ...read(records), value };
        }
      }
    } catch (e) {
      throw inTask(e, task.time, p);
    }
  }

  /** Runs the action on the partition: its value, and how many records it took. */
  private async act(task: TaskDescriptor, root: Batch<unknown>, reader: TaskReader, action: ResultAction): Promise<{ value: unknown; records: number }> {
    const p = task.partition;
    if (action.kind === 'count') {
      let n = 0;
      await root.push(p, reader, () => {
        n++;
      });
      return { value: n, records: n };
    }
    const records: unknown[] = [];
    await root.push(p, reader, (x) => {
      records.push(x);
    });
    // What user code or a sink sees must come from a batch run in full.
    if (action.kind !== 'collect') notQuiet(task, records.length);
    return { value: await this.take(task, records, action), records: records.length };
  }

  private async take(task: TaskDescriptor, records: unknown[], action: ResultAction): Promise<unknown> {
    const p = task.partition;
    switch (action.kind) {
      case 'collect':
        return action.limit !== undefined && records.length > action.limit ? records.slice(0, action.limit) : records;
      case 'foreachPartition':
        await action.fn(records, { partition: p, batchTime: task.time });
        return undefined;
      case 'output': {
        const out = this.graph.output(action.outputId);
        if (out.kind === 'foreachPartition') {
          await out.fn!(records, { partition: p, batchTime: task.time });
          return undefined;
        }
        if (out.kind !== 'saveAsTextFiles' && out.kind !== 'saveAsJsonFiles') throw new TaskPayloadError(`output ${out.node.id} (${out.kind}) does not run on workers`);
        // An empty partition writes nothing: the coordinator writes its empty part only when the
        // batch's output has a record (outputs.ts), so an empty batch leaves no object behind.
        if (records.length === 0) return 0;
        const line = out.kind === 'saveAsJsonFiles' ? jsonLine : formatRecord;
        let text = '';
        for (let i = 0; i < records.length; i++) text += `${line(records[i])}\n`;
        const { store, key } = this.rt.sinks(outputLocation(out.prefix!, task.time, out.suffix));
        await store.put(`${key}/${partName(p)}`, text);
        return records.length;
      }
    }
  }

  /** Who wrote a scratch blob: the coordinator's epoch, the attempt, and this run's nonce. */
  private runTag(task: TaskDescriptor): string {
    return `e${task.epoch}a${task.attempt}-${this.rt.nonce?.() ?? globalThis.crypto.randomUUID().slice(0, 8)}`;
  }

  private async storeSegments(task: TaskDescriptor, segments: unknown[][]) {
    const encoded = segments.map(encodeRecords);
    let total = 0;
    for (const e of encoded) total += e.byteLength;
    if (total <= task.inlineLimit || (task.quiet && segments.every((s) => s.length === 0))) return { inline: encoded };
    notQuiet(task, total);
    // One blob per map task, a segment per reduce partition; reducers range-read their segment.
    const body = new Uint8Array(total);
    const offsets = [0];
    let at = 0;
    for (const e of encoded) {
      body.set(e, at);
      at += e.byteLength;
      offsets.push(at);
    }
    const blob = keys.shuffle(task.time, task.stageKey, task.partition, this.runTag(task));
    await this.rt.blobs.put(blob, body);
    return { blob, offsets };
  }
}

/** A task of a quiet batch that has records to write or hand to user code stops first (the coordinator runs the batch in full). */
function notQuiet(task: TaskDescriptor, size: number): void {
  if (task.quiet && size > 0) throw new NotQuietError(`batch ${task.time} was cut empty, but task ${task.stageKey} partition ${task.partition} has records`);
}
