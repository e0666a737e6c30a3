import type { MessagePort } from 'node:worker_threads';
import type { BlobStore } from '../ports/index.ts';

/**
 * A {@link BlobStore} across a `MessagePort`: the worker-thread invoker gives each thread a client
 * whose calls run on the real store in the main thread. That way a memory store (tests, `sluice run`
 * without a state directory) is shared by all threads, and nothing but the main thread ever needs
 * the store's own resources (handles, credentials, caches).
 */

/** The BlobStore methods a client may call; anything else is refused by the server. */
const OPS = ['put', 'get', 'getRange', 'exists', 'delete', 'list'] as const;
type Op = (typeof OPS)[number];

/** A call from a {@link BlobStoreClient}. */
interface RpcRequest {
  readonly id: number;
  readonly op: Op;
  readonly args: readonly unknown[];
}

/** The answer of {@link serveBlobStore} to one request. */
type RpcResponse =
  | { readonly id: number; readonly ok: true; readonly value: unknown }
  | { readonly id: number; readonly ok: false; readonly error: { readonly name: string; readonly message: string } };

function isRequest(m: unknown): m is RpcRequest {
  if (!m || typeof m !== 'object') return false;
  const r = m as Partial<RpcRequest>;
  return typeof r.id === 'number' && typeof r.op === 'string' && Array.isArray(r.args);
}

function errorInfo(e: unknown): { name: string; message: string } {
  return e instanceof Error ? { name: e.name, message: e.message } : { name: 'Error', message: String(e) };
}

/**
 * The bytes to send back, and what to transfer. Transferring saves the copy structured cloning
 * would make. A view that spans its whole `ArrayBuffer` is the caller's own copy (stores hand out
 * copies: the engine relies on blobs being immutable, see MemoryBlobStore), so it can be moved;
 * a view into a larger buffer (Node's Buffer pool) is copied first, because transferring would
 * detach memory that other objects still use.
 */
function transferable(value: unknown): { value: unknown; transfer: ArrayBuffer[] } {
  if (!(value instanceof Uint8Array)) return { value, transfer: [] };
  const whole = value.buffer instanceof ArrayBuffer && value.byteOffset === 0 && value.byteLength === value.buffer.byteLength;
  const bytes = whole ? value : value.slice();
  return { value: bytes, transfer: [bytes.buffer as ArrayBuffer] };
}

/**
 * Serves `store` to the {@link BlobStoreClient} at the other end of `port`: runs each request on
 * the store and posts back its result, or its error as `{ name, message }`. Returns a function
 * that stops serving (it does not close the port). Calls run concurrently, as they would on the
 * store itself.
 *
 * @example
 * ```ts
 * const { port1, port2 } = new MessageChannel();
 * const stop = serveBlobStore(port1, new MemoryBlobStore());
 * new Worker(entry, { workerData: { blobPort: port2 }, transferList: [port2] });
 * // ... later
 * stop();
 * ```
 */
export function serveBlobStore(port: MessagePort, store: BlobStore): () => void {
  const reply = (response: RpcResponse, transfer: ArrayBuffer[] = []) => {
    try {
      port.postMessage(response, transfer);
    } catch (e) {
      // A value that cannot be cloned must still answer the call, or the client waits forever.
      try {
        port.postMessage({ id: response.id, ok: false, error: errorInfo(e) } satisfies RpcResponse);
      } catch {
        // The port is gone (its thread ended): nobody is waiting for the answer.
      }
    }
  };
  const onMessage = async (m: unknown) => {
    if (!isRequest(m)) return;
    const { id, op, args } = m;
    try {
      if (!(OPS as readonly string[]).includes(op)) throw new TypeError(`blob store RPC: unknown operation ${JSON.stringify(op)}`);
      const fn = store[op] as (...a: unknown[]) => Promise<unknown>;
      const { value, transfer } = transferable(await fn.apply(store, args as unknown[]));
      reply({ id, ok: true, value }, transfer);
    } catch (e) {
      reply({ id, ok: false, error: errorInfo(e) });
    }
  };
  port.on('message', onMessage);
  return () => {
    port.off('message', onMessage);
  };
}

interface Pending {
  resolve(value: unknown): void;
  reject(error: Error): void;
}

/**
 * A {@link BlobStore} whose every call is forwarded over `port` to {@link serveBlobStore} in
 * another thread. Errors come back as `Error`s with the store's `name` and `message` (the
 * class does not cross the thread boundary, the name does). The port only keeps the thread
 * alive while a call is in flight.
 *
 * @example
 * ```ts
 * // in a worker thread
 * const blobs = new BlobStoreClient(workerData.blobPort);
 * await blobs.put('a/b', 'hello');
 * await blobs.get('a/b'); // Uint8Array of 'hello'
 * ```
 */
export class BlobStoreClient implements BlobStore {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private closedError: Error | undefined;

  constructor(private readonly port: MessagePort) {
    port.on('message', (m: RpcResponse) => this.settle(m));
    port.on('close', () => this.fail(new Error('blob store RPC: the port to the main thread closed')));
    // An idle client must not keep its thread alive; call() refs the port while calls are pending.
    port.unref();
  }

  put(key: string, body: Uint8Array | string): Promise<void> {
    // The body is cloned, not transferred: the caller may go on using its bytes.
    return this.call('put', [key, body]) as Promise<void>;
  }

  get(key: string): Promise<Uint8Array | undefined> {
    return this.call('get', [key]) as Promise<Uint8Array | undefined>;
  }

  getRange(key: string, start: number, end: number): Promise<Uint8Array | undefined> {
    return this.call('getRange', [key, start, end]) as Promise<Uint8Array | undefined>;
  }

  exists(key: string): Promise<boolean> {
    return this.call('exists', [key]) as Promise<boolean>;
  }

  delete(keys: readonly string[]): Promise<void> {
    return this.call('delete', [keys]) as Promise<void>;
  }

  list(prefix: string): Promise<string[]> {
    return this.call('list', [prefix]) as Promise<string[]>;
  }

  private call(op: Op, args: unknown[]): Promise<unknown> {
    if (this.closedError) return Promise.reject(this.closedError);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      try {
        this.port.postMessage({ id, op, args } satisfies RpcRequest);
      } catch (e) {
        reject(e instanceof Error ? e : new Error(String(e)));
        return;
      }
      if (this.pending.size === 0) this.port.ref();
      this.pending.set(id, { resolve, reject });
    });
  }

  private settle(m: RpcResponse): void {
    const p = this.pending.get(m?.id);
    if (!p) return;
    this.pending.delete(m.id);
    if (this.pending.size === 0) this.port.unref();
    if (m.ok) {
      p.resolve(m.value);
    } else {
      const err = new Error(m.error.message);
      err.name = m.error.name;
      p.reject(err);
    }
  }

  private fail(error: Error): void {
    this.closedError = error;
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const p of pending) p.reject(error);
  }
}
