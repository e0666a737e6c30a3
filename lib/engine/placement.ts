import type { InputSplit, JsonValue } from '../ports/index.ts';

/**
 * Where a batch's tasks run: fanned out through the Invoker (`workers`), or inside the coordinator
 * by its own worker (`coordinator`), which is running, and billed, anyway. Nothing else of the
 * protocol depends on it: the lineage record, seals, scratch names, outputs and the commit are the
 * same either way, so a batch may be cut for one and recovered by the other.
 */
export type BatchRuns = 'coordinator' | 'workers';

/**
 * Where a lineage record says its batch runs (undefined in records of earlier releases).
 *
 * @example
 * ```ts
 * runsOf(run.record); // 'coordinator'
 * ```
 */
export function runsOf(record: { readonly [key: string]: JsonValue }): BatchRuns | undefined {
  const r = record.runs;
  return r === 'coordinator' || r === 'workers' ? r : undefined;
}

/** What the next cut needs to know of the last committed batch (kept in the checkpoint as `placement`). */
export interface PlacementHint {
  readonly [key: string]: JsonValue;
  /** Records the batch read. */
  records: number;
  /** Some source handed out as much as its cap allowed: more is waiting, the stream is busy. */
  full: boolean;
}

/** The size bounds of a batch run in the coordinator (`coordinatorBatchRecords`, `coordinatorBatchBytes`). */
export interface PlacementBounds {
  /** At most this many records (0: never in the coordinator). */
  readonly records: number;
  /** At most about this many bytes of input. */
  readonly bytes: number;
}

/** What a cut may take from each source when the batch is meant for the coordinator. */
export interface CutCap {
  readonly records: number;
  readonly bytes: number;
}

/**
 * Decides where each batch runs, from what the cut saw. Sources that know their size at the cut
 * (blocks, queue slices: `count`; files: `size` in bytes) give it directly. Open splits (Kinesis)
 * do not: they are read by the task. So when the last batch was small and nothing in it came back
 * full, the next cut is capped at the bounds (each open split gets a share of them as its `max` and
 * `maxBytes`, as backpressure's limit is shared) and runs in the coordinator; otherwise it is cut
 * without the cap and fans out. A capped split that comes back full says the stream is busy: the
 * batch after it fans out. Records beyond the cap wait for the next batch, as beyond
 * `maxRecordsPerBatch`.
 *
 * @example
 * ```ts
 * const placement = new Placement({ records: 1000, bytes: 16 << 20 }, checkpoint.placement);
 * const cap = placement.cap();                       // undefined: cut as usual, fan out
 * const runs = placement.decide(splits, cap);        // 'coordinator' | 'workers'
 * placement.completed(run.inputRecords(), run.cappedFull()); // after the batch
 * ```
 */
export class Placement {
  private hint: PlacementHint | undefined;

  constructor(
    private readonly bounds: PlacementBounds,
    saved: JsonValue | undefined,
  ) {
    this.hint = readHint(saved);
  }

  /** Whether batches may run in the coordinator at all. */
  get enabled(): boolean {
    return this.bounds.records > 0 && this.bounds.bytes > 0;
  }

  /**
   * The cap of the next cut, when the last batch predicts a small one (undefined: cut as usual). A
   * job's first batch, with no last batch to go by, is capped: at worst, what is beyond the cap
   * waits one batch interval.
   */
  cap(): CutCap | undefined {
    if (!this.enabled) return undefined;
    const h = this.hint;
    if (h && (h.full || h.records > this.bounds.records)) return undefined;
    return { records: this.bounds.records, bytes: this.bounds.bytes };
  }

  /** Where a batch cut with `cap` (or recovered from its lineage record) runs. */
  decide(splits: { readonly [nodeId: string]: readonly InputSplit[] }, cap: CutCap | undefined): BatchRuns {
    if (!this.enabled) return 'workers';
    return fits(splits, this.bounds, cap !== undefined) ? 'coordinator' : 'workers';
  }

  /** Where a batch recovered from its lineage record runs: where it was cut for, if it still fits this coordinator's bounds. */
  decideRecovered(splits: { readonly [nodeId: string]: readonly InputSplit[] }, cutFor: BatchRuns | undefined): BatchRuns {
    // Open splits of a record cut for the coordinator were capped then; of one cut for workers, not.
    return this.decide(splits, cutFor === 'coordinator' ? this.cap() ?? this.bounds : undefined);
  }

  /** Whether a source's cut handed out as many records as the cap let it (more may be waiting). */
  static cutFull(splits: readonly InputSplit[], cap: CutCap | undefined): boolean {
    if (!cap) return false;
    let n = 0;
    for (const s of splits) if (typeof s.count === 'number') n += s.count;
    return n >= cap.records;
  }

  /** After a batch: what it read, and whether a capped source came back full. */
  completed(records: number, full: boolean): void {
    this.hint = { records, full };
  }

  /** For the checkpoint. */
  snapshot(): PlacementHint | undefined {
    return this.hint;
  }
}

/**
 * Whether a batch's splits fit the bounds: the sizes the cut knows (records, bytes) are within them,
 * and every open split was capped (its `max` records, shared from the cap) — an open split cut
 * without the cap may hold anything.
 */
function fits(splits: { readonly [nodeId: string]: readonly InputSplit[] }, bounds: PlacementBounds, capped: boolean): boolean {
  let records = 0;
  let bytes = 0;
  for (const list of Object.values(splits)) {
    let openMax = 0;
    let open = 0;
    for (const s of list) {
      if (s.open === true) {
        if (!capped || typeof s.max !== 'number') return false;
        openMax += s.max;
        open++;
        continue;
      }
      const count = typeof s.count === 'number' ? s.count : undefined;
      const size = typeof s.size === 'number' ? s.size : undefined;
      // A split that says neither its records nor its bytes is of unknown size.
      if (count === undefined && size === undefined) return false;
      records += count ?? 0;
      bytes += size ?? 0;
    }
    // The cap is shared by a source's open splits rounding up: one record each of slack.
    if (openMax > bounds.records + open) return false;
  }
  return records <= bounds.records && bytes <= bounds.bytes;
}

function readHint(saved: JsonValue | undefined): PlacementHint | undefined {
  if (!saved || typeof saved !== 'object' || Array.isArray(saved)) return undefined;
  const { records, full } = saved as { records?: unknown; full?: unknown };
  if (typeof records !== 'number' || typeof full !== 'boolean') return undefined;
  return { records, full };
}

/**
 * Whether an open split came back full: its sealed range holds `max` records, or the source says
 * it stopped at its byte cap (`full: true`).
 *
 * @example
 * ```ts
 * cameBackFull({ open: true, shard: 's-0', max: 500 }, { shard: 's-0', count: 500 }); // true
 * ```
 */
export function cameBackFull(open: InputSplit, sealed: InputSplit): boolean {
  if (sealed.full === true) return true;
  return typeof open.max === 'number' && typeof sealed.count === 'number' && sealed.count >= open.max;
}

/**
 * The smaller of two optional limits (backpressure's and the placement cap's).
 *
 * @example
 * ```ts
 * smaller(undefined, 1000); // 1000
 * ```
 */
export function smaller(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined ? b : b === undefined ? a : Math.min(a, b);
}
