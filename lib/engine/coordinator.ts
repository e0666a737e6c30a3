import { NotQuietError } from '../core/errors.ts';
import type { ResolvedJobOptions } from '../core/options.ts';
import type { BatchInfo } from '../core/listener.ts';
import { type CompletedBatchValues, listenerFields, portFields } from '../core/metrics.ts';
import type { JobGraph, BatchPlan } from '../plan/graph.ts';
import { nextPointer, type StatePointer } from '../plan/state/format.ts';
import type { Clock, InputSplit, Invoker, JsonValue, MetaItem, MetaStore, Metrics, OutputLog, RecordSource } from '../ports/index.ts';
import { Backpressure } from './backpressure.ts';
import { BatchHistory, type BatchSummary, type HistoryOptions } from './batchHistory.ts';
import { firstCheckpoint, resumeCheckpoint, type StartingJob } from './checkpointFit.ts';
import { CommitLog } from './commitLog.ts';
import { CommitNotices } from './commitNotices.ts';
import { type BatchRuns, Placement, runsOf, smaller } from './placement.ts';
import { clearOutputs, outputLocations, runOutput } from './outputs.ts';
import type { BatchRecord, Checkpoint, QuietRun } from './protocol.ts';
import { Retention } from './retention.ts';
import { SpillingMetaStore } from './spillingMetaStore.ts';
import { type BatchContext, BatchRun } from './stageScheduler.ts';
import { Worker, type WorkerRuntime } from './worker.ts';

/** The steps of the batch protocol, in order; `onStep` is called after each (crash tests stop here). */
export const PROTOCOL_STEPS = ['cut', 'sealed', 'lease', 'stage', 'part', 'success', 'commit', 'cleanup'] as const;
/**
 * One step of the batch protocol (docs/design.md §3): `cut` (input ranges chosen), `sealed` (lineage
 * written), `lease` renewed, each `stage` done, each output's `part`s written, its `success` marker
 * written (for an output an empty batch does not write: the points where they would be), `commit`
 * recorded, `cleanup` of obsolete blobs done.
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
  /** Meta store values (batch records, the checkpoint) over this many bytes of JSON are kept in a blob. @default 64 KiB */
  readonly metaSpillBytes?: number;
  /**
   * Run quiet batches (no input, every stateful node at rest) without a lineage record or a
   * commit each (docs/design.md §4). Off, every batch is recorded and committed, as before
   * quiet batches existed: tests compare the two. @default true
   */
  readonly quietBatches?: boolean;
  /** How often the batches' history (the Streaming UI's past) is written to the blob store. */
  readonly history?: HistoryOptions;
}

/**
 * The coordinator (Spark's driver + JobScheduler): holds the lease, cuts each batch's input (or
 * claims a batch an earlier coordinator left), runs every output through the stage scheduler, and
 * commits each batch with one conditional write of the checkpoint (docs/design.md §4). Every
 * conditional write is in {@link CommitLog}; the stages of a batch in {@link BatchRun}; what is
 * deleted when in {@link Retention}.
 */
export class Coordinator {
  private readonly log: CommitLog;
  private checkpoint!: Checkpoint;
  private checkpointVersion = 0;
  private readonly sources = new Map<string, RecordSource>();
  private readonly localWorker: Worker;
  private readonly fingerprint: string;
  private readonly retention: Retention;
  private readonly notices: CommitNotices;
  private started = false;
  private current: BatchRun | undefined;
  private backpressure: Backpressure | undefined;
  private placement!: Placement;
  /** Where the last batch ran, to log when that changes. */
  private lastRuns: BatchRuns | undefined;
  /**
   * The last quiet batch run since the checkpoint, not committed: the release of the lease records
   * it, and a cut after it commits it first. Undefined when the checkpoint's batch came last.
   */
  private quietThrough: number | undefined;
  /** Where quiet batches left sources that keep bookkeeping even when they read nothing (`RecordSource.unmoved`); cuts go on from here. */
  private quietSources: Record<string, JsonValue> | undefined;
  /** The record of the quiet batch in flight as cut, before its reads: the batch runs from it in full if it is not quiet after all. */
  /** Woken from idle mode: the batch times up to this one were skipped, and count as no idle time (input is waiting). */
  private wokeAfter: number | undefined;
  /** Set once a batch without input had records all the same: quiet batches would never be. */
  private quietOff = false;
  private quietCutRecord: { record: BatchRecord; cap: ReturnType<Placement['cap']>; full: boolean } | undefined;
  /** Whether `start` found a checkpoint to resume from. */
  resumed = false;
  /** The batches this coordinator ran, recent ones in memory, all written to `history/` now and then: what the Streaming UI shows. */
  readonly history: BatchHistory;
  /** The batch being run and when it began to run, for the history of a batch that fails. */
  private attempted: { run: BatchRun; started: number } | undefined;

