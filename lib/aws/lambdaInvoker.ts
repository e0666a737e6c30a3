import { InvokeCommand, type LambdaClient } from '@aws-sdk/client-lambda';
import { SluiceError } from '../core/errors.ts';
import { fromWire, toWire } from '../engine/wire.ts';
import type { BlobStore, Clock, Invoker } from '../ports/index.ts';
import { DEFAULT_PAYLOAD_LIMIT, isIndirect, payloadKey } from './payloads.ts';
import { fixedRetryDelayOf } from './clients.ts';
import { withRetries } from './sdkErrors.ts';

/** Options of {@link LambdaInvoker}. */
export interface LambdaInvokerOptions {
  readonly client: LambdaClient;
  /** The worker function's name or ARN. */
  readonly functionName: string;
  /** Tasks in flight at once. @default 32 */
  readonly concurrency?: number;
  /**
   * Attempts of one invocation, the first included, when Lambda throttles, fails transiently (a 5xx
   * such as `ServiceException`) or is busy updating the function. The only retries of an `Invoke`:
   * the client from `lambdaClient` makes one HTTP attempt per request. @default 6
   */
  readonly attempts?: number;
  /** First backoff after a throttle (doubles, with jitter). @default 100 */
  readonly backoffMs?: number;
  /**
   * The job's state store: a task bigger than `payloadLimit` is written there and the worker reads it,
   * and a result the worker wrote there is read back. Without it, an oversized task is an error.
   */
  readonly blobs?: BlobStore;
  /** Largest task sent in the `Invoke` request itself, in bytes (Lambda's limit is 6 MB). @default 6 MiB − 64 KiB */
  readonly payloadLimit?: number;
  /** The unique part of an oversized task's blob name. @default 4 random bytes */
  readonly nonce?: () => string;
  /** Backoff waits go through it (the simulation owns time). @default the wall clock */
  readonly clock?: Clock;
  /** A number in [0, 1) for the backoff's jitter. @default Math.random */
  readonly random?: () => number;
}

/**
 * Runs tasks in the worker Lambda function (synchronous `Invoke`), at most `concurrency` at a time.
 * Throttled, transient and busy invocations are retried here with backoff; a task that ran and
 * failed comes back as the worker's failure (the coordinator decides whether to retry it); an
 * unhandled error in the function (a crash, a timeout) is a rejection the coordinator retries.
 * Tasks and results too big for `Invoke` travel through the state store (see `payloads.ts`).
 *
 * @example
 * ```ts
 * const invoker = new LambdaInvoker({ client: lambdaClient(), functionName: 'wordcount-worker', concurrency: 64 });
 * ```
 */
export class LambdaInvoker implements Invoker {
  readonly parallelism: number;
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly options: LambdaInvokerOptions) {
    const c = options.concurrency ?? 32;
    if (!Number.isInteger(c) || c < 1) throw new SluiceError(`LambdaInvoker: concurrency must be a whole number >= 1, got ${String(c)}`);
    this.parallelism = c;
  }

  async invoke(task: unknown): Promise<unknown> {
    if (this.running >= this.parallelism) await new Promise<void>((r) => this.waiting.push(r));
    this.running++;
    try {
      return await this.call(task);
    } finally {
      this.running--;
      this.waiting.shift()?.();
    }
  }

  private async call(task: unknown): Promise<unknown> {
    const { blobs } = this.options;
    let payload = new TextEncoder().encode(toWire(task));
    let spilled: string | undefined;
    if (payload.byteLength > (this.options.payloadLimit ?? DEFAULT_PAYLOAD_LIMIT)) {
      if (!blobs) throw new SluiceError(`a task of ${payload.byteLength} bytes is over Lambda's 6 MB Invoke limit, and the invoker has no blob store to send it through`);
      spilled = payloadKey(task, 'request', this.options.nonce);
      await blobs.put(spilled, payload);
      payload = new TextEncoder().encode(JSON.stringify({ sluiceIndirect: spilled }));
    }
    try {
      const text = await this.send(payload);
      return await this.received(text);
    } finally {
      // Only this call reads its request blob; the lifecycle rule sweeps any a crash leaves.
      if (spilled) await blobs!.delete([spilled]).catch(() => undefined);
    }
  }

  /** Reads a result the worker sent through the state store, and deletes it. */
  private async received(text: string): Promise<unknown> {
    const value = fromWire(text);
    if (!isIndirect(value)) return value;
    const { blobs } = this.options;
    if (!blobs) throw new SluiceError(`worker function ${this.options.functionName} sent its result through the state store (${value.sluiceIndirect}), but the invoker has none`);
    const bytes = await blobs.get(value.sluiceIndirect);
    if (!bytes) throw new SluiceError(`worker function ${this.options.functionName}: its result ${value.sluiceIndirect} is missing from the state store`);
    await blobs.delete([value.sluiceIndirect]).catch(() => undefined);
    return fromWire(new TextDecoder().decode(bytes));
  }

  /** One synchronous Invoke, retried while Lambda throttles or fails transiently; the answer's text. */
  private async send(payload: Uint8Array): Promise<string> {
    const { clock } = this.options;
    const invoke = async () => {
      const out = await this.options.client.send(new InvokeCommand({ FunctionName: this.options.functionName, Payload: payload }));
      const text = out.Payload ? new TextDecoder().decode(out.Payload) : 'null';
      if (out.FunctionError) {
        // The function crashed or timed out before it could answer with a task result.
        let message = text;
        try {
          const e = JSON.parse(text) as { errorType?: string; errorMessage?: string };
          message = `${e.errorType ?? 'Error'}: ${e.errorMessage ?? text}`;
        } catch {
          // not JSON: keep the text
        }
        throw new SluiceError(`worker function ${this.options.functionName} failed (${out.FunctionError}): ${message}`);
      }
      return text;
    };
    try {
      return await withRetries(invoke, {
        attempts: this.options.attempts ?? 6,
        baseDelayMs: this.options.backoffMs ?? 100,
        fixedDelayMs: fixedRetryDelayOf(this.options.client),
        ...(this.options.random ? { random: this.options.random } : {}),
        ...(clock ? { sleep: (ms: number) => clock.sleepUntil(clock.now() + ms) } : {}),
      });
    } catch (e) {
      if ((e as Error | undefined)?.name === 'ResourceNotFoundException') {
        throw new SluiceError(`worker function ${this.options.functionName} does not exist (check SLUICE_WORKER_FUNCTION)`, { cause: e });
      }
      throw e;
    }
  }

  async close(): Promise<void> {
    this.options.client.destroy();
  }
}
