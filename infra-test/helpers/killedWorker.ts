import type { BlobStore } from '../../lib/ports/index.ts';
import type { Interceptor } from './workerContainer.ts';

/** The rest of a killed process's work: it never happens. */
const NEVER = new Promise<never>(() => undefined);

/**
 * The error the Lambda service reports for an invocation whose runtime was killed (out of memory,
 * say): the invoker sees `FunctionError: Unhandled` with this type and message.
 */
export function runtimeKilledError(): Error {
  const error = new Error(`RequestId: ${globalThis.crypto.randomUUID()} Error: Runtime exited with error: signal: killed`);
  error.name = 'Runtime.ExitError';
  return error;
}

/**
 * A Lambda container that is killed once `writes` of its writes have landed. The last of those
 * writes is stored, and then nothing more of the container happens: the code that wrote never
 * resumes, no later request leaves the container, and the invocation ends with the error Lambda
 * reports for a killed runtime. What it wrote before it died stays where it landed.
 *
 * Its requests go through {@link DoomedContainer.s3} (an S3 client's interceptor, PutObject being
 * the write), {@link DoomedContainer.requests} (any other client) or {@link DoomedContainer.blobs}
 * (a blob store of its own over a shared one); {@link DoomedContainer.invoke} runs an invocation.
 *
 * @example
 * ```ts
 * const container = new DoomedContainer(1);
 * const run = containerWorker(definition, config, { s3: container.s3, kinesis: container.requests });
 * await container.invoke(run, task); // rejects with Runtime.ExitError once its first PutObject landed
 * container.landed; // ['bucket/key'] of that PutObject
 * ```
 */
export class DoomedContainer {
  /** The writes that landed, in order: `bucket/key` for S3, the key for a blob store. */
  readonly landed: string[] = [];
  readonly #killed: Promise<never>;
  #kill!: () => void;
  #dead = false;

  constructor(readonly writes = 1) {
    this.#killed = new Promise<never>((_resolve, reject) => {
      this.#kill = () => reject(runtimeKilledError());
    });
    // Whoever runs an invocation hears of the death; nobody else has to.
    this.#killed.catch(() => undefined);
  }

  get dead(): boolean {
    return this.#dead;
  }

  /** Lets a request leave the container: at once while it lives, never once it is dead. */
  async #leave(): Promise<void> {
    if (this.#dead) await NEVER;
  }

  /** Counts a write that landed; the last one allowed kills the container, and its writer never resumes. */
  async #wrote(what: string): Promise<void> {
    this.landed.push(what);
    if (this.landed.length < this.writes) return;
    this.#dead = true;
    this.#kill();
    await NEVER;
  }

  /** For the container's S3 client: every request leaves through the container; a PutObject that landed is a write. */
  readonly s3: Interceptor = async (command, input, send) => {
    await this.#leave();
    const answer = await send();
    if (command === 'PutObjectCommand') await this.#wrote(`${String(input.Bucket)}/${String(input.Key)}`);
    return answer;
  };

  /** For the container's other clients: their requests leave through the container. */
  readonly requests: Interceptor = async (_command, _input, send) => {
    await this.#leave();
    return send();
  };

  /** The container's view of a store shared with other containers (the state bucket): a put that landed is a write. */
  blobs(store: BlobStore): BlobStore {
    const through =
      <A extends unknown[], R>(call: (...args: A) => Promise<R>) =>
      async (...args: A): Promise<R> => {
        await this.#leave();
        return call(...args);
      };
    return {
      put: async (key, body) => {
        await this.#leave();
        await store.put(key, body);
        await this.#wrote(key);
      },
      get: through((key: string) => store.get(key)),
      getRange: through((key: string, start: number, end: number) => store.getRange(key, start, end)),
      exists: through((key: string) => store.exists(key)),
      delete: through((keys: readonly string[]) => store.delete(keys)),
      list: through((prefix: string) => store.list(prefix)),
    };
  }

  /** Runs one invocation in the container, as the Lambda runtime does: its answer, or the killed runtime's error once the container dies. */
  invoke(run: (event: unknown) => Promise<unknown>, event: unknown): Promise<unknown> {
    return Promise.race([run(event), this.#killed]);
  }
}
