import { type StateHeld, type StatePointer, stateKey, statePrefix } from '../plan/state/format.ts';
import type { InputSplit, JsonValue } from '../ports/index.ts';

/**
 * The messages and durable records of the batch protocol (docs/design.md §4). Everything here is
 * plain data: it crosses worker-thread and Lambda boundaries and lands in the MetaStore.
 */

/** Which stage a task belongs to. */
export type StageRef =
  /** Map side of a shuffle: computes partition p of `shuffle`'s parent `parent` and buckets it. */
  | { readonly kind: 'map'; readonly shuffle: string; readonly parent: number }
  /** Computes partition p of a dataset read by several consumers and stores it. */
  | { readonly kind: 'cache'; readonly dataset: string }
  /** Computes partition p of `dataset` and applies an action (collect, count, an output). */
  | { readonly kind: 'result'; readonly dataset: string; readonly action: TaskAction; readonly fromCache?: boolean };

/** The shippable actions (a `foreachPartition` function of `foreachRDD` runs on the coordinator instead). */
export type TaskAction = { readonly kind: 'collect'; readonly limit?: number } | { readonly kind: 'count' } | { readonly kind: 'output'; readonly outputId: string };

/** Where a segment of map output or a cached partition is: a byte range of a blob, or inline bytes. */
export type BlockRef = {
  /** Stage key and partition of the task that wrote it, to recompute it if it is lost. */
  readonly stage: string;
  readonly partition: number;
} & ({ readonly blob: string; readonly start: number; readonly end: number } | { readonly inline: Uint8Array } | { readonly empty: true });

/**
 * The version of {@link TaskDescriptor}: a worker refuses tasks of another version. 3: an output
 * task writes no part for an empty partition (the coordinator writes those, when the batch's
 * output has a record), so a worker of version 2 must not run for a coordinator of version 3, nor
 * the other way round.
 */
export const TASK_PROTOCOL = 3;

/** One task: everything a worker needs besides the job's code. */
export interface TaskDescriptor {
  readonly protocol: typeof TASK_PROTOCOL;
  readonly job: string;
  readonly fingerprint: string;
  /** Batch time of the plan the stage belongs to. */
  readonly time: number;
  readonly stage: StageRef;
  /** Key of the stage, for blob names and errors. */
  readonly stageKey: string;
  readonly partition: number;
  readonly attempt: number;
  /** The epoch of the coordinator that sent it: scratch blob names carry it (with a nonce of the run). */
  readonly epoch: number;
  /** How many splits each source has in this batch (the plan's partition counts come from them). */
  readonly splitCounts: { readonly [nodeId: string]: number };
  /** The input splits this task reads, by source node and partition (only those). */
  readonly splits: { readonly [nodeId: string]: { readonly [partition: number]: InputSplit } };
  /** Shuffle segments this task reads, by `<shuffleId>/<parent>/<reducePartition>`, one per map task in map order. */
  readonly shuffleReads: { readonly [key: string]: readonly BlockRef[] };
  /** Cached partitions this task reads, by `<datasetId>/<partition>`. */
  readonly cacheReads: { readonly [key: string]: BlockRef };
  /** Shuffle output larger than this goes to the blob store instead of the result. */
  readonly inlineLimit: number;
  /** Where each stateful node's state is after the previous batch (from the checkpoint). */
  readonly state?: { readonly [nodeId: string]: StatePointer };
  /** Tasks with the same affinity should run where the previous one ran (a worker keeps state in memory). */
  readonly affinity?: string;
  /**
   * Set for the tasks of a quiet batch, which run inside the coordinator only: stateful nodes
   * neither read nor write state, and a task that meets a record writes nothing and fails with
   * `NotQuietError` (the coordinator then runs the batch in full).
   */
  readonly quiet?: true;
}

/** What a map task produced. */
export interface MapOutput {
  readonly blob?: string;
  /** Byte offsets of each reduce partition's segment in the blob (length numReducers + 1). */
  readonly offsets?: readonly number[];
  /** Or the segments themselves, when small. */
  readonly inline?: readonly Uint8Array[];
}

/** What a cache task produced. */
export interface CacheOutput {
  readonly blob?: string;
  readonly inline?: Uint8Array;
}

/** A task's answer. */
export interface TaskResult {
  readonly ok: true;
  /** Records that entered the stage from sources. */
  readonly inputRecords: number;
  /** Records the task read from sources, shuffle segments and cached partitions (the Streaming UI's records in). */
  readonly recordsIn?: number;
  /** Records the task wrote: to the shuffle, to its cached partition, or to its action (the Streaming UI's records out). */
  readonly recordsOut?: number;
  /** Records read per source split, by source node and partition. */
  readonly sourceReads?: { readonly [nodeId: string]: { readonly [partition: number]: number } };
  /** Splits sealed by this task (open splits it read), by source node and partition. */
  readonly sealed?: { readonly [nodeId: string]: { readonly [partition: number]: InputSplit } };
  readonly map?: MapOutput;
  readonly cache?: CacheOutput;
  /** The action's value for a result task. */
  readonly value?: unknown;
  /**
   * Records set aside under `onRecordError: 'dead-letter'`, as JSON lines. The coordinator writes
   * them once the input they came from is sealed, so only the accepted attempt's lines land.
   */
  readonly deadLetters?: readonly string[];
  /** What each stateful node's partition holds after this batch, by node (see `StateHeld`). */
  readonly held?: { readonly [nodeId: string]: StateHeld };
}

