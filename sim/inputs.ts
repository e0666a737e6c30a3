import type { Receiver } from '../lib/core/receiver.ts';
import { SluiceError } from '../lib/core/errors.ts';
import type { CommittedInput, InputSplit, JsonValue, RecordSource, SourceSpec } from '../lib/ports/index.ts';
import type { Network } from './network.ts';
import type { Rng } from './random.ts';
import type { Proc, Sim } from './scheduler.ts';

/** A record of the simulated stream: key, value, and where it sits (shard, sequence number). */
export interface StreamRecord {
  readonly k: string;
  readonly v: number;
  readonly s: string;
  readonly n: number;
}

interface Shard {
  readonly id: string;
  readonly parents: readonly string[];
  /** Hash range of the keys it takes, [lo, hi). */
  readonly lo: number;
  readonly hi: number;
  readonly openedAt: number;
  closedAt?: number;
  readonly records: { readonly rec: StreamRecord; readonly arrival: number; readonly visibleAt: number }[];
}

const KEYS = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'];

/** Where a key falls in the hash range [0, 1): the keys spread evenly over it. */
function keyHash(k: string): number {
  return (KEYS.indexOf(k) + 0.5) / KEYS.length;
}

/**
 * A Kinesis-like stream, made in advance from the seed: shards with sequence-numbered records,
 * each with an arrival time (what a batch is cut by) and a later time when reads first see it
 * (Kinesis makes a record readable a little after it arrives), and reshards (a split, a merge)
 * that close shards and open their children.
 */
export class SimStream {
  private readonly shards = new Map<string, Shard>();
  private nextShard = 0;
  /** Every record, for the checks. */
  readonly all: { readonly rec: StreamRecord; readonly arrival: number; readonly visibleAt: number }[] = [];

  constructor(
    rng: Rng,
    from: number,
    to: number,
    opts: {
      readonly shards: number;
      readonly reshards: number;
      readonly reshardFrom: number;
      readonly reshardTo: number;
      readonly maxLagMs: number;
      readonly meanGapMs: number;
      readonly idle: readonly (readonly [number, number])[];
    },
  ) {
    for (let i = 0; i < opts.shards; i++) this.open([], i / opts.shards, (i + 1) / opts.shards, from);
    const reshards: number[] = [];
    for (let i = 0; i < opts.reshards; i++) reshards.push(rng.between(opts.reshardFrom, opts.reshardTo));
    reshards.sort((a, b) => a - b);
    let t = from;
    let value = 0;
    while (t < to) {
      t = afterIdle(t + rng.between(1, 2 * opts.meanGapMs), opts.idle);
      while (reshards.length && reshards[0] <= t) this.reshard(rng, reshards.shift()!);
      const k = rng.pick(KEYS);
      const h = keyHash(k);
      const shard = [...this.shards.values()].find((s) => s.closedAt === undefined && s.lo <= h && h < s.hi)!;
      const prev = shard.records[shard.records.length - 1];
      const visibleAt = Math.max(prev?.visibleAt ?? 0, t + rng.between(0, opts.maxLagMs));
      const entry = { rec: { k, v: value++, s: shard.id, n: shard.records.length }, arrival: t, visibleAt };
      shard.records.push(entry);
      this.all.push(entry);
    }
  }

  private open(parents: string[], lo: number, hi: number, at: number): void {
    const id = `shard-${String(this.nextShard++).padStart(3, '0')}`;
    this.shards.set(id, { id, parents, lo, hi, openedAt: at, records: [] });
  }

  private reshard(rng: Rng, at: number): void {
    const open = [...this.shards.values()].filter((s) => s.closedAt === undefined).sort((a, b) => a.lo - b.lo);
    if (open.length >= 2 && (open.length >= 4 || rng.chance(0.5))) {
      const i = rng.int(open.length - 1);
      const [x, y] = [open[i], open[i + 1]];
      x.closedAt = at;
      y.closedAt = at;
      this.open([x.id, y.id], x.lo, y.hi, at);
    } else {
      const s = rng.pick(open);
      s.closedAt = at;
      const mid = (s.lo + s.hi) / 2;
      this.open([s.id], s.lo, mid, at);
      this.open([s.id], mid, s.hi, at);
    }
  }