  constructor(
    readonly graph: JobGraph,
    readonly options: ResolvedJobOptions,
    readonly rt: CoordinatorRuntime,
  ) {
    this.localWorker = new Worker(graph, rt);
    this.fingerprint = graph.fingerprint();
    // Batch records and the checkpoint grow with the input (shards, seen files): past a DynamoDB item they go to a blob.
    const meta = new SpillingMetaStore(rt.meta, rt.blobs, { thresholdBytes: rt.metaSpillBytes, warn: (line) => rt.log.warn(line) });
    this.log = new CommitLog(meta, {
      job: graph.name,
      owner: rt.owner,
      clock: rt.clock,
      leaseMs: rt.leaseMs ?? Math.max(30_000, 3 * options.batchInterval),
      ownerGone: rt.ownerGone,
    });
    this.retention = new Retention(graph, rt.blobs, this.log, options.batchInterval);
    this.notices = new CommitNotices(graph, (id) => this.source(id), this.log, (line) => rt.log.warn(line));
    graph.planAt = (time) => this.planAt(time);
    this.history = new BatchHistory(rt.blobs, { job: graph.name, batchInterval: options.batchInterval, writer: 'e0' }, rt.history);
  }

  private get interval(): number {
    return this.options.batchInterval;
  }

  /** The time of the next batch to run. */
  get nextBatchTime(): number {
    return this.lastCompleted + this.interval;
  }

  /** The time of the last batch done: committed, or quiet since the last commit. */
  get lastCompleted(): number {
    return this.quietThrough ?? this.checkpoint.lastCompleted;
  }

  private async step(step: ProtocolStep, time: number): Promise<void> {
    await this.rt.onStep?.(step, time);
  }

  /** Takes the lease, loads (or creates) the checkpoint and starts the receivers. */
  async start(): Promise<void> {
    if (this.started) return;
    await this.log.acquireLease();
    // History files carry who wrote them: overlapping coordinators never write the same name.
    this.history.writer = `e${this.log.epoch}-${this.rt.nonce?.() ?? globalThis.crypto.randomUUID().slice(0, 8)}`;
    await this.loadCheckpoint();
    if (this.options.backpressure) this.backpressure = new Backpressure(this.graph.sources, this.interval, this.checkpoint.rates as Checkpoint['rates'] | undefined);
    this.placement = new Placement({ records: this.options.coordinatorBatchRecords, bytes: this.options.coordinatorBatchBytes }, this.checkpoint.placement);
    // A coordinator that takes an idle job's cleanly released lease (the checkpoint where the quiet
    // run left it) lists nothing: what a crash leaves behind, the coordinator after the crash
    // sweeps (that lease was not released), and a clean one deleted what its batches wrote.
    if (this.quietThrough === undefined || !this.log.releasedCleanly) await this.retention.sweep(this.checkpoint);
    for (const spec of this.graph.sources) await this.source(spec.nodeId).start?.();
    // Before the first cut: a queue must not deliver again what the last committed batch consumed.
    await this.notices.recover(this.checkpoint);
    this.started = true;
  }

  /** Stops the receivers. The checkpoint stays; a later start resumes from it. */
  async stop(): Promise<void> {
    // A last try for acknowledgements that failed: a later coordinator only repeats the last batch's.
    if (this.started) await this.notices.retry();
    for (const s of this.sources.values()) await s.stop?.();
    this.started = false;
    await this.history.flush().catch((e: unknown) => this.rt.log.warn(`could not write the batches' history: ${e instanceof Error ? e.message : String(e)}`));
  }

