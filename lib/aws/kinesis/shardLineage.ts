import type { InputSplit, JsonValue } from '../../ports/index.ts';
import { isResume, type Resume, type StartPosition } from './positions.ts';

// The shard lineage: which shards of a stream a batch reads, and where each one starts. Pure logic
// over the shard listing and the source's state, so it is tested without Kinesis.
//
// Resharding: a child shard is read only once all its parents are closed and fully consumed, so
// the records of one partition key keep their order across splits and merges. A parent the
// listing no longer holds was trimmed away (retention): nothing of it is left to wait for.

/** What the lineage needs to know of a listed shard. */
export interface ListedShard {
  readonly id: string;
  /** The shard it was split from, or the two shards it was merged from. */
  readonly parents: readonly string[];
  /** Set once the shard is closed (split or merged): its last record. */
  readonly endingSequenceNumber?: string;
}

/**
 * The source's state (JSON): per shard, the end of its last sealed range, the start position of a
 * shard not read yet, the iterator kept by a read that consumed nothing, and the closed shards
 * read to their end.
 */
export interface KinesisState {
  positions: Record<string, string>;
  starts: Record<string, JsonValue>;
  resume: Record<string, Resume>;
  exhausted: string[];
}

/** What a cut needs besides the listing and the state. */
export interface CutOptions {
  /** The batch time: the open splits read up to records that arrived after it. */
  readonly time: number;
  /** Where shards start at the first batch. */
  readonly initialPosition: StartPosition;
  /** The most records a split reads. */
  readonly maxRecords: number;
  /** Backpressure: the most records the batch reads, over all its splits. */
  readonly limit?: number;
  /** A batch meant for the coordinator: about the most bytes it reads, over all its splits. */
  readonly maxBytes?: number;
}

/**
 * The open splits of a batch, one per readable shard, and the state they start from.
 *
 * A split is `{ open: true, shard, after: seq | null, start: 'TRIM_HORIZON' | 'LATEST' | { timestamp } | null, until, max, maxBytes?, closed?, resume? }`.
 *
 * @example
 * ```ts
 * const { splits, state } = cutSplits(await api.listShards(), previousState, { time, initialPosition: 'LATEST', maxRecords: 10_000 });
 * ```
 */
export function cutSplits(listing: readonly ListedShard[], state: JsonValue | undefined, options: CutOptions): { splits: InputSplit[]; state: JsonValue } {
  const shards = [...listing].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const first = state === undefined || state === null;
  const prev = readState(state);
  const next: KinesisState = { positions: {}, starts: {}, resume: {}, exhausted: [] };
  const exhausted = new Set<string>();
  for (const shard of shards) {
    const { id, endingSequenceNumber: end } = shard;
    // Only listed shards are carried over: what the stream forgot is forgotten here too.
    if (prev.positions[id] !== undefined) next.positions[id] = prev.positions[id];
    if (prev.starts[id] !== undefined) next.starts[id] = prev.starts[id];
    if (prev.resume[id] !== undefined) next.resume[id] = prev.resume[id];
    if (prev.exhausted.includes(id)) exhausted.add(id);
    // A closed shard whose last sealed record is its last one has nothing left.
    if (end !== undefined && prev.positions[id] === end) exhausted.add(id);
    if (first) {
      if (options.initialPosition === 'LATEST') {
        // Nothing new ever arrives in a closed shard: LATEST starts after all of them.
        if (end !== undefined) exhausted.add(id);
        else next.starts[id] = 'LATEST';
      } else {
        next.starts[id] = options.initialPosition;
      }
    }
  }
  const listed = new Set(shards.map((s) => s.id));
  // A parent that is no longer listed has been trimmed away: nothing of it is left to read.
  const done = (id: string): boolean => !listed.has(id) || exhausted.has(id);
  const readable = shards.filter((s) => !done(s.id) && s.parents.every(done));
  const splits = readable.map((s) => openSplit(s, next, options));
  // Backpressure: the batch's limit shared evenly by the shards read in it.
  if (options.limit !== undefined && splits.length) {
    const each = Math.max(1, Math.ceil(options.limit / splits.length));
    for (const split of splits) split.max = Math.min(options.maxRecords, each);
  }
  if (options.maxBytes !== undefined && splits.length) {
    const each = Math.max(1, Math.ceil(options.maxBytes / splits.length));
    for (const split of splits) split.maxBytes = each;
  }
  // Exhausted shards are dropped: only their ids stay, until the stream forgets them, so their children can start.
  next.exhausted = [...exhausted].sort();
  for (const id of next.exhausted) {
    delete next.starts[id];
    delete next.resume[id];
  }
  return { splits, state: next as unknown as JsonValue };
}