  /** The shards that exist at `now` (ListShards). */
  list(now: number): { id: string; parents: readonly string[]; closed: boolean }[] {
    return [...this.shards.values()].filter((s) => s.openedAt <= now).map((s) => ({ id: s.id, parents: s.parents, closed: s.closedAt !== undefined && s.closedAt <= now }));
  }

  /** Up to `limit` records after `after` that reads see at `now` (GetRecords), and whether the shard is read to its end. */
  page(shard: string, after: number, limit: number, now: number): { records: { rec: StreamRecord; arrival: number }[]; ended: boolean } {
    const s = this.shards.get(shard);
    if (!s) throw new SluiceError(`simulated stream: no shard ${shard}`);
    const out: { rec: StreamRecord; arrival: number }[] = [];
    let i = after + 1;
    for (; i < s.records.length && out.length < limit; i++) {
      const r = s.records[i];
      if (r.visibleAt > now) break;
      out.push({ rec: r.rec, arrival: r.arrival });
    }
    const ended = s.closedAt !== undefined && s.closedAt <= now && i >= s.records.length;
    return { records: out, ended };
  }

  /** Records (after, end] of a shard (a sealed range, read again). */
  range(shard: string, after: number, end: number): StreamRecord[] {
    const s = this.shards.get(shard);
    if (!s) throw new SluiceError(`simulated stream: no shard ${shard}`);
    return s.records.slice(after + 1, end + 1).map((r) => r.rec);
  }
}

/** Position of the stream source: the last sequence number consumed per shard, and the shards read to their end. */
interface StreamState {
  pos: { [shard: string]: number };
  done: string[];
}

function readState(state: JsonValue | undefined): StreamState {
  const s = (state ?? {}) as Partial<StreamState>;
  return { pos: { ...(s.pos ?? {}) }, done: [...(s.done ?? [])] };
}

/**
 * The simulation's `kinesisStream`: open splits like `KinesisSource`'s. A read pages through a
 * shard and stops at the first record that arrived after the batch time, when it is caught up (no
 * readable record left) or at `max`; it reports the range it consumed. Which records are readable
 * depends on when the read runs, so two reads of one open split may consume different ranges.
 * Children of a reshard are read once their parents are read to their end. It also acknowledges
 * what each committed batch consumed (`committed`, as a consumer that commits offsets would), for
 * the checks to hold against what was committed.
 */
export class SimStreamSource implements RecordSource {
  constructor(
    private readonly spec: SourceSpec,
    private readonly stream: SimStream,
    private readonly net: Network | undefined,
    private readonly proc: Proc | undefined,
    private readonly sim: Sim,
    private readonly acknowledge?: (input: CommittedInput) => Promise<void>,
  ) {}

  async committed(input: CommittedInput): Promise<void> {
    await this.acknowledge?.(input);
  }

  /** A call to the stream service (direct when the source runs outside the simulated network, in the checks). */
  private call<T>(label: string, work: () => T): Promise<T> {
    if (!this.net || !this.proc) return Promise.resolve(work());
    return this.net.call(this.proc, label, async () => work(), async () => work());
  }

  async cut(time: number, state: JsonValue | undefined, limit?: number): Promise<{ splits: InputSplit[]; state: JsonValue }> {
    const prev = readState(state);
    const shards = await this.call('stream.listShards', () => this.stream.list(this.sim.now));
    const done = new Set(prev.done);
    const splits: Record<string, JsonValue>[] = [];
    const max = (this.spec.params.maxRecordsPerBatch as number | undefined) ?? 1000;
    for (const s of shards) {
      if (done.has(s.id) || s.parents.some((p) => !done.has(p))) continue;
      splits.push({ open: true, shard: s.id, after: prev.pos[s.id] ?? -1, until: time, max });
    }
    // A limit (backpressure's, or the cap of a batch meant for the coordinator) is shared by the shards, as KinesisSource shares it.
    if (limit !== undefined && splits.length) for (const s of splits) s.max = Math.min(max, Math.max(1, Math.ceil(limit / splits.length)));
    return { splits, state: prev as unknown as JsonValue };
  }

