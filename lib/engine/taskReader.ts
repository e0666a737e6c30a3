import { FetchFailedError, NotQuietError, type SluiceError } from '../core/errors.ts';
import type { Batch, PartitionReader } from '../plan/batch.ts';
import type { JobGraph } from '../plan/graph.ts';
import { messageOf, setsAside, userFunctionError } from '../plan/recordErrors.ts';
import type { StateHeld, StateIO, StateOwner } from '../plan/state/format.ts';
import type { BlobStore, InputSplit, RecordSource } from '../ports/index.ts';
import { decodeRecords } from './codec.ts';
import { jsonLine } from './format.ts';
import type { BlockRef, TaskDescriptor } from './protocol.ts';
import { TaskPayloadError } from './taskPayload.ts';
import { type StateCache, TaskState } from './taskState.ts';

/** What a task's reader needs of the worker that runs it (a `Worker`). */
export interface TaskHost {
  readonly graph: JobGraph;
  readonly rt: { readonly blobs: BlobStore };
  readonly stateCache: StateCache;
  /** The adapter that reads splits of source `nodeId`. */
  adapter(nodeId: string): RecordSource;
}

/**
 * Reads a task's inputs (source splits, shuffle segments, cached partitions and state) and takes
 * the failures of user functions: it throws them, or keeps them as dead letters for the task's
 * answer (lib/plan/recordErrors.ts).
 */
export class TaskReader implements PartitionReader {
  inputRecords = 0;
  /** Records read from shuffle segments and cached partitions. */
  blockRecords = 0;
  position: { nodeId: string; partition: number; offset: number } | undefined;
  /** Records set aside under `onRecordError: 'dead-letter'`, as JSON lines. */
  deadLetters: string[] | undefined;
  sealed: Record<string, Record<number, InputSplit>> | undefined;
  reads: Record<string, Record<number, number>> | undefined;
  /** What each stateful node's partition holds once saved. */
  held: Record<string, StateHeld> | undefined;
  readonly time: number;
  readonly quiet: boolean;

  constructor(
    private readonly task: TaskDescriptor,
    private readonly worker: TaskHost,
  ) {
    this.time = task.time;
    this.quiet = task.quiet === true;
  }

  readsCache(dataset: Batch<unknown>, partition: number): boolean {
    return this.task.cacheReads[`${dataset.id}/${partition}`] !== undefined;
  }

  stateIO(dataset: StateOwner, partition: number): StateIO {
    const w = this.worker;
    return new TaskState(dataset, partition, this.task, w.graph.batchInterval, w.rt.blobs, w.stateCache, (held) => {
      (this.held ??= {})[dataset.node.id] = held;
    });
  }

  quietInput(nodeId: string, segments: readonly (readonly unknown[])[]): void {
    if (segments.some((s) => s.length > 0)) throw new NotQuietError(`${nodeId} has input in a batch cut empty`);
  }

  recordFailed(label: string, record: unknown, error: unknown): void {
    const err = userFunctionError(label, { record }, error);
    if (!setsAside(this.worker.graph.onRecordError, err)) throw err;
    this.setAside(label, error, err, { record: toJsonSafe(record) });
  }

  keyFailed(label: string, key: unknown, records: readonly unknown[], error: unknown, note?: string): void {
    const err = userFunctionError(label, { key }, error);
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
        error: messageOf(error) || err.message,
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

  async shuffle(shuffle: Batch<unknown>, parentIndex: number, partition: number): Promise<readonly (readonly unknown[])[]> {
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
    let records: unknown[];
    if ('inline' in ref) records = decodeRecords(ref.inline);
    else {
      const blobs = this.worker.rt.blobs;
      const bytes = ref.end === Number.POSITIVE_INFINITY ? await blobs.get(ref.blob) : await blobs.getRange(ref.blob, ref.start, ref.end);
      if (!bytes) throw new FetchFailedError(`map output ${ref.blob} is missing`, ref.stage, ref.partition);
      records = decodeRecords(bytes);
    }
    this.blockRecords += records.length;
    return records;
  }
}

/** A record as JSON, or its text when JSON cannot hold it (cycles, bigints, functions). */
export function toJsonSafe(record: unknown): unknown {
  try {
    JSON.stringify(record);
    return record === undefined ? null : record;
  } catch {
    // A dead letter must always be written: what JSON cannot hold goes as its text, or failing that as what it is.
    try {
      return String(record);
    } catch {
      return Object.prototype.toString.call(record);
    }
  }
}