  /**
   * Gives the lease up, so the next coordinator need not wait for it to expire; it records the
   * quiet batches run since the last commit, and whether the job is idle ({@link Coordinator.idle}).
   */
  releaseLease(): Promise<void> {
    const quiet: QuietRun | undefined = this.quietThrough === undefined ? undefined : { checkpointVersion: this.checkpointVersion, through: this.quietThrough, idle: this.idle };
    return this.log.releaseLease(quiet);
  }

  /**
   * Idle mode (`idleAfter`): whether the job may sleep between checks for input — it had none for
   * `idleAfter`, its last batches were quiet, no acknowledgement waits, no source listens only while
   * a coordinator runs (receivers), and every stateful node rests from the next batch on, whatever
   * time passes (`StateOp.restsFrom`).
   */
  get idle(): boolean {
    const idleAfter = this.options.idleAfter;
    if (idleAfter === undefined || this.quietThrough === undefined || this.notices.waiting) return false;
    // A source that listens while the coordinator runs (a receiver) would hear nothing while it sleeps.
    if (this.graph.sources.some(({ nodeId }) => this.source(nodeId).start !== undefined)) return false;
    const lastInput = lastInputOf(this.checkpoint);
    if (this.quietThrough - Math.max(lastInput, this.wokeAfter ?? lastInput) < idleAfter) return false;
    const next = this.nextBatchTime;
    return this.graph.stateful.every(({ node, op }) => op.restsFrom(this.checkpoint.state[node.id] as StatePointer | undefined, lastInput) <= next);
  }

  /**
   * Idle mode's look, before {@link Coordinator.start}: when the last coordinator left the job idle
   * and no source has input, returns the time of the last batch done (nothing was written: the
   * lease and checkpoint are read, the sources cut and read without sealing); otherwise undefined,
   * and the caller starts the coordinator as usual.
   */
  async idleWithoutInput(): Promise<number | undefined> {
    const { lease, checkpoint } = await this.log.peek();
    const q = lease?.value.owner === '' ? (lease.value.quiet as QuietRun | undefined) : undefined;
    if (!q?.idle || !checkpoint || checkpoint.version !== q.checkpointVersion || checkpoint.value.fingerprint !== this.fingerprint) return undefined;
    // Up to now, not to the batch due: a record that came since that batch's time wakes the job too.
    const now = this.rt.clock.now();
    for (const { nodeId } of this.graph.sources) {
      const source = this.source(nodeId);
      const before = checkpoint.value.sourceState[nodeId];
      const cut = await source.cut(now, before);
      source.abandon?.(cut.splits);
      const read: InputSplit[] = [];
      for (const split of cut.splits) {
        if (split.open !== true) {
          if (split.count !== 0) return undefined;
          read.push(split);
          continue;
        }
        const { records, sealedSplit } = await source.read(split);
        if (records.length > 0) return undefined;
        read.push(sealedSplit ?? split);
      }
      // A source that moves without records (a shard that ended, and its children to read next) wakes the job too.
      const after = this.advanced(nodeId, cut.state, read);
      if (!this.unmoved(nodeId, after, before)) return undefined;
    }
    return q.through;
  }

  /** The latest batch time after `through` that is due now (at least the one right after it). */
  private dueAfter(through: number): number {
    const i = this.interval;
    return through + Math.max(1, Math.floor((this.rt.clock.now() - through) / i)) * i;
  }

  private source(nodeId: string): RecordSource {
    let s = this.sources.get(nodeId);
    if (!s) {
      s = this.rt.sources(this.graph.source(nodeId), { blobs: this.rt.blobs, job: this.graph.name, batchInterval: this.interval, epoch: this.log.epoch });
      this.sources.set(nodeId, s);
    }
    return s;
  }

