import type { ResolvedJobOptions } from '../api/job.ts';
import type { BatchInfo } from '../api/listener.ts';
import { CheckpointError, RecordError, SluiceError } from '../api/errors.ts';
import { type Batch, type BatchExecutor, type ResultAction, ShuffledBatch, SourceBatch, StatefulBatch, StaticBatch, UnionBatch } from '../plan/batch.ts';
import { type BatchPlan, changedNodes, type JobGraph, type OutputNode } from '../plan/graph.ts';
import { planBatch } from '../plan/planBatch.ts';
import { nextPointer, type StatePointer } from '../plan/state.ts';
import type { Clock, InputSplit, Invoker, JsonValue, MetaStore, Metrics, OutputLog, RecordSource } from '../ports/index.ts';
import { jsonLine, outputLocation, printBlock } from './format.ts';
import { forEachLimit } from './pool.ts';
import {
  type BatchRecord,
  type BlockRef,
  type CacheOutput,
  type Checkpoint,
  keys,
  type Lease,
  type MapOutput,
  type StageRef,
  type TaskDescriptor,
  type TaskFailure,
  type TaskResult,
} from './protocol.ts';
import { RateEstimator } from './rateEstimator.ts';
import { Worker, type WorkerRuntime } from './worker.ts';

/** The steps of the batch protocol, in order; `onStep` is called after each (crash tests stop here). */
export const PROTOCOL_STEPS = ['lease', 'cut', 'sealed', 'stage', 'part', 'success', 'commit', 'cleanup'] as const;
/**
 * One step of the batch protocol (DESIGN.md §3): `lease` taken, `cut` (input ranges chosen),
 * `sealed` (lineage written), each `stage` done, each output `part` written, `success` marker
 * written, `commit` recorded, `cleanup` of obsolete blobs done.
 *
 * @example
 * ```ts
 * await runBatches(job, { batchInterval: '1s', batches: 3, onStep: (step, t) => { if (step === 'sealed' && t === 2000) throw new Error('crash after sealing'); } });
 * ```
 */
export type ProtocolStep = (typeof PROTOCOL_STEPS)[number];

/** What the coordinator needs from its environment: the ports, and a few knobs. */
export interface CoordinatorRuntime extends WorkerRuntime {
  readonly meta: MetaStore;
  readonly invoker: Invoker;
  readonly clock: Clock;
  readonly log: OutputLog;
  readonly metrics?: Metrics;
  /** Who this coordinator is, in the lease. */
  readonly owner: string;
  /** How long a lease lasts without renewal (ms). @default max(30 s, 3 batch intervals) */
  readonly leaseMs?: number;
  /** True when a lease holder is known to be gone (a dead local process), so the lease is taken at once. */
  readonly ownerGone?: (owner: string) => boolean;
  /** Called after each protocol step (tests inject crashes here). */
  readonly onStep?: (step: ProtocolStep, time: number) => void | Promise<void>;
  /** Resume from a checkpoint made by a different plan. @default false */
  readonly allowPlanChange?: boolean;
  /** Map outputs and cached partitions up to this many bytes travel in task results. @default 64 KiB */
  readonly inlineLimit?: number;
  /** First retry delay of a failed task (doubles per attempt). @default 50 */
  readonly retryBackoffMs?: number;
  /** Where the checkpoint lives, for messages. */
  readonly stateLocation?: string;
}

interface StageInfo {
  readonly key: string;
  readonly ref: StageRef;
  readonly root: Batch<unknown>;
  readonly shuffle?: ShuffledBatch<unknown>;
  readonly plan: BatchPlan;
  readonly local: boolean;
  /** A result stage over a cached dataset reads the cached partitions instead of computing them. */
  readonly fromCache?: boolean;
}

/**
 * The coordinator (Spark's driver + JobScheduler): holds the lease, cuts each batch's input,
 * records lineage, runs stages through the Invoker with retries, writes outputs, and commits each
 * batch with one conditional write of the checkpoint (DESIGN.md §4).
 */
export class Coordinator {
  private epoch = 0;
  private leaseVersion = 0;
  private checkpoint!: Checkpoint;
  private checkpointVersion = 0;
  private readonly sources = new Map<string, RecordSource>();
  private readonly localWorker: Worker;
  private readonly fingerprint: string;
  private started = false;
  private current: BatchRun | undefined;
  /**
   * What committed batches left in the stores for later batches, by batch time: the blobs under
   * `batch/<t>/` (received blocks) — or `'list'` when a failed attempt may have left more there —
   * and whether its batch record exists. Deleted by name once `remember` no longer reaches them, so
   * a batch's cleanup lists nothing (found by one listing at start, for batches before it).
   */
  private readonly retained = new Map<number, { blobs: readonly string[] | 'list'; record: boolean }>();
  /** Backpressure: a rate estimator per source, and the rate (records/s) it last allowed. */
  private readonly rates = new Map<string, { estimator: RateEstimator; rate?: number }>();
  /** Whether `start` found a checkpoint to resume from. */
  resumed = false;

