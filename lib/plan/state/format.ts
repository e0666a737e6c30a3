import { deserialize, serialize } from 'node:v8';
import { SluiceError } from '../../core/errors.ts';
import type { BlobStore, JsonValue } from '../../ports/index.ts';
import { mapKey } from '../keys.ts';

/**
 * Durable state of stateful operators (windows, updateStateByKey, mapWithState): the one
 * definition of its format. Workers read and write it through {@link StateBlobs}; the coordinator
 * moves its pointers ({@link nextPointer}) and deletes what a pointer no longer reaches
 * ({@link pointerBlobs}, {@link parseStateKey}).
 *
 * Format, version 1 (`STATE_FORMAT`). Per stateful node and partition, blobs under
 * `state/<nodeId>/p<partition>/` ({@link stateKey}):
 * - `full-<time>`: every entry of the partition's keyed state after batch `time`;
 * - `delta-<time>`: the entries batch `time` changed, and the keys it removed;
 * - `slice-<time>`: batch `time`'s own input to a window (reduced per key, or raw records).
 * Each blob is a V8-serialised array; entries are `[key, value, lastSeen]`, a removal in a delta is
 * `[key]`; an inverse window keeps `[key, undefined, time]` for a key whose value it dropped at
 * `time` after a dead letter, until it rebuilds the value from the slices. The checkpoint's
 * `state[nodeId]` ({@link StatePointer}) says which full blob to start from and which deltas follow.
 * A full blob is written at the node's first batch and whenever the batch time is a multiple of its
 * checkpoint interval; the others write deltas. A reader that finds a newer format version refuses
 * it rather than misread it.
 */
export const STATE_FORMAT = 1;

/** Where a stateful node's durable state is (kept in the checkpoint and the batch record). */
export interface StatePointer {
  readonly [key: string]: JsonValue | undefined;
  readonly format: number;
  /** Partitions the state is split into; it cannot change without a reset. */
  readonly partitions: number;
  /** The node's first batch: slices of earlier batches are empty, not lost. */
  readonly firstTime: number;
  /** The last batch that wrote a full blob. */
  readonly fullTime: number;
  /**
   * The last batch that ran the node. Batches after it that did not run it were quiet (no input,
   * nothing the node would change: the coordinator's `restsAt`): their slices are empty and the
   * keyed state is as `lastTime` left it.
   */
  readonly lastTime: number;
  /**
   * Runs of quiet batches before `lastTime` whose slices a window may still read, as
   * `[first, last]` batch times: they wrote no slice, their slices are empty. Absent when none.
   */
  readonly quiet?: [number, number][];
  /** Entries of the keyed state after `lastTime`, over every partition (absent: not known, as in pointers of earlier releases). */
  readonly keys?: number;
  /** The oldest `lastSeen` among those entries (absent when there are none, or not known). */
  readonly oldest?: number;
}

/** What one partition's keyed state holds after a batch: its task reports it, the coordinator adds the partitions up into the {@link StatePointer}. */
export interface StateHeld {
  readonly [key: string]: JsonValue | undefined;
  readonly keys: number;
  readonly oldest?: number;
}

/** The sum of partitions' {@link StateHeld}: entries added up, the oldest `lastSeen` of all. */
export function addHeld(a: StateHeld | undefined, b: StateHeld): StateHeld {
  const oldest = a?.oldest === undefined ? b.oldest : b.oldest === undefined ? a.oldest : Math.min(a.oldest, b.oldest);
  return { keys: (a?.keys ?? 0) + b.keys, ...(oldest === undefined ? {} : { oldest }) };
}

/** When a stateful node writes a full blob rather than a delta (its operator says). */
export interface CheckpointPolicy {
  /** Full state blob every this many ms (a multiple of the batch interval). */
  checkpointMs: number;
  /** Writes a full blob every batch (the operator rewrites every key anyway). */
  readonly alwaysFull?: boolean;
}

/**
 * Whether batch `time` writes a full blob (else a delta). The first batch after quiet ones does:
 * the deltas of a pointer then always follow each other batch by batch ({@link pointerBlobs}).
 */
export function writesFull(prev: StatePointer | undefined, time: number, interval: number, policy: CheckpointPolicy): boolean {
  return prev === undefined || policy.alwaysFull === true || time % policy.checkpointMs === 0 || prev.lastTime !== time - interval;
}

/**
 * The pointer after batch `time` of a node whose previous pointer is `prev`; `held` is what its
 * partitions reported they hold (undefined for a node without keyed state, such as a window without an inverse).
 */
