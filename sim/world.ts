import { isDeepStrictEqual } from 'node:util';
import type { LambdaClient } from '@aws-sdk/client-lambda';
import { decodeRecords } from '../lib/engine/codec.ts';
import { buildGraph, defineJob, type JobDefinition } from '../lib/api/job.ts';
import { createCoordinatorHandler, createWorkerHandler } from '../lib/aws/handlers.ts';
import { LambdaInvoker } from '../lib/aws/lambdaInvoker.ts';
import type { CoordinatorRuntime } from '../lib/engine/coordinator.ts';
import { type BatchRecord, type Checkpoint, keys, type QuietRun } from '../lib/engine/protocol.ts';
import { inMemorySources } from '../lib/engine/sources.ts';
import { SpillingMetaStore } from '../lib/engine/spillingMetaStore.ts';
import type { WorkerRuntime } from '../lib/engine/worker.ts';
import { MemoryBlobStore } from '../lib/local/memoryBlobStore.ts';
import { MemoryMetaStore } from '../lib/local/memoryMetaStore.ts';
import { outputLocations } from '../lib/engine/outputs.ts';
import type { JobGraph } from '../lib/plan/graph.ts';
import type { BlobStore, CommittedInput, InputSplit, JsonValue, RecordSource, SinkResolver, SourceFactory, SourceIO, SourceSpec } from '../lib/ports/index.ts';
import { ReceiverFeed, SimStream, SimStreamSource } from './inputs.ts';
import type { JobEnv, SimJob } from './jobs.ts';
import { SimLambda } from './lambda.ts';
import { Network, SimBlobStore, SimMetaStore } from './network.ts';
import type { SeedPlan } from './plan.ts';
import type { Rng } from './random.ts';
import { type Proc, Sim } from './scheduler.ts';

/** The files of one batch's outputs (and dead letters), by key, as text. */
export type Files = Record<string, string>;

/** What the simulation saw when a batch was committed. */
export interface Commit {
  readonly time: number;
  readonly epoch: number;
  /** Each source's records per split, as the committed lineage record seals them. */
  readonly inputs: Record<string, unknown[][]>;
  /** Where the batch's lineage record says its tasks run, at the commit (a recovery decides again). */
  readonly runs: string;
  /** The batch's output files at the moment of the commit. */
  readonly sinks: Files;
  /** Whether the batch was cut to write its empty outputs (its lineage record says). */
  readonly writeEmptyBatches: boolean;
  readonly deadLetters: Files;
  /** A quiet batch: cut empty, run without a lineage record, done once a later commit or the lease's release says so. */
  readonly quiet?: true;
}

/** An acknowledgement a stream source made (`RecordSource.committed`). */
export interface Ack {
  readonly by: string;
  readonly nodeId: string;
  readonly time: number;
  /** The last committed batch when it was made. */
  readonly committedThrough: number;
  /** The records of each split it acknowledged (none for an open split: nothing was consumed). */
  readonly inputs: unknown[][];
}

/** A `foreachPartition` call. */
export interface Call {
  readonly time: number;
  readonly partition: number;
  readonly records: string;
}

const decoder = new TextDecoder();

/** The files under `prefix` of a store, by key. */
export async function filesUnder(store: BlobStore, prefix: string, filter: (key: string) => boolean = () => true): Promise<Files> {
  const out: Files = {};
  for (const k of await store.list(prefix)) if (filter(k)) out[k] = decoder.decode(await store.get(k));
  return out;
}

/** The batch time an output file belongs to (`out/sums-10005000/part-00000` → 10005000). */
export function batchOf(key: string): number | undefined {
  const m = /-(\d+)\//.exec(key);
  return m ? Number(m[1]) : undefined;
}

/**
 * A memory blob store that notes every write that replaces an object with other content. The
 * engine writes a name either once (scratch names carry their writer) or always with the same
 * content (outputs, state, dead letters computed from sealed input), so such a write means that
 * two attempts disagreed about what the name holds — whether or not a reader was harmed.
 */
class WatchedBlobStore extends MemoryBlobStore {
  constructor(private readonly rewrites: string[]) {
    super();
  }

