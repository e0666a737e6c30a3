/**
 * The ports: the only things the engine knows of the world around it. Local mode and AWS mode
 * differ only in which adapters are plugged in here (docs/design.md §1). Interfaces only.
 */
import type { BatchMetricFields } from '../core/metrics.ts';
import type { JsonValue } from '../core/values.ts';

// JSON is what every layer shares (lib/core/values.ts); the ports name it for their adapters.
export type { JsonValue };

/**
 * Immutable blobs by key: shuffle output, received input blocks, state, large lineage parts and
 * sink files. Writes are whole-object and idempotent (the engine only writes deterministic
 * content to a given key, or a key unique to one task attempt), so no conditional writes are needed.
 *
 * @example
 * ```ts
 * await blobs.put('shuffle/1000/m0', bytes);
 * const seg = await blobs.getRange('shuffle/1000/m0', 128, 512); // bytes [128, 512)
 * ```
 */
export interface BlobStore {
  /** Writes (or overwrites) the whole object. Readers never see a partial object. */
  put(key: string, body: Uint8Array | string): Promise<void>;
  /** The object's bytes, or `undefined` when there is no such key. */
  get(key: string): Promise<Uint8Array | undefined>;
  /** Bytes `[start, end)` of the object, or `undefined` when there is no such key. */
  getRange(key: string, start: number, end: number): Promise<Uint8Array | undefined>;
  /** Whether the key exists. */
  exists(key: string): Promise<boolean>;
  /** Removes the keys that exist; missing keys are ignored. */
  delete(keys: readonly string[]): Promise<void>;
  /** Every key that starts with `prefix`, in lexicographic order. */
  list(prefix: string): Promise<string[]>;
}

/** One item of the {@link MetaStore}. `version` grows by one at every write; `epoch` fences writers. */
export interface MetaItem<T extends JsonValue = JsonValue> {
  readonly key: string;
  readonly version: number;
  readonly epoch: number;
  readonly value: T;
}

/**
 * Small JSON items with single-item conditional writes: the lease, the job checkpoint and a
 * lineage record per batch. Correctness relies on nothing else (no transactions), so DynamoDB,
 * LocalStack and the emulators all qualify.
 *
 * @example
 * ```ts
 * const cur = await meta.get('checkpoint');
 * const ok = await meta.put('checkpoint', next, { expectedVersion: cur?.version ?? 0, epoch: myEpoch });
 * if (!ok) throw new Error('someone else moved the checkpoint'); // fenced or raced
 * ```
 */
export interface MetaStore {
  get<T extends JsonValue = JsonValue>(key: string): Promise<MetaItem<T> | undefined>;
  /**
   * Writes `value` only if the stored item's version equals `expectedVersion` (0: the item must
   * not exist; `'any'`: any version) and the stored epoch is not greater than `epoch`.
   * Returns the new version, or `undefined` when the condition failed (nothing was written).
   */
  put(key: string, value: JsonValue, condition: { expectedVersion: number | 'any'; epoch: number }): Promise<number | undefined>;
  /** Deletes the item if its epoch is not greater than `epoch`; a missing item is ignored. */
  delete(key: string, condition: { epoch: number }): Promise<void>;
  /** Keys that start with `prefix`, in lexicographic order. */
  list(prefix: string): Promise<string[]>;
}

/**
 * Runs one task somewhere: in this process, in a worker thread, or in a worker Lambda.
 * The payload and the result are plain data (structured-clone safe; `Uint8Array` allowed).
 *
 * @example
 * ```ts
 * const result = await invoker.invoke(task);
 * ```
 */
export interface Invoker {
  invoke(task: unknown): Promise<unknown>;
  /** How many tasks it runs at once; the coordinator sizes its waves by it. */
  readonly parallelism: number;
  /** Releases threads or connections. */
  close(): Promise<void>;
}

/**
 * Time for the coordinator: every wait of the engine (batch times, retry backoff, task timeouts)
 * goes through it, so a test clock or the simulation decides when each one ends. The wall clock
 * sleeps; the manual clock of the test harness jumps.
 *
 * @example
 * ```ts
 * await clock.sleepUntil(batchTime);                       // the caller waits: a manual clock jumps there
 * await clock.deadline(clock.now() + timeoutMs, signal);   // a timer beside other work: it never moves a manual clock
 * ```
 */