  /** Reads the checkpoint (or makes the first one), checks it fits this job, and takes it over with this coordinator's epoch. */
  private async loadCheckpoint(): Promise<void> {
    const job: StartingJob = {
      graph: this.graph,
      fingerprint: this.fingerprint,
      signatures: this.graph.signatures(),
      batchInterval: this.interval,
      allowPlanChange: this.rt.allowPlanChange === true,
      where: this.where(),
      warn: (line) => this.rt.log.warn(line),
    };
    const fitted = new Map<number, Checkpoint>();
    const fit = (item: MetaItem<Checkpoint> | undefined): Checkpoint => {
      if (!item) return firstCheckpoint(job, this.rt.clock.now());
      let c = fitted.get(item.version);
      if (!c) fitted.set(item.version, (c = resumeCheckpoint(item.value, job)));
      return c;
    };
    // The quiet batches the lease says were run past this checkpoint (none once it has moved on).
    const quietAfter = (version: number, c: Checkpoint): number | undefined => {
      const q = this.log.quietLeft;
      if (!q || q.checkpointVersion !== version || q.through <= c.lastCompleted) return undefined;
      // Woken from idle: the batch times since were quiet, never cut; the first batch is the one due now.
      if (q.idle !== true) return q.through;
      this.wokeAfter = this.dueAfter(q.through) - this.interval;
      return this.wokeAfter;
    };
    // A lease released cleanly leaves nothing to fence: the checkpoint stays as it is, and so do the quiet batches.
    const kept = await this.log.keepCheckpoint(fit);
    if (kept) {
      this.resumed = true;
      this.checkpoint = kept.value;
      this.checkpointVersion = kept.version;
      this.quietThrough = quietAfter(kept.version, kept.value);
      return;
    }
    // Writing the checkpoint with our epoch fences an older coordinator's commit; it commits the quiet batches the lease carried.
    const taken = await this.log.takeOverCheckpoint((item) => {
      const c = fit(item);
      const through = item && quietAfter(item.version, c);
      return through === undefined ? c : { ...c, lastCompleted: through };
    });
    this.resumed = taken.stored !== undefined;
    this.checkpoint = taken.value;
    this.checkpointVersion = taken.version;
  }

  private where(): string {
    return this.rt.stateLocation ? ` in ${this.rt.stateLocation}` : '';
  }

  /**
   * Runs the next batch to completion: cut (or recover) its input, run every output, commit.
   * Returns its timing. Throws when the batch fails after retries; the checkpoint then still
   * points at the previous batch, so running again retries this one.
   *
   * A quiet batch — cut empty, its sources where they were, every stateful node at rest
   * (`StateOp.restsAt`), no empty output to write — runs its outputs inside the coordinator
   * (print's header, foreachRDD on an empty batch) but writes no lineage record and commits
   * nothing: it changes nothing a later batch reads. The next batch that does commits the run of
   * quiet batches first; the lease's release records it otherwise (docs/design.md §4).
   */
  async runNextBatch(): Promise<BatchInfo> {
    if (!this.started) await this.start();
    const t = this.nextBatchTime;
    this.attempted = undefined;
    try {
      return await this.runBatch(t);
    } catch (e) {
      // Set by runBatch, which TypeScript cannot see from here.
      const a = this.attempted as Coordinator['attempted'];
      const end = this.rt.clock.now();
      this.addHistory({
        time: t,
        status: 'failed',
        records: a?.run.inputRecords() ?? 0,
        ...(a ? { processingStartTime: a.started, processingEndTime: end, schedulingDelay: a.started - t, processingDelay: end - a.started, totalDelay: end - t } : {}),
        deadLetters: a?.run.deadLetters() ?? 0,
        runs: (a && runsOf(a.run.record)) ?? 'workers',
        recovered: a?.run.recovered ?? false,
        stages: a?.run.stagesRun() ?? [],
        input: a?.run.record.splits ?? {},
        outputs: a?.run.record.outputs ?? [],
        error: e instanceof Error ? `${e.name}: ${e.message}` : String(e),
      });
      throw e;
    }
  }

  /** Adds a batch to the history; a failed write of it is reported and the batch goes on. */
  private addHistory(b: BatchSummary): void {
    this.history.add(b, this.rt.clock.now()).catch((e: unknown) => this.rt.log.warn(`could not write the batches' history: ${e instanceof Error ? e.message : String(e)}`));
  }

