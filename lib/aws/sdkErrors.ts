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

/** Error codes AWS services use when they refuse a request for its rate (nothing was done). */
const THROTTLING = new Set([
  'ThrottlingException',
  'Throttling',
  'ProvisionedThroughputExceededException',
  'RequestLimitExceeded',
  'TooManyRequestsException',
  'SlowDown',
  'LimitExceededException',
]);

/** Whether an AWS SDK error is a throttling refusal, which is safe to retry (even a conditional write). */
export function isThrottling(error: unknown): boolean {
  const code = errorCode(error);
  return (code !== undefined && THROTTLING.has(code)) || httpStatus(error) === 429;
}
