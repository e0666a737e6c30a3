import { JobDefinitionError, SluiceError } from '../api/errors.ts';
import type { JsonValue } from '../ports/index.ts';
import { type Aggregator, CombinerMap, grouping } from './aggregate.ts';
import type { Emit } from './batch.ts';
import type { GraphNode } from './graph.ts';
import { canonicalKey, mapKey, partitionOf } from './keys.ts';

/**
 * Durable state of stateful operators (windows, updateStateByKey, mapWithState).
 *
 * Format, version 1 (`STATE_FORMAT`). Per stateful node and partition, blobs under
 * `state/<nodeId>/p<partition>/`:
 * - `full-<time>`: every entry of the partition's keyed state after batch `time`;
 * - `delta-<time>`: the entries batch `time` changed, and the keys it removed;
 * - `slice-<time>`: batch `time`'s own input to a window (reduced per key, or raw records).
 * Each blob is a V8-serialised array; entries are `[key, value, lastSeen]`, a removal in a delta is
 * `[key]`. The checkpoint's `state[nodeId]` ({@link StatePointer}) says which full blob to start
 * from and which deltas follow. A full blob is written at the node's first batch and whenever the
 * batch time is a multiple of its checkpoint interval; the others write deltas. A reader that finds
 * a newer format version refuses it rather than misread it.
 */
export const STATE_FORMAT = 1;

/** Where a stateful node's durable state is (kept in the checkpoint and the batch record). */
export interface StatePointer {
  readonly [key: string]: JsonValue;
  readonly format: number;
  /** Partitions the state is split into; it cannot change without a reset. */
  readonly partitions: number;
  /** The node's first batch: slices of earlier batches are empty, not lost. */
  readonly firstTime: number;
  /** The last batch that wrote a full blob. */
  readonly fullTime: number;
  /** The last batch that wrote state. */
  readonly lastTime: number;
}

/** Whether batch `time` writes a full blob (else a delta). */
export function writesFull(prev: StatePointer | undefined, time: number, op: Pick<StateOp, 'checkpointMs' | 'alwaysFull'>): boolean {
  return prev === undefined || op.alwaysFull === true || time % op.checkpointMs === 0;
}