export function nextPointer(
  prev: StatePointer | undefined,
  time: number,
  interval: number,
  partitions: number,
  policy: CheckpointPolicy & { readonly keepSlicesMs?: number },
  held?: StateHeld,
): StatePointer {
  // The quiet runs a later batch's window may still reach: slices kept back to `time - keepSlicesMs`.
  const reach = time - (policy.keepSlicesMs ?? 0);
  const quiet: [number, number][] = (prev?.quiet ?? []).filter(([, last]) => last >= reach);
  if (prev && prev.lastTime < time - interval && time - interval >= reach) quiet.push([prev.lastTime + interval, time - interval]);
  return {
    format: STATE_FORMAT,
    partitions,
    firstTime: prev?.firstTime ?? time,
    fullTime: writesFull(prev, time, interval, policy) ? time : prev!.fullTime,
    lastTime: time,
    ...(quiet.length ? { quiet } : {}),
    ...(held ?? {}),
  };
}

/** The kinds of state blob. */
export type StateBlobKind = 'full' | 'delta' | 'slice';

const t15 = (time: number) => String(time).padStart(15, '0');

/**
 * Where every state blob of a node lives (a prefix of {@link stateKey}'s names).
 *
 * @example
 * ```ts
 * statePrefix('window-3'); // 'state/window-3/'
 * ```
 */
export function statePrefix(nodeId: string): string {
  return `state/${nodeId}/`;
}

/** The name of a state blob. */
export function stateKey(nodeId: string, partition: number, kind: StateBlobKind, time: number): string {
  return `${statePrefix(nodeId)}p${partition}/${kind}-${t15(time)}`;
}

/** What a blob name says, or undefined when it names no state blob. */
export function parseStateKey(key: string): { nodeId: string; partition: number; kind: StateBlobKind; time: number } | undefined {
  const m = /^state\/([^/]+)\/p(\d+)\/(full|delta|slice)-(\d+)$/.exec(key);
  return m ? { nodeId: m[1], partition: Number(m[2]), kind: m[3] as StateBlobKind, time: Number(m[4]) } : undefined;
}

/** The blobs (in each partition) that make up the keyed state at `pointer`, in the order they are applied: its full blob, then every delta after it. */
export function pointerBlobs(pointer: StatePointer, interval: number): { kind: 'full' | 'delta'; time: number }[] {
  const out: { kind: 'full' | 'delta'; time: number }[] = [{ kind: 'full', time: pointer.fullTime }];
  for (let t = pointer.fullTime + interval; t <= pointer.lastTime; t += interval) out.push({ kind: 'delta', time: t });
  return out;
}

/** One key's state: the key, its value, and the time of the last record for it. */
export type StateEntry = [key: unknown, value: unknown, lastSeen: number];

/**
 * The keyed state of one partition, tracking what changed since the last save so a delta holds
 * only that. Keys are compared by their canonical encoding (tuples meet as in shuffles).
 */
export class KeyedState {
  private readonly entries = new Map<unknown, StateEntry>();
  private readonly changed = new Set<unknown>();
  private readonly removed = new Map<unknown, unknown>();

  constructor(private readonly label: string) {}

  private mk(key: unknown): unknown {
    return mapKey(key, this.label);
  }

  get size(): number {
    return this.entries.size;
  }

  get(key: unknown): StateEntry | undefined {
    return this.entries.get(this.mk(key));
  }

  set(key: unknown, value: unknown, lastSeen: number): void {
    const k = this.mk(key);
    const e = this.entries.get(k);
    if (e) {
      e[1] = value;
      e[2] = lastSeen;
    } else {
      this.entries.set(k, [key, value, lastSeen]);
    }
    this.changed.add(k);
    this.removed.delete(k);
  }

  delete(key: unknown): void {
    const k = this.mk(key);
    if (!this.entries.delete(k)) return;
    this.changed.delete(k);
    this.removed.set(k, key);
  }

  /** The entries, in first-set order. */
  values(): IterableIterator<StateEntry> {
    return this.entries.values();
  }

  /** Every entry (a full blob). */
  full(): StateEntry[] {
    return [...this.entries.values()].map((e) => [e[0], e[1], e[2]]);
  }

  /** What changed since the last {@link KeyedState.markSaved} (a delta blob). */
  delta(): unknown[] {
    const out: unknown[] = [];
    for (const k of this.changed) {
      const e = this.entries.get(k)!;
      out.push([e[0], e[1], e[2]]);
    }
    for (const key of this.removed.values()) out.push([key]);
    return out;
  }

  markSaved(): void {
    this.changed.clear();
    this.removed.clear();
  }

  /** Applies a delta blob read back. */
  applyDelta(delta: readonly unknown[]): void {
    for (const d of delta as unknown[][]) {
      if (d.length === 1) this.delete(d[0]);
      else this.set(d[0], d[1], d[2] as number);
    }
  }

  static fromFull(label: string, full: readonly unknown[]): KeyedState {
    const s = new KeyedState(label);
    for (const e of full as StateEntry[]) s.entries.set(s.mk(e[0]), [e[0], e[1], e[2]]);
    return s;
  }
}

