import { type Checkpoint, keys } from '../../lib/engine/protocol.ts';
import type { CommittedInput, InputSplit, JsonValue, MetaStore, RecordSource, SourceFactory } from '../../lib/ports/index.ts';

/** One message: its body is its id. */
interface Message {
  readonly body: string;
  inFlight: boolean;
  deleted: boolean;
  deliveries: number;
}

/** An acknowledgement as the queue saw it: who deleted which batch's messages, and how far the job had committed then. */
export interface Ack {
  readonly by: string;
  readonly time: number;
  readonly ids: readonly string[];
  /** The checkpoint's last completed batch when the messages were deleted. */
  readonly committedThrough: number;
}

/**
 * An in-memory queue with acknowledgements and a visibility timeout, like SQS: a received message
 * is hidden (in flight) until it is deleted or its visibility timeout passes, when it is delivered
 * again. Time is the test's: `expireVisibility()` is the timeout passing.
 */
export class AckQueue {
  private readonly messages: Message[] = [];
  readonly acks: Ack[] = [];

  send(...bodies: string[]): void {
    for (const body of bodies) this.messages.push({ body, inFlight: false, deleted: false, deliveries: 0 });
  }

  /** Up to `max` visible messages, oldest first, now in flight. */
  receive(max: number): string[] {
    const got = this.messages.filter((m) => !m.deleted && !m.inFlight).slice(0, max);
    for (const m of got) {
      m.inFlight = true;
      m.deliveries++;
    }
    return got.map((m) => m.body);
  }

  /** The visibility timeout of every message in flight passes: what was not deleted is visible again. */
  expireVisibility(): void {
    for (const m of this.messages) m.inFlight = false;
  }

  /** Makes messages visible again at once (ChangeMessageVisibility to 0). */
  release(ids: readonly string[]): void {
    for (const m of this.messages) if (ids.includes(m.body)) m.inFlight = false;
  }

  /** Deletes messages; deleting one already deleted does nothing, as in SQS. */
  delete(ids: readonly string[]): void {
    for (const m of this.messages) if (ids.includes(m.body)) m.deleted = true;
  }

  /** How often a message was received. */
  deliveries(id: string): number {
    return this.messages.find((m) => m.body === id)?.deliveries ?? 0;
  }

  /** Messages not deleted yet. */
  get remaining(): string[] {
    return this.messages.filter((m) => !m.deleted).map((m) => m.body);
  }
}

/** What an {@link AckQueueSource} may be told to do besides acknowledging. */
export interface AckQueueSourceOptions {
  /** Waited for before each deletion (a slow DeleteMessage). */
  readonly slow?: (input: CommittedInput) => Promise<void>;
  /** Thrown instead of deleting, while it returns an error (a failing DeleteMessage). */
  readonly fail?: (input: CommittedInput) => Error | undefined;
}

/**
 * A source over an {@link AckQueue}, as an SQS source would be: the cut receives messages into one
 * split that keeps them (a recomputation reads the same ones), and only `committed` deletes them.
 * A cut that is abandoned makes its messages visible again.
 */
export class AckQueueSource implements RecordSource {
  constructor(
    private readonly queue: AckQueue,
    private readonly by: string,
    private readonly meta: MetaStore,
    private readonly options: AckQueueSourceOptions = {},
  ) {}

  async cut(): Promise<{ splits: InputSplit[]; state: JsonValue }> {
    const ids = this.queue.receive(100);
    return { splits: [{ ids, count: ids.length }], state: null };
  }

  async read(split: InputSplit): Promise<{ records: unknown[] }> {
    return { records: [...(split.ids as string[])] };
  }

  async committed(input: CommittedInput): Promise<void> {
    await this.options.slow?.(input);
    const error = this.options.fail?.(input);
    if (error) throw error;
    const ids = input.splits.flatMap((s) => s.ids as string[]);
    const checkpoint = await this.meta.get<Checkpoint>(keys.checkpoint);
    this.queue.acks.push({ by: this.by, time: input.time, ids, committedThrough: checkpoint?.value.lastCompleted ?? -1 });
    this.queue.delete(ids);
  }

  abandon(splits: readonly InputSplit[]): void {
    this.queue.release(splits.flatMap((s) => s.ids as string[]));
  }
}

/** A source factory that reads every source node of a job from `queue`, as coordinator `by`. */
export function ackQueueSources(queue: AckQueue, by: string, meta: MetaStore, options?: AckQueueSourceOptions): SourceFactory {
  return () => new AckQueueSource(queue, by, meta, options);
}