/** The pointer after batch `time` of a node whose previous pointer is `prev`. */
export function nextPointer(prev: StatePointer | undefined, time: number, partitions: number, op: Pick<StateOp, 'checkpointMs' | 'alwaysFull'>): StatePointer {
  return {
    format: STATE_FORMAT,
    partitions,
    firstTime: prev?.firstTime ?? time,
    fullTime: writesFull(prev, time, op) ? time : prev!.fullTime,
    lastTime: time,
  };
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

/** The operator-specific part of a stateful node. */
export interface StateOp {
  /** What the map side does with the input: combine values per key, group them, or spread raw records. */
  readonly mapSide: { readonly kind: 'combine'; readonly aggregator: Aggregator<unknown, unknown> } | { readonly kind: 'repartition' };
  /** How long slices are kept (windows), ms; 0 for none. */
  readonly keepSlicesMs: number;
  /** Full state blob every this many ms (a multiple of the batch interval). */
  checkpointMs: number;
  /** Writes a full blob every batch (the operator rewrites every key anyway). */
  readonly alwaysFull?: boolean;
  /** Runs one partition: `segments` are the map outputs of this batch for it. */
  run(segments: readonly (readonly unknown[])[], io: StateIO, emit: Emit<unknown>): Promise<void>;
}

function mergeGroups(segments: readonly (readonly unknown[])[], label: string): CombinerMap<unknown[]> {
  const merged = new CombinerMap<unknown[]>();
  const encode = (k: unknown) => canonicalKey(k, label);
  for (const seg of segments) for (const e of seg as [unknown, unknown[]][]) merged.addCombiner(e[0], e[1].slice(), grouping.combine as (a: unknown[], b: unknown[]) => unknown[], encode);
  return merged;
}

function mergeReduced(segments: readonly (readonly unknown[])[], reduce: (a: unknown, b: unknown) => unknown, label: string): CombinerMap<unknown> {
  const merged = new CombinerMap<unknown>();
  const encode = (k: unknown) => canonicalKey(k, label);
  for (const seg of segments) for (const e of seg as [unknown, unknown][]) merged.addCombiner(e[0], e[1], reduce, encode);
  return merged;
}

/** Runs a user function; its exceptions become RecordErrors naming the node. */
function call<R>(label: string, what: string, fn: () => R): R {
  try {
    return fn();
  } catch (e) {
    if (e instanceof SluiceError) throw e;
    const msg = e instanceof Error ? e.message : String(e);
    throw new SluiceError(`${label}: the ${what} threw: ${msg}`, { nodeId: label, cause: e });
  }
}

/** Initial state entries of partition `p` out of `n`, from an array of pairs. */
export function initialFor(initial: readonly (readonly [unknown, unknown])[] | undefined, p: number, n: number, label: string): () => Iterable<readonly [unknown, unknown]> {
  return () => (initial ?? []).filter(([k]) => partitionOf(k, n, label) === p);
}

/** `updateStateByKey`: every key with state or new values is updated every batch; the whole state is written every batch. */
export class UpdateStateOp implements StateOp {
  readonly mapSide = { kind: 'combine', aggregator: grouping } as const;
  readonly keepSlicesMs = 0;
  // updateStateByKey visits (and may mutate in place) every value every batch: every batch is a full write.
  readonly alwaysFull = true;
  constructor(
    private readonly node: GraphNode,
    private readonly update: (values: unknown[], state: unknown, key: unknown, time: number) => unknown,
    private readonly initial: readonly (readonly [unknown, unknown])[] | undefined,
    public checkpointMs: number,
    private readonly numPartitions: () => number,
  ) {}

  async run(segments: readonly (readonly unknown[])[], io: StateIO, emit: Emit<unknown>): Promise<void> {
    const label = this.node.id;
    const state = await io.load(initialFor(this.initial, io.partition, this.numPartitions(), label));
    const input = mergeGroups(segments, label);
    const t = io.time;
    const apply = (key: unknown, values: unknown[], old: unknown) => {
      const next = call(label, 'update function', () => this.update(values, old, key, t));
      if (next === undefined) state.delete(key);
      else {
        state.set(key, next, t);
        emit([key, next]);
      }
    };
    // Keys with state first, in the order they got it, then new keys in arrival order.
    const newValues = new Map<unknown, [unknown, unknown[]]>();
    input.forEach((k, vs) => newValues.set(mapKey(k, label), [k, vs]));
    for (const e of [...state.values()]) {
      const mk = mapKey(e[0], label);
      const vs = newValues.get(mk);
      newValues.delete(mk);
      apply(e[0], vs ? vs[1] : [], e[1]);
    }
    for (const [k, vs] of newValues.values()) apply(k, vs, undefined);
    await io.save(state);
  }
}

/**
 * The state handle of a `mapWithState` function (Spark's `State`).
 *
 * @example
 * ```ts
 * StateSpec.function((key: string, value: number | undefined, state: State<number>) => {
 *   const sum = (state.getOption() ?? 0) + (value ?? 0);
 *   if (!state.isTimingOut()) state.update(sum);
 *   return [key, sum] as [string, number];
 * });
 * ```
 */
export interface State<S> {
  /** Whether the key has state. */
  exists(): boolean;
  /** The state; throws if there is none. */
  get(): S;
  /** The state, or `undefined`. */
  getOption(): S | undefined;
  /** Sets the state (not allowed while timing out). */
  update(value: S): void;
  /** Removes the state (not allowed while timing out). */
  remove(): void;
  /** True in the last call for a key that timed out. */
  isTimingOut(): boolean;
}

class StateHandle<S> implements State<S> {
  value: S | undefined;
  has: boolean;
  updated = false;
  removed = false;
  constructor(
    entry: StateEntry | undefined,
    private readonly timingOut: boolean,
    private readonly label: string,
  ) {
    this.has = entry !== undefined;
    this.value = entry?.[1] as S | undefined;
  }
  exists(): boolean {
    return this.has;
  }
  get(): S {
    if (!this.has) throw new SluiceError(`${this.label}: State.get() on a key without state; check exists() or use getOption()`, { nodeId: this.label });
    return this.value as S;
  }
  getOption(): S | undefined {
    return this.has ? this.value : undefined;
  }
  update(value: S): void {
    if (this.timingOut) throw new SluiceError(`${this.label}: cannot update the state of a key that is timing out`, { nodeId: this.label });
    if (value === undefined) throw new SluiceError(`${this.label}: State.update(undefined); use remove() to drop a key's state`, { nodeId: this.label });
    this.value = value;
    this.has = true;
    this.updated = true;
    this.removed = false;
  }
  remove(): void {
    if (this.timingOut) throw new SluiceError(`${this.label}: cannot remove the state of a key that is timing out`, { nodeId: this.label });
    this.value = undefined;
    this.has = false;
    this.removed = true;
    this.updated = false;
  }
  isTimingOut(): boolean {
    return this.timingOut;
  }
}

/** Output records of a mapWithState batch: mapped values, and (when asked for) state snapshots. */
export const MAPPED = 0;
export const SNAPSHOT = 1;

/**
 * `mapWithState`: one call per record, then one last call for keys idle longer than the timeout.
 * Only keys that got records, updates, removals or timeouts are written (a delta), so a batch
 * costs what its records cost, not what the whole state costs.
 */
export class MapWithStateOp implements StateOp {
  readonly mapSide = { kind: 'combine', aggregator: grouping } as const;
  readonly keepSlicesMs = 0;
  /** Set when `stateSnapshots()` is used: then every batch also emits the whole state. */
  snapshots = false;
  constructor(
    private readonly node: GraphNode,
    private readonly fn: (key: unknown, value: unknown, state: State<unknown>, time: number) => unknown,
    private readonly timeoutMs: number | undefined,
    private readonly initial: readonly (readonly [unknown, unknown])[] | undefined,
    public checkpointMs: number,
    private readonly numPartitions: () => number,
  ) {}

  async run(segments: readonly (readonly unknown[])[], io: StateIO, emit: Emit<unknown>): Promise<void> {
    const label = this.node.id;
    const t = io.time;
    const state = await io.load(initialFor(this.initial, io.partition, this.numPartitions(), label));
    const input = mergeGroups(segments, label);
    const seen = new Set<unknown>();
    const finish = (key: unknown, h: StateHandle<unknown>, lastSeen: number) => {
      if (h.removed || !h.has) state.delete(key);
      else if (h.updated || state.get(key)?.[2] !== lastSeen) state.set(key, h.value, lastSeen);
    };
    input.forEach((key, values) => {
      seen.add(mapKey(key, label));
      for (const v of values) {
        const h = new StateHandle<unknown>(state.get(key), false, label);
        const out = call(label, 'mapWithState function', () => this.fn(key, v, h, t));
        // Any record resets the idle clock, whether or not the function updated the state.
        finish(key, h, t);
        if (out !== undefined) emit([MAPPED, out]);
      }
    });
    if (this.timeoutMs !== undefined) {
      for (const e of [...state.values()]) {
        if (seen.has(mapKey(e[0], label)) || t - e[2] <= this.timeoutMs) continue;
        const h = new StateHandle<unknown>(e, true, label);
        const out = call(label, 'mapWithState function', () => this.fn(e[0], undefined, h, t));
        state.delete(e[0]);
        if (out !== undefined) emit([MAPPED, out]);
      }
    }
    if (this.snapshots) for (const e of state.values()) emit([SNAPSHOT, [e[0], e[1]]]);
    await io.save(state);
  }
}

/** What a window node computes over its slices. */
export type WindowKind =
  /** `window()`: the raw records of every batch in the window. */
  | { readonly kind: 'raw' }
  /** Reduce every slice in the window again at each slide (no inverse function). */
  | { readonly kind: 'reduce'; readonly reduce: (a: unknown, b: unknown) => unknown }
  /** Keep the window's value per key; add entering slices, subtract leaving ones. */
  | {
      readonly kind: 'inverse';
      readonly reduce: (a: unknown, b: unknown) => unknown;
      readonly inverse: (a: unknown, b: unknown) => unknown;
      readonly filter?: (pair: [unknown, unknown]) => boolean;
    };

/**
 * Window operators: every batch stores its slice (its input to the window, reduced per key when
 * there is a reduce function); at each multiple of the slide the window `(t - window, t]` is output.
 */
export class WindowOp implements StateOp {
  readonly mapSide: StateOp['mapSide'];
  readonly keepSlicesMs: number;
  constructor(
    private readonly node: GraphNode,
    readonly windowMs: number,
    readonly slideMs: number,
    private readonly how: WindowKind,
    public checkpointMs: number,
    interval: number,
  ) {
    this.mapSide = how.kind === 'raw' ? { kind: 'repartition' } : { kind: 'combine', aggregator: { create: (v) => v, merge: how.reduce, combine: how.reduce } };
    // After batch t, the next slide can come at t + interval; with an inverse it subtracts the
    // slices of (t + interval - slide - window, t + interval - window], so those must stay.
    this.keepSlicesMs = windowMs + slideMs - interval;
  }

  async run(segments: readonly (readonly unknown[])[], io: StateIO, emit: Emit<unknown>): Promise<void> {
    const label = this.node.id;
    const how = this.how;
    const t = io.time;
    const interval = io.interval;
    const slice: unknown[] = how.kind === 'raw' ? segments.flat() : mergeReduced(segments, how.reduce, label).toPairs();
    await io.writeSlice(slice);
    const due = t % this.slideMs === 0;
    if (how.kind === 'inverse') {
      const state = await io.load();
      if (due) await this.slideInverse(state, slice, io, emit);
      await io.save(state);
      return;
    }
    if (!due) return;
    const slices: unknown[][] = [];
    for (let time = t - this.windowMs + interval; time <= t; time += interval) slices.push(time === t ? slice : await io.readSlice(time));
    if (how.kind === 'raw') {
      for (const s of slices) for (const r of s) emit(r);
      return;
    }
    mergeReduced(slices, how.reduce, label).forEach((k, v) => {
      emit([k, v]);
    });
  }

  private async slideInverse(state: KeyedState, current: unknown[], io: StateIO, emit: Emit<unknown>): Promise<void> {
    const how = this.how as Extract<WindowKind, { kind: 'inverse' }>;
    const label = this.node.id;
    const t = io.time;
    const interval = io.interval;
    const entering: unknown[][] = [];
    for (let time = t - this.slideMs + interval; time <= t; time += interval) entering.push(time === t ? current : await io.readSlice(time));
    const leaving: unknown[][] = [];
    for (let time = t - this.slideMs - this.windowMs + interval; time <= t - this.windowMs; time += interval) leaving.push(await io.readSlice(time));
    // As Spark's ReducedWindowedDStream: subtract what left, then add what entered.
    mergeReduced(leaving, how.reduce, label).forEach((k, old) => {
      const e = state.get(k);
      if (e) state.set(k, call(label, 'inverse reduce function', () => how.inverse(e[1], old)), t);
    });
    mergeReduced(entering, how.reduce, label).forEach((k, fresh) => {
      const e = state.get(k);
      state.set(k, e ? call(label, 'reduce function', () => how.reduce(e[1], fresh)) : fresh, t);
    });
    for (const e of [...state.values()]) {
      if (how.filter && !call(label, 'filter function', () => how.filter!([e[0], e[1]]))) {
        state.delete(e[0]);
        continue;
      }
      emit([e[0], e[1]]);
    }
  }
}

/** Checks a window and slide against the parent's slide (Spark's rules), in the user's words. */
export function checkWindow(op: string, windowMs: number, slideMs: number, parentSlide: number, nodeId?: string): void {
  if (windowMs % parentSlide !== 0) {
    throw new JobDefinitionError(`${op}: the window (${windowMs} ms) must be a multiple of the parent stream's slide, the batch interval (${parentSlide} ms)`, { nodeId });
  }
  if (slideMs % parentSlide !== 0) {
    throw new JobDefinitionError(`${op}: the slide (${slideMs} ms) must be a multiple of the parent stream's slide, the batch interval (${parentSlide} ms)`, { nodeId });
  }
  if (windowMs < slideMs) {
    throw new JobDefinitionError(`${op}: the window (${windowMs} ms) is shorter than the slide (${slideMs} ms); batches between windows would be skipped`, { nodeId });
  }
}