export interface Clock {
  now(): number;
  /**
   * Resolves once `now() >= time` (or at once, if it is already), or when `signal` aborts. The
   * caller has nothing else to do until then, so a manual clock jumps to `time`.
   */
  sleepUntil(time: number, signal?: AbortSignal): Promise<void>;
  /**
   * Resolves once `now() >= time`, or when `signal` aborts, like {@link Clock.sleepUntil}, but
   * for a timer that runs beside other work (a task timeout): a manual clock does not jump for
   * it; it fires when something else moves the clock past `time`.
   */
  deadline(time: number, signal?: AbortSignal): Promise<void>;
}

/**
 * Where per-batch metrics go (CloudWatch EMF on AWS, the progress line locally).
 *
 * @example
 * ```ts
 * metrics.batch({ batchTime, inputRecords: 1000, schedulingDelayMs: 3, processingDelayMs: 40, totalDelayMs: 43 });
 * ```
 */
export interface Metrics {
  batch(info: BatchMetrics): void;
  /** A batch failed (its coordinator gives up on it; the next one retries it from its lineage). */
  batchFailed?(info: { readonly job: string; readonly batchTime: number }): void;
}

/**
 * What {@link Metrics} is told about every completed batch: the job and batch time, and the value of
 * each completed-batch metric of the catalogue (`lib/core/metrics.ts`) under its `portField`.
 */
export interface BatchMetrics extends BatchMetricFields {
  readonly job: string;
  readonly batchTime: number;
}

/** An input split: one input partition of one batch, as plain JSON (a shard range, a block, a file). */
export type InputSplit = { readonly [key: string]: JsonValue };

/** What a {@link RecordSource} may use. */
export interface SourceIO {
  /** The job's blob store, for received blocks. */
  readonly blobs: BlobStore;
  /** The job name. */
  readonly job: string;
  /** The job's batch interval (ms). */
  readonly batchInterval?: number;
  /**
   * On the coordinator, its epoch: blocks written at a cut are named with it, so a superseded
   * coordinator's late cut never overwrites the blocks a newer one sealed.
   */
  readonly epoch?: number;
}

/**
 * Where a stream's records come from. `cut` runs on the coordinator once per batch; `read` runs on
 * a worker for one split. A split returned by `cut` is final unless it has `open: true`: an open
 * split is read up to the batch boundary by the task, which reports the range it consumed
 * (`sealedSplit`, without `open`) for the coordinator to seal: every later read of that partition
 * reads exactly that range, so a recomputation sees the same records. Two reads of an open split
 * may consume different ranges (records arrive while it is read), so the engine never writes
 * output from one before its range is sealed.
 *
 * @example
 * ```ts
 * const { splits, state } = await source.cut(2000, previousState);
 * const { records } = await source.read(splits[0]);
 * ```
 */
