import { JobDefinitionError } from '../../core/errors.ts';
import type { CombinerMap } from '../aggregate.ts';
import type { Emit } from '../batch/base.ts';
import type { GraphNode } from '../graphNode.ts';
import { mapKey } from '../keys.ts';
import { FAILED, onKey, type RecordFailures } from '../recordErrors.ts';
import { mergeByKey } from '../shuffle.ts';
import type { KeyedState, StateIO, StatePointer } from './format.ts';
import type { StateOp } from './stateful.ts';

/** What a dead letter of a window says became of the key's values. */
const NOT_IN_WINDOW = "left out of this batch's slice: these values enter no window";
const VALUE_DROPPED = 'its window value is removed from the state until the batches it covered have left the window, then rebuilt from the window';

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

  /**
   * Without input, a window changes only at a slide, and only when its window holds data: a batch
   * in the window `(time - window, time]` had input (`lastInput` stands in for the node's own
   * input: a source's records may all be filtered out first, which only keeps it busy longer), or,
   * with an inverse function, the kept values have a key (a window without `filterFunc` keeps its
   * keys at their inverse's zero, and outputs them, as Spark's does).
   */
  restsAt(time: number, pointer: StatePointer | undefined, lastInput: number | undefined): boolean {
    if (time % this.slideMs !== 0) return true;
    if (lastInput !== undefined && lastInput > time - this.windowMs) return false;
    return this.how.kind !== 'inverse' || pointer === undefined || pointer.keys === 0;
  }

  /** Once the last input has left the window (and, with an inverse, no key is kept). */
  restsFrom(pointer: StatePointer | undefined, lastInput: number | undefined): number {
    if (this.how.kind === 'inverse' && pointer !== undefined && pointer.keys !== 0) return Number.POSITIVE_INFINITY;
    return lastInput === undefined ? Number.NEGATIVE_INFINITY : lastInput + this.windowMs;
  }

  async run(segments: readonly (readonly unknown[])[], io: StateIO, emit: Emit<unknown>, r: RecordFailures): Promise<void> {
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

  private async slideInverse(state: KeyedState, current: unknown[], io: StateIO, emit: Emit<unknown>, r: RecordFailures): Promise<void> {
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
  private async rebuild(state: KeyedState, due: unknown[], current: unknown[], io: StateIO, r: RecordFailures): Promise<CombinerMap<unknown>> {
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