  constructor(
    readonly graph: JobGraph,
    readonly options: ResolvedJobOptions,
    readonly rt: CoordinatorRuntime,
  ) {
    this.localWorker = new Worker(graph, rt);
    this.fingerprint = graph.fingerprint();
    graph.planAt = (time) => this.planAt(time);
  }

  private get interval(): number {
    return this.options.batchInterval;
  }

  private get leaseMs(): number {
    return this.rt.leaseMs ?? Math.max(30_000, 3 * this.interval);
  }

  /** The time of the next batch to run. */
  get nextBatchTime(): number {
    return this.checkpoint.lastCompleted + this.interval;
  }

  /** The time of the last committed batch. */
  get lastCompleted(): number {
    return this.checkpoint.lastCompleted;
  }

  private async step(step: ProtocolStep, time: number): Promise<void> {
    await this.rt.onStep?.(step, time);
  }

  /** Takes the lease, loads (or creates) the checkpoint and starts the receivers. */
  async start(): Promise<void> {
    if (this.started) return;
    await this.acquireLease();
    await this.loadCheckpoint();
    if (this.options.backpressure) this.restoreRates();
    await this.sweepState();
    await this.sweepBatches();
    for (const spec of this.graph.sources) await this.source(spec.nodeId).start?.();
    this.started = true;
  }

  /** Stops the receivers. The checkpoint stays; a later start resumes from it. */
  async stop(): Promise<void> {
    for (const s of this.sources.values()) await s.stop?.();
    this.started = false;
  }

  private source(nodeId: string): RecordSource {
    let s = this.sources.get(nodeId);
    if (!s) {
      s = this.rt.sources(this.graph.source(nodeId), { blobs: this.rt.blobs, job: this.graph.name, batchInterval: this.interval });
      this.sources.set(nodeId, s);
    }
    return s;
  }

  private async acquireLease(): Promise<void> {
    const cur = await this.rt.meta.get<Lease>(keys.lease);
    const now = this.rt.clock.now();
    if (cur && cur.value.owner !== this.rt.owner && cur.value.expiresAt > now && !this.rt.ownerGone?.(cur.value.owner)) {
      throw new CheckpointError(
        `job ${this.graph.name} is already running: coordinator ${cur.value.owner} holds the lease until ${new Date(cur.value.expiresAt).toISOString()}`,
      );
    }
    // A new epoch fences every write of the previous holder (DESIGN.md §4.1).
    const epoch = (cur?.epoch ?? 0) + 1;
    const v = await this.rt.meta.put(keys.lease, { owner: this.rt.owner, expiresAt: now + this.leaseMs }, { expectedVersion: cur?.version ?? 0, epoch });
    if (v === undefined) throw new CheckpointError(`job ${this.graph.name} is already running: another coordinator took the lease at the same moment`);
    this.epoch = epoch;
    this.leaseVersion = v;
  }

  private async renewLease(): Promise<void> {
    const v = await this.rt.meta.put(
      keys.lease,
      { owner: this.rt.owner, expiresAt: this.rt.clock.now() + this.leaseMs },
      { expectedVersion: this.leaseVersion, epoch: this.epoch },
    );
    if (v === undefined) throw this.fenced('renew the lease');
    this.leaseVersion = v;
  }

  /** Gives the lease up, so the next coordinator need not wait for it to expire. */
  async releaseLease(): Promise<void> {
    await this.rt.meta.put(keys.lease, { owner: '', expiresAt: 0 }, { expectedVersion: this.leaseVersion, epoch: this.epoch });
  }

  private fenced(what: string): CheckpointError {
    return new CheckpointError(`job ${this.graph.name}: could not ${what}: another coordinator has taken over (this one's epoch ${this.epoch} is fenced)`);
  }

  private async loadCheckpoint(): Promise<void> {
    const item = await this.rt.meta.get<Checkpoint>(keys.checkpoint);
    const signatures = this.graph.signatures();
    let value: Checkpoint;
    if (!item) {
      const first = Math.floor(this.rt.clock.now() / this.interval) * this.interval + this.interval;
      value = {
        job: this.graph.name,
        fingerprint: this.fingerprint,
        signatures,
        batchInterval: this.interval,
        lastCompleted: first - this.interval,
        sourceState: {},
        state: {},
        rates: {},
      };
    } else {
      const old = item.value;
      if (old.batchInterval !== this.interval) {
        throw new CheckpointError(
          `the checkpoint${this.where()} was made with a batch interval of ${old.batchInterval} ms, the job now has ${this.interval} ms; batch times would not line up. Use a fresh state directory.`,
        );
      }
      if (old.fingerprint !== this.fingerprint && !this.rt.allowPlanChange) {
        const changed = changedNodes(old.signatures, signatures);
        throw new CheckpointError(
          `the checkpoint${this.where()} was made by a different plan of job ${this.graph.name}; nodes changed: ${changed.join(', ') || '(job options)'}. ` +
            'Start from a fresh state directory, or pass --allow-plan-change to resume anyway.',
        );
      }
      if (old.fingerprint !== this.fingerprint) {
        // Resuming a changed plan is allowed only if every node with state still exists under its id.
        const ids = new Set(this.graph.stateful.map((s) => s.node.id));
        const orphaned = Object.keys(old.state).filter((id) => !ids.has(id));
        if (orphaned.length) {
          throw new CheckpointError(
            `the checkpoint${this.where()} holds state of ${orphaned.join(', ')}, which the changed job no longer has under ${orphaned.length > 1 ? 'those ids' : 'that id'}; ` +
              'give stateful streams stable ids with .named(...) so they survive changes, or start from a fresh state directory',
          );
        }
        this.rt.log.warn(`resuming job ${this.graph.name} with a changed plan (nodes changed: ${changedNodes(old.signatures, signatures).join(', ')})`);
      }
      value = { ...old, fingerprint: this.fingerprint, signatures };
    }
    this.resumed = item !== undefined;
    // Writing the checkpoint with our epoch fences an older coordinator's commit.
    const v = await this.rt.meta.put(keys.checkpoint, value, { expectedVersion: item?.version ?? 0, epoch: this.epoch });
    if (v === undefined) throw this.fenced('take over the checkpoint');
    this.checkpoint = value;
    this.checkpointVersion = v;
  }

