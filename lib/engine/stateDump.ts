import { StateBlobs, type StatePointer } from '../plan/state/format.ts';
import type { BlobStore, MetaStore } from '../ports/index.ts';
import { type Checkpoint, keys } from './protocol.ts';
import { SpillingMetaStore } from './spillingMetaStore.ts';

/** One stateful node's keyed state at the last commit (`sluice state`). */
export interface NodeState {
  readonly nodeId: string;
  /** The batch the state is as of. */
  readonly time: number;
  /** Every entry, partition by partition: key, value, the batch of its last record. Empty for a window without an inverse (it keeps slices, not keys). */
  readonly entries: readonly { readonly partition: number; readonly key: unknown; readonly value: unknown; readonly lastSeen: number }[];
}

/**
 * Reads the keyed state of every stateful node (or of `nodeId`) as the last commit left it: each
 * partition's full blob with its deltas applied, as a task loads it. Writes nothing.
 *
 * @example
 * ```ts
 * const [totals] = await readState(meta, blobs, 'updateStateByKey-1');
 * totals.entries.find((e) => e.key === 'alice')?.value;
 * ```
 */
export async function readState(meta: MetaStore, blobs: BlobStore, nodeId?: string): Promise<NodeState[]> {
  const checkpoint = (await new SpillingMetaStore(meta, blobs).get<Checkpoint>(keys.checkpoint))?.value;
  if (!checkpoint) return [];
  const ids = Object.keys(checkpoint.state).filter((id) => nodeId === undefined || id === nodeId);
  const out: NodeState[] = [];
  for (const id of ids) {
    const pointer = checkpoint.state[id] as StatePointer;
    const entries: NodeState['entries'][number][] = [];
    // A window without an inverse never writes keyed state: its pointer's full blob does not exist.
    const keyed = (await blobs.list(`${keys.statePrefix(id)}p0/full-`)).length > 0;
    for (let p = 0; keyed && p < pointer.partitions; p++) {
      const state = await new StateBlobs(blobs, id, p, pointer.lastTime + checkpoint.batchInterval, checkpoint.batchInterval, pointer).readState(pointer);
      for (const [key, value, lastSeen] of state.values()) entries.push({ partition: p, key, value, lastSeen });
    }
    out.push({ nodeId: id, time: pointer.lastTime, entries });
  }
  return out;
}
