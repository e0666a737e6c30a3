import { connect, type Socket } from 'node:net';
import { BlockSource, PushBuffer } from '../engine/sources.ts';
import type { JsonValue, SourceIO, SourceSpec } from '../ports/index.ts';

/** Options of {@link SocketTextSource}. */
export interface SocketSourceOptions {
  /**
   * Told about connection trouble (refused, lost, restored). The source never throws for these:
   * a socket stream outlives its server, as Spark's receiver does.
   * @default nothing is reported
   */
  readonly log?: (line: string) => void;
  /** First reconnect delay; it doubles at every failed attempt. @default 100 */
  readonly minBackoffMs?: number;
  /** Longest reconnect delay. @default 2000 */
  readonly maxBackoffMs?: number;
}

/** Where a {@link SocketTextSource} is in its connection cycle. */
export type SocketSourceStatus = 'stopped' | 'connecting' | 'connected' | 'waiting';

/**
 * `ctx.socketTextStream(host, port)` (Spark's `socketTextStream`): connects to a TCP server from
 * the coordinator, splits what arrives into lines (`\n` or `\r\n`) and keeps them until the next
 * batch cut. A line belongs to the batch whose cut comes after it was received.
 *
 * The connection is restarted with a backoff (100 ms doubling to 2 s by default) whenever it
 * closes or cannot be opened, until {@link SocketTextSource.stop} — like Spark's receiver restart.
 *
 * Recomputation: a socket cannot be re-read, so {@link BlockSource.cut} writes the lines of each
 * batch as a block to the blob store *before* the coordinator seals the batch record. Every later
 * read of that split (a retried task, a recovered batch) reads that block, i.e. exactly the same
 * lines. Lines still in memory when the process dies are lost, as in Spark without a write-ahead log.
 *
 * @example
 * ```ts
 * const source = new SocketTextSource({ nodeId: 'socket-1', kind: 'socket', params: { host: 'localhost', port: 9999 } }, { blobs, job: 'j' });
 * await source.start();               // connects in the background from now on
 * const { splits } = await source.cut(1000, undefined); // the lines received so far, as one block
 * const { records } = await source.read(splits[0]);
 * await source.stop();
 * ```
 */
export class SocketTextSource extends BlockSource {
  private readonly buffer = new PushBuffer();
  private socket: Socket | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = true;
  private connectedNow = false;
  /** Whether the current outage was already reported, so a dead server gives one line, not one per retry. */
  private reported = false;
  private backoff: number;
  private readonly minBackoff: number;
  private readonly maxBackoff: number;
  private readonly log: (line: string) => void;

  constructor(spec: SourceSpec, io: SourceIO, options: SocketSourceOptions = {}) {
    super(spec, io);
    this.minBackoff = options.minBackoffMs ?? 100;
    this.maxBackoff = Math.max(this.minBackoff, options.maxBackoffMs ?? 2000);
    this.backoff = this.minBackoff;
    const log = options.log;
    // A throwing logger must not take the receiver (or the process, from a socket event) down.
    this.log = (line) => {
      try {
        log?.(line);
      } catch {
        // ignored on purpose: reporting is best effort
      }
    };
  }

  private get host(): string {
    return String(this.spec.params.host);
  }

  private get port(): number {
    return Number(this.spec.params.port);
  }

  private get address(): string {
    return `${this.host}:${this.port}`;
  }

  /** Lines received and not yet cut into a batch (for tests and progress output). */
  get buffered(): number {
    return this.buffer.size;
  }

  /** Whether the source is stopped, connecting, connected, or waiting to reconnect. */
  get status(): SocketSourceStatus {
    if (this.stopped) return 'stopped';
    if (this.connectedNow) return 'connected';
    return this.timer ? 'waiting' : 'connecting';
  }

  /**
   * Starts receiving. Resolves once the first connection attempt has succeeded or failed, so a
   * server that is up when the job starts is connected before the first batch; a server that is
   * down does not block the job (the source keeps retrying in the background).
   */
  async start(): Promise<void> {
    if (!this.stopped) return;
    this.stopped = false;
    this.reported = false;
    this.backoff = this.minBackoff;
    await new Promise<void>((resolve) => this.connect(resolve));
  }

  /** Closes the connection and stops reconnecting. Lines already received stay for the next cut. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const socket = this.socket;
    if (!socket) return;
    await new Promise<void>((resolve) => {
      socket.once('close', () => resolve());
      socket.destroy();
    });
  }

  protected take(_time: number, _state: JsonValue | undefined, limit?: number): { partitions: unknown[][]; state: JsonValue } {
    // No position to keep: what was received is the batch, and the block written by `cut`
    // (not the socket) is what every read of this batch sees.
    return { partitions: [this.buffer.drain(limit)], state: null };
  }

  protected override untake(partitions: unknown[][]): void {
    this.buffer.restore(partitions.flat());
  }

  private connect(settled?: () => void): void {
    this.timer = undefined;
    if (this.stopped) {
      settled?.();
      return;
    }
    const socket = connect({ host: this.host, port: this.port });
    this.socket = socket;
    socket.setEncoding('utf8'); // a StringDecoder: a UTF-8 character split across chunks stays whole
    // Per connection, so a late chunk of an old socket never mixes into a new one.
    let partial = '';
    let opened = false;
    let failure: Error | undefined;

    socket.once('connect', () => {
      opened = true;
      this.connectedNow = true;
      this.backoff = this.minBackoff;
      if (this.reported) this.log(`${this.spec.nodeId}: connected to ${this.address}`);
      this.reported = false;
      settled?.();
      settled = undefined;
    });
    socket.on('data', (chunk: string) => {
      const text = partial + chunk;
      const parts = text.split('\n');
      // The last part has no newline yet: keep it until more data or the end of the stream.
      partial = parts.pop() ?? '';
      if (parts.length === 0) return;
      for (let i = 0; i < parts.length; i++) {
        const line = parts[i];
        // `\r\n`: the `\r` may have come in the previous chunk; it is still the end of this part.
        if (line.endsWith('\r')) parts[i] = line.slice(0, -1);
      }
      this.push(parts);
    });
    socket.on('end', () => {
      // A clean end of stream: the unterminated last line is a line (as BufferedReader.readLine
      // returns it at EOF). On an error or stop() it is dropped instead, since it may be cut short.
      if (partial !== '') this.push([partial.endsWith('\r') ? partial.slice(0, -1) : partial]);
      partial = '';
    });
    socket.on('error', (err) => {
      // Handled here so a refused or reset connection never becomes an uncaught exception.
      failure = err;
    });
    socket.on('close', () => {
      if (this.socket === socket) this.socket = undefined;
      this.connectedNow = false;
      settled?.();
      settled = undefined;
      if (this.stopped) return;
      const why = failure ? ` (${(failure as NodeJS.ErrnoException).code ?? failure.message})` : '';
      if (opened) {
        this.log(`${this.spec.nodeId}: connection to ${this.address} closed${why}; reconnecting`);
      } else if (!this.reported) {
        this.log(`${this.spec.nodeId}: cannot connect to ${this.address}${why}; retrying until it accepts`);
        this.reported = true;
      }
      const delay = this.backoff;
      this.backoff = Math.min(this.backoff * 2, this.maxBackoff);
      this.timer = setTimeout(() => this.connect(), delay);
      // A pending retry alone must not keep the process alive (the runtime's batch timer does).
      this.timer.unref();
    });
  }

  private push(lines: string[]): void {
    this.buffer.store(lines);
  }
}
