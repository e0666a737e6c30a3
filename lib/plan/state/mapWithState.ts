import type { SluiceError } from '../../core/errors.ts';
import { grouping } from '../aggregate.ts';
import type { Emit } from '../batch/base.ts';
import type { GraphNode } from '../graphNode.ts';
import { mapKey } from '../keys.ts';
import { FAILED, onKey, type RecordFailures, userFunctionError } from '../recordErrors.ts';
import type { StateEntry, StateIO, StatePointer } from './format.ts';
import { initialFor, mergeGroups, type StateOp } from './stateful.ts';

/** What a dead letter of mapWithState says became of the key's state. */
const CALL_SKIPPED = 'this call is skipped: its state is as it was before it';
const TIMED_OUT = 'the key timed out: its state is removed';

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
  private misuse(what: string): SluiceError {
    return userFunctionError(this.label, { key: this.key }, new Error(what));
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

  /**
   * Without input its function is called only for keys that time out, and the whole state is
   * emitted only for `stateSnapshots()`: at rest while no key would time out at `time` (none is
   * idle longer than the timeout) and no snapshot has anything to show.
   */
  restsAt(time: number, pointer: StatePointer | undefined): boolean {
    if (pointer === undefined) return !this.initial?.length;
    if (pointer.keys === 0) return true;
    if (pointer.keys === undefined || this.snapshots) return false;
    return this.timeoutMs === undefined || (pointer.oldest !== undefined && time - pointer.oldest <= this.timeoutMs);
  }

  /** At rest for good once no key is left to time out or to show in a snapshot. */
  restsFrom(pointer: StatePointer | undefined): number {
    if (pointer === undefined) return this.initial?.length ? Number.POSITIVE_INFINITY : Number.NEGATIVE_INFINITY;
    if (pointer.keys === 0 || (pointer.keys !== undefined && !this.snapshots && this.timeoutMs === undefined)) return Number.NEGATIVE_INFINITY;
    return Number.POSITIVE_INFINITY;
  }

  async run(segments: readonly (readonly unknown[])[], io: StateIO, emit: Emit<unknown>, r: RecordFailures): Promise<void> {
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
