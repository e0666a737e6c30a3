import { SluiceError } from '../api/errors.ts';
import type { Receiver } from '../api/receiver.ts';
import type { InputSplit, JsonValue, RecordSource, SourceIO, SourceSpec } from '../ports/index.ts';
import { decodeRecords, encodeRecords } from './codec.ts';
import { keys } from './protocol.ts';

/**
 * Sources whose records live in the coordinator's memory until the batch is cut (queues,
 * generators, receivers, sockets). At the cut, each partition's records are written as a block
 * to the blob store *before* the batch record seals it, so any worker, and any later
 * recomputation, reads exactly those records.
 */
export abstract class BlockSource implements RecordSource {
  constructor(
    protected readonly spec: SourceSpec,
    protected readonly io: SourceIO,
  ) {}

  /** The records of the batch ending at `time`, per partition, and the position after them. */
  protected abstract take(time: number, state: JsonValue | undefined): { partitions: unknown[][]; state: JsonValue };

  /** Gives back what `take` handed out when its blocks could not be written (push sources re-buffer it). */
  protected untake(_partitions: unknown[][]): void {}

  async cut(time: number, state: JsonValue | undefined): Promise<{ splits: InputSplit[]; state: JsonValue }> {
    const { partitions, state: next } = this.take(time, state);
    try {
      return { splits: await this.writeBlocks(time, partitions), state: next };
    } catch (e) {
      this.untake(partitions);
      throw e;
    }
  }

  private writeBlocks(time: number, partitions: unknown[][]): Promise<InputSplit[]> {
    return Promise.all(
      partitions.map(async (records, p): Promise<InputSplit> => {
        if (records.length === 0) return { count: 0 };
        const block = keys.input(time, this.spec.nodeId, p);
        await this.io.blobs.put(block, encodeRecords(records));
        return { block, count: records.length };
      }),
    );
  }

  async read(split: InputSplit): Promise<{ records: unknown[] }> {
    if (split.count === 0) return { records: [] };
    const key = split.block;
    if (typeof key !== 'string') throw new SluiceError(`${this.spec.nodeId}: malformed input split ${JSON.stringify(split)}`, { nodeId: this.spec.nodeId });
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

/** `ctx.queueStream`: the position is the number of queued arrays consumed, kept in the checkpoint. */
export class QueueSource extends BlockSource {
  protected take(_time: number, state: JsonValue | undefined): { partitions: unknown[][]; state: JsonValue } {
    const local = this.spec.local as { batches: unknown[][]; default?: unknown[] };
    const n = this.spec.params.numPartitions as number;
    const pos = typeof state === 'number' ? state : 0;
    const queue = local.batches;
    if (pos >= queue.length) return { partitions: slices(local.default ?? [], n), state: pos };
    if (this.spec.params.oneAtATime) return { partitions: slices(queue[pos], n), state: pos + 1 };
    return { partitions: slices(queue.slice(pos).flat(), n), state: queue.length };
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
  drain(): unknown[] {
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
  protected take(): { partitions: unknown[][]; state: JsonValue } {
    return { partitions: [this.buffer.drain()], state: null };
  }
  protected override untake(partitions: unknown[][]): void {
    this.buffer.restore(partitions.flat());
  }
}

/** The sources every runtime has (they need nothing but memory and the blob store). */
export function coreSource(spec: SourceSpec, io: SourceIO): RecordSource | undefined {
  switch (spec.kind) {
    case 'queue':
      return new QueueSource(spec, io);
    case 'generator':
      return new GeneratorSource(spec, io);
    case 'receiver':
      return new ReceiverSource(spec, io);
    default:
      return undefined;
  }
}