  private where(): string {
    return this.rt.stateLocation ? ` in ${this.rt.stateLocation}` : '';
  }

  /**
   * Runs the next batch to completion: cut (or recover) its input, run every output, commit.
   * Returns its timing. Throws when the batch fails after retries; the checkpoint then still
   * points at the previous batch, so running again retries this one.
   */
  async runNextBatch(): Promise<BatchInfo> {
    if (!this.started) await this.start();
    const t = this.nextBatchTime;
    const submissionTime = t;
    this.emit('onBatchSubmitted', { batchTime: t, numRecords: 0, submissionTime });
    await this.renewLease();
    await this.step('lease', t);

    const run = await this.openBatch(t);
    this.retained.set(t, { blobs: 'list', record: true });
    const processingStartTime = this.rt.clock.now();
    const numRecords = run.inputRecords();
    this.emit('onBatchStarted', { batchTime: t, numRecords, submissionTime, processingStartTime, schedulingDelay: processingStartTime - t });

    this.current = run;
    const stateBefore = this.checkpoint.state;
    try {
      const plan = run.plan;
      // State moves every batch, whether or not an output reads it this time.
      await run.ensureState();
      for (let i = 0; i < this.graph.outputs.length; i++) {
        const b = plan.outputBatches[i];
        if (b) await this.runOutput(this.graph.outputs[i], b, run);
      }
      await run.storePlanDeadLetters();
      await this.commit(run);
    } finally {
      this.current = undefined;
    }
    await this.cleanup(t, stateBefore, run);

    const end = this.rt.clock.now();
    const deadLetters = run.deadLetters();
    if (deadLetters) this.rt.log.warn(`batch ${t}: ${deadLetters} record(s) set aside under dead-letters/${String(t).padStart(15, '0')}/ in the state store`);
    const info: BatchInfo = {
      batchTime: t,
      numRecords: run.inputRecords(),
      submissionTime,
      processingStartTime,
      processingEndTime: end,
      schedulingDelay: processingStartTime - t,
      processingDelay: end - processingStartTime,
      totalDelay: end - t,
      ...(deadLetters ? { numDeadLetters: deadLetters } : {}),
    };
    this.emit('onBatchCompleted', info);
    if (this.options.backpressure) this.estimateRates(run, info);
    this.rt.metrics?.batch({
      job: this.graph.name,
      batchTime: t,
      inputRecords: info.numRecords,
      schedulingDelayMs: info.schedulingDelay!,
      processingDelayMs: info.processingDelay!,
      totalDelayMs: info.totalDelay!,
      deadLetters,
    });
    return info;
  }