export interface RecordSource {
  /** Starts receiving (push sources such as sockets); called once, on the coordinator only. */
  start?(): Promise<void>;
  /** Stops receiving. */
  stop?(): Promise<void>;
  /**
   * The splits of the batch that ends at `time`. `state` is the value this source returned for
   * the previous batch (`undefined` at the very first batch of a job); the returned `state` is
   * stored in the lineage record and, on commit, in the job checkpoint. With `limit` (backpressure),
   * a source that can hold records back hands out at most that many in this batch; one that
   * cannot (a queue, a file) ignores it. With `maxBytes` (a batch meant to run inside the
   * coordinator), a source whose splits are open caps them at about that many bytes too, and marks
   * a sealed split that stopped there `full: true`; an open split's `max` is its record cap.
   */
  cut(time: number, state: JsonValue | undefined, limit?: number, maxBytes?: number): Promise<{ splits: InputSplit[]; state: JsonValue }>;
  /**
   * Reads one split. For an open split, also returns the sealed split it consumed. Records that
   * could not be decoded are left out of `records` and listed in `failures` (with their place in
   * the split), for the engine to fail the batch or set them aside as dead letters.
   */
  read(split: InputSplit): Promise<{ records: unknown[]; sealedSplit?: InputSplit; failures?: readonly SourceRecordFailure[] }>;
  /**
   * For sources with open splits: the position after the batch, from the splits as they were
   * sealed (e.g. each shard's last sequence number). Called on the coordinator before the commit;
   * without it, the `state` returned by `cut` is kept.
   */
  advance?(state: JsonValue, sealedSplits: readonly InputSplit[]): JsonValue;
  /**
   * Whether a batch that read nothing left the source where `before` had it: `after` differs at
   * most in bookkeeping that a later cut may as well redo. A quiet batch (docs/design.md §4) then
   * commits nothing. Without it, the two must be equal as JSON.
   *
   * @example
   * ```ts
   * // Kinesis: an empty read of a shard that has no position yet moves its resume point (a newer
   * // iterator of the same place), not its position.
   * unmoved: (before, after) => JSON.stringify(withoutResume(before)) === JSON.stringify(withoutResume(after)),
   * ```
   */
  unmoved?(before: JsonValue, after: JsonValue): boolean;
  /**
   * The batch that consumed `input` is committed: a source that acknowledges or deletes what it
   * consumed (a queue's messages) does it here, never before. The contract, for coordinators that
   * overlap in time (docs/design.md §4):
   * - It is called on the coordinator only after that coordinator's own commit of the batch
   *   succeeded, so it never acknowledges input that is not committed.
   * - It is called at least once, not exactly once: a coordinator that dies right after its
   *   commit never calls it, so a starting coordinator calls it for the last committed batch; a
   *   superseded coordinator that resumes late may call it for a batch after a newer one called it
   *   for a later batch. Acknowledge idempotently, and never move a cumulative acknowledgement
   *   (an offset) backwards.
   * - A throw does not fail or undo the batch: the coordinator logs it and calls again, with the
   *   same input and before any later batch's input of the same source, before its next cut and
   *   when it stops. A call can still be lost for good (a coordinator that dies with one
   *   pending): a source that must acknowledge everything carries what it has not
   *   acknowledged yet in its `state`, which each call hands back as committed.
   * - Input whose acknowledgement is late may be delivered again by the queue (its visibility
   *   timeout passed): a cut must not hand out again what a committed batch consumed (remember
   *   recent message ids in `state`, and acknowledge the repeats).
   *
   * @example
   * ```ts
   * // An SQS-like source: the cut receives messages (hidden from other consumers for the
   * // visibility timeout) into splits that keep their receipt handles; only a committed batch
   * // deletes them. Deleting twice is harmless: SQS ignores a handle already deleted.
   * async committed({ splits }) {
   *   const handles = splits.flatMap((s) => (s.receipts as string[] | undefined) ?? []);
   *   for (let i = 0; i < handles.length; i += 10) await sqs.deleteMessageBatch(queueUrl, handles.slice(i, i + 10));
   * }
   * ```
   */
  committed?(input: CommittedInput): Promise<void>;
  /**
   * The splits of the last `cut` will not be used: an older coordinator, still running, wrote
   * its own lineage record of that batch first, and this coordinator goes on from that one.
   * A source that took records out of a buffer at the cut gives them back, in order.
   */
  abandon?(splits: readonly InputSplit[]): void;
}

/** What a committed batch consumed from one source, as {@link RecordSource.committed} is told. */
export interface CommittedInput {
  /** The batch time. */
  readonly time: number;
  /** The source's splits as the batch sealed them; an `open: true` split was never read and consumed nothing. */
  readonly splits: readonly InputSplit[];
  /** The source's position after the batch, as the checkpoint holds it. */
  readonly state: JsonValue | undefined;
}

/** A record a source could not decode: where it was, what it was (as plain data), and why. */
export interface SourceRecordFailure {
  /** Its position among the split's records. */
  readonly index: number;
  /** What is known of the raw record (bytes as base64, keys, sequence numbers). */
  readonly record: unknown;
  readonly error: Error;
}

/**
 * Builds the adapter for a source node of the plan. `spec.kind` says which kind
 * (`queue`, `generator`, `socket`, `textFile`, `receiver`, `kinesis`, ...).
 */
export type SourceFactory = (spec: SourceSpec, io: SourceIO) => RecordSource;

/** The description of a source node, as recorded in the plan. `make` holds in-process parts (functions, data). */
export interface SourceSpec {
  readonly nodeId: string;
  readonly kind: string;
  readonly params: { readonly [key: string]: JsonValue };
  /** Non-JSON parts that only exist in memory (a queue's arrays, a generator function, a custom receiver). */
  readonly local?: unknown;
}

/**
 * Resolves an output location such as `out/wordcount` or `s3://bucket/prefix` to a blob store and
 * a key prefix within it.
 *
 * @example
 * ```ts
 * const { store, key } = sinks('out/wordcount-1000'); // local directory
 * await store.put(`${key}/part-00000`, text);
 * ```
 */
export type SinkResolver = (location: string) => { store: BlobStore; key: string };

/** Where `print()` and progress lines go. */
export interface OutputLog {
  /** Writes one block of text (a `print()` block). */
  print(text: string): void;
  /** Informational line (progress, recovery). */
  info(line: string): void;
  /** Something went wrong but the engine carries on (a retried task). */
  warn(line: string): void;
}
