import { isThrottlingError, isTransientError } from '@smithy/core/retry';

/**
 * Which AWS errors are worth sending again, decided here once for every Sluice adapter. The lists
 * are Smithy's (the classification the SDK's own retry strategy uses), plus the few codes of the
 * services Sluice calls that Smithy does not know.
 */

/** The error code of an AWS SDK error (`NoSuchKey`, `NoSuchBucket`, `PreconditionFailed`, ...). */
export function errorCode(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const e = error as { name?: unknown; Code?: unknown };
  return typeof e.Code === 'string' ? e.Code : typeof e.name === 'string' ? e.name : undefined;
}

/** The HTTP status of an AWS SDK error's response, when it had one. */
export function httpStatus(error: unknown): number | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const status = (error as { $metadata?: { httpStatusCode?: unknown } }).$metadata?.httpStatusCode;
  return typeof status === 'number' ? status : undefined;
}

/** Throttling codes Smithy's list lacks: Kinesis refuses a read when KMS throttles the stream's key. */
const MORE_THROTTLING = new Set(['KMSThrottlingException']);

/**
 * Codes of a resource that is momentarily busy: Lambda answers an `Invoke` with it while another
 * operation on the function (a deployment) is in progress. Nothing was done; later it works.
 */
const BUSY = new Set(['ResourceConflictException']);

/** Smithy's classifiers read `name`, `$metadata` and `cause` of an object; anything else is not an AWS error. */
function asSdkError(error: unknown): Parameters<typeof isThrottlingError>[0] | undefined {
  return typeof error === 'object' && error !== null ? (error as Parameters<typeof isThrottlingError>[0]) : undefined;
}

/**
 * Whether an AWS SDK error is a throttling refusal (a throttling code, or HTTP 429): the request
 * was not applied, so it is safe to send again, even a conditional write.
 */
export function isThrottling(error: unknown): boolean {
  const e = asSdkError(error);
  if (!e) return false;
  const code = errorCode(error);
  return isThrottlingError(e) || (code !== undefined && MORE_THROTTLING.has(code));
}

/**
 * Whether an AWS SDK error is transient: a timeout, a dropped connection or a 5xx answer such as
 * Lambda's `ServiceException` (500). Worth sending again, but not throttling: the service is not
 * asking for fewer requests.
 */
export function isTransient(error: unknown): boolean {
  const e = asSdkError(error);
  return e !== undefined && isTransientError(e);
}

/** Whether a request that failed with this error is worth sending again: throttled, transient or busy. */
export function isRetryable(error: unknown): boolean {
  const code = errorCode(error);
  return isThrottling(error) || isTransient(error) || (code !== undefined && BUSY.has(code));
}

/** How {@link withRetries} retries one call. */
export interface RetryPolicy {
  /** Attempts in all, the first included (1: no retry). */
  readonly attempts: number;
  /** Wait before the first retry; it doubles at each retry, up to `maxDelayMs`, with jitter (half to all of it). */
  readonly baseDelayMs: number;
  /** The longest wait between two attempts. @default unbounded */
  readonly maxDelayMs?: number;
  /** Wait exactly this long before every retry instead (tests against emulators: `AwsConfig.retryDelayMs`). */
  readonly fixedDelayMs?: number | undefined;
  /** Which errors are retried. @default {@link isRetryable} */
  readonly retryable?: (error: unknown) => boolean;
  /** Waits `ms` (the simulation owns time). @default a timer */
  readonly sleep?: (ms: number) => Promise<void>;
  /** A number in [0, 1) for the jitter. @default Math.random */
  readonly random?: () => number;
  /** The error to throw when a retryable error is left after the last attempt. @default that error */
  readonly exhausted?: (error: unknown, retries: number) => unknown;
}

/**
 * Runs `call`, sending it again with exponential backoff while it fails with a retryable error.
 * Sluice's one retry loop around AWS calls: the clients of the calls it wraps make one HTTP attempt
 * each (see `clients.ts`), so a throttle costs one request per attempt here, not the SDK's attempts
 * times these.
 *
 * @example
 * ```ts
 * const out = await withRetries(() => client.send(command), { attempts: 6, baseDelayMs: 100 });
 * ```
 */
export async function withRetries<T>(call: () => Promise<T>, policy: RetryPolicy): Promise<T> {
  const retryable = policy.retryable ?? isRetryable;
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (e) {
      if (!retryable(e)) throw e;
      if (attempt >= policy.attempts) throw policy.exhausted ? policy.exhausted(e, attempt - 1) : e;
      const base = Math.min(policy.maxDelayMs ?? Number.POSITIVE_INFINITY, policy.baseDelayMs * 2 ** (attempt - 1));
      const wait = policy.fixedDelayMs ?? base / 2 + (policy.random ?? Math.random)() * (base / 2);
      await (policy.sleep ? policy.sleep(wait) : new Promise((r) => setTimeout(r, wait)));
    }
  }
}