  async read(split: InputSplit): Promise<{ records: unknown[]; sealedSplit?: InputSplit }> {
    const shard = split.shard as string;
    const after = split.after as number;
    if (split.open !== true) {
      const end = split.end as number;
      const records = await this.call(`stream.getRecords ${shard}`, () => this.stream.range(shard, after, end));
      if (records.length !== split.count) throw new SluiceError(`simulated stream: sealed range of ${shard} holds ${records.length} records, sealed ${String(split.count)}`);
      return { records };
    }
    const until = split.until as number;
    const max = split.max as number;
    const records: StreamRecord[] = [];
    let last = after;
    let exhausted = false;
    for (;;) {
      const page = await this.call(`stream.getRecords ${shard}`, () => this.stream.page(shard, last, 10, this.sim.now));
      let stop = page.records.length === 0;
      for (const r of page.records) {
        if (r.arrival > until || records.length >= max) {
          stop = true;
          break;
        }
        records.push(r.rec);
        last = r.rec.n;
      }
      if (page.ended && page.records.every((r) => r.rec.n <= last)) {
        exhausted = true;
        stop = true;
      }
      if (stop) break;
    }
    const sealed: InputSplit = { shard, after, end: last, count: records.length, ...(exhausted ? { exhausted: true } : {}) };
    return { records, sealedSplit: sealed };
  }

  advance(state: JsonValue, sealed: readonly InputSplit[]): JsonValue {
    const next = readState(state);
    for (const s of sealed) {
      if (s.open === true) continue;
      if ((s.count as number) > 0) next.pos[s.shard as string] = s.end as number;
      if (s.exhausted === true && !next.done.includes(s.shard as string)) next.done.push(s.shard as string);
    }
    next.done.sort();
    return next as unknown as JsonValue;
  }
}

/**
 * Where receivers get their records: records arrive at times drawn from the seed and go to the
 * receiver started last that still runs (a producer connected to the newest coordinator). What
 * each receiver was handed is kept, for the checks.
 */
export class ReceiverFeed {
  readonly receivers: { readonly id: number; readonly proc: Proc | undefined; readonly delivered: string[]; stopped: boolean; store?: (r: string) => void }[] = [];

  constructor(sim: Sim, rng: Rng, from: number, to: number, meanGapMs: number, idle: readonly (readonly [number, number])[]) {
    let t = from;
    let n = 0;
    while (t < to) {
      t = afterIdle(t + rng.between(1, 2 * meanGapMs), idle);
      const record = `r${n++}:${rng.pick(KEYS)}`;
      sim.at(t, undefined, 'feed', () => this.deliver(record));
    }
  }

  private deliver(record: string): void {
    for (let i = this.receivers.length - 1; i >= 0; i--) {
      const r = this.receivers[i];
      if (r.stopped || !r.store || (r.proc && !r.proc.alive)) continue;
      r.delivered.push(record);
      r.store(record);
      return;
    }
  }

  /** A receiver for a job build in `proc` (undefined: never started, as on workers and in the reference run). */
  receiver(proc: Proc | undefined): Receiver<string> {
    const entry = { id: this.receivers.length, proc, delivered: [] as string[], stopped: false, store: undefined as ((r: string) => void) | undefined };
    return {
      start: (store) => {
        this.receivers.push(entry);
        entry.store = (r) => store(r);
      },
      stop: () => {
        entry.stopped = true;
      },
    };
  }
}

/** `t`, or the end of the idle stretch it falls in: no record arrives while the job is meant to be idle. */
function afterIdle(t: number, idle: readonly (readonly [number, number])[]): number {
  for (const [from, to] of idle) if (t >= from && t < to) return to;
  return t;
}
