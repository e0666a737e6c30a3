import { NotQuietError, RecordError, SluiceError } from '../core/errors.ts';
import type { ResolvedJobOptions } from '../core/options.ts';
import type { Batch, BatchExecutor, ResultAction } from '../plan/batch.ts';
import type { BatchPlan, JobGraph } from '../plan/graph.ts';
import { addHeld, type StateHeld } from '../plan/state/format.ts';
import { planBatch } from '../plan/planBatch.ts';
import type { BlobStore, Clock, InputSplit, Invoker, OutputLog } from '../ports/index.ts';
import type { StageSummary, TaskAttemptSummary } from './batchHistory.ts';
import type { CommitLog } from './commitLog.ts';
import { jsonLine } from './format.ts';
import { OpenSplitReads } from './openSplitReads.ts';
import { cameBackFull, runsOf } from './placement.ts';
import { forEachLimit } from './pool.ts';
import { type BatchRecord, type CacheOutput, type Checkpoint, keys, type MapOutput, type StageRef, type TaskFailure, type TaskResult } from './protocol.ts';
import { describeTask, type StageInfo, splitCounts, stageDependencies, stageKeyOf, stageOperators, stageSourceReads } from './stageLineage.ts';
import { toFailure, type Worker } from './worker.ts';

/** What a batch in flight needs from its coordinator. */
export interface BatchContext {
  readonly graph: JobGraph;
  readonly options: ResolvedJobOptions;
  readonly fingerprint: string;
  readonly log: CommitLog;
  readonly invoker: Invoker;
  readonly clock: Clock;
  readonly blobs: BlobStore;
  readonly out: OutputLog;
  /** The coordinator's own worker, for stages only it can run (datasets made inside `foreachRDD`). */
  readonly worker: Worker;
  /** Map outputs and cached partitions up to this many bytes travel in task results. */
  readonly inlineLimit: number;
  /** First retry delay of a failed task (doubles per attempt). */
  readonly retryBackoffMs: number;
  /** State pointers after the last committed batch. */
  readonly statePointers: Checkpoint['state'];
  /** Called after each stage (crash tests stop here). */
  stageDone(time: number): Promise<void>;
}

/**
 * One batch in flight (Spark's DAGScheduler for one job): its lineage record and plan, and the
 * stages run so far. It runs each stage's tasks through the Invoker with retries and a timeout,
 * recomputes lost shuffle output, seals the ranges tasks consumed from open splits, and writes
 * the dead letters of the accepted attempts.
 *
 * Two rules keep overlapping attempts apart (see commitLog.ts for the whole argument):
 * - an open split is read by one stage at a time, and sealed before any other stage reads it;
 * - a stage that writes to deterministic names (an output, `foreachPartition`) never reads an
 *   open split: the dataset it writes is computed (and its input sealed) by a cache stage first.
 *
 * @example
 * ```ts
 * const run = new BatchRun(context, record, version);
 * await run.ensureState();
 * await run.runJob(dataset, { kind: 'output', outputId: 'saveAsTextFiles-1' });
 * ```
 */
export class BatchRun implements BatchExecutor {
  readonly time: number;
  readonly plan: BatchPlan;
  private readonly outputs = new Map<string, (MapOutput | CacheOutput)[]>();
  private readonly running = new Map<string, Promise<void>>();
  private readonly stages = new Map<string, StageInfo>();
  private readonly attempts = new Map<string, number>();
  private readonly otherRecords = new Map<number, Promise<BatchPlan | undefined>>();
  private readonly splitsAt = new Map<number, Record<string, InputSplit[]>>();
  /** Open splits being read by a stage, until that stage has sealed them. */
  private readonly openReads = new OpenSplitReads();
  private sealing: Promise<void> = Promise.resolve();
  private readonly readCounts = new Map<string, number>();
  private readonly deadLetterCounts = new Map<string, number>();
  /** What each stateful node holds after this batch, added up over the partitions that said. */
  private readonly heldBy = new Map<string, StateHeld>();
  /** Set when some task attempt did not succeed: it may have written blobs nobody was told of. */
  private unknownWrites: boolean;
  /** Each stage run and its task attempts (`start` absolute here), in the order they started: the Streaming UI's batch page. */
  private readonly ran = new Map<string, StageRun>();
  /** Set when a source handed out as much as its cap let it (at the cut, or an open split when sealed): more is waiting. */
  full = false;

