import { FetchFailedError, RecordError, SluiceError } from '../core/errors.ts';
import { type Batch, type PartitionReader, type ResultAction, ShuffledBatch, type StatefulBatch } from '../plan/batch.ts';
import { keyError, recordError, setsAside } from '../plan/recordErrors.ts';
import { KeyedState, STATE_FORMAT, type StateIO, type StatePointer, writesFull } from '../plan/state.ts';
import type { BatchPlan, JobGraph } from '../plan/graph.ts';
import { planBatch } from '../plan/planBatch.ts';
import { ShuffleWriter } from '../plan/shuffle.ts';
import type { BlobStore, InputSplit, RecordSource, SinkResolver, SourceFactory } from '../ports/index.ts';
import { decodeRecords, encodeRecords } from './codec.ts';
import { formatRecord, jsonLine, outputLocation, partName } from './format.ts';
import { type BlockRef, keys, TASK_PROTOCOL, type TaskDescriptor, type TaskFailure, type TaskResult } from './protocol.ts';

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

/** A task payload that cannot be run: running it again will not help. */
export class TaskPayloadError extends SluiceError {
  constructor(message: string) {
    super(message);
    this.name = 'TaskPayloadError';
  }
}

const PLAN_CACHE = 8;
/** Stateful partitions a warm worker keeps in memory (least recently used go first). */
export const STATE_CACHE_PARTITIONS = 64;

function isObject(v: unknown): v is Record<string, unknown> {
  return !!v && typeof v === 'object' && !Array.isArray(v);
}

/** Checks a payload's shape, so a wrong payload fails with a clear message instead of deep inside. */
export function validateTask(payload: unknown): TaskDescriptor {
  const bad = (what: string) => new TaskPayloadError(`not a Sluice task payload: ${what}`);
  if (!isObject(payload)) throw bad(`expected an object, got ${payload === null ? 'null' : typeof payload}`);
  const t = payload as Partial<TaskDescriptor> & Record<string, unknown>;
  if (t.protocol !== TASK_PROTOCOL) throw bad(`protocol must be ${TASK_PROTOCOL}, got ${JSON.stringify(t.protocol)} (coordinator and workers run different Sluice versions)`);
  if (typeof t.job !== 'string') throw bad('job must be a string');
  if (typeof t.fingerprint !== 'string') throw bad('fingerprint must be a string');
  if (typeof t.time !== 'number' || !Number.isFinite(t.time)) throw bad('time must be a number');
  if (typeof t.stageKey !== 'string') throw bad('stageKey must be a string');
  if (!Number.isInteger(t.partition) || (t.partition as number) < 0) throw bad('partition must be a whole number >= 0');
  if (!Number.isInteger(t.attempt) || (t.attempt as number) < 0) throw bad('attempt must be a whole number >= 0');
  if (!Number.isInteger(t.epoch) || (t.epoch as number) < 0) throw bad('epoch must be a whole number >= 0');
  if (!isObject(t.splitCounts)) throw bad('splitCounts must be an object');
  if (!isObject(t.splits)) throw bad('splits must be an object');
  if (!isObject(t.shuffleReads)) throw bad('shuffleReads must be an object');
  if (!isObject(t.cacheReads)) throw bad('cacheReads must be an object');
  if (typeof t.inlineLimit !== 'number') throw bad('inlineLimit must be a number');
  const s = t.stage as Record<string, unknown> | undefined;
  if (!isObject(s)) throw bad('stage must be an object');
  if (s.kind === 'map') {
    if (typeof s.shuffle !== 'string' || !Number.isInteger(s.parent)) throw bad('a map stage needs shuffle and parent');
  } else if (s.kind === 'cache') {
    if (typeof s.dataset !== 'string') throw bad('a cache stage needs dataset');
  } else if (s.kind === 'result') {
    const a = s.action as Record<string, unknown> | undefined;
    if (typeof s.dataset !== 'string' || !isObject(a) || !['collect', 'count', 'output'].includes(a.kind as string)) {
      throw bad('a result stage needs dataset and an action (collect, count or output)');
    }
  } else {
    throw bad(`unknown stage kind ${JSON.stringify(s.kind)}`);
  }
  return payload as unknown as TaskDescriptor;
}