  override async put(key: string, body: Uint8Array | string): Promise<void> {
    const before = await this.get(key);
    if (before) {
      const after = typeof body === 'string' ? new TextEncoder().encode(body) : body;
      // State blobs are compared decoded: V8 may write one number as an int or a double.
      const same = key.startsWith('state/') ? isDeepStrictEqual(decodeRecords(before), decodeRecords(after)) : Buffer.compare(before, after) === 0;
      if (!same) this.rewrites.push(key);
    }
    await super.put(key, body);
  }
}

/** A memory meta store that refuses values over `limit` bytes of JSON, as DynamoDB refuses items over 400 KB. */
class SizedMetaStore extends MemoryMetaStore {
  constructor(private readonly limit: number) {
    super();
  }

  override async put(key: string, value: JsonValue, condition: { expectedVersion: number | 'any'; epoch: number }): Promise<number | undefined> {
    const bytes = Buffer.byteLength(JSON.stringify(value));
    if (bytes > this.limit) throw Object.assign(new Error(`Item size has exceeded the maximum allowed size (${key}: ${bytes} bytes)`), { name: 'ValidationException' });
    return super.put(key, value, condition);
  }
}

/** The job's definition for a simulated job. */
export function jobDefinition(job: SimJob, plan: SeedPlan, env: JobEnv, writeEmptyBatches = false): JobDefinition {
  return defineJob(
    {
      name: 'sim',
      batchInterval: plan.interval,
      taskTimeout: plan.taskTimeoutMs,
      maxTaskAttempts: 4,
      checkpointInterval: 3 * plan.interval,
      coordinatorBatchRecords: plan.coordinatorBatchRecords,
      writeEmptyBatches,
      ...(plan.idleAfter === undefined ? {} : { idleAfter: plan.idleAfter }),
      ...job.options,
    },
    (ctx) => job.build(ctx, env),
  );
}

/**
 * One faulty run of a seed: the stores, the stream and receivers, the worker function and the
 * coordinator invocations of every minute, with the seed's faults while the fault window lasts.
 * It records what each commit committed, for the checks.
 */
export class World {
  readonly sim: Sim;
  /** The meta store, with DynamoDB's item limit scaled down to this world's small lineage. */
  readonly meta: SizedMetaStore;
  /** Names rewritten with other content: the engine writes each name with one content only. */
  readonly rewrites: string[] = [];
  readonly blobs = new WatchedBlobStore(this.rewrites);
  readonly sinkStore = new WatchedBlobStore(this.rewrites);
  /** The meta store as the engine reads it (values past the spill size resolved from their blobs), for the checks. */
  private readonly view: SpillingMetaStore;
  readonly stream: SimStream | undefined;
  readonly feed: ReceiverFeed | undefined;
  readonly commits: Commit[] = [];
  readonly calls: Call[] = [];
  readonly acks: Ack[] = [];
  readonly logs: string[] = [];
  /** Coordinators that gave up as fenced while no newer coordinator had taken over. */
  readonly falseFences: string[] = [];
  readonly graph: JobGraph;
  private readonly net: Network;
  private readonly lambda: SimLambda;
  private readonly rng: Rng;
  private nonces = 0;
  private lastCommitted = -1;

  constructor(readonly plan: SeedPlan) {
    this.meta = new SizedMetaStore(plan.metaItemLimit);
    this.view = new SpillingMetaStore(this.meta, this.blobs);
    this.sim = new Sim(plan.seed, plan.start);
    this.rng = this.sim.rng.fork();
    const faulty = () => this.sim.now < plan.faultsUntil;
    this.net = new Network(this.sim, this.sim.rng.fork(), plan.faults, faulty);
    const end = plan.start + plan.minutes * 60_000;
    if (plan.job.inputs.stream) this.stream = new SimStream(this.sim.rng.fork(), plan.start - 10_000, end, { ...plan.stream, idle: plan.idle });
    if (plan.job.inputs.receiver) this.feed = new ReceiverFeed(this.sim, this.sim.rng.fork(), plan.start, end, plan.stream.meanGapMs, plan.idle);
    this.lambda = new SimLambda(this.sim, this.sim.rng.fork(), this.net, plan.lambdaFaults, faulty, plan.workerTimeoutMs, (proc) =>
      createWorkerHandler(async () => this.definition(proc), (graph) => this.workerRuntime(proc, graph), { payloadLimit: plan.payloadLimit }),
    );
    this.graph = buildGraph(this.definition(undefined));
  }