  constructor(
    private readonly c: BatchContext,
    readonly record: BatchRecord,
    public recordVersion: number,
    /** Recovered from the lineage record of a run that stopped: what that run wrote is not known. */
    readonly recovered = false,
    /**
     * A quiet batch: cut empty, every stateful node at rest, its record not written. Every task
     * runs inside the coordinator, stateful nodes do not run, and a task that meets a record
     * after all throws {@link NotQuietError} before it writes anything.
     */
    readonly quiet = false,
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

  /** Whether every task of this batch runs inside the coordinator (its lineage record says where). */
  private get inCoordinator(): boolean {
    return this.quiet || runsOf(this.record) === 'coordinator';
  }

  /** What stateful node `nodeId` holds after this batch, when its tasks said (nodes with keyed state do). */
  heldOf(nodeId: string): StateHeld | undefined {
    return this.heldBy.get(nodeId);
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
   * Workers plan the batch too but only the coordinator writes them; a re-run rewrites the same lines.
   */
  async storePlanDeadLetters(): Promise<void> {
    const letters = this.plan.deadLetters;
    if (!letters.length) return;
    const lines = letters.map((d) => jsonLine({ batchTime: this.time, node: d.node, error: d.error, source: null, record: null }));
    await this.c.blobs.put(keys.deadLetters(this.time, 'plan', 0), `${lines.join('\n')}\n`);
  }

  /** The plan of an earlier, remembered batch (for `slice()`), from its lineage record. */
  otherPlan(time: number): Promise<BatchPlan | undefined> {
    let p = this.otherRecords.get(time);
    if (!p) {
      p = this.c.log.readBatch(time).then((item) => {
        if (!item || item.value.fingerprint !== this.c.fingerprint) return undefined;
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
    // An output writes to names every attempt shares: it must compute from sealed input only, so
    // a dataset that would read open splits is computed by a cache stage first, which seals them.
    if ((action.kind === 'output' || action.kind === 'foreachPartition') && !dataset.cached && this.readsOpenSplits(dataset, plan)) dataset.cached = true;
    // A cached dataset is computed by its cache stage once per batch; each action reads that.
    const fromCache = dataset.cached;
    await this.ensureDeps(dataset, plan, fromCache ? undefined : dataset);
    const shippable = action.kind !== 'foreachPartition';
    const ref: StageRef = { kind: 'result', dataset: dataset.id, action: shippable ? action : { kind: 'collect' }, ...(fromCache ? { fromCache } : {}) };
    const info: StageInfo = { key: stageKeyOf(ref, plan.time), ref, root: dataset, plan, local: dataset.driverOnly || !shippable, fromCache };
    const results = await this.runStage(info, shippable ? undefined : action);
    return results.map((r) => r.value);
  }

  private async ensureDeps(root: Batch<unknown>, plan: BatchPlan, computes: Batch<unknown> | undefined): Promise<void> {
    await Promise.all(stageDependencies(root, plan, computes, this.time).map((s) => this.ensure(s)));
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
        await this.c.stageDone(this.time);
      })();
      this.running.set(stage.key, p);
    }
    return p;
  }

  /** Whether computing `dataset` (outside any cache) reads a split of this batch that is still open. */
  private readsOpenSplits(dataset: Batch<unknown>, plan: BatchPlan): boolean {
    const splits = this.splitsAt.get(plan.time);
    if (!splits) return false;
    for (const [nodeId, q] of stageSourceReads(dataset, dataset).values()) if (splits[nodeId]?.[q]?.open === true) return true;
    return false;
  }

  private async runStage(stage: StageInfo, localAction?: ResultAction): Promise<TaskResult[]> {
    const ran = this.noteStage(stage, localAction);
    const splits = this.splitsAt.get(stage.plan.time);
    // Only the batch in flight has open splits; an earlier batch's (from slice) are all sealed.
    const release =
      splits && stage.plan.time === this.time ? await this.openReads.claim(stageSourceReads(stage.root, stage.fromCache ? undefined : stage.root), splits) : () => {};
    try {
      const n = stage.root.numPartitions;
      const results: TaskResult[] = new Array(n);
      // A batch run in the coordinator runs every stage as the coordinator runs its own: one lane.
      const lanes = stage.local || this.inCoordinator ? 1 : this.c.invoker.parallelism;
      await forEachLimit(n, lanes, async (p) => {
        results[p] = await this.runTask(stage, p, localAction, ran);
      });
      await this.seal(stage, results);
      await this.accept(stage, results);
      return results;
    } finally {
      release();
    }
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
          // First writer wins: a split already sealed keeps its range.
          const open = splits[nodeId][Number(p)];
          if (open?.open !== true) continue;
          // A quiet batch has no record to seal into: what its reads found must be nothing.
          if (this.quiet && split.count !== 0) throw new NotQuietError(`${nodeId} partition ${p} has records`);
          if (stage.plan.time === this.time && cameBackFull(open, split)) this.full = true;
          splits[nodeId][Number(p)] = split;
          changed = true;
        }
      }
    }
    if (!changed || stage.plan.time !== this.time || this.quiet) return;
    this.sealing = this.sealing.then(async () => {
      this.recordVersion = await this.c.log.writeBatch(this.time, this.record, this.recordVersion, `seal the input of batch ${this.time}`);
    });
    await this.sealing;
  }

  /**
   * What the accepted attempts of a stage leave behind once their input is sealed: input counts
   * for metrics, and their dead letters, written under names of their own (a recomputation
   * writes the same lines again).
   */
  private async accept(stage: StageInfo, results: TaskResult[]): Promise<void> {
    const writes: Promise<void>[] = [];
    results.forEach((r, p) => {
      if (r.held && stage.plan.time === this.time) for (const [nodeId, held] of Object.entries(r.held)) this.heldBy.set(nodeId, addHeld(this.heldBy.get(nodeId), held));
      if (r.sourceReads && stage.plan.time === this.time) {
        for (const [nodeId, parts] of Object.entries(r.sourceReads)) for (const [q, count] of Object.entries(parts)) this.readCounts.set(`${nodeId}/${q}`, count);
      }
      const lines = r.deadLetters;
      if (lines?.length) {
        this.deadLetterCounts.set(`${stage.key}/${p}`, lines.length);
        writes.push(this.c.blobs.put(keys.deadLetters(stage.plan.time, stage.key, p), `${lines.join('\n')}\n`));
      }
    });
    await Promise.all(writes);
  }

  /** The stage's entry in the batch's history: one per stage and action (two outputs of one dataset are two stages there). */
  private noteStage(stage: StageInfo, localAction?: ResultAction): StageRun {
    const ref = stage.ref;
    const action = ref.kind !== 'result' ? '' : ref.action.kind === 'output' ? ref.action.outputId : (localAction?.kind ?? ref.action.kind);
    const key = action ? `${stage.key}/${action}` : stage.key;
    let entry = this.ran.get(key);
    if (entry) return entry;
    const computes = stage.fromCache ? undefined : stage.root;
    const reads = stageDependencies(stage.root, stage.plan, computes, this.time).map((d) => d.key);
    const nodes = stageOperators(stage.root, computes);
    if (ref.kind === 'map') nodes.push(`shuffle for ${stage.plan.lookup(ref.shuffle).label}`);
    if (action) nodes.push(action);
    entry = { summary: { key, kind: ref.kind, nodes, planTime: stage.plan.time, partitions: stage.root.numPartitions, reads, tasks: [] }, attempts: new Map() };
    this.ran.set(key, entry);
    return entry;
  }

  /** The stages this batch ran and each task attempt, in the order they started: what the Streaming UI's batch page shows. */
  stagesRun(): StageSummary[] {
    return [...this.ran.values()].map((r) => r.summary);
  }

  private nextAttempt(stageKey: string, p: number): number {
    const k = `${stageKey}/${p}`;
    const a = this.attempts.get(k) ?? 0;
    this.attempts.set(k, a + 1);
    return a;
  }

  /** One task, retried until it succeeds or runs out of attempts; a timed-out attempt is left to finish or die on its own. */
  private async runTask(stage: StageInfo, p: number, localAction?: ResultAction, ran = this.noteStage(stage, localAction)): Promise<TaskResult> {
    const { clock, options } = this.c;
    const max = options.maxTaskAttempts;
    let failures = 0;
    let refetches = 0;
    for (;;) {
      const described = describeTask(stage, p, this.nextAttempt(stage.key, p), {
        job: this.c.graph.name,
        fingerprint: this.c.fingerprint,
        epoch: this.c.log.epoch,
        inlineLimit: this.c.inlineLimit,
        state: this.c.statePointers,
        splits: this.splitsAt.get(stage.plan.time) ?? {},
        outputs: this.outputs,
      });
      const task = this.quiet ? { ...described, quiet: true as const } : described;
      let res: TaskResult | TaskFailure;
      const timer = new AbortController();
      const inCoordinator = stage.local || this.inCoordinator;
      const sent = clock.now();
      try {
        const running = inCoordinator ? this.c.worker.execute(task, stage.plan, localAction) : (this.c.invoker.invoke(task) as Promise<TaskResult | TaskFailure>);
        const timeout = clock.deadline(clock.now() + options.taskTimeout, timer.signal).then((): never => {
          throw new SluiceError(`task ${stage.key} partition ${p} timed out after ${options.taskTimeout} ms`);
        });
        res = await Promise.race([running, timeout]);
      } catch (e) {
        // As a worker answers: a task run in this process keeps its error's context, a lost map
        // output is recomputed and a payload error is not retried, as when it ran on a worker.
        res = toFailure(e);
      } finally {
        // A reason of our own: without one, abort() builds a DOMException per task.
        timer.abort(ANSWERED);
      }
      // Attempts are counted per stage and action here (the protocol's count spans a dataset's actions).
      const attempt = ran.attempts.get(p) ?? 0;
      ran.attempts.set(p, attempt + 1);
      ran.summary.tasks.push(attemptSummary(p, attempt, sent - this.time, clock.now() - sent, inCoordinator, res));
      if (res.ok) return res;
      if (res.error.name === 'NotQuietError') throw new NotQuietError(res.error.message);
      this.unknownWrites = true;
      if (res.fetchFailed && refetches < max) {
        // Lost shuffle output: recompute that map task from lineage, then read again.
        refetches++;
        this.c.out.warn(`task ${stage.key} partition ${p}: ${res.error.message}; recomputing it`);
        await this.recompute(res.fetchFailed.stage, res.fetchFailed.partition);
        continue;
      }
      failures++;
      if (!res.retryable || failures >= max) throw taskError(res, stage.key, p, failures);
      this.c.out.warn(`task ${stage.key} partition ${p} attempt ${failures} failed (${res.error.message}); retrying`);
      await clock.sleepUntil(clock.now() + this.c.retryBackoffMs * 2 ** (failures - 1));
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

/** A stage of this batch as the history records it, and each of its partitions' attempts so far. */
interface StageRun {
  readonly summary: StageSummary & { readonly tasks: TaskAttemptSummary[] };
  readonly attempts: Map<number, number>;
}

/** One task attempt as the Streaming UI shows it (`start` in ms after the batch's time). */
function attemptSummary(partition: number, attempt: number, start: number, duration: number, inCoordinator: boolean, res: TaskResult | TaskFailure): TaskAttemptSummary {
  const where = inCoordinator ? 'coordinator' : 'worker';
  if (!res.ok) return { partition, attempt, start, duration, ok: false, where, error: `${res.error.name}: ${res.error.message}` };
  return {
    partition,
    attempt,
    start,
    duration,
    ok: true,
    where,
    ...(res.recordsIn !== undefined ? { recordsIn: res.recordsIn } : {}),
    ...(res.recordsOut !== undefined ? { recordsOut: res.recordsOut } : {}),
  };
}

/** Why a task's timer is cancelled: the task answered. */
const ANSWERED = 'answered';

/**
 * What to do when a record fails on every attempt: the batch cannot complete while the record is
 * in it, so a retry alone never helps.
 */
const EVERY_ATTEMPT_FAILED =
  ". The batch cannot complete while this record is in it: set onRecordError: 'dead-letter' in the job (or run with --on-record-error dead-letter) to set such records aside and go on, fix the function, or start over from fresh state with --reset";

/** Failure of a task after its retries, as an error the user can act on. */
function taskError(f: TaskFailure, stageKey: string, partition: number, attempts: number): SluiceError {
  const ctx = { nodeId: f.error.nodeId, batchTime: f.error.batchTime, partition: f.error.partition ?? partition };
  // A user function's or a record's fault stays a RecordError, whatever thread or Lambda it ran in.
  // What it failed on comes back too, when the worker could send it (small enough, JSON).
  const on = { ...('record' in f.error ? { record: f.error.record } : {}), ...('key' in f.error ? { key: f.error.key } : {}) };
  const e =
    f.error.name === 'RecordError'
      ? new RecordError(`${f.error.message} [task ${stageKey}, failed on all ${attempts} attempt(s)]${EVERY_ATTEMPT_FAILED}`, { ...ctx, ...on })
      : new SluiceError(`task ${stageKey} partition ${partition} failed after ${attempts} attempt(s): ${f.error.name}: ${f.error.message}`, ctx);
  if (f.error.stack) e.stack = `${e.name}: ${e.message}\ncaused by ${f.error.stack}`;
  return e;
}