/** Turns any error into a task failure message. */
export function toFailure(e: unknown): TaskFailure {
  const err = e instanceof Error ? e : new Error(String(e));
  const ctx = e instanceof SluiceError ? { nodeId: e.nodeId, batchTime: e.batchTime, partition: e.partition } : {};
  return {
    ok: false,
    error: { name: err.name, message: err.message, stack: err.stack, ...ctx },
    fetchFailed: e instanceof FetchFailedError ? { stage: e.mapStage, partition: e.mapPartition } : undefined,
    retryable: !(e instanceof TaskPayloadError),
  };
}

/**
 * Runs tasks: rebuilds the batch's plan from the job's code (nothing but ids arrives), computes one
 * partition through the fused operator chain, and writes shuffle output, a cached partition, or
 * an output part.
 */
export class Worker {
  private readonly plans = new Map<string, BatchPlan>();
  /**
   * The last state each stateful partition saved in this process: the next batch starts from it
   * without reading blobs. At most {@link STATE_CACHE_PARTITIONS} partitions, least recently used out first.
   */
  readonly stateCache = new Map<string, { time: number; state: KeyedState }>();
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
    const read = () => ({ ok: true as const, inputRecords: reader.inputRecords, sealed: reader.sealed, sourceReads: reader.reads, deadLetters: reader.deadLetters });
    try {
      switch (stage.kind) {
        case 'map': {
          const writer = new ShuffleWriter(shuffle!, p, shuffle!.numPartitions, reader);
          await root.push(p, reader, writer.emit);
          // Cutting the segments may set keys aside too: before the answer's dead letters are taken.
          const map = await this.storeSegments(task, writer.segments());
          return { ...read(), map };
        }
        case 'cache': {
          const records: unknown[] = [];
          await root.push(p, reader, (x) => {
            records.push(x);
          });
          const bytes = encodeRecords(records);
          if (bytes.byteLength <= task.inlineLimit) return { ...read(), cache: { inline: bytes } };
          const blob = keys.cache(task.time, task.stageKey, p, this.runTag(task));
          await this.rt.blobs.put(blob, bytes);
          return { ...read(), cache: { blob } };
        }
        case 'result': {
          const action = localAction ?? (stage.action as ResultAction);
          const value = await this.act(task, root, reader, action);
          return { ...read(), value };
        }
      }
    } catch (e) {
      if (e instanceof RecordError && e.batchTime === undefined) {
        throw new RecordError(`${e.message} (batch ${task.time}, partition ${p})`, { nodeId: e.nodeId, batchTime: task.time, partition: p, cause: e.cause ?? e });
      }
      throw e;
    }
  }

  private async act(task: TaskDescriptor, root: Batch<unknown>, reader: TaskReader, action: ResultAction): Promise<unknown> {
    const p = task.partition;
    if (action.kind === 'count') {
      let n = 0;
      await root.push(p, reader, () => {
        n++;
      });
      return n;
    }
    const records: unknown[] = [];
    await root.push(p, reader, (x) => {
      records.push(x);
    });
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
    if (total <= task.inlineLimit) return { inline: encoded };
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

/** Reads a task's inputs: source splits, shuffle segments and cached partitions. */
class TaskReader implements PartitionReader {
  inputRecords = 0;
  position: { nodeId: string; partition: number; offset: number } | undefined;
  /** Records set aside under `onRecordError: 'dead-letter'`, as JSON lines. */
  deadLetters: string[] | undefined;
  sealed: Record<string, Record<number, InputSplit>> | undefined;
  reads: Record<string, Record<number, number>> | undefined;
  readonly time: number;

  constructor(
    private readonly task: TaskDescriptor,
    private readonly worker: Worker,
  ) {
    this.time = task.time;
  }

  readsCache(dataset: Batch<unknown>, partition: number): boolean {
    return this.task.cacheReads[`${dataset.id}/${partition}`] !== undefined;
  }

  stateIO(batch: StatefulBatch<unknown>, partition: number): StateIO {
    return new TaskState(batch, partition, this.task, this.worker);
  }

  recordFailed(label: string, record: unknown, error: unknown): void {
    const err = recordError(label, record, error);
    if (!setsAside(this.worker.graph.onRecordError, err)) throw err;
    this.setAside(label, error, err, { record: toJsonSafe(record) });
  }

  keyFailed(label: string, key: unknown, records: readonly unknown[], error: unknown, note?: string): void {
    const err = keyError(label, key, error);
    if (!setsAside(this.worker.graph.onRecordError, err)) throw err;
    this.setAside(label, error, err, { record: null, key: toJsonSafe(key), records: records.map(toJsonSafe), ...(note ? { note } : {}) });
  }

  /** Writes one dead letter line: where and why, then what was set aside. */
  private setAside(label: string, error: unknown, err: SluiceError, what: Record<string, unknown>): void {
    const pos = this.position;
    (this.deadLetters ??= []).push(
      jsonLine({
        batchTime: this.time,
        node: label,
        error: (error instanceof Error ? error.message : String(error)) || err.message,
        source: pos ? { node: pos.nodeId, partition: pos.partition, offset: pos.offset, split: this.splitOf(pos.nodeId, pos.partition) } : null,
        ...what,
      }),
    );
  }

  /** The split a record came from: as sealed when this task read an open one, so every attempt names the same range. */
  private splitOf(nodeId: string, partition: number): InputSplit | null {
    return this.sealed?.[nodeId]?.[partition] ?? this.task.splits[nodeId]?.[partition] ?? null;
  }

  async source(nodeId: string, partition: number): Promise<readonly unknown[]> {
    const split = this.task.splits[nodeId]?.[partition];
    if (!split) throw new TaskPayloadError(`the task has no split ${partition} of source ${nodeId}`);
    const { records, sealedSplit, failures } = await this.worker.adapter(nodeId).read(split);
    if (sealedSplit) {
      this.sealed ??= {};
      (this.sealed[nodeId] ??= {})[partition] = sealedSplit;
    }
    if (failures?.length) {
      // Undecodable records: the batch fails (retried), or they become dead letters with their position.
      const outer = this.position;
      for (const f of failures) {
        this.position = { nodeId, partition, offset: f.index };
        this.recordFailed(nodeId, f.record, f.error);
      }
      this.position = outer;
    }
    this.inputRecords += records.length;
    this.reads ??= {};
    (this.reads[nodeId] ??= {})[partition] = records.length;
    return records;
  }

  async shuffle(shuffle: ShuffledBatch<unknown>, parentIndex: number, partition: number): Promise<readonly (readonly unknown[])[]> {
    const refs = this.task.shuffleReads[`${shuffle.id}/${parentIndex}/${partition}`];
    if (!refs) throw new TaskPayloadError(`the task has no shuffle input ${shuffle.id}/${parentIndex}/${partition}`);
    return Promise.all(refs.map((r) => this.block(r)));
  }

  async cache(dataset: Batch<unknown>, partition: number): Promise<readonly unknown[]> {
    const ref = this.task.cacheReads[`${dataset.id}/${partition}`];
    if (!ref) throw new TaskPayloadError(`the task has no cached input ${dataset.id}/${partition}`);
    return this.block(ref);
  }

  private async block(ref: BlockRef): Promise<unknown[]> {
    if ('empty' in ref) return [];
    if ('inline' in ref) return decodeRecords(ref.inline);
    const bytes = ref.end === Number.POSITIVE_INFINITY ? await this.worker.rt.blobs.get(ref.blob) : await this.worker.rt.blobs.getRange(ref.blob, ref.start, ref.end);
    if (!bytes) throw new FetchFailedError(`map output ${ref.blob} is missing`, ref.stage, ref.partition);
    return decodeRecords(bytes);
  }
}

/** A record as JSON, or its text when JSON cannot hold it (cycles, bigints, functions). */
function toJsonSafe(record: unknown): unknown {
  try {
    JSON.stringify(record);
    return record === undefined ? null : record;
  } catch {
    return String(record);
  }
}

/** A stateful task's access to its node's durable state (format: lib/plan/state.ts). */
class TaskState implements StateIO {
  readonly time: number;
  readonly interval: number;
  private readonly nodeId: string;
  private readonly prev: StatePointer | undefined;
  private readonly cacheKey: string;

  constructor(
    private readonly batch: StatefulBatch<unknown>,
    readonly partition: number,
    task: TaskDescriptor,
    private readonly worker: Worker,
  ) {
    this.time = task.time;
    this.interval = worker.graph.batchInterval;
    this.nodeId = batch.node.id;
    this.prev = task.state?.[this.nodeId];
    this.cacheKey = `${this.nodeId}/${partition}`;
    const prev = this.prev;
    if (prev) {
      if (prev.format > STATE_FORMAT) {
        throw new TaskPayloadError(`${this.nodeId}: its state was written in format ${prev.format}, newer than this release reads (${STATE_FORMAT})`);
      }
      if (prev.partitions !== batch.numPartitions) {
        throw new TaskPayloadError(
          `${this.nodeId}: its state has ${prev.partitions} partitions, the job now asks for ${batch.numPartitions}; the partitions of a stateful operator cannot change without starting from fresh state`,
        );
      }
      if (prev.lastTime !== this.time - this.interval) {
        throw new TaskPayloadError(`${this.nodeId}: its state is at batch ${prev.lastTime}, but batch ${this.time} needs the state after ${this.time - this.interval}`);
      }
    }
  }

  private key(kind: 'full' | 'delta' | 'slice', time: number): string {
    return keys.state(this.nodeId, this.partition, kind, time);
  }

  private async read(kind: 'full' | 'delta' | 'slice', time: number): Promise<unknown[]> {
    const bytes = await this.worker.rt.blobs.get(this.key(kind, time));
    if (!bytes) {
      throw new SluiceError(`${this.nodeId}: state blob ${this.key(kind, time)} is missing; the state of partition ${this.partition} cannot be rebuilt`, {
        nodeId: this.nodeId,
        batchTime: this.time,
        partition: this.partition,
      });
    }
    return decodeRecords(bytes);
  }

  async load(initial?: () => Iterable<readonly [unknown, unknown]>): Promise<KeyedState> {
    const cache = this.worker.stateCache;
    const cached = cache.get(this.cacheKey);
    // Taken out while the task runs: a task that fails half way must not leave half-updated state behind.
    cache.delete(this.cacheKey);
    const prev = this.prev;
    if (!prev) {
      const s = new KeyedState(this.nodeId);
      if (initial) for (const [k, v] of initial()) s.set(k, v, this.time);
      return s;
    }
    if (cached && cached.time === prev.lastTime) return cached.state;
    const s = KeyedState.fromFull(this.nodeId, await this.read('full', prev.fullTime));
    for (let t = prev.fullTime + this.interval; t <= prev.lastTime; t += this.interval) s.applyDelta(await this.read('delta', t));
    s.markSaved();
    return s;
  }

  async save(state: KeyedState): Promise<void> {
    const full = writesFull(this.prev, this.time, this.batch.op);
    await this.worker.rt.blobs.put(this.key(full ? 'full' : 'delta', this.time), encodeRecords(full ? state.full() : state.delta()));
    state.markSaved();
    const cache = this.worker.stateCache;
    cache.set(this.cacheKey, { time: this.time, state });
    // load() took the entry out, so set() put it last: the first entry is the least recently used.
    if (cache.size > STATE_CACHE_PARTITIONS) cache.delete(cache.keys().next().value as string);
  }

  async writeSlice(records: unknown[]): Promise<void> {
    await this.worker.rt.blobs.put(this.key('slice', this.time), encodeRecords(records));
  }

  async readSlice(time: number): Promise<unknown[]> {
    const first = this.prev?.firstTime ?? this.time;
    if (time < first) return [];
    return this.read('slice', time);
  }
}