  private definition(proc: Proc | undefined): JobDefinition {
    return jobDefinition(
      this.plan.job,
      this.plan,
      {
        receiver: () => this.feed!.receiver(proc),
        called: (time, partition, records) => this.calls.push({ time, partition, records: JSON.stringify(records) }),
      },
      proc ? this.writesEmptyBatches(proc.name) : false,
    );
  }

  /** The writeEmptyBatches of a coordinator invocation (`coord-<minute>`, or `coord-<minute>b` for a duplicate event). */
  private writesEmptyBatches(name: string): boolean {
    const mode = this.plan.writeEmptyBatches;
    if (mode !== 'mixed') return mode === 'always';
    const m = /^coord-(\d+)(b?)$/.exec(name);
    return m !== null && (Number(m[1]) % 2 === 1) !== (m[2] === 'b');
  }

  private nonce(proc: Proc): () => string {
    return () => `${proc.name}-${this.nonces++}`;
  }

  private sources(proc: Proc | undefined): SourceFactory {
    return (spec: SourceSpec, io: SourceIO): RecordSource => {
      if (spec.kind === 'kinesis') {
        const acknowledge = proc && ((input: CommittedInput) => this.acknowledged(spec.nodeId, input, proc));
        return new SimStreamSource(spec, this.stream!, proc ? this.net : undefined, proc, this.sim, acknowledge);
      }
      if (!Object.hasOwn(inMemorySources, spec.kind)) throw new Error(`the simulation has no source of kind ${spec.kind}`);
      return inMemorySources[spec.kind as keyof typeof inMemorySources](spec, io);
    };
  }

  private sinks(proc: Proc): SinkResolver {
    const store = new SimBlobStore(this.net, proc, this.sinkStore, 'sink');
    return (location) => ({ store, key: location });
  }

  private workerRuntime(proc: Proc, _graph: JobGraph): WorkerRuntime {
    return { blobs: new SimBlobStore(this.net, proc, this.blobs, 'blobs'), sources: this.sources(proc), sinks: this.sinks(proc), nonce: this.nonce(proc) };
  }

  private coordinatorRuntime(proc: Proc): CoordinatorRuntime {
    const blobs = new SimBlobStore(this.net, proc, this.blobs, 'blobs');
    const clock = this.sim.clock(proc);
    const rng = this.rng.fork();
    const log = (level: string) => (line: string) => this.logs.push(`${this.sim.now} ${proc.name} ${level}: ${line}`);
    return {
      blobs,
      sources: this.sources(proc),
      sinks: this.sinks(proc),
      nonce: this.nonce(proc),
      meta: new SimMetaStore(this.net, proc, this.meta, (key) => this.applied(key)),
      invoker: new LambdaInvoker({
        client: this.lambda.client(proc) as unknown as LambdaClient,
        functionName: 'sim-worker',
        concurrency: 8,
        blobs,
        clock,
        random: () => rng.next(),
        payloadLimit: this.plan.payloadLimit,
        nonce: this.nonce(proc),
      }),
      inlineLimit: this.plan.inlineLimit,
      metaSpillBytes: this.plan.metaSpillBytes,
      clock,
      log: { print: () => {}, info: log('info'), warn: log('warn') },
      owner: proc.name,
      onStep: (step) => {
        const c = this.plan.coordinator;
        if (this.sim.now >= this.plan.faultsUntil) return;
        if (this.rng.chance(c.crashAtStep)) {
          this.logs.push(`${this.sim.now} ${proc.name}: crashed after step ${step} (simulated)`);
          proc.kill();
          return new Promise<void>(() => {});
        }
        // A slow step: the coordinator goes on a while later (late readers of what earlier stages wrote).
        if (this.rng.chance(c.slowStep)) return clock.sleepUntil(this.sim.now + this.rng.between(c.freezeMs[0], c.freezeMs[1]));
      },
    };
  }

