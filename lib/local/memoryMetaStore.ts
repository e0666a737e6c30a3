import type { JsonValue, MetaItem, MetaStore } from '../ports/index.ts';

/** The condition of {@link MetaStore.put}. */
export type PutCondition = { expectedVersion: number | 'any'; epoch: number };

/**
 * Whether a conditional put may replace `stored` (`undefined`: no item). Shared by the local meta
 * stores so that both implement the port's rule in exactly one place.
 */
export function putConditionHolds(stored: MetaItem | undefined, condition: PutCondition): boolean {
  const versionOk = condition.expectedVersion === 'any' || (stored?.version ?? 0) === condition.expectedVersion;
  // An absent item has no epoch to fence with: any writer may create it.
  const epochOk = stored === undefined || stored.epoch <= condition.epoch;
  return versionOk && epochOk;
}

/**
 * A {@link MetaStore} in memory, for tests and single-process runs. Values are deep-copied on the
 * way in and out, as a real store serialises them: a caller that mutates a value it wrote or read
 * cannot change the stored item behind the conditional-write protocol's back.
 *
 * @example
 * ```ts
 * const meta = new MemoryMetaStore();
 * await meta.put('lease', { owner: 'a' }, { expectedVersion: 0, epoch: 1 }); // 1
 * await meta.put('lease', { owner: 'b' }, { expectedVersion: 0, epoch: 1 }); // undefined: exists
 * ```
 */
export class MemoryMetaStore implements MetaStore {
  readonly #items = new Map<string, MetaItem>();

  async get<T extends JsonValue = JsonValue>(key: string): Promise<MetaItem<T> | undefined> {
    const item = this.#items.get(key);
    return item === undefined ? undefined : (structuredClone(item) as MetaItem<T>);
  }

  async put(key: string, value: JsonValue, condition: PutCondition): Promise<number | undefined> {
    const stored = this.#items.get(key);
    if (!putConditionHolds(stored, condition)) return undefined;
    const version = (stored?.version ?? 0) + 1;
    this.#items.set(key, { key, version, epoch: condition.epoch, value: structuredClone(value) });
    return version;
  }

  async delete(key: string, condition: { epoch: number }): Promise<void> {
    const stored = this.#items.get(key);
    if (stored !== undefined && stored.epoch <= condition.epoch) this.#items.delete(key);
  }

  async list(prefix: string): Promise<string[]> {
    const keys: string[] = [];
    for (const key of this.#items.keys()) if (key.startsWith(prefix)) keys.push(key);
    return keys.sort();
  }
}
