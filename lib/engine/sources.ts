import { SluiceError } from '../core/errors.ts';
import type { Receiver } from '../core/receiver.ts';
import { type KindOn, refusalOf, type Runtime } from '../core/sources.ts';
import type { BlobStore, InputSplit, JsonValue, RecordSource, SourceFactory, SourceIO, SourceSpec } from '../ports/index.ts';
import { decodeRecords, encodeRecords } from './codec.ts';
import { keys } from './protocol.ts';

/**
 * Sources whose records live in the coordinator's memory until the batch is cut (queues,
 * generators, receivers, sockets). At the cut, each partition's records are written as a block
 * to the blob store *before* the batch record seals it, so any worker, and any later
 * recomputation, reads exactly those records.
 */
/**
 * Blocks cut in this process, decoded, per blob store: a task in the same process reads them
 * without decoding the durable copy (a block never changes once its batch is sealed, so this is
 * only a cache). Bounded by the number of records it holds.
 */
class RecentBlocks {
  private readonly blocks = new Map<string, unknown[]>();
  private records = 0;
  static readonly MAX_RECORDS = 2_000_000;

  get(key: string): unknown[] | undefined {
    return this.blocks.get(key);
  }

  set(key: string, records: unknown[]): void {
    const old = this.blocks.get(key);
    if (old) {
      this.records -= old.length;
      this.blocks.delete(key);
    }
    this.blocks.set(key, records);
    this.records += records.length;
    for (const [k, v] of this.blocks) {
      if (this.records <= RecentBlocks.MAX_RECORDS || this.blocks.size === 1) break;
      this.blocks.delete(k);
      this.records -= v.length;
    }
  }
}

const recentByStore = new WeakMap<BlobStore, RecentBlocks>();
function recentBlocks(store: BlobStore): RecentBlocks {
  let r = recentByStore.get(store);
  if (!r) {
    r = new RecentBlocks();
    recentByStore.set(store, r);
  }
  return r;
}

export abstract class BlockSource implements RecordSource {
  constructor(
    protected readonly spec: SourceSpec,
    protected readonly io: SourceIO,
  ) {}

  /** The records of the batch ending at `time`, per partition, and the position after them. */
  protected abstract take(time: number, state: JsonValue | undefined, limit?: number): { partitions: unknown[][]; state: JsonValue };

  /** Gives back what `take` handed out when its blocks could not be written (push sources re-buffer it). */
  protected untake(_partitions: unknown[][]): void {}

  /** What the last cut took, until the next one: given back if that cut is abandoned. */
  private lastTaken: unknown[][] | undefined;

  async cut(time: number, state: JsonValue | undefined, limit?: number): Promise<{ splits: InputSplit[]; state: JsonValue }> {
    const { partitions, state: next } = this.take(time, state, limit);
    try {
      const splits = await this.writeBlocks(time, partitions);
      this.lastTaken = partitions;
      return { splits, state: next };
    } catch (e) {
      this.untake(partitions);
      throw e;
    }
  }

  abandon(): void {
    if (this.lastTaken) this.untake(this.lastTaken);
    this.lastTaken = undefined;
  }

  private writeBlocks(time: number, partitions: unknown[][]): Promise<InputSplit[]> {
    return Promise.all(
      partitions.map(async (records, p): Promise<InputSplit> => {
        if (records.length === 0) return { count: 0 };
        const block = keys.input(time, this.spec.nodeId, p, this.io.epoch ?? 0);
        await this.io.blobs.put(block, encodeRecords(records));
        recentBlocks(this.io.blobs).set(block, records);
        return { block, count: records.length };
      }),
    );
  }