  private async runBatch(t: number): Promise<BatchInfo> {
    const submissionTime = t;
    this.emit('onBatchSubmitted', { batchTime: t, numRecords: 0, submissionTime });
    // Committed input may be acknowledged at any time: before the cut, a queue has not yet handed it out again.
    await this.notices.retry();
    let run = await this.openBatch(t, this.quietPossible(t));
    // Room for a few batches, and 10 s at least: a quiet batch is short, and takes no lease-fenced write.
    if (run.quiet) await this.log.renewLeaseIfDue(Math.max(10_000, 3 * this.interval));
    else await this.written(run);
    const processingStartTime = this.rt.clock.now();
    this.attempted = { run, started: processingStartTime };
    const numRecords = run.inputRecords();
    this.emit('onBatchStarted', { batchTime: t, numRecords, submissionTime, processingStartTime, schedulingDelay: processingStartTime - t });

    this.current = run;
    const stateBefore = this.checkpoint.state;
    try {
      try {
        await this.runOutputs(run);
        if (run.quiet) this.quietSourcesAfter(run);
      } catch (e) {
        if (!(run.quiet && e instanceof NotQuietError)) throw e;
        // Records from no source (a parallelize dataset in a transform): the batch is not quiet after all.
        this.rt.log.info(`batch ${t}: ${e.message}; running it in full`);
        run = this.current = await this.recordQuiet(run);
        this.attempted = { run, started: processingStartTime };
        await this.written(run);
        await this.runOutputs(run);
        if (run.inputRecords() === 0) {
          // Records that came from no source will come again: stop trying batches as quiet.
          this.quietOff = true;
          this.rt.log.info(`batch ${t} had records though its sources had none (a dataset made in a transform?): every batch runs in full from now on`);
        }
      }
      if (!run.quiet) await this.commit(run);
    } finally {
      this.current = undefined;
    }
    if (run.quiet) this.quietThrough = t;
    else {
      await this.retention.afterCommit(t, stateBefore, this.checkpoint.state, { scratch: run.scratchBlobs(), inputBlocks: run.inputBlocks() });
      await this.step('cleanup', t);
    }

    const end = this.rt.clock.now();
    const deadLetters = run.deadLetters();
    if (deadLetters) this.rt.log.warn(`batch ${t}: ${deadLetters} record(s) set aside under dead-letters/${String(t).padStart(15, '0')}/ in the state store`);
    // Every metric of the catalogue, produced here once; BatchInfo and the Metrics port read it.
    const values: CompletedBatchValues = {
      InputRecords: run.inputRecords(),
      SchedulingDelay: processingStartTime - t,
      ProcessingDelay: end - processingStartTime,
      TotalDelay: end - t,
      DeadLetters: deadLetters,
    };
    const info: BatchInfo = { batchTime: t, submissionTime, processingStartTime, processingEndTime: end, ...listenerFields(values) };
    this.emit('onBatchCompleted', info);
    this.addHistory({
      time: t,
      status: run.quiet ? 'quiet' : 'completed',
      records: values.InputRecords,
      processingStartTime,
      processingEndTime: end,
      schedulingDelay: values.SchedulingDelay,
      processingDelay: values.ProcessingDelay,
      totalDelay: values.TotalDelay,
      deadLetters,
      runs: runsOf(run.record) ?? 'workers',
      recovered: run.recovered,
      stages: run.stagesRun(),
      input: run.record.splits,
      outputs: run.record.outputs,
    });
    if (!run.quiet) this.backpressure?.update(info, (id) => run.inputRecordsOf(id));
    this.rt.metrics?.batch({ job: this.graph.name, batchTime: t, ...portFields(values) });
    return info;
  }

  /**
   * After a batch's lineage record is written: renewed after the cut, not before, because creating
   * a batch record is not fenced (any writer may create an item), so a superseded coordinator could
   * re-create the record of a batch a newer one committed and forgot. The renewal fails for it,
   * before any output is written.
   */
  private async written(run: BatchRun): Promise<void> {
    this.retention.opened(run.time);
    await this.log.renewLease();
    await this.step('lease', run.time);
  }