/** A task's failure, as plain data. */
export interface TaskFailure {
  readonly ok: false;
  readonly error: {
    readonly name: string;
    readonly message: string;
    readonly stack?: string;
    readonly nodeId?: string;
    readonly batchTime?: number;
    readonly partition?: number;
    /** A RecordError's record, as JSON (left out when large). */
    readonly record?: unknown;
    /** A RecordError's key, as JSON (left out when large). */
    readonly key?: unknown;
  };
  /** Set when the task could not read a map output: the coordinator recomputes it. */
  readonly fetchFailed?: { readonly stage: string; readonly partition: number };
  /** False for errors that will fail the same way again (a wrong payload, a changed plan). */
  readonly retryable: boolean;
}

/** The lineage record of one batch (MetaStore key `batch/<time>`). */
export interface BatchRecord {
  readonly [key: string]: JsonValue;
  time: number;
  fingerprint: string;
  status: 'RUNNING' | 'COMPLETED';
  /** Input splits per source; sealed once read. */
  splits: { [nodeId: string]: InputSplit[] };
  /** Each source's position after this batch. */
  sourceState: { [nodeId: string]: JsonValue };
  /** Where outputs of this batch were written. */
  outputs: string[];
  /**
   * Whether an output without records writes Spark's empty parts and `_SUCCESS` in this batch:
   * the job's `writeEmptyBatches` when the batch was cut, so every coordinator that runs the batch
   * agrees, whatever its own options say. A record of a release before the option lacks it, and
   * is read as true: those releases always wrote them.
   */
  writeEmptyBatches: boolean;
  /** Per-partition state blob pointers written by this batch (windows, keyed state). */
  state: { [nodeId: string]: JsonValue };
  // `runs` (placement.ts `runsOf`): where its tasks run, 'coordinator' or 'workers', decided at
  // the cut; a coordinator that recovers the batch decides again, and the completed record says
  // where it ran. Absent in records of earlier releases, hence not a declared field.
}

/** The job checkpoint (MetaStore key `checkpoint`): the commit point of every batch. */
export interface Checkpoint {
  readonly [key: string]: JsonValue;
  job: string;
  fingerprint: string;
  /** Per-node signatures, to name the nodes that changed when a plan is refused. */
  signatures: { [nodeId: string]: string };
  batchInterval: number;
  /** Time of the last batch whose outputs all exist; the next batch is this plus the interval. */
  lastCompleted: number;
  sourceState: { [nodeId: string]: JsonValue };
  /** Pointers to the current state blobs of stateful nodes. */
  state: { [nodeId: string]: JsonValue };
  /** Backpressure: each source's rate estimator and the rate it allowed (empty without backpressure; absent in checkpoints of earlier releases). */
  rates: { [nodeId: string]: JsonValue };
  // `lastInput`: the last batch that had any input (coordinator.ts), by which windows go to rest.
  // Absent in checkpoints of earlier releases, hence not a declared field.
  // `placement` (placement.ts `PlacementHint`): the last batch's size, from which the next
  // coordinator predicts where its first batch runs. Absent in checkpoints of earlier releases
  // and of jobs that never run a batch in the coordinator, hence not a declared field.
}

/** The coordinator lease (MetaStore key `lease`). */
export interface Lease {
  readonly [key: string]: JsonValue;
  /** Who holds it; empty once released. */
  owner: string;
  expiresAt: number;
  // `quiet` (a QuietRun): quiet batches run past the checkpoint and not committed, kept by every
  // holder until a commit makes them stale. Absent in most leases, hence not a declared field.
}

/**
 * A run of quiet batches (no input, nothing that changes) that a coordinator ran past the
 * checkpoint without committing each: batches up to `through` are done, provided the checkpoint
 * is still at `checkpointVersion` (any commit makes this stale). Written with the lease's release,
 * so an idle minute costs the lease's two writes (docs/design.md §4).
 */
export interface QuietRun {
  readonly [key: string]: JsonValue;
  checkpointVersion: number;
  through: number;
  /**
   * Idle mode (`idleAfter`): the job had no input for that long and nothing pending when the lease
   * was released. Invocations then only look for input, and the one that finds some goes on from
   * the batch due at that moment (the batch times between are quiet, never cut).
   */
  idle: boolean;
}

const t15 = (time: number) => String(time).padStart(15, '0');

/**
 * MetaStore and BlobStore key layout. Names of blobs that attempts may write while another
 * attempt of the same work runs (shuffle and cache output, received blocks) carry who wrote
 * them — `run` is the coordinator's epoch, the attempt and a nonce of the process — so a late
 * writer never overwrites what the accepted attempt wrote. Names that every attempt writes with
 * the same bytes (output parts, state, dead letters) are deterministic.
 */
export const keys = {
  lease: 'lease',
  checkpoint: 'checkpoint',
  /** A deployed job's pause (lib/engine/pause.ts): while it exists, coordinator invocations do nothing. */
  pause: 'pause',
  batch: (time: number) => `batch/${t15(time)}`,
  batchBlobs: (time: number) => `batch/${t15(time)}/`,
  shuffle: (time: number, stageKey: string, partition: number, run: string) => `batch/${t15(time)}/shuffle/${stageKey}/m${partition}-${run}`,
  cache: (time: number, stageKey: string, partition: number, run: string) => `batch/${t15(time)}/cache/${stageKey}/p${partition}-${run}`,
  deadLetters: (time: number, stageKey: string, partition: number) => `dead-letters/${t15(time)}/${stageKey}-p${partition}.jsonl`,
  deadLetterPrefix: (time: number) => `dead-letters/${t15(time)}/`,
  /** A state blob: named by the state format (lib/plan/state/format.ts). */
  state: stateKey,
  statePrefix,
  input: (time: number, nodeId: string, partition: number, epoch: number) => `batch/${t15(time)}/input/${nodeId}/p${partition}-e${epoch}`,
};
