import { createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { SluiceError } from '../../lib/core/errors.ts';
import { MemoryBlobStore } from '../../lib/local/memoryBlobStore.ts';
import { SocketTextSource } from '../../lib/local/socketSource.ts';
import { localSources } from '../../lib/local/sourceFactory.ts';
import type { SourceFactory, SourceSpec } from '../../lib/ports/index.ts';
import { testCoordinator } from '../helpers/engine.ts';

/** A TCP server on 127.0.0.1 that hands out the connections it accepts, in order. */
interface TestServer {
  readonly server: Server;
  readonly port: number;
  /** The next accepted connection (already accepted ones first). */
  nextConnection(): Promise<Socket>;
}

const servers: Server[] = [];
const sockets: Socket[] = [];
const sources: SocketTextSource[] = [];

async function listen(port = 0, onConnection?: (socket: Socket) => void): Promise<TestServer> {
  const accepted: Socket[] = [];
  const waiting: ((s: Socket) => void)[] = [];
  const server = createServer((socket) => {
    sockets.push(socket);
    socket.on('error', () => {}); // a reset by the source under test is not a test failure
    onConnection?.(socket);
    const w = waiting.shift();
    if (w) w(socket);
    else accepted.push(socket);
  });
  servers.push(server);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('no TCP address');
  return {
    server,
    port: address.port,
    nextConnection: () => {
      const s = accepted.shift();
      return s ? Promise.resolve(s) : new Promise((resolve) => waiting.push(resolve));
    },
  };
}

async function closeServer(server: Server): Promise<void> {
  if (!server.listening) return;
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/** Polls `condition` until it holds; fails after `timeoutMs`. */
async function waitFor(condition: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/** Resolves when the event has been emitted once. */
function once(socket: Socket, event: 'end' | 'close'): Promise<void> {
  return new Promise((resolve) => socket.once(event, () => resolve()));
}

function spec(port: number): SourceSpec {
  return { nodeId: 'socket-1', kind: 'socket', params: { host: '127.0.0.1', port } };
}

function newSource(port: number, log: string[] = []): { source: SocketTextSource; blobs: MemoryBlobStore; log: string[] } {
  const blobs = new MemoryBlobStore();
  const source = new SocketTextSource(spec(port), { blobs, job: 'test' }, { log: (l) => log.push(l), minBackoffMs: 10, maxBackoffMs: 200 });
  sources.push(source);
  return { source, blobs, log };
}

/** Cuts a batch and reads every split back through the source, as a worker would. */
async function cutAndRead(source: SocketTextSource, time: number): Promise<{ lines: unknown[]; splits: number }> {
  const { splits, state } = await source.cut(time, null);
  expect(state).toBeNull();
  const lines: unknown[] = [];
  for (const split of splits) lines.push(...(await source.read(split)).records);
  return { lines, splits: splits.length };
}

afterEach(async () => {
  for (const s of sources.splice(0)) await s.stop();
  for (const s of sockets.splice(0)) s.destroy();
  for (const s of servers.splice(0)) await closeServer(s);
});

describe('SocketTextSource', () => {
  it('splits what arrives into lines across chunks and \\r\\n, and cuts them into a block', async () => {
    // Prepare
    const server = await listen();
    const { source, blobs } = newSource(server.port);
    await source.start();
    const conn = await server.nextConnection();

    // Act
    conn.write('alpha\nbe');
    conn.write('ta\r\ngamma\r');
    conn.write('\ndelta');
    conn.write(' echo\n\ncaf\u00e9 \u{1F600}\n');
    await waitFor(() => source.buffered === 6, '6 buffered lines');
    const first = await source.cut(1000, undefined);

    // Assess
    expect(source.status).toBe('connected');
    expect(source.buffered).toBe(0);
    expect(first.splits).toEqual([{ block: expect.stringContaining('socket-1'), count: 6 }]);
    expect(await blobs.list('')).toEqual([first.splits[0].block]);
    expect((await source.read(first.splits[0])).records).toEqual(['alpha', 'beta', 'gamma', 'delta echo', '', 'café 😀']);
  });

  it('keeps a multi-byte character whole when it is split between two TCP writes', async () => {
    // Prepare
    const server = await listen();
    const { source } = newSource(server.port);
    await source.start();
    const conn = await server.nextConnection();
    const bytes = Buffer.from('\u00e9t\u00e9\n', 'utf8');

    // Act: the first write ends in the middle of the two-byte 'é'
    conn.write(bytes.subarray(0, 1));
    await waitFor(() => conn.bytesWritten === 1, 'the first byte on the wire');
    conn.write(bytes.subarray(1));
    await waitFor(() => source.buffered === 1, 'one line');

    // Assess
    expect((await cutAndRead(source, 1000)).lines).toEqual(['été']);
  });

  it('gives each cut only the lines received since the previous one', async () => {
    // Prepare
    const server = await listen();
    const { source } = newSource(server.port);
    await source.start();
    const conn = await server.nextConnection();
    conn.write('one\ntwo\n');
    await waitFor(() => source.buffered === 2, '2 lines');

    // Act
    const first = await cutAndRead(source, 1000);
    const empty = await source.cut(2000, null);
    conn.write('three\n');
    await waitFor(() => source.buffered === 1, '1 new line');
    const third = await cutAndRead(source, 3000);

    // Assess
    expect(first.lines).toEqual(['one', 'two']);
    expect(empty.splits).toEqual([{ count: 0 }]);
    expect((await source.read(empty.splits[0])).records).toEqual([]);
    expect(third.lines).toEqual(['three']);
  });

  it('reads a cut block again with the same lines (a recomputed batch)', async () => {
    // Prepare
    const server = await listen();
    const { source, blobs } = newSource(server.port);
    await source.start();
    const conn = await server.nextConnection();
    conn.write('x\ny\n');
    await waitFor(() => source.buffered === 2, '2 lines');
    const { splits } = await source.cut(1000, null);

    // Act: a worker-side adapter (a fresh instance on the same blob store) reads the split twice
    conn.write('z\n');
    await waitFor(() => source.buffered === 1, 'a later line');
    const reader = new SocketTextSource(spec(server.port), { blobs, job: 'test' });
    const again = [await reader.read(splits[0]), await reader.read(splits[0])];

    // Assess
    expect(again.map((r) => r.records)).toEqual([
      ['x', 'y'],
      ['x', 'y'],
    ]);
  });

  it('stores an unterminated last line when the server ends the stream, then reconnects', async () => {
    // Prepare
    const log: string[] = [];
    const server = await listen();
    const { source } = newSource(server.port, log);
    await source.start();
    const conn = await server.nextConnection();

    // Act: the server drops the connection after a line without newline
    conn.end('before\ntail');
    const second = await server.nextConnection();
    second.write('after\n');
    await waitFor(() => source.buffered === 3, '3 lines');
    const { lines } = await cutAndRead(source, 1000);

    // Assess
    expect(lines).toEqual(['before', 'tail', 'after']);
    expect(source.status).toBe('connected');
    expect(log).toEqual([expect.stringMatching(/^socket-1: connection to 127\.0\.0\.1:\d+ closed; reconnecting$/)]);
  });

  it('reconnects after the server destroys the connection abruptly', async () => {
    // Prepare
    const server = await listen();
    const { source } = newSource(server.port);
    await source.start();
    const conn = await server.nextConnection();
    conn.write('one\n');
    await waitFor(() => source.buffered === 1, 'the first line');

    // Act
    conn.destroy();
    const again = await server.nextConnection();
    again.write('two\n');
    await waitFor(() => source.buffered === 2, 'the line after reconnecting');

    // Assess
    expect((await cutAndRead(source, 1000)).lines).toEqual(['one', 'two']);
  });

  it('keeps retrying while nobody listens, reports it once, and connects when a server comes up', async () => {
    // Prepare: a port that was just free
    const probe = await listen();
    const port = probe.port;
    await closeServer(probe.server);
    const log: string[] = [];
    const { source } = newSource(port, log);

    // Act
    await source.start(); // resolves although the connection was refused
    await waitFor(() => log.length > 0, 'the refusal to be reported');
    const statusWhileDown = source.status;
    const server = await listen(port);
    const conn = await server.nextConnection();
    conn.write('hello\n');
    await waitFor(() => source.buffered === 1, 'a line from the late server');

    // Assess
    expect(statusWhileDown).not.toBe('connected');
    expect(log[0]).toMatch(new RegExp(`^socket-1: cannot connect to 127\\.0\\.0\\.1:${port} \\(ECONNREFUSED\\); retrying`));
    expect(log.filter((l) => l.includes('cannot connect'))).toHaveLength(1);
    await waitFor(() => log.length === 2, 'the reconnect to be reported');
    expect(log[1]).toBe(`socket-1: connected to 127.0.0.1:${port}`);
    expect((await cutAndRead(source, 1000)).lines).toEqual(['hello']);
  });

  it('survives a logger that throws', async () => {
    // Prepare
    const probe = await listen();
    const port = probe.port;
    await closeServer(probe.server);
    let calls = 0;
    const source = new SocketTextSource(spec(port), { blobs: new MemoryBlobStore(), job: 'test' }, {
      minBackoffMs: 10,
      log: () => {
        calls++;
        throw new Error('broken logger');
      },
    });
    sources.push(source);

    // Act
    await source.start();
    await waitFor(() => calls > 0, 'the logger to be called');
    const server = await listen(port);
    await server.nextConnection();

    // Assess
    await waitFor(() => source.status === 'connected', 'the connection');
  });

  it('stop() closes the connection and stops reconnecting; lines received stay for the next cut', async () => {
    // Prepare
    const log: string[] = [];
    const server = await listen();
    const { source } = newSource(server.port, log);
    await source.start();
    const conn = await server.nextConnection();
    conn.write('kept\npartial');
    await waitFor(() => source.buffered === 1, 'one line');
    const closed = once(conn, 'close');

    // Act
    await source.stop();
    await closed;

    // Assess
    expect(source.status).toBe('stopped');
    expect(log).toEqual([]); // a stop is not a lost connection
    expect((await cutAndRead(source, 1000)).lines).toEqual(['kept']); // an unfinished line is dropped
    expect(await new Promise<number>((resolve, reject) => server.server.getConnections((e, n) => (e ? reject(e) : resolve(n))))).toBe(0);
  });

  it('can be stopped while it waits to reconnect, and started again', async () => {
    // Prepare
    const probe = await listen();
    const port = probe.port;
    await closeServer(probe.server);
    const log: string[] = [];
    const { source } = newSource(port, log);
    await source.start();
    await waitFor(() => source.status === 'waiting', 'a retry to be scheduled');

    // Act
    await source.stop();
    const stoppedStatus = source.status;
    const server = await listen(port);
    await source.start();

    // Assess
    expect(stoppedStatus).toBe('stopped');
    expect(source.status).toBe('connected');
    const conn = await server.nextConnection();
    conn.write('back\n');
    await waitFor(() => source.buffered === 1, 'a line after the restart');
  });
});

describe('localSources', () => {
  it('builds a SocketTextSource for socket nodes, before any extra factory', () => {
    // Prepare
    const extra = () => {
      throw new Error('extra must not be asked for a socket');
    };

    // Act
    const source = localSources(extra)(spec(9), { blobs: new MemoryBlobStore(), job: 'test' });

    // Assess
    expect(source).toBeInstanceOf(SocketTextSource);
  });

  it('still asks the extra factory for other kinds and refuses unknown ones', () => {
    // Prepare
    const io = { blobs: new MemoryBlobStore(), job: 'test' };
    const custom = new SocketTextSource(spec(9), io);
    // SourceFactory's type has no "not mine" result, but localSources treats undefined as one.
    const sources = localSources(((s: SourceSpec) => (s.kind === 'custom' ? custom : undefined)) as SourceFactory);

    // Act / Assess
    expect(sources({ nodeId: 'custom-1', kind: 'custom', params: {} }, io)).toBe(custom);
    expect(() => sources({ nodeId: 'odd-1', kind: 'odd', params: {} }, io)).toThrow(SluiceError);
  });
});

describe('socketTextStream end to end', () => {
  it('counts the words of the lines received before the first batch', async () => {
    // Prepare: the server sends its lines on the first connection and ends it. The source's
    // FIN only reaches the server after the source has handled all data and the end of the
    // stream, so the server seeing 'end' means the lines are buffered: the test waits for it
    // after the coordinator started the source, before the first cut.
    let connected = false;
    let ended!: () => void;
    const firstEnded = new Promise<void>((resolve) => (ended = resolve));
    const server = await listen(0, (socket) => {
      if (connected) return; // reconnects get nothing
      connected = true;
      void once(socket, 'end').then(() => ended());
      socket.end('a b\r\nb c\nc');
    });
    const out = new Map<number, [string, number][]>();
    const t = testCoordinator({ batchInterval: 1000 }, (ctx) =>
      ctx
        .socketTextStream('127.0.0.1', server.port)
        .flatMap((l) => l.split(' '))
        .countByValue()
        .foreachRDD(async (b, time) => void out.set(time, (await b.collect()) as [string, number][])),
    );

    // Act
    await t.coordinator.start();
    await firstEnded;
    await t.run(2);
    await t.coordinator.stop();

    // Assess
    expect([...out.keys()]).toEqual([1000, 2000]);
    expect(out.get(1000)!.sort()).toEqual([
      ['a', 1],
      ['b', 2],
      ['c', 2],
    ]);
    expect(out.get(2000)).toEqual([]);
    expect(t.log.warnings).toEqual([]);
  });
});

describe('socketTextStream with backpressure (README, "Backpressure")', () => {
  it('a flood of lines is handed out at most rate × interval per batch, oldest first; the rest waits in the source, nothing lost or doubled', async () => {
    // Prepare: a job whose every line costs 1 ms of manual-clock time, i.e. 1,000 lines/s at 1 s
    // batches; the socket source the coordinator starts is kept to watch its buffer.
    const server = await listen();
    const made: SocketTextSource[] = [];
    const local = localSources(undefined, { log: () => undefined });
    const sizes: number[] = [];
    const seen: string[] = [];
    const at: { clock?: { advance(ms: number): number } } = {};
    const t = testCoordinator(
      { batchInterval: '1s', backpressure: true },
      (ctx) => {
        ctx.addListener({ onBatchCompleted: (b) => void sizes.push(b.numRecords) });
        ctx
          .socketTextStream('127.0.0.1', server.port)
          .map((line) => (at.clock!.advance(1), line))
          .foreachRDD(async (b) => void seen.push(...(await b.collect())));
      },
      {
        sources: (s, io) => {
          const source = local(s, io);
          if (source instanceof SocketTextSource) {
            made.push(source);
            sources.push(source); // stopped after the test
          }
          return source;
        },
      },
    );
    at.clock = t.clock;
    /** Runs batches back to back as a late job does: the clock never goes back to a batch's time. */
    const runBatch = async () => {
      t.clock.set(Math.max(t.clock.now(), t.coordinator.nextBatchTime));
      await t.coordinator.runNextBatch();
    };
    await t.coordinator.start();
    const receiving = made.find((s) => s.status === 'connected')!;
    const conn = await server.nextConnection();
    const sent: string[] = [];
    /** Writes `n` numbered lines and waits until the source holds all of them. */
    const send = async (n: number) => {
      const lines = Array.from({ length: n }, (_, i) => `line ${sent.length + i}`);
      sent.push(...lines);
      const expected = receiving.buffered + n;
      conn.write(lines.map((l) => `${l}\n`).join(''));
      await waitFor(() => receiving.buffered === expected, `${expected} buffered lines`);
    };
    // Two batches with lines: the first calibrates the rate estimator, the second gives it a rate.
    for (let i = 0; i < 2; i++) {
      await send(200);
      await runBatch();
    }

    // Act: a flood five times what a batch can take; batches run until the source is drained.
    await send(5000);
    const flood = sizes.length;
    const left: number[] = [receiving.buffered];
    while (receiving.buffered > 0 && sizes.length < flood + 60) {
      await runBatch();
      left.push(receiving.buffered);
    }

    // Assess: no batch took more than the processing rate allows, each took its lines from the
    // source's buffer (what it holds went down by exactly the batch's size), and the lines came
    // out in the order they were sent, each once.
    const floodSizes = sizes.slice(flood);
    expect(Math.max(...floodSizes)).toBeLessThanOrEqual(1000);
    expect(floodSizes.length).toBeGreaterThanOrEqual(5);
    expect(left.slice(1).map((n, i) => left[i] - n)).toEqual(floodSizes);
    expect(left.at(-1)).toBe(0);
    expect(seen).toEqual(sent);
  });
});