  private async runOutputs(run: BatchRun): Promise<void> {
    // State moves every batch, whether or not an output reads it this time.
    await run.ensureState();
    const env = { sinks: this.rt.sinks, log: this.rt.log, step: (s: ProtocolStep, time: number) => this.step(s, time) };
    for (let i = 0; i < this.graph.outputs.length; i++) {
      const b = run.plan.outputBatches[i];
      if (b) await runOutput(this.graph.outputs[i], b, run, env);
    }
    await run.storePlanDeadLetters();
  }

  /**
   * Whether batch `t` may be quiet, if its cut is empty: every stateful node rests at `t`, and no
   * output would write Spark's empty parts.
   */
  private quietPossible(t: number): boolean {
    if (this.rt.quietBatches === false || this.quietOff) return false;
    if (this.options.writeEmptyBatches && outputLocations(this.graph.outputs, t).length > 0) return false;
    const lastInput = lastInputOf(this.checkpoint);
    return this.graph.stateful.every(({ node, op }) => op.restsAt(t, this.checkpoint.state[node.id] as StatePointer | undefined, lastInput));
  }

  /**
   * Whether a cut may leave the batch quiet: every split empty or still open (its read must then
   * find nothing: BatchRun seals nothing else in a quiet batch), every source where the checkpoint has it.
   */
  private quietCut(splits: Record<string, InputSplit[]>, sourceState: Record<string, JsonValue>): boolean {
    // A rate estimate the checkpoint lacks is committed first: the next coordinator starts from it.
    if (this.backpressure && JSON.stringify(this.backpressure.snapshot()) !== JSON.stringify(this.checkpoint.rates)) return false;
    return this.graph.sources.every(({ nodeId }) => splits[nodeId].every((s) => s.open === true || s.count === 0) && this.unmoved(nodeId, sourceState[nodeId]));
  }

  /** Whether source `nodeId` at `state` is where the checkpoint has it (up to bookkeeping, `RecordSource.unmoved`). */
  /** Source `nodeId`'s position after `splits` as sealed (`RecordSource.advance`), or `state` as the cut left it. */
  private advanced(nodeId: string, state: JsonValue, splits: readonly InputSplit[]): JsonValue {
    const src = this.source(nodeId);
    return src.advance ? src.advance(state, splits) : state;
  }

  private unmoved(nodeId: string, state: JsonValue, before: JsonValue = this.checkpoint.sourceState[nodeId]): boolean {
    const src = this.source(nodeId);
    return src.unmoved ? src.unmoved(before, state) : JSON.stringify(before) === JSON.stringify(state);
  }

  private sourceStateOf(nodeId: string): JsonValue {
    return this.quietSources?.[nodeId] ?? this.checkpoint.sourceState[nodeId];
  }

  /** After a quiet batch's reads: each source moved on from what it read (nothing), or the batch is not quiet. */
  private quietSourcesAfter(run: BatchRun): void {
    const after: Record<string, JsonValue> = {};
    for (const { nodeId } of this.graph.sources) {
      const state = run.record.sourceState[nodeId];
      after[nodeId] = this.advanced(nodeId, state, run.record.splits[nodeId] ?? []);
      if (!this.unmoved(nodeId, after[nodeId])) throw new NotQuietError(`source ${nodeId} moved though it read nothing`);
    }
    this.quietSources = after;
  }

  /** Commits the quiet batches run since the checkpoint: before a batch after them writes its lineage record. */
  private async commitQuiet(): Promise<void> {
    if (this.quietThrough === undefined) return;
    const next: Checkpoint = { ...this.checkpoint, lastCompleted: this.quietThrough, sourceState: { ...this.checkpoint.sourceState, ...this.quietSources } };
    this.checkpointVersion = await this.log.writeCheckpoint(next, this.checkpointVersion, `commit the quiet batches up to ${this.quietThrough}`);
    this.checkpoint = next;
    this.quietThrough = undefined;
    this.quietSources = undefined;
  }