  async read(split: InputSplit): Promise<{ records: unknown[] }> {
    if (split.count === 0) return { records: [] };
    const key = split.block;
    if (typeof key !== 'string') throw new SluiceError(`${this.spec.nodeId}: malformed input split ${JSON.stringify(split)}`, { nodeId: this.spec.nodeId });
    const cached = recentBlocks(this.io.blobs).get(key);
    if (cached) return { records: cached };
    const bytes = await this.io.blobs.get(key);
    if (!bytes) {
      throw new SluiceError(`${this.spec.nodeId}: the received block ${key} is missing from the state store; its records cannot be recomputed`, {
        nodeId: this.spec.nodeId,
      });
    }
    return { records: decodeRecords(bytes) };
  }
}

/** Splits `records` into `n` contiguous, nearly equal partitions. */
export function slices<T>(records: readonly T[], n: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < n; i++) out.push(records.slice(Math.floor((i * records.length) / n), Math.floor(((i + 1) * records.length) / n)));
  return out;
}

/**
 * `ctx.queueStream`: the queue is part of the job's code, so, like a Kinesis shard, it retains its
 * data and a split is just a position in it. Every process that loads the job has the same queue,
 * so nothing is copied into blocks: a recomputation re-reads the same arrays.
 */
export class QueueSource implements RecordSource {
  constructor(
    private readonly spec: SourceSpec,
    _io: SourceIO,
  ) {}

  private get local(): { batches: unknown[][]; default?: unknown[] } {
    return this.spec.local as { batches: unknown[][]; default?: unknown[] };
  }

  async cut(_time: number, state: JsonValue | undefined): Promise<{ splits: InputSplit[]; state: JsonValue }> {
    const n = this.spec.params.numPartitions as number;
    const pos = typeof state === 'number' ? state : 0;
    const queue = this.local.batches;
    const from = pos;
    let to = pos;
    if (pos < queue.length) to = this.spec.params.oneAtATime ? pos + 1 : queue.length;
    const records = this.records(from, to);
    const splits: InputSplit[] = [];
    for (let p = 0; p < n; p++) {
      const count = Math.floor(((p + 1) * records.length) / n) - Math.floor((p * records.length) / n);
      splits.push({ from, to, partition: p, of: n, count });
    }
    return { splits, state: to };
  }

  /** The records of queue entries [from, to), or the default batch when the range is empty. */
  private records(from: number, to: number): unknown[] {
    const queue = this.local.batches;
    if (from === to) return this.local.default ?? [];
    return to === from + 1 ? queue[from] : queue.slice(from, to).flat();
  }

  async read(split: InputSplit): Promise<{ records: unknown[] }> {
    const { from, to, partition, of, count } = split as { from: number; to: number; partition: number; of: number; count: number };
    const all = this.records(from, to);
    const records = all.slice(Math.floor((partition * all.length) / of), Math.floor(((partition + 1) * all.length) / of));
    if (records.length !== count || to > this.local.batches.length) {
      throw new SluiceError(
        `${this.spec.nodeId}: queue entries ${from}..${to} hold other records here than where the batch was cut (${records.length} instead of ${count} in partition ${partition}); ` +
          'arrays pushed onto a queueStream while the job runs are only seen by tasks in the coordinator\'s process (run with --parallelism 1)',
        { nodeId: this.spec.nodeId },
      );
    }
    return { records };
  }
}

/** `ctx.generatorStream`: `ratePerSec × elapsed` records per batch; the position counts records made. */
export class GeneratorSource extends BlockSource {
  protected take(time: number, state: JsonValue | undefined): { partitions: unknown[][]; state: JsonValue } {
    const make = (this.spec.local as { make: (i: number) => unknown }).make;
    const rate = this.spec.params.ratePerSec as number;
    const n = this.spec.params.numPartitions as number;
    const s = (state ?? null) as { made: number; last: number } | null;
    const made = s?.made ?? 0;
    // The very first batch covers one batch interval's worth; later ones the time since the last cut.
    const elapsed = s ? time - s.last : (this.io.batchInterval ?? 1000);
    const count = Math.max(0, Math.round((rate * elapsed) / 1000));
    const records = new Array(count);
    for (let i = 0; i < count; i++) records[i] = make(made + i);
    return { partitions: slices(records, n), state: { made: made + count, last: time } };
  }
}