function openSplit(shard: ListedShard, state: KinesisState, options: CutOptions): Record<string, JsonValue> {
  const id = shard.id;
  const after = state.positions[id] ?? null;
  const split: Record<string, JsonValue> = { open: true, shard: id, after, start: after === null ? (state.starts[id] ?? 'TRIM_HORIZON') : null, until: options.time, max: options.maxRecords };
  if (shard.endingSequenceNumber !== undefined) split.closed = true;
  if (after === null && state.resume[id]) split.resume = state.resume[id] as unknown as JsonValue;
  return split;
}

/**
 * Whether a kept shard listing can no longer serve a cut, so the stream is listed again: there is
 * no state yet (the first batch sorts shards by whether they are closed), the state names a shard
 * the listing does not hold (another listing found it), or a shard was read to its end while the
 * listing still shows it open or without children. The lineage is safe on an older listing
 * otherwise: the only shards it lacks are children, and a child is read only after its parents
 * end — which this notices.
 *
 * @example
 * ```ts
 * if (!kept || listingStale(kept, state)) kept = await api.listShards();
 * ```
 */
export function listingStale(listing: readonly ListedShard[], state: JsonValue | undefined): boolean {
  if (state === undefined || state === null) return true;
  const s = readState(state);
  const byId = new Map(listing.map((shard) => [shard.id, shard]));
  const named = [...Object.keys(s.positions), ...Object.keys(s.starts), ...Object.keys(s.resume), ...s.exhausted];
  if (named.some((id) => !byId.has(id))) return true;
  const parents = new Set(listing.flatMap((shard) => shard.parents));
  return s.exhausted.some((id) => byId.get(id)!.endingSequenceNumber === undefined || !parents.has(id));
}

/**
 * The state after a batch: each shard moved on to the end of its sealed range.
 *
 * A sealed split is `{ shard, after, start, end: seq | null, count, first?, exhausted?, resume? }`;
 * a split still open was not read, and moves nothing.
 */
export function advanceState(state: JsonValue, sealedSplits: readonly InputSplit[]): JsonValue {
  const prev = readState(state);
  const next: KinesisState = { positions: { ...prev.positions }, starts: { ...prev.starts }, resume: { ...prev.resume }, exhausted: [...prev.exhausted] };
  for (const split of sealedSplits) {
    // A split still open was not read (its range was never sealed): the shard stays where it was.
    if (!('end' in split)) continue;
    const shard = split.shard as string;
    const end = split.end as string | null;
    if (end !== null) {
      next.positions[shard] = end;
      delete next.starts[shard];
      delete next.resume[shard];
    } else if (isResume(split.resume)) {
      next.resume[shard] = split.resume;
    }
    if (split.exhausted === true && !next.exhausted.includes(shard)) {
      next.exhausted.push(shard);
      delete next.starts[shard];
      delete next.resume[shard];
    }
  }
  next.exhausted.sort();
  return next as unknown as JsonValue;
}

/**
 * Whether two states hold the same positions, starts and ended shards: they differ at most in
 * resume points, which an empty read of a shard without a position refreshes (the same place).
 *
 * @example
 * ```ts
 * samePositions(state, advanceState(state, emptySplits)); // true: nothing was consumed
 * ```
 */
export function samePositions(a: JsonValue, b: JsonValue): boolean {
  const x = readState(a);
  const y = readState(b);
  return JSON.stringify([x.positions, x.starts, x.exhausted]) === JSON.stringify([y.positions, y.starts, y.exhausted]);
}

/** The state as stored, with anything missing or malformed read as empty. */
function readState(state: JsonValue | undefined): KinesisState {
  const s = (state && typeof state === 'object' && !Array.isArray(state) ? state : {}) as Partial<KinesisState>;
  return {
    positions: s.positions && typeof s.positions === 'object' ? s.positions : {},
    starts: s.starts && typeof s.starts === 'object' ? s.starts : {},
    resume: s.resume && typeof s.resume === 'object' ? s.resume : {},
    exhausted: Array.isArray(s.exhausted) ? s.exhausted.filter((x): x is string => typeof x === 'string') : [],
  };
}