  /** Starts the coordinator invocation of one minute (EventBridge's schedule). */
  private invokeCoordinator(name: string): void {
    const proc = this.sim.proc(name);
    const started = this.sim.now;
    const timeoutMs = 75_000;
    // Lambda ends the invocation at its timeout, wherever it is.
    this.sim.at(started + timeoutMs, undefined, `${name}:timeout`, () => proc.kill());
    const c = this.plan.coordinator;
    if (started < this.plan.faultsUntil && this.rng.chance(c.freeze)) {
      const at = started + this.rng.between(0, 60_000);
      const ms = this.rng.between(c.freezeMs[0], c.freezeMs[1]);
      this.sim.at(at, undefined, `${name}:freeze`, () => proc.freeze(this.sim.now + ms));
    }
    const handler = createCoordinatorHandler(async () => this.definition(proc), () => this.coordinatorRuntime(proc), {
      marginMs: 15_000,
      waitForLeaseMs: 20_000,
      log: (line) => this.logs.push(`${this.sim.now} ${name}: ${line}`),
    });
    handler({}, { getRemainingTimeInMillis: () => timeoutMs - (this.sim.now - started) }).then(
      (r) => this.logs.push(`${this.sim.now} ${name}: ended, ${r.batches} batch(es)${r.skipped ? `, skipped: ${r.skipped}` : ''}`),
      async (e: unknown) => {
        this.logs.push(`${this.sim.now} ${name}: failed: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
        // Fencing must come from a newer coordinator: one fenced while the lease still carries its epoch was not superseded.
        const fenced = e instanceof Error && e.name === 'FencedError' ? /epoch (\d+) is fenced/.exec(e.message) : null;
        const lease = fenced ? await this.meta.get(keys.lease) : undefined;
        if (fenced && lease && lease.epoch <= Number(fenced[1])) this.falseFences.push(`${name} at ${this.sim.now}: ${(e as Error).message}`);
      },
    );
  }

  /** What a stream source acknowledged, with how far the job had committed at that moment (read off the network: no event). */
  private async acknowledged(nodeId: string, input: CommittedInput, proc: Proc): Promise<void> {
    const committedThrough = (await this.view.get<Checkpoint>(keys.checkpoint))?.value.lastCompleted ?? -1;
    const inputs = input.splits.map((s) => (s.open === true ? [] : this.stream!.range(s.shard as string, s.after as number, s.end as number)));
    this.acks.push({ by: proc.name, nodeId, time: input.time, committedThrough, inputs });
  }

  /**
   * A write the meta store applied: a commit advances the checkpoint, and is captured with what it
   * committed. A checkpoint or a lease's release may also say that quiet batches were done (they
   * have no lineage record): each is captured as a quiet commit, checked to have written nothing.
   */
  private async applied(key: string): Promise<void> {
    if (key === keys.lease) return this.quietReleased();
    if (key !== keys.checkpoint) return;
    const item = (await this.view.get(key))!;
    const t = (item.value as Checkpoint).lastCompleted;
    if (t <= this.lastCommitted) return;
    const first = this.lastCommitted < 0;
    if (first) {
      this.lastCommitted = t;
      // The take-over write of a new job moves lastCompleted to the batch before the first: nothing committed.
      if (!(await this.view.get(keys.batch(t)))) return;
      this.commits.push(await this.capture(t, item.epoch));
      return;
    }
    await this.quietUntil(t);
    // A batch that ran in full has the committer's lineage record; a quiet one none (a superseded coordinator's at most).
    const record = await this.view.get(keys.batch(t));
    this.lastCommitted = t;
    this.commits.push(record && record.epoch === item.epoch ? await this.capture(t, item.epoch) : await this.quiet(t, item.epoch));
  }

  /** A lease released with a quiet run past the checkpoint (still at the version it names): those batches are done. */
  private async quietReleased(): Promise<void> {
    const lease = await this.view.get(keys.lease);
    const q = (lease?.value as { quiet?: QuietRun } | undefined)?.quiet;
    if (!q || q.through <= this.lastCommitted || this.lastCommitted < 0) return;
    const cp = await this.view.get(keys.checkpoint);
    if (cp?.version !== q.checkpointVersion) return;
    await this.quietUntil(q.through + this.plan.interval);
  }

  /** Captures every batch after the last committed one and before `t` as quiet. */
  private async quietUntil(t: number): Promise<void> {
    for (let q = this.lastCommitted + this.plan.interval; q < t; q += this.plan.interval) {
      this.lastCommitted = q;
      this.commits.push(await this.quiet(q, -1));
    }
  }

  /** A quiet batch: no input (one empty split a source), and its outputs as they stand now, which must be none. */
  private async quiet(time: number, epoch: number): Promise<Commit> {
    const inputs: Record<string, unknown[][]> = {};
    for (const s of this.graph.sources) inputs[s.nodeId] = [[]];
    return { time, epoch, inputs, runs: 'coordinator', writeEmptyBatches: false, quiet: true, sinks: await this.outputFiles(this.sinkStore, time), deadLetters: await filesUnder(this.blobs, keys.deadLetterPrefix(time)) };
  }

  /** What batch `t` committed: its sealed input, and its outputs and dead letters as they stand now. */
  private async capture(time: number, epoch: number): Promise<Commit> {
    const record = (await this.view.get<BatchRecord>(keys.batch(time)))!.value;
    const inputs: Record<string, unknown[][]> = {};
    for (const [nodeId, splits] of Object.entries(record.splits)) {
      const source = this.sources(undefined)(this.graph.source(nodeId), { blobs: this.blobs, job: 'sim', batchInterval: this.plan.interval });
      inputs[nodeId] = [];
      for (const split of splits as InputSplit[]) inputs[nodeId].push(split.open === true ? [] : (await source.read(split)).records);
    }
    return {
      time,
      epoch,
      inputs,
      writeEmptyBatches: record.writeEmptyBatches !== false,
      runs: typeof record.runs === 'string' ? record.runs : 'workers',
      sinks: await this.outputFiles(this.sinkStore, time),
      deadLetters: await filesUnder(this.blobs, keys.deadLetterPrefix(time)),
    };
  }

  /** The output files of batch `time` in `store`. */
  async outputFiles(store: BlobStore, time: number): Promise<Files> {
    const out: Files = {};
    for (const location of outputLocations(this.graph.outputs, time)) Object.assign(out, await filesUnder(store, `${location}/`));
    return out;
  }

  /**
   * Runs the whole seed: a coordinator invocation every minute (EventBridge's schedule) through
   * the fault window, then fault-free minutes until the job has caught up or `minutes` have
   * passed; then until nothing is left to happen (late writes land).
   */
  async run(): Promise<void> {
    const p = this.plan;
    const schedule = (m: number) => {
      const at = p.start + m * 60_000;
      this.sim.at(at, undefined, `schedule ${m}`, () => {
        if (at >= p.faultsUntil && m > 0 && this.caughtUp(at)) {
          this.caughtUpAt = at;
          return;
        }
        this.invokeCoordinator(`coord-${m}`);
        if (m + 1 < p.minutes) schedule(m + 1);
        else this.sim.at(at + 60_000, undefined, 'last check', () => {
          if (this.caughtUp(at + 60_000)) this.caughtUpAt = at + 60_000;
        });
      });
      // EventBridge delivers at least once: now and then the same minute's event arrives twice.
      if (at < p.faultsUntil && this.rng.chance(p.coordinator.duplicate)) {
        this.sim.at(at + this.rng.between(0, 30_000), undefined, `schedule ${m} again`, () => this.invokeCoordinator(`coord-${m}b`));
      }
    };
    schedule(0);
    await this.sim.run();
  }

  /** Whether the batches due by the end of the minute before `at` are committed (a fault-free minute ran them). */
  caughtUp(at: number): boolean {
    return this.lastCommitted >= this.dueBy(at);
  }

  /** The last batch a coordinator that started at `at - 60 s` must have committed when it ends. */
  dueBy(at: number): number {
    return at - 15_000 - 3 * this.plan.interval;
  }

  /** When the job was found caught up after the fault window (undefined: it never was). */
  caughtUpAt: number | undefined;

  /** The last committed batch. */
  get lastCompleted(): number {
    return this.lastCommitted;
  }

  get invocations(): number {
    return this.lambda.invocations;
  }
}
