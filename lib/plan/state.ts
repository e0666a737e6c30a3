import { JobDefinitionError, RecordError } from '../core/errors.ts';
import type { JsonValue } from '../ports/index.ts';
import { type Aggregator, CombinerMap, grouping } from './aggregate.ts';
import type { Emit, PartitionReader } from './batch.ts';
import type { GraphNode } from './graph.ts';
import { canonicalKey, describeKey, mapKey, partitionOf } from './keys.ts';
import { FAILED, onKey } from './recordErrors.ts';
import { mergeByKey } from './shuffle.ts';

/**
 * Durable state of stateful operators (windows, updateStateByKey, mapWithState).
 *
 * Format, version 1 (`STATE_FORMAT`). Per stateful node and partition, blobs under
 * `state/<nodeId>/p<partition>/`:
 * - `full-<time>`: every entry of the partition's keyed state after batch `time`;
 * - `delta-<time>`: the entries batch `time` changed, and the keys it removed;
 * - `slice-<time>`: batch `time`'s own input to a window (reduced per key, or raw records).
 * Each blob is a V8-serialised array; entries are `[key, value, lastSeen]`, a removal in a delta is
 * `[key]`; an inverse window keeps `[key, undefined, time]` for a key whose value it dropped at
 * `time` after a dead letter, until it rebuilds the value from the slices. The checkpoint's
 * `state[nodeId]` ({@link StatePointer}) says which full blob to start from and which deltas follow. A full blob is written at the node's first batch and whenever the
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
  /** Whether batch `time` writes a slice (a later batch reads it); every batch does when absent. */
  keepsSlice?(time: number): boolean;
  /** Full state blob every this many ms (a multiple of the batch interval). */
  checkpointMs: number;
  /** Writes a full blob every batch (the operator rewrites every key anyway). */
  readonly alwaysFull?: boolean;
  /**
   * Runs one partition: `segments` are the map outputs of this batch for it. A user function that
   * throws goes to `r.keyFailed`; when that returns (dead letter), the key is left out of this batch.
   */
  run(segments: readonly (readonly unknown[])[], io: StateIO, emit: Emit<unknown>, r: PartitionReader): Promise<void>;
}

function mergeGroups(segments: readonly (readonly unknown[])[], label: string): CombinerMap<unknown[]> {
  const merged = new CombinerMap<unknown[]>();
  const encode = (k: unknown) => canonicalKey(k, label);
  for (const seg of segments) for (const e of seg as [unknown, unknown[]][]) merged.addCombiner(e[0], e[1].slice(), grouping.combine as (a: unknown[], b: unknown[]) => unknown[], encode);
  return merged;
}