  private emit(event: 'onBatchSubmitted' | 'onBatchStarted' | 'onBatchCompleted', info: BatchInfo): void {
    for (const l of this.graph.listeners) {
      try {
        l[event]?.(info);
      } catch (e) {
        this.rt.log.warn(`listener ${event} threw: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
  }

  /** Backpressure: each source's estimator, from where the last coordinator left it (the next minute's, on AWS). */
  private restoreRates(): void {
    for (const spec of this.graph.sources) {
      const saved = (this.checkpoint.rates as Checkpoint['rates'] | undefined)?.[spec.nodeId] as { rate?: unknown } | undefined;
      this.rates.set(spec.nodeId, { estimator: new RateEstimator(this.interval).restore(saved), rate: typeof saved?.rate === 'number' ? saved.rate : undefined });
    }
  }

  /** Backpressure: feeds each source's estimator with this batch, for the next cuts. */
  private estimateRates(run: BatchRun, info: BatchInfo): void {
    for (const spec of this.graph.sources) {
      // Made by restoreRates when the coordinator started (runNextBatch starts it first).
      const r = this.rates.get(spec.nodeId)!;
      const rate = r.estimator.update(info.processingEndTime!, run.inputRecordsOf(spec.nodeId), info.processingDelay!, info.schedulingDelay!);
      if (rate !== undefined) r.rate = rate;
    }
  }

  /** Reads the batch's lineage record (recovery) or cuts the input and seals it in a new one. */
  private async openBatch(t: number): Promise<BatchRun> {
    const existing = await this.rt.meta.get<BatchRecord>(keys.batch(t));
    if (existing && existing.value.fingerprint === this.fingerprint) {
      this.rt.log.info(`recovering batch ${t} from its lineage record`);
      return new BatchRun(this, existing.value, existing.version, true);
    }
    const splits: Record<string, InputSplit[]> = {};
    const sourceState: Record<string, JsonValue> = {};
    for (const spec of this.graph.sources) {
      const rate = this.rates.get(spec.nodeId)?.rate;
      const limit = rate === undefined ? undefined : Math.max(1, Math.floor((rate * this.interval) / 1000));
      const cut = await this.source(spec.nodeId).cut(t, this.checkpoint.sourceState[spec.nodeId], limit);
      splits[spec.nodeId] = cut.splits;
      sourceState[spec.nodeId] = cut.state;
    }
    await this.step('cut', t);
    const record: BatchRecord = { time: t, fingerprint: this.fingerprint, status: 'RUNNING', splits, sourceState, outputs: [], state: {} };
    // Seal: from here on every computation of this batch reads exactly these splits.
    const v = await this.rt.meta.put(keys.batch(t), record, { expectedVersion: existing?.version ?? 0, epoch: this.epoch });
    if (v === undefined) throw this.fenced(`write the lineage record of batch ${t}`);
    await this.step('sealed', t);
    return new BatchRun(this, record, v);
  }

  private async runOutput(out: OutputNode, b: Batch<unknown>, run: BatchRun): Promise<void> {
    const t = run.time;
    switch (out.kind) {
      case 'print': {
        const records = await b.take(out.num! + 1);
        this.rt.log.print(printBlock(t, records, out.num!));
        return;
      }
      case 'saveAsTextFiles':
      case 'saveAsJsonFiles': {
        await run.runJob(b, { kind: 'output', outputId: out.node.id });
        await this.step('part', t);
        const location = outputLocation(out.prefix!, t, out.suffix);
        const { store, key } = this.rt.sinks(location);
        // _SUCCESS last: readers that wait for it never see a partial batch.
        await store.put(`${key}/_SUCCESS`, '');
        run.record.outputs.push(location);
        await this.step('success', t);
        return;
      }
      case 'foreachPartition':
        await run.runJob(b, { kind: 'output', outputId: out.node.id });
        return;
      case 'foreachRDD':
        await out.fn!(b, t);
        return;
      case 'capture':
        out.fn!(t, await b.collectPartitions());
        return;
    }
  }

  private async commit(run: BatchRun): Promise<void> {
    const t = run.time;
    // Sources whose splits were sealed by the tasks that read them move on from what was sealed.
    for (const spec of this.graph.sources) {
      const src = this.source(spec.nodeId);
      if (src.advance) run.record.sourceState[spec.nodeId] = src.advance(run.record.sourceState[spec.nodeId], run.record.splits[spec.nodeId] ?? []);
    }
    run.plan.statefulBatches.forEach((sb, i) => {
      const { node, op } = this.graph.stateful[i];
      run.record.state[node.id] = nextPointer(this.checkpoint.state[node.id] as StatePointer | undefined, t, sb.numPartitions, op);
    });
    const next: Checkpoint = {
      ...this.checkpoint,
      lastCompleted: t,
      sourceState: { ...this.checkpoint.sourceState, ...run.record.sourceState },
      state: { ...this.checkpoint.state, ...run.record.state },
      // The estimates as of the batch before this one: a new coordinator (the next minute's, on AWS) goes on from them.
      ...(this.rates.size ? { rates: Object.fromEntries([...this.rates].map(([id, r]) => [id, { ...r.estimator.snapshot(), rate: r.rate ?? null }])) } : {}),
    };
    // The commit point: one conditional write, fenced by our epoch.
    const v = await this.rt.meta.put(keys.checkpoint, next, { expectedVersion: this.checkpointVersion, epoch: this.epoch });
    if (v === undefined) throw this.fenced(`commit batch ${t}`);
    this.checkpoint = next;
    this.checkpointVersion = v;
    await this.step('commit', t);
    const done: BatchRecord = { ...run.record, status: 'COMPLETED' };
    await this.rt.meta.put(keys.batch(t), done, { expectedVersion: run.recordVersion, epoch: this.epoch });
  }

  /**
   * Deletes what no later batch needs: this batch's shuffle and cache blobs (by name when every task
   * attempt succeeded, else by listing the batch's prefix), and what batches older than `remember`
   * kept.
   */
  private async cleanup(t: number, before: Checkpoint['state'], run: BatchRun): Promise<void> {
    const blobs = this.rt.blobs;
    const known = run.scratchBlobs();
    const prefix = keys.batchBlobs(t);
    const scratch = known ?? [...(await blobs.list(`${prefix}shuffle/`)), ...(await blobs.list(`${prefix}cache/`))];
    if (scratch.length) await blobs.delete(scratch);
    this.retained.set(t, { blobs: known ? run.inputBlocks() : 'list', record: true });
    await this.forgetUpTo(t - this.rememberedMs);
    await this.cleanupState(t, before);
    await this.step('cleanup', t);
  }

  /** How far back a batch's input and record stay readable (`remember`, at least one interval). */
  private get rememberedMs(): number {
    return Math.max(this.graph.rememberMs, this.interval);
  }

  /** Deletes the blobs and records of the retained batches at or before `keepFrom`. */
  private async forgetUpTo(keepFrom: number): Promise<void> {
    const old = [...this.retained].filter(([time]) => time <= keepFrom);
    if (!old.length) return;
    const gone: string[] = [];
    for (const [time, { blobs }] of old) {
      if (blobs === 'list') gone.push(...(await this.rt.blobs.list(keys.batchBlobs(time))));
      else gone.push(...blobs);
    }
    if (gone.length) await this.rt.blobs.delete(gone);
    for (const [time, { record }] of old) {
      if (record) await this.rt.meta.delete(keys.batch(time), { epoch: this.epoch });
      this.retained.delete(time);
    }
  }

  /**
   * Once, when a coordinator starts: lists what earlier coordinators left under `batch/` (blobs and
   * records), deletes what `remember` no longer reaches and the scratch blobs of committed batches,
   * and retains the rest for deletion by name later.
   */
  private async sweepBatches(): Promise<void> {
    const last = this.checkpoint.lastCompleted;
    const keepFrom = last - this.rememberedMs;
    const timeOf = (k: string) => Number(k.slice(6, 21));
    const gone: string[] = [];
    const kept = new Map<number, string[]>();
    for (const k of await this.rt.blobs.list('batch/')) {
      const time = timeOf(k);
      if (time <= keepFrom || (time <= last && /^batch\/\d{15}\/(shuffle|cache)\//.test(k))) gone.push(k);
      else kept.set(time, [...(kept.get(time) ?? []), k]);
    }
    if (gone.length) await this.rt.blobs.delete(gone);
    for (const [time, blobs] of kept) this.retained.set(time, { blobs: time <= last ? blobs : 'list', record: false });
    for (const k of await this.rt.meta.list('batch/')) {
      const time = timeOf(k);
      if (time <= keepFrom) await this.rt.meta.delete(k, { epoch: this.epoch });
      else this.retained.set(time, { blobs: this.retained.get(time)?.blobs ?? [], record: true });
    }
  }

  /**
   * Deletes the state blobs batch `t` made obsolete, by name (no listing, so the cost does not grow
   * with the window): the previous full blob and its deltas once a new full one is committed, and
   * the one slice per partition that just left every window.
   */
  private async cleanupState(t: number, before: Checkpoint['state']): Promise<void> {
    const gone: string[] = [];
    for (const { node, op } of this.graph.stateful) {
      const cur = this.checkpoint.state[node.id] as StatePointer | undefined;
      const prev = before[node.id] as StatePointer | undefined;
      if (!cur) continue;
      for (let p = 0; p < cur.partitions; p++) {
        if (prev && prev.fullTime !== cur.fullTime) {
          gone.push(keys.state(node.id, p, 'full', prev.fullTime));
          for (let d = prev.fullTime + this.interval; d <= prev.lastTime; d += this.interval) gone.push(keys.state(node.id, p, 'delta', d));
        }
        const slice = t - op.keepSlicesMs;
        if (op.keepSlicesMs > 0 && slice >= cur.firstTime) gone.push(keys.state(node.id, p, 'slice', slice));
      }
    }
    if (gone.length) await this.rt.blobs.delete(gone);
  }

  /**
   * Once, when a coordinator starts: deletes state blobs that a crash between a commit and its
   * cleanup left behind, and those of nodes the job no longer has.
   */
  private async sweepState(): Promise<void> {
    const gone: string[] = [];
    const ops = new Map(this.graph.stateful.map((s) => [s.node.id, s.op]));
    for (const k of await this.rt.blobs.list('state/')) {
      const m = /^state\/([^/]+)\/p\d+\/(full|delta|slice)-(\d+)$/.exec(k);
      if (!m) continue;
      const op = ops.get(m[1]);
      const pointer = this.checkpoint.state[m[1]] as StatePointer | undefined;
      if (!op || !pointer) {
        if (!op) gone.push(k);
        continue;
      }
      const time = Number(m[3]);
      if (m[2] === 'slice' ? time <= pointer.lastTime - op.keepSlicesMs : time < pointer.fullTime) gone.push(k);
    }
    if (gone.length) await this.rt.blobs.delete(gone);
  }

  /** @internal The state pointers after the last committed batch. */
  get statePointers(): Checkpoint['state'] {
    return this.checkpoint.state;
  }

  /** The plan of an earlier, remembered batch (for `slice()`), from its lineage record. */
  private async planAt(time: number): Promise<BatchPlan | undefined> {
    const run = this.current;
    if (!run) return undefined;
    if (time === run.time) return run.plan;
    if (time > run.time || time < run.time - Math.max(this.graph.rememberMs, this.interval)) return undefined;
    return run.otherPlan(time);
  }

  // ---------------------------------------------------------------------------- used by BatchRun

  /** @internal */
  get epochNow(): number {
    return this.epoch;
  }
  /** @internal */
  get worker(): Worker {
    return this.localWorker;
  }
  /** @internal */
  get planFingerprint(): string {
    return this.fingerprint;
  }
  /** @internal */
  stepHook(step: ProtocolStep, time: number): Promise<void> {
    return this.step(step, time);
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** `p`, or a rejection with `message` once `ms` have passed (the task itself is left to finish or die). */
function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new SluiceError(message)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

function stageKeyOf(ref: StageRef, time: number): string {
  switch (ref.kind) {
    case 'map':
      return `map-${time}-${ref.shuffle}-${ref.parent}`;
    case 'cache':
      return `cache-${time}-${ref.dataset}`;
    case 'result':
      return `result-${time}-${ref.dataset}`;
  }
}

function splitCounts(splits: Record<string, InputSplit[]>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(splits)) out[k] = v.length;
  return out;
}

/** Failure of a task after its retries, as an error the user can act on. */
function taskError(f: TaskFailure, stageKey: string, partition: number, attempts: number): SluiceError {
  const ctx = { nodeId: f.error.nodeId, batchTime: f.error.batchTime, partition: f.error.partition ?? partition };
  // A user function's or a record's fault stays a RecordError, whatever thread or Lambda it ran in.
  const e =
    f.error.name === 'RecordError'
      ? new RecordError(`${f.error.message} [task ${stageKey}, ${attempts} attempt(s)]`, ctx)
      : new SluiceError(`task ${stageKey} partition ${partition} failed after ${attempts} attempt(s): ${f.error.name}: ${f.error.message}`, ctx);
  if (f.error.stack) e.stack = `${e.name}: ${e.message}\ncaused by ${f.error.stack}`;
  return e;
}

/** One batch in flight: its lineage record, plan, and the outputs of the stages run so far. */
class BatchRun implements BatchExecutor {
  readonly time: number;
  readonly plan: BatchPlan;
  private readonly outputs = new Map<string, (MapOutput | CacheOutput)[]>();
  private readonly running = new Map<string, Promise<void>>();
  private readonly stages = new Map<string, StageInfo>();
  private readonly attempts = new Map<string, number>();
  private readonly otherRecords = new Map<number, Promise<BatchPlan | undefined>>();
  private readonly splitsAt = new Map<number, Record<string, InputSplit[]>>();
  private sealing: Promise<void> = Promise.resolve();
  private readonly readCounts = new Map<string, number>();
  private readonly deadLetterCounts = new Map<string, number>();
  /** Set when some task attempt did not succeed: it may have written blobs nobody was told of. */
  private unknownWrites: boolean;

  constructor(
    private readonly c: Coordinator,
    readonly record: BatchRecord,
    public recordVersion: number,
    /** Recovered from the lineage record of a run that stopped: what that run wrote is not known. */
    recovered = false,
  ) {
    this.unknownWrites = recovered;
    this.time = record.time;
    this.splitsAt.set(this.time, record.splits);
    this.plan = planBatch(c.graph, this.time, splitCounts(record.splits));
    this.plan.executor = this;
  }

  /** Records of this batch's input: counted at the cut (blocks) or when a task read the split (files, shards). */
  inputRecords(): number {
    let n = 0;
    for (const nodeId of Object.keys(this.record.splits)) n += this.inputRecordsOf(nodeId);
    return n;
  }

  /** Records of this batch's input from one source. */
  inputRecordsOf(nodeId: string): number {
    let n = 0;
    (this.record.splits[nodeId] ?? []).forEach((s, p) => {
      n += typeof s.count === 'number' ? s.count : (this.readCounts.get(`${nodeId}/${p}`) ?? 0);
    });
    return n;
  }

  /**
   * The shuffle and cache blobs this batch's tasks wrote, when every attempt succeeded (so no
   * other blob can exist); undefined when some may be unknown and the batch's prefix must be listed.
   */
  scratchBlobs(): string[] | undefined {
    if (this.unknownWrites) return undefined;
    const out: string[] = [];
    for (const outputs of this.outputs.values()) for (const o of outputs) if (o?.blob) out.push(o.blob);
    return out;
  }

  /** The received blocks this batch's input was cut into (kept for `remember`). */
  inputBlocks(): string[] {
    const out: string[] = [];
    for (const splits of Object.values(this.record.splits)) for (const s of splits) if (typeof s.block === 'string') out.push(s.block);
    return out;
  }

  /** Records set aside as dead letters in this batch (each task counted once, however often it ran). */
  deadLetters(): number {
    let n = this.plan.deadLetters.length;
    for (const c of this.deadLetterCounts.values()) n += c;
    return n;
  }

  /**
   * Writes the dead letters of transform functions that failed while this batch was planned.
   * Workers plan the batch too but only the coordinator writes them; a re-run rewrites the same key.
   */
  async storePlanDeadLetters(): Promise<void> {
    const letters = this.plan.deadLetters;
    if (!letters.length) return;
    const lines = letters.map((d) => jsonLine({ batchTime: this.time, node: d.node, error: d.error, source: null, record: null }));
    await this.c.rt.blobs.put(keys.deadLetters(this.time, 'plan', 0), `${lines.join('\n')}\n`);
  }

  otherPlan(time: number): Promise<BatchPlan | undefined> {
    let p = this.otherRecords.get(time);
    if (!p) {
      p = this.c.rt.meta.get<BatchRecord>(keys.batch(time)).then((item) => {
        if (!item || item.value.fingerprint !== this.c.planFingerprint) return undefined;
        this.splitsAt.set(time, item.value.splits);
        const plan = planBatch(this.c.graph, time, splitCounts(item.value.splits));
        plan.executor = this;
        return plan;
      });
      this.otherRecords.set(time, p);
    }
    return p;
  }

  /** Runs the stage of every stateful node of this batch (once; outputs then read their cached result). */
  async ensureState(): Promise<void> {
    for (const sb of this.plan.statefulBatches) {
      const ref: StageRef = { kind: 'cache', dataset: sb.id };
      await this.ensure({ key: stageKeyOf(ref, this.time), ref, root: sb, plan: this.plan, local: sb.driverOnly });
    }
  }

  private planOf(d: Batch<unknown>): BatchPlan {
    const t = d.scope.time;
    if (t === undefined || t === this.time) return this.plan;
    // Datasets of an earlier batch (from slice) carry their own plan as scope.
    return d.scope as BatchPlan;
  }

  async runJob(dataset: Batch<unknown>, action: ResultAction): Promise<unknown[]> {
    const plan = this.planOf(dataset);
    // A cached dataset is computed by its cache stage once per batch; each action reads that.
    const fromCache = dataset.cached;
    await this.ensureDeps(dataset, plan, fromCache ? undefined : dataset);
    const shippable = action.kind !== 'foreachPartition';
    const ref: StageRef = { kind: 'result', dataset: dataset.id, action: shippable ? action : { kind: 'collect' }, ...(fromCache ? { fromCache } : {}) };
    const info: StageInfo = { key: stageKeyOf(ref, plan.time), ref, root: dataset, plan, local: dataset.driverOnly || !shippable, fromCache };
    const results = await this.runStage(info, shippable ? undefined : action);
    return results.map((r) => r.value);
  }

  /**
   * The stages that a stage over `root` reads from: map sides of shuffles, cached datasets.
   * `computes` is the dataset the stage itself computes even if it is cached (the root of a
   * cache stage); undefined when the stage reads its root from the cache.
   */
  private dependencies(root: Batch<unknown>, plan: BatchPlan, computes: Batch<unknown> | undefined): StageInfo[] {
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
      if (d instanceof StatefulBatch && plan.time !== this.time) {
        throw new SluiceError(`${d.node.id}: slice() cannot reach back into a stateful stream's earlier batches; slice the stream it reads from instead`, {
          nodeId: d.node.id,
        });
      }
      if (d instanceof ShuffledBatch) {
        d.parents.forEach((parent, i) => {
          const ref: StageRef = { kind: 'map', shuffle: d.id, parent: i };
          deps.push({ key: stageKeyOf(ref, plan.time), ref, root: parent, shuffle: d, plan, local: d.driverOnly || parent.driverOnly });
        });
        return;
      }
      for (const p of d.parents) visit(p);
    };
    visit(root);
    return deps;
  }

  private async ensureDeps(root: Batch<unknown>, plan: BatchPlan, computes: Batch<unknown> | undefined): Promise<void> {
    await Promise.all(this.dependencies(root, plan, computes).map((s) => this.ensure(s)));
  }

  /** Runs a map or cache stage once per batch; later readers reuse its outputs. */
  private ensure(stage: StageInfo): Promise<void> {
    let p = this.running.get(stage.key);
    if (!p) {
      this.stages.set(stage.key, stage);
      p = (async () => {
        await this.ensureDeps(stage.root, stage.plan, stage.root);
        const results = await this.runStage(stage);
        this.outputs.set(
          stage.key,
          results.map((r) => (r.map ?? r.cache) as MapOutput | CacheOutput),
        );
        await this.c.stepHook('stage', this.time);
      })();
      this.running.set(stage.key, p);
    }
    return p;
  }

  private async runStage(stage: StageInfo, localAction?: ResultAction): Promise<TaskResult[]> {
    const n = stage.root.numPartitions;
    const results: TaskResult[] = new Array(n);
    const lanes = stage.local ? 1 : this.c.rt.invoker.parallelism;
    await forEachLimit(n, lanes, async (p) => {
      const r = await this.runTask(stage, p, localAction);
      results[p] = r;
      if (r.deadLetters) this.deadLetterCounts.set(`${stage.key}/${p}`, r.deadLetters);
      if (r.sourceReads && stage.plan.time === this.time) {
        for (const [nodeId, parts] of Object.entries(r.sourceReads)) for (const [q, count] of Object.entries(parts)) this.readCounts.set(`${nodeId}/${q}`, count);
      }
    });
    await this.seal(stage, results);
    return results;
  }

  /** Records the ranges that tasks consumed from open splits, before anything downstream uses them. */
  private async seal(stage: StageInfo, results: TaskResult[]): Promise<void> {
    const splits = this.splitsAt.get(stage.plan.time);
    if (!splits) return;
    let changed = false;
    for (const r of results) {
      if (!r.sealed) continue;
      for (const [nodeId, parts] of Object.entries(r.sealed)) {
        for (const [p, split] of Object.entries(parts)) {
          splits[nodeId][Number(p)] = split;
          changed = true;
        }
      }
    }
    if (!changed || stage.plan.time !== this.time) return;
    this.sealing = this.sealing.then(async () => {
      const v = await this.c.rt.meta.put(keys.batch(this.time), this.record, { expectedVersion: this.recordVersion, epoch: this.c.epochNow });
      if (v === undefined) throw new CheckpointError(`could not seal the input of batch ${this.time}: another coordinator has taken over`);
      this.recordVersion = v;
    });
    await this.sealing;
  }

  private nextAttempt(stageKey: string, p: number): number {
    const k = `${stageKey}/${p}`;
    const a = this.attempts.get(k) ?? 0;
    this.attempts.set(k, a + 1);
    return a;
  }

  private describe(stage: StageInfo, p: number, attempt: number): TaskDescriptor {
    const shuffleReads: Record<string, BlockRef[]> = {};
    const cacheReads: Record<string, BlockRef> = {};
    const root = stage.root;
    const computes = stage.fromCache ? undefined : root;
    const time = stage.plan.time;
    const visit = (d: Batch<unknown>, q: number) => {
      if (d !== computes && d.cached) {
        const key = stageKeyOf({ kind: 'cache', dataset: d.id }, time);
        cacheReads[`${d.id}/${q}`] = this.blockRef(key, q, this.outputs.get(key)?.[q] as CacheOutput | undefined, undefined);
        return;
      }
      if (d instanceof ShuffledBatch) {
        d.parents.forEach((_parent, i) => {
          const key = stageKeyOf({ kind: 'map', shuffle: d.id, parent: i }, time);
          const outs = (this.outputs.get(key) ?? []) as MapOutput[];
          shuffleReads[`${d.id}/${i}/${q}`] = outs.map((o, m) => this.blockRef(key, m, o, q));
        });
        return;
      }
      if (d instanceof UnionBatch) {
        const [parent, q2] = d.locate(q);
        visit(parent, q2);
        return;
      }
      if (d instanceof SourceBatch || d instanceof StaticBatch) return;
      visit(d.parents[0], q);
    };
    // The root of a map or result stage reads its own inputs; a ShuffledBatch root reads its segments.
    visit(root, p);
    return {
      protocol: 1,
      job: this.c.graph.name,
      fingerprint: this.c.planFingerprint,
      time,
      stage: stage.ref,
      stageKey: stage.key,
      partition: p,
      attempt,
      splits: this.splitsAt.get(time) ?? {},
      shuffleReads,
      cacheReads,
      inlineLimit: this.c.rt.inlineLimit ?? 64 * 1024,
      state: this.c.statePointers as TaskDescriptor['state'],
      ...(root instanceof StatefulBatch && stage.ref.kind === 'cache' ? { affinity: `${root.node.id}/${p}` } : {}),
    };
  }

  /** Where partition `q`'s segment of map task `m`'s output (or cached partition `m`) is. */
  private blockRef(stageKey: string, m: number, out: MapOutput | CacheOutput | undefined, q: number | undefined): BlockRef {
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

  private async runTask(stage: StageInfo, p: number, localAction?: ResultAction): Promise<TaskResult> {
    const max = this.c.options.maxTaskAttempts;
    let failures = 0;
    let refetches = 0;
    for (;;) {
      const attempt = this.nextAttempt(stage.key, p);
      const task = this.describe(stage, p, attempt);
      let res: TaskResult | TaskFailure;
      try {
        const running = stage.local ? this.c.worker.execute(task, stage.plan, localAction) : (this.c.rt.invoker.invoke(task) as Promise<TaskResult | TaskFailure>);
        res = await withTimeout(running, this.c.options.taskTimeout, `task ${stage.key} partition ${p} timed out after ${this.c.options.taskTimeout} ms`);
      } catch (e) {
        res = {
          ok: false,
          error: { name: e instanceof Error ? e.name : 'Error', message: e instanceof Error ? e.message : String(e), stack: e instanceof Error ? e.stack : undefined },
          retryable: true,
        };
      }
      if (res.ok) return res;
      this.unknownWrites = true;
      if (res.fetchFailed && refetches < max) {
        // Lost shuffle output: recompute that map task from lineage, then read again.
        refetches++;
        this.c.rt.log.warn(`task ${stage.key} partition ${p}: ${res.error.message}; recomputing it`);
        await this.recompute(res.fetchFailed.stage, res.fetchFailed.partition);
        continue;
      }
      failures++;
      if (!res.retryable || failures >= max) throw taskError(res, stage.key, p, failures);
      this.c.rt.log.warn(`task ${stage.key} partition ${p} attempt ${failures} failed (${res.error.message}); retrying`);
      await sleep((this.c.rt.retryBackoffMs ?? 50) * 2 ** (failures - 1));
    }
  }

  private async recompute(stageKey: string, m: number): Promise<void> {
    const stage = this.stages.get(stageKey);
    const outs = this.outputs.get(stageKey);
    if (!stage || !outs) throw new SluiceError(`internal: lost output of unknown stage ${stageKey}`);
    const r = await this.runTask(stage, m);
    outs[m] = (r.map ?? r.cache) as MapOutput | CacheOutput;
  }
}
