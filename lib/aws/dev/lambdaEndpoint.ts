import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** What a function does with an event (the handler of a Lambda function). */
export type Handler = (event: unknown, context: { getRemainingTimeInMillis(): number; functionName: string }) => Promise<unknown>;

/** A running Lambda `Invoke` endpoint: register functions, point the Lambda client at `endpoint`. */
export interface LambdaEndpoint {
  readonly endpoint: string;
  /** Invocations so far, by function name. */
  readonly calls: Map<string, number>;
  register(name: string, handler: Handler): void;
  /** The next `n` invocations are refused with 429 TooManyRequestsException, as a throttled account is. */
  throttleNext(n: number): void;
  /** Invocations refused so far. */
  readonly throttled: () => number;
  stop(): Promise<void>;
}

/**
 * A request's whole body, as text.
 * @example
 * ```ts
 * const payload = JSON.parse(await requestBody(req));
 * ```
 */
export function requestBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let s = '';
    req.setEncoding('utf8');
    req.on('data', (c) => {
      s += c;
    });
    req.on('end', () => resolve(s));
    req.on('error', reject);
  });
}

/** Lambda's quotas for a synchronous invocation: request and response payload, in bytes. */
const MAX_REQUEST = 6_291_456;
const MAX_RESPONSE = 6_291_556;

/**
 * A small Lambda `Invoke` API on 127.0.0.1 that runs registered handlers in this process, as the
 * Lambda service runs a function: the payload is JSON-parsed into the event, the returned value
 * JSON-serialised; an exception becomes a 200 with `X-Amz-Function-Error: Unhandled`, as Lambda
 * reports a crashed function. Lambda's 6 MB payload quotas hold: a bigger request is refused with
 * 413 RequestTooLargeException, a bigger response is a `Function.ResponseSizeTooLarge` error.
 */
export async function startLambdaEndpoint(): Promise<LambdaEndpoint> {
  const handlers = new Map<string, Handler>();
  const calls = new Map<string, number>();
  let throttle = 0;
  let throttled = 0;
  const server: Server = createServer(async (req, res) => {
    const m = /^\/2015-03-31\/functions\/([^/]+)\/invocations/.exec(req.url ?? '');
    const text = await requestBody(req);
    if (req.method !== 'POST' || !m) {
      res.writeHead(404, { 'content-type': 'application/json', 'x-amzn-errortype': 'UnknownOperationException' }).end('{}');
      return;
    }
    const name = decodeURIComponent(m[1]);
    const handler = handlers.get(name);
    if (!handler) {
      res
        .writeHead(404, { 'content-type': 'application/json', 'x-amzn-errortype': 'ResourceNotFoundException' })
        .end(JSON.stringify({ Type: 'User', message: `Function not found: ${name}` }));
      return;
    }
    if (throttle > 0) {
      throttle--;
      throttled++;
      res
        .writeHead(429, { 'content-type': 'application/json', 'x-amzn-errortype': 'TooManyRequestsException' })
        .end(JSON.stringify({ Type: 'User', message: 'Rate Exceeded.', Reason: 'ReservedFunctionConcurrentInvocationLimitExceeded' }));
      return;
    }
    if (Buffer.byteLength(text) > MAX_REQUEST) {
      res
        .writeHead(413, { 'content-type': 'application/json', 'x-amzn-errortype': 'RequestTooLargeException' })
        .end(JSON.stringify({ Type: 'User', message: `Request must be smaller than ${MAX_REQUEST} bytes for the InvokeFunction operation` }));
      return;
    }
    calls.set(name, (calls.get(name) ?? 0) + 1);
    const started = Date.now();
    try {
      const event = text === '' ? null : JSON.parse(text);
      const out = JSON.stringify((await handler(event, { functionName: name, getRemainingTimeInMillis: () => 900_000 - (Date.now() - started) })) ?? null);
      if (Buffer.byteLength(out) > MAX_RESPONSE) {
        const error = { errorMessage: `Response payload size exceeded maximum allowed payload size (${MAX_RESPONSE} bytes).`, errorType: 'Function.ResponseSizeTooLarge' };
        res.writeHead(200, { 'content-type': 'application/json', 'x-amz-function-error': 'Unhandled', 'x-amz-executed-version': '$LATEST' }).end(JSON.stringify(error));
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json', 'x-amz-executed-version': '$LATEST' }).end(out);
    } catch (e) {
      const err = e instanceof Error ? e : new Error(String(e));
      res
        .writeHead(200, { 'content-type': 'application/json', 'x-amz-function-error': 'Unhandled', 'x-amz-executed-version': '$LATEST' })
        .end(JSON.stringify({ errorType: err.name, errorMessage: err.message }));
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    calls,
    register: (name, handler) => handlers.set(name, handler),
    throttleNext: (n) => {
      throttle = n;
    },
    throttled: () => throttled,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