/** What a stateful task can do with its node's durable state (the worker implements it). */
export interface StateIO {
  readonly time: number;
  readonly interval: number;
  readonly partition: number;
  /** The keyed state after the previous batch; `initial` fills it at the node's very first batch. */
  load(initial?: () => Iterable<readonly [unknown, unknown]>): Promise<KeyedState>;
  /** Persists the state after this batch (full or delta, as {@link writesFull} says). */
  save(state: KeyedState): Promise<void>;
  /** Writes this batch's slice of a window. */
  writeSlice(records: unknown[]): Promise<void>;
  /** The slice of an earlier batch; `[]` for times before the node's first batch. */
  readSlice(time: number): Promise<unknown[]>;
}

/** What the durable state of a stateful dataset needs to know of it (a `StatefulBatch`). */
export interface StateOwner {
  /** The node whose state it is: blob names carry its id. */
  readonly node: { readonly id: string };
  readonly numPartitions: number;
  /** When it writes full blobs. */
  readonly op: CheckpointPolicy;
}

/** A state blob's bytes. Its own encoding, not the shuffle's: durable bytes must not change when the transient ones do. */
function encode(records: readonly unknown[]): Uint8Array {
  const b = serialize(records);
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

/**
 * The blobs of one partition of a stateful node at batch `time`, whose state after the previous
 * batch is at `prev` (undefined at the node's first batch): reads the keyed state back from
 * its full blob and deltas, writes this batch's, and reads and writes window slices.
 */
export class StateBlobs {
  constructor(
    private readonly blobs: Pick<BlobStore, 'get' | 'put'>,
    readonly nodeId: string,
    readonly partition: number,
    readonly time: number,
    readonly interval: number,
    readonly prev: StatePointer | undefined,
  ) {}

  /**
   * Why the state at `prev` cannot be where batch `time` of a node of `partitions` partitions
   * starts (a newer format, other partitions, not the batch before), or undefined when it can.
   */
  refusal(partitions: number): string | undefined {
    const prev = this.prev;
    if (!prev) return undefined;
    if (prev.format > STATE_FORMAT) return `${this.nodeId}: its state was written in format ${prev.format}, newer than this release reads (${STATE_FORMAT})`;
    if (prev.partitions !== partitions) {
      return `${this.nodeId}: its state has ${prev.partitions} partitions, the job now asks for ${partitions}; the partitions of a stateful operator cannot change without starting from fresh state`;
    }
    // Earlier is fine (the batches between were quiet: they changed nothing); later is not.
    if (prev.lastTime >= this.time) return `${this.nodeId}: its state is at batch ${prev.lastTime}, but batch ${this.time} needs the state of an earlier batch`;
    return undefined;
  }

  private key(kind: StateBlobKind, time: number): string {
    return stateKey(this.nodeId, this.partition, kind, time);
  }

  private async read(kind: StateBlobKind, time: number): Promise<unknown[]> {
    const bytes = await this.blobs.get(this.key(kind, time));
    if (!bytes) {
      throw new SluiceError(`${this.nodeId}: state blob ${this.key(kind, time)} is missing; the state of partition ${this.partition} cannot be rebuilt`, {
        nodeId: this.nodeId,
        batchTime: this.time,
        partition: this.partition,
      });
    }
    return deserialize(bytes) as unknown[];
  }

  /** The keyed state at `prev`: its full blob with every later delta applied, nothing marked changed. */
  async readState(prev: StatePointer): Promise<KeyedState> {
    let s: KeyedState | undefined;
    for (const b of pointerBlobs(prev, this.interval)) {
      const records = await this.read(b.kind, b.time);
      if (s) s.applyDelta(records);
      else s = KeyedState.fromFull(this.nodeId, records);
    }
    s!.markSaved();
    return s!;
  }

  /** Writes the state after batch `time`: a full blob or a delta, as `policy` says; marks it saved. */
  async writeState(state: KeyedState, policy: CheckpointPolicy): Promise<void> {
    const full = writesFull(this.prev, this.time, this.interval, policy);
    await this.blobs.put(this.key(full ? 'full' : 'delta', this.time), encode(full ? state.full() : state.delta()));
    state.markSaved();
  }

  /** Writes this batch's slice of a window. */
  async writeSlice(records: unknown[]): Promise<void> {
    await this.blobs.put(this.key('slice', this.time), encode(records));
  }

  /** The slice of an earlier batch; `[]` for times before the node's first batch, and for quiet batches (after the pointer's last, or in its quiet runs). */
  async readSlice(time: number): Promise<unknown[]> {
    const first = this.prev?.firstTime ?? this.time;
    if (time < first || (this.prev && (time > this.prev.lastTime || this.prev.quiet?.some(([a, b]) => a <= time && time <= b)))) return [];
    return this.read('slice', time);
  }
}