/**
 * Buffers what a push source stores between cuts. The buffer is handed to the batch at the cut
 * and written as a block, so a recomputed batch reads the same records.
 */
export class PushBuffer {
  private buffer: unknown[] = [];
  readonly store = (records: unknown): void => {
    if (Array.isArray(records)) for (const r of records) this.buffer.push(r);
    else this.buffer.push(records);
  };
  /** Hands out what is buffered, or its oldest `limit` records (backpressure); the rest stays. */
  drain(limit?: number): unknown[] {
    if (limit !== undefined && limit < this.buffer.length) return this.buffer.splice(0, limit);
    const out = this.buffer;
    this.buffer = [];
    return out;
  }
  /** Puts drained records back in front of what arrived since, in order. */
  restore(records: readonly unknown[]): void {
    this.buffer = [...records, ...this.buffer];
  }
  /** Records waiting for the next cut. */
  get size(): number {
    return this.buffer.length;
  }
}

/** `ctx.receiverStream`: a user's receiver, started on the coordinator. */
export class ReceiverSource extends BlockSource {
  private readonly buffer = new PushBuffer();
  private get receiver(): Receiver<unknown> {
    return (this.spec.local as { receiver: Receiver<unknown> }).receiver;
  }
  async start(): Promise<void> {
    await this.receiver.start(this.buffer.store);
  }
  async stop(): Promise<void> {
    await this.receiver.stop();
  }
  protected take(_time: number, _state: JsonValue | undefined, limit?: number): { partitions: unknown[][]; state: JsonValue } {
    return { partitions: [this.buffer.drain(limit)], state: null };
  }
  protected override untake(partitions: unknown[][]): void {
    this.buffer.restore(partitions.flat());
  }
}

/**
 * A runtime's source factories, one per kind the catalogue (lib/core/sources.ts) says it runs:
 * the type refuses a registry that misses one.
 * @example
 * ```ts
 * const factories: SourceFactories<'local'> = { ...inMemorySources, socket: (s, io) => new SocketTextSource(s, io), textFile: (s, io) => new TextFileSource(s, io) };
 * ```
 */
export type SourceFactories<R extends Runtime> = { readonly [K in KindOn<R>]: SourceFactory };

/** The sources every runtime has: they need nothing but memory and the blob store. */
export const inMemorySources = {
  queue: (spec, io) => new QueueSource(spec, io),
  generator: (spec, io) => new GeneratorSource(spec, io),
  receiver: (spec, io) => new ReceiverSource(spec, io),
} as const satisfies { readonly [K in KindOn<'local'> & KindOn<'aws'>]?: SourceFactory };

const runtimeNames: { readonly [R in Runtime]: string } = { local: 'local', aws: 'AWS' };

/**
 * The source factory of a runtime, from its registry: a node the catalogue says this runtime cannot
 * run (a socket on AWS, an s3:// directory locally) is refused in the catalogue's words, unless
 * `extra` builds it; so is a kind no one knows.
 *
 * @example
 * ```ts
 * const sources = sourcesOn('local', factories);
 * sources({ nodeId: 'kinesis-1', kind: 'kinesis', params: { stream: 's' } }, io); // throws: kinesisStream('s') needs the AWS runtime: …
 * ```
 */
export function sourcesOn<R extends Runtime>(runtime: R, factories: SourceFactories<R>, extra?: (spec: SourceSpec, io: SourceIO) => RecordSource | undefined): SourceFactory {
  const registry: { readonly [kind: string]: SourceFactory } = factories;
  return (spec, io) => {
    const refused = refusalOf(spec, runtime);
    if (refused === undefined && Object.hasOwn(registry, spec.kind)) return registry[spec.kind](spec, io);
    const fromExtra = extra?.(spec, io);
    if (fromExtra) return fromExtra;
    throw new SluiceError(refused ?? `${spec.nodeId}: the ${runtimeNames[runtime]} runtime has no source of kind ${spec.kind}`, { nodeId: spec.nodeId });
  };
}
