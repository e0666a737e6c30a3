import { InvokeCommand, type LambdaClient } from '@aws-sdk/client-lambda';
import { SluiceError } from '../api/errors.ts';
import { fromWire, toWire } from '../engine/wire.ts';
import type { Invoker } from '../ports/index.ts';

/** Options of {@link LambdaInvoker}. */
export interface LambdaInvokerOptions {
  readonly client: LambdaClient;
  /** The worker function's name or ARN. */
  readonly functionName: string;
  /** Tasks in flight at once. @default 32 */
  readonly concurrency?: number;
  /** Attempts of one invocation when Lambda throttles or the invocation itself fails. @default 6 */
  readonly attempts?: number;
  /** First backoff after a throttle (doubles, with jitter). @default 100 */
  readonly backoffMs?: number;
}

const THROTTLES = new Set(['TooManyRequestsException', 'ThrottlingException', 'EC2ThrottledException', 'ServiceException', 'ResourceConflictException']);

/**
 * Runs tasks in the worker Lambda function (synchronous `Invoke`), at most `concurrency` at a time.
 * Throttling and invocation-level failures are retried here with backoff; a task that ran and
 * failed comes back as the worker's failure (the coordinator decides whether to retry it); an
 * unhandled error in the function (a crash, a timeout) is a rejection the coordinator retries.
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
    const attempts = this.options.attempts ?? 6;
    const payload = new TextEncoder().encode(toWire(task));
    for (let attempt = 1; ; attempt++) {
      try {
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
        return fromWire(text);
      } catch (e) {
        const name = (e as Error).name;
        if (name === 'ResourceNotFoundException') {
          throw new SluiceError(`worker function ${this.options.functionName} does not exist (check SLUICE_WORKER_FUNCTION)`, { cause: e });
        }
        if (!THROTTLES.has(name) || attempt >= attempts) throw e;
        const base = (this.options.backoffMs ?? 100) * 2 ** (attempt - 1);
        await new Promise((r) => setTimeout(r, base / 2 + Math.random() * base));
      }
    }
  }

  async close(): Promise<void> {
    this.options.client.destroy();
  }
}