/** What a dead letter of each stateful operator says became of the key's state. */
const STATE_KEPT = 'its state is kept as it was before this batch';
const CALL_SKIPPED = 'this call is skipped: its state is as it was before it';
const TIMED_OUT = 'the key timed out: its state is removed';
const NOT_IN_WINDOW = "left out of this batch's slice: these values enter no window";
const VALUE_DROPPED = 'its window value is removed from the state until the batches it covered have left the window, then rebuilt from the window';

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

  async run(segments: readonly (readonly unknown[])[], io: StateIO, emit: Emit<unknown>, r: PartitionReader): Promise<void> {
    const label = this.node.id;
    const state = await io.load(initialFor(this.initial, io.partition, this.numPartitions(), label));
    const input = mergeGroups(segments, label);
    const t = io.time;
    const update = (key: unknown, values: unknown[], old: unknown) => this.update(values, old, key, t);
    const apply = (key: unknown, values: unknown[], old: unknown) => {
      const next = onKey(r, label, STATE_KEPT, update, key, values, old, undefined);
      // A key whose update threw keeps its state, and nothing is emitted for it.
      if (next === FAILED) return;
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
    private readonly key: unknown,
  ) {
    this.has = entry !== undefined;
    this.value = entry?.[1] as S | undefined;
  }
  exists(): boolean {
    return this.has;
  }
  get(): S {
    if (!this.has) throw this.misuse('State.get() on a key without state; check exists() or use getOption()');
    return this.value as S;
  }
  getOption(): S | undefined {
    return this.has ? this.value : undefined;
  }
  update(value: S): void {
    if (this.timingOut) throw this.misuse('cannot update the state of a key that is timing out');
    if (value === undefined) throw this.misuse("State.update(undefined); use remove() to drop a key's state");
    this.value = value;
    this.has = true;
    this.updated = true;
    this.removed = false;
  }
  remove(): void {
    if (this.timingOut) throw this.misuse('cannot remove the state of a key that is timing out');
    this.value = undefined;
    this.has = false;
    this.removed = true;
    this.updated = false;
  }
  isTimingOut(): boolean {
    return this.timingOut;
  }
  /** The user's function misused its state: its fault, for this key (set aside under 'dead-letter'). */
  private misuse(what: string): RecordError {
    return new RecordError(`${this.label} threw on key ${describeKey(this.key)}: ${what}`, { nodeId: this.label });
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

  async run(segments: readonly (readonly unknown[])[], io: StateIO, emit: Emit<unknown>, r: PartitionReader): Promise<void> {
    const label = this.node.id;
    const t = io.time;
    const state = await io.load(initialFor(this.initial, io.partition, this.numPartitions(), label));
    const input = mergeGroups(segments, label);
    const seen = new Set<unknown>();
    const finish = (key: unknown, h: StateHandle<unknown>, lastSeen: number) => {
      if (h.removed || !h.has) state.delete(key);
      else if (h.updated || state.get(key)?.[2] !== lastSeen) state.set(key, h.value, lastSeen);
    };
    // The state before the call rides along (unused) so that a dead letter carries it.
    const call = (key: unknown, value: unknown, _before: unknown, h: StateHandle<unknown>) => this.fn(key, value, h, t);
    input.forEach((key, values) => {
      seen.add(mapKey(key, label));
      for (const v of values) {
        const e = state.get(key);
        const h = new StateHandle<unknown>(e, false, label, key);
        const out = onKey(r, label, CALL_SKIPPED, call, key, v, e?.[1], h);
        // A call that threw changes nothing, not even the idle clock.
        if (out === FAILED) continue;
        // Any record resets the idle clock, whether or not the function updated the state.
        finish(key, h, t);
        if (out !== undefined) emit([MAPPED, out]);
      }
    });
    if (this.timeoutMs !== undefined) {
      for (const e of [...state.values()]) {
        if (seen.has(mapKey(e[0], label)) || t - e[2] <= this.timeoutMs) continue;
        const h = new StateHandle<unknown>(e, true, label, e[0]);
        const out = onKey(r, label, TIMED_OUT, call, e[0], undefined, e[1], h);
        // Timed out whether or not its last call threw.
        state.delete(e[0]);
        if (out !== FAILED && out !== undefined) emit([MAPPED, out]);
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
 * A window shorter than its slide skips the batches between windows: they store no slice.
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
    // slices of (t + interval - slide - window, t + interval - window], so those must stay. A
    // window shorter than its slide shares no batch with the previous one: it reads only its own
    // slices, the last at most window - interval after the first.
    this.keepSlicesMs = windowMs < slideMs ? windowMs - interval : windowMs + slideMs - interval;
  }

  /**
   * Whether batch `time`'s slice is read by a later batch. With a window shorter than its slide,
   * a batch between windows is in none, and the slide's own batch reads its slice from memory.
   */
  keepsSlice(time: number): boolean {
    if (this.windowMs >= this.slideMs) return true;
    const due = Math.ceil(time / this.slideMs) * this.slideMs;
    return time !== due && time > due - this.windowMs;
  }

  async run(segments: readonly (readonly unknown[])[], io: StateIO, emit: Emit<unknown>, r: PartitionReader): Promise<void> {
    const label = this.node.id;
    const how = this.how;
    const t = io.time;
    const interval = io.interval;
    const slice: unknown[] = how.kind === 'raw' ? segments.flat() : mergeByKey(r, label, segments, how.reduce, NOT_IN_WINDOW).toPairs();
    if (this.keepsSlice(t)) await io.writeSlice(slice);
    const due = t % this.slideMs === 0;
    if (how.kind === 'inverse') {
      const state = await io.load();
      if (due) await this.slideInverse(state, slice, io, emit, r);
      await io.save(state);
      return;
    }
    if (!due) return;
    const slices: unknown[][] = [];
    for (let time = t - this.windowMs + interval; time <= t; time += interval) slices.push(time === t ? slice : await io.readSlice(time));
    if (how.kind === 'raw') {
      for (const s of slices) for (const x of s) emit(x);
      return;
    }
    // A key whose reduce throws is left out of this window only: the next one reduces its slices again.
    mergeByKey(r, label, slices, how.reduce).forEach((k, v) => {
      emit([k, v]);
    });
  }

  private async slideInverse(state: KeyedState, current: unknown[], io: StateIO, emit: Emit<unknown>, r: PartitionReader): Promise<void> {
    const how = this.how as Extract<WindowKind, { kind: 'inverse' }>;
    const label = this.node.id;
    const t = io.time;
    const interval = io.interval;
    const gapless = this.windowMs >= this.slideMs;
    // What entered: the batches since the last slide, or, with gaps between windows, only this window's.
    const entering: unknown[][] = [];
    for (let time = t - Math.min(this.slideMs, this.windowMs) + interval; time <= t; time += interval) entering.push(time === t ? current : await io.readSlice(time));
    // Keys whose kept value can no longer be trusted: a function threw while it was updated.
    const dropped: unknown[] = [];
    const inverse = (_k: unknown, kept: unknown, old: unknown) => how.inverse(kept, old);
    const reduce = (_k: unknown, kept: unknown, fresh: unknown) => how.reduce(kept, fresh);
    // As Spark's ReducedWindowedDStream: subtract what left, then add what entered. A value
    // dropped earlier (undefined) takes neither: it is rebuilt from the slices instead.
    const subtract = (k: unknown, kept: unknown, old: unknown) => {
      const v = onKey(r, label, VALUE_DROPPED, inverse, k, kept, old, undefined);
      if (v === FAILED) dropped.push(k);
      else state.set(k, v, t);
    };
    if (gapless) {
      const leaving: unknown[][] = [];
      for (let time = t - this.slideMs - this.windowMs + interval; time <= t - this.windowMs; time += interval) leaving.push(await io.readSlice(time));
      mergeByKey(r, label, leaving, how.reduce, VALUE_DROPPED, dropped).forEach((k, old) => {
        const e = state.get(k);
        if (e !== undefined && e[1] !== undefined) subtract(k, e[1], old);
      });
    } else {
      // The whole previous window left, and each kept value is exactly what it held: subtracting
      // it from itself gives the inverse's zero without reading those slices again. (Spark's
      // slices of old and new values both take in the batches between the windows; a key first
      // seen there would get their values, which no window holds.)
      for (const [k, kept] of [...state.values()]) if (kept !== undefined) subtract(k, kept, kept);
    }
    mergeByKey(r, label, entering, how.reduce, VALUE_DROPPED, dropped).forEach((k, fresh) => {
      const e = state.get(k);
      if (e === undefined) state.set(k, fresh, t);
      else if (e[1] !== undefined) {
        const v = onKey(r, label, VALUE_DROPPED, reduce, k, e[1], fresh, undefined);
        if (v === FAILED) dropped.push(k);
        else state.set(k, v, t);
      }
    });
    // Removing the key outright would be wrong: the slices its value covered would later be
    // subtracted from a value that never held them. Its marker says since when it has none.
    for (const k of dropped) state.set(k, undefined, t);
    const filter = how.filter && ((k: unknown, v: unknown) => how.filter!([k, v]));
    const output = (k: unknown, v: unknown) => {
      if (filter) {
        // A filter that throws leaves the key out of this window; its value is still right, so it stays.
        const keep = onKey(r, label, undefined, filter, k, v, undefined, undefined);
        if (keep === FAILED) return;
        if (!keep) {
          state.delete(k);
          return;
        }
      }
      emit([k, v]);
    };
    let due: unknown[] | undefined;
    for (const e of [...state.values()]) {
      if (e[1] !== undefined) output(e[0], e[1]);
      else if (e[2] <= t - this.windowMs) (due ??= []).push(e[0]);
    }
    if (due) (await this.rebuild(state, due, current, io, r)).forEach(output);
  }

  /**
   * Gives keys whose value was dropped at least a window ago (`due`) their value again, reduced
   * from the slices in the window as a window without an inverse does: none of them predates
   * the drop. Returns the keys that have one now.
   */
  private async rebuild(state: KeyedState, due: unknown[], current: unknown[], io: StateIO, r: PartitionReader): Promise<CombinerMap<unknown>> {
    const label = this.node.id;
    const t = io.time;
    const keys = new Set<unknown>();
    for (const k of due) {
      keys.add(mapKey(k, label));
      state.delete(k);
    }
    const slices: unknown[][] = [];
    for (let time = t - this.windowMs + io.interval; time <= t; time += io.interval) {
      const slice = (time === t ? current : await io.readSlice(time)) as [unknown, unknown][];
      slices.push(slice.filter((e) => keys.has(mapKey(e[0], label))));
    }
    const again: unknown[] = [];
    const rebuilt = mergeByKey(r, label, slices, (this.how as Extract<WindowKind, { kind: 'inverse' }>).reduce, VALUE_DROPPED, again);
    rebuilt.forEach((k, v) => {
      state.set(k, v, t);
    });
    for (const k of again) state.set(k, undefined, t);
    return rebuilt;
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
}
