import { KeyedState, StateBlobs, type StateHeld, type StateIO, type StateOwner } from '../plan/state/format.ts';
import type { BlobStore } from '../ports/index.ts';
import type { TaskDescriptor } from './protocol.ts';
import { TaskPayloadError } from './taskPayload.ts';

/** Stateful partitions a warm worker keeps in memory (least recently used go first). */
export const STATE_CACHE_PARTITIONS = 64;

/**
 * The last state each stateful partition saved in this process, by `<nodeId>/<partition>`: the
 * next batch starts from it without reading blobs. At most {@link STATE_CACHE_PARTITIONS}
 * partitions, least recently used out first.
 */
export type StateCache = Map<string, { time: number; state: KeyedState }>;

/**
 * A stateful task's access to its node's durable state: the blobs of the state format
 * (lib/plan/state/format.ts), with the warm worker's cache in front of them.
 */
export class TaskState extends StateBlobs implements StateIO {
  private readonly cacheKey: string;

  constructor(
    private readonly owner: StateOwner,
    partition: number,
    task: TaskDescriptor,
    interval: number,
    blobs: BlobStore,
    private readonly cache: StateCache,
    /** Told what the partition holds once its state is saved. */
    private readonly onSaved: (held: StateHeld) => void,
  ) {
    super(blobs, owner.node.id, partition, task.time, interval, task.state?.[owner.node.id]);
    this.cacheKey = `${this.nodeId}/${partition}`;
    // Payload errors: the pointer will not change, so no retry can help.
    const refusal = this.refusal(owner.numPartitions);
    if (refusal) throw new TaskPayloadError(refusal);
  }

  async load(initial?: () => Iterable<readonly [unknown, unknown]>): Promise<KeyedState> {
    const cached = this.cache.get(this.cacheKey);
    // Taken out while the task runs: a task that fails half way must not leave half-updated state behind.
    this.cache.delete(this.cacheKey);
    const prev = this.prev;
    if (!prev) {
      const s = new KeyedState(this.nodeId);
      if (initial) for (const [k, v] of initial()) s.set(k, v, this.time);
      return s;
    }
    if (cached && cached.time === prev.lastTime) return cached.state;
    return this.readState(prev);
  }

  async save(state: KeyedState): Promise<void> {
    await this.writeState(state, this.owner.op);
    let oldest = Number.POSITIVE_INFINITY;
    for (const e of state.values()) if (e[2] < oldest) oldest = e[2];
    this.onSaved(state.size ? { keys: state.size, oldest } : { keys: 0 });
    const cache = this.cache;
    cache.set(this.cacheKey, { time: this.time, state });
    // load() took the entry out, so set() put it last: the first entry is the least recently used.
    if (cache.size > STATE_CACHE_PARTITIONS) cache.delete(cache.keys().next().value as string);
  }
}
