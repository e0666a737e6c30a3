import { grouping } from '../aggregate.ts';
import type { Emit } from '../batch/base.ts';
import type { GraphNode } from '../graphNode.ts';
import { mapKey } from '../keys.ts';
import { FAILED, onKey, type RecordFailures } from '../recordErrors.ts';
import type { StateIO, StatePointer } from './format.ts';
import { initialFor, mergeGroups, type StateOp } from './stateful.ts';

/** What a dead letter of updateStateByKey says became of the key's state. */
const STATE_KEPT = 'its state is kept as it was before this batch';

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

  /** Its function sees every key every batch (Spark's semantics): at rest only while the state has no key. */
  restsAt(_time: number, pointer: StatePointer | undefined): boolean {
    return pointer === undefined ? !this.initial?.length : pointer.keys === 0;
  }

  restsFrom(pointer: StatePointer | undefined): number {
    return this.restsAt(0, pointer) ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY;
  }

  async run(segments: readonly (readonly unknown[])[], io: StateIO, emit: Emit<unknown>, r: RecordFailures): Promise<void> {
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