  /** A batch begun as quiet that turned out not to be: recorded with the input it was cut with, to run in full. */
  private async recordQuiet(quiet: BatchRun): Promise<BatchRun> {
    const t = quiet.time;
    await this.commitQuiet();
    // Placed as the cut was capped: a batch cut small runs in the coordinator, as any other.
    const { record: cut, cap, full } = this.quietCutRecord!;
    const record: BatchRecord = { ...cut, runs: this.placement.decide(cut.splits, cap) };
    const written = await this.log.cutBatch(t, record, 0);
    if (!written.ours) return this.recovered(written);
    await this.step('sealed', t);
    const run = new BatchRun(this.context(), record, written.version);
    run.full = full;
    return this.placed(run);
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

  /**
   * Claims the batch's lineage record when an earlier coordinator left one (recovery), or cuts
   * the input and writes a new record. A record of another plan (resumed with
   * `--allow-plan-change`) is re-cut: the input it had already sealed is kept for the sources the
   * job still has, and what its outputs wrote is removed first.
   */
  private async openBatch(t: number, quietPossible: boolean): Promise<BatchRun> {
    // A record exists only right after the checkpoint: quiet batches write none, and a cut after them commits them first.
    let existing = this.quietThrough === undefined ? await this.log.readBatch(t) : undefined;
    if (existing && existing.value.fingerprint === this.fingerprint) {
      // The claim: from now on the coordinator that wrote it can neither seal nor complete it.
      const claimed = await this.log.claimBatch(t);
      if (claimed) {
        this.rt.log.info(`recovering batch ${t} from its lineage record`);
        return this.recovered(claimed);
      }
      existing = undefined;
    }
    const kept = existing ? this.sealedInput(existing.value) : undefined;
    if (existing) await clearOutputs([...existing.value.outputs, ...outputLocations(this.graph.outputs, t)], this.rt.sinks);
    const splits: Record<string, InputSplit[]> = {};
    const sourceState: Record<string, JsonValue> = {};
    // A batch predicted small is cut no larger than what the coordinator runs itself.
    const cap = kept ? undefined : this.placement.cap();
    let full = false;
    for (const spec of this.graph.sources) {
      const id = spec.nodeId;
      if (kept?.has(id)) {
        splits[id] = existing!.value.splits[id];
        sourceState[id] = existing!.value.sourceState[id];
        continue;
      }
      const cut = await this.source(id).cut(t, this.sourceStateOf(id), smaller(this.backpressure?.limit(id), cap?.records), cap?.bytes);
      splits[id] = cut.splits;
      sourceState[id] = cut.state;
      full ||= Placement.cutFull(cut.splits, cap);
    }
    await this.step('cut', t);
    if (!kept && quietPossible && this.quietCut(splits, sourceState)) {
      const quiet: BatchRecord = { time: t, fingerprint: this.fingerprint, status: 'RUNNING', splits, sourceState, outputs: [], state: {}, writeEmptyBatches: this.options.writeEmptyBatches, runs: 'coordinator' };
      this.quietCutRecord = { record: quiet, cap, full };
      // Its reads seal splits in memory only: the pristine cut stays for a run in full.
      return new BatchRun(this.context(), structuredClone(quiet), 0, false, true);
    }
    await this.commitQuiet();
    const runs = this.placement.decide(splits, cap);
    // writeEmptyBatches goes in the record: whoever runs the batch writes an empty output or not as the cut chose (outputs.ts).
    const record: BatchRecord = { time: t, fingerprint: this.fingerprint, status: 'RUNNING', splits, sourceState, outputs: [], state: {}, writeEmptyBatches: this.options.writeEmptyBatches, runs };
    // Seal: from here on every computation of this batch reads exactly these splits.
    const written = await this.log.cutBatch(t, record, existing?.version ?? 0);
    if (!written.ours) {
      // An older coordinator's record came first: go on from it, and give back what this cut took.
      for (const spec of this.graph.sources) this.source(spec.nodeId).abandon?.(splits[spec.nodeId] ?? []);
      this.rt.log.info(`recovering batch ${t} from the lineage record an earlier coordinator wrote meanwhile`);
      return this.recovered(written);
    }
    await this.step('sealed', t);
    const run = new BatchRun(this.context(), record, written.version);
    run.full = full;
    return this.placed(run);
  }

  /** A batch claimed from an earlier coordinator's record: it runs where this coordinator's bounds say, whatever the record was cut for. */
  private recovered(claimed: { value: BatchRecord; version: number }): BatchRun {
    const runs = this.placement.decideRecovered(claimed.value.splits, runsOf(claimed.value));
    return this.placed(new BatchRun(this.context(), { ...claimed.value, runs }, claimed.version, true));
  }

  private placed(run: BatchRun): BatchRun {
    const runs = runsOf(run.record) ?? 'workers';
    if (runs !== this.lastRuns) this.rt.log.info(`tasks run ${runs === 'coordinator' ? 'inside the coordinator' : 'on workers'} from batch ${run.time} (coordinatorBatchRecords: ${this.options.coordinatorBatchRecords})`);
    this.lastRuns = runs;
    return run;
  }

  /** The sources of an earlier plan's record whose input is sealed and that this job still has: their input stands. */
  private sealedInput(old: BatchRecord): Set<string> {
    const ids = new Set(this.graph.sources.map((s) => s.nodeId));
    return new Set(Object.keys(old.splits).filter((id) => ids.has(id) && old.splits[id].every((s) => s.open !== true)));
  }

  private context(): BatchContext {
    const rt = this.rt;
    return {
      graph: this.graph,
      options: this.options,
      fingerprint: this.fingerprint,
      log: this.log,
      invoker: rt.invoker,
      clock: rt.clock,
      blobs: rt.blobs,
      out: rt.log,
      worker: this.localWorker,
      inlineLimit: rt.inlineLimit ?? 64 * 1024,
      retryBackoffMs: rt.retryBackoffMs ?? 50,
      statePointers: this.checkpoint.state,
      stageDone: (time) => this.step('stage', time),
    };
  }

  private async commit(run: BatchRun): Promise<void> {
    const t = run.time;
    // Sources whose splits were sealed by the tasks that read them move on from what was sealed.
    for (const spec of this.graph.sources) {
      run.record.sourceState[spec.nodeId] = this.advanced(spec.nodeId, run.record.sourceState[spec.nodeId], run.record.splits[spec.nodeId] ?? []);
    }
    run.plan.statefulBatches.forEach((sb, i) => {
      const { node, op } = this.graph.stateful[i];
      run.record.state[node.id] = nextPointer(this.checkpoint.state[node.id] as StatePointer | undefined, t, this.interval, sb.numPartitions, op, run.heldOf(node.id)) as JsonValue;
    });
    this.placement.completed(run.inputRecords(), run.full);
    const lastInput = run.inputRecords() > 0 ? t : lastInputOf(this.checkpoint);
    const placement = this.placement.enabled ? this.placement.snapshot() : undefined;
    const next: Checkpoint = {
      ...this.checkpoint,
      ...(placement ? { placement } : {}),
      lastCompleted: t,
      lastInput,
      sourceState: { ...this.checkpoint.sourceState, ...run.record.sourceState },
      state: { ...this.checkpoint.state, ...run.record.state },
      // The estimates as of the batch before this one: a new coordinator (the next minute's, on AWS) goes on from them.
      ...(this.backpressure ? { rates: this.backpressure.snapshot() } : {}),
    };
    // The commit point: one conditional write, fenced by our epoch.
    this.checkpointVersion = await this.log.writeCheckpoint(next, this.checkpointVersion, `commit batch ${t}`);
    this.checkpoint = next;
    await this.step('commit', t);
    run.recordVersion = await this.log.writeBatch(t, { ...run.record, status: 'COMPLETED' }, run.recordVersion, `complete batch ${t}`);
    // Only now may a source acknowledge what the batch consumed (RecordSource.committed).
    await this.notices.committed(t, run.record.splits, next.sourceState);
  }

  /** The plan of an earlier, remembered batch (for `slice()`), from its lineage record. */
  private async planAt(time: number): Promise<BatchPlan | undefined> {
    const run = this.current;
    if (!run) return undefined;
    if (time === run.time) return run.plan;
    if (time > run.time || time < run.time - this.retention.rememberedMs) return undefined;
    return run.otherPlan(time);
  }
}

/**
 * The last batch that had input (`lastInput`, which windows at rest go by). A checkpoint of a
 * release before quiet batches has none: its last batch stands in, which keeps windows busy one
 * window longer at most.
 */
function lastInputOf(c: Checkpoint): number {
  return typeof c.lastInput === 'number' ? c.lastInput : c.lastCompleted;
}
