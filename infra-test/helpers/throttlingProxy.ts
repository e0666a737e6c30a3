import { randomBytes } from 'node:crypto';
import { Agent, createServer, type IncomingMessage, request, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** The AWS services a {@link startThrottlingProxy} can stand in front of. */
export type ThrottledService = 's3' | 'dynamodb' | 'kinesis' | 'lambda';

/** One request as the proxy received it. */
export interface ProxiedRequest {
  /** As {@link ThrottlingProxy.operations} names it. */
  readonly operation: string;
  readonly method: string;
  /** Path and query string. */
  readonly url: string;
  /** The body, except for S3 `PUT`s (object contents); the JSON input of the other services. */
  readonly body: string;
  /** The status of the answer (the proxy's own for refused requests). */
  readonly status: number;
}

/**
 * Which requests a proxy refuses, counting every request it receives from 1 (retries included):
 * `every: k` refuses requests k, 2k, 3k, …; `refuseNext` adds bursts while it runs.
 */
export interface ThrottlePolicy {
  readonly every?: number;
}

/** A running proxy: point a client at `endpoint`. */
export interface ThrottlingProxy {
  readonly endpoint: string;
  /** Requests answered with the service's throttling error so far. */
  refused(): number;
  /** Requests passed on to the emulator so far. */
  forwarded(): number;
  /** The operation of every refused request, in order (`UpdateItem`, `GetRecords`, `PUT /bucket/key`, …). */
  refusedOperations(): readonly string[];
  /** The operation of every request, in order, refused or not. */
  operations(): readonly string[];
  /** Every request answered so far, in the order of the answers, refused or not. */
  requests(): readonly ProxiedRequest[];
  /** Refuses the next `count` requests: a burst that starts now (at a protocol step, say) rather than after a fixed number of requests. */
  refuseNext(count: number): void;
  /** S3 only: answers the next `count` object reads (GET, HEAD) whose path matches `path` with 404 NoSuchKey, as S3 answers for a blob that is gone. */
  loseNext(path: RegExp, count?: number): void;
  /** Closes the listener and every socket, kept-alive ones included. */
  stop(): Promise<void>;
}

const ACCOUNT = '000000000000';

/** Headers that describe one connection, not the message: a proxy does not pass them on. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade']);

function endToEnd(headers: IncomingMessage['headers']): IncomingMessage['headers'] {
  return Object.fromEntries(Object.entries(headers).filter(([name]) => !HOP_BY_HOP.has(name)));
}

function requestId(): string {
  return randomBytes(8).toString('hex').toUpperCase();
}

/** What the request asks for: the `X-Amz-Target` operation for the JSON protocols, method and path for S3. */
function operationOf(service: ThrottledService, req: IncomingMessage): string {
  if (service === 's3') return `${req.method} ${(req.url ?? '/').split('?')[0]}`;
  if (service === 'lambda') return /^\/2015-03-31\/functions\/[^/]+\/invocations/.test(req.url ?? '') ? 'Invoke' : `${req.method} ${req.url}`;
  const target = req.headers['x-amz-target'];
  return typeof target === 'string' ? target.slice(target.indexOf('.') + 1) : `${req.method} ${req.url}`;
}

/** Sends exactly what the service sends when it throttles a request. */
function refuse(service: ThrottledService, operation: string, req: IncomingMessage, body: string, res: ServerResponse): void {
  const id = requestId();
  if (service === 's3') {
    const xml = `<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message><RequestId>${id}</RequestId><HostId>${randomBytes(24).toString('base64')}</HostId></Error>`;
    res.writeHead(503, { 'content-type': 'application/xml', 'x-amz-request-id': id, 'content-length': Buffer.byteLength(xml) });
    // A HEAD response has no body: the SDK sees a bare 503.
    res.end(req.method === 'HEAD' ? undefined : xml);
    return;
  }
  if (service === 'lambda') {
    // What Invoke answers when the function's (or the account's) concurrency is used up.
    const json = JSON.stringify({ Reason: 'ReservedFunctionConcurrentInvocationLimitExceeded', Type: 'User', message: 'Rate Exceeded.' });
    res.writeHead(429, { 'content-type': 'application/json', 'x-amzn-errortype': 'TooManyRequestsException', 'x-amzn-requestid': id, 'content-length': Buffer.byteLength(json) });
    res.end(json);
    return;
  }
  let json: string;
  let contentType: string;
  if (service === 'dynamodb') {
    contentType = 'application/x-amz-json-1.0';
    // What an on-demand table answers when a request exceeds its throughput.
    json = JSON.stringify({ __type: 'com.amazonaws.dynamodb.v20120810#ThrottlingException', message: 'Rate of requests exceeds the allowed throughput.' });
  } else {
    contentType = 'application/x-amz-json-1.1';
    let input: { StreamName?: string; ShardId?: string } = {};
    try {
      input = JSON.parse(body) as typeof input;
    } catch {
      // not JSON: the message names no stream
    }
    const stream = input.StreamName ?? 'the stream';
    json =
      operation === 'GetRecords' || operation === 'PutRecords' || operation === 'PutRecord'
        ? JSON.stringify({ __type: 'ProvisionedThroughputExceededException', message: `Rate exceeded for shard ${input.ShardId ?? 'shardId-000000000000'} in stream ${stream} under account ${ACCOUNT}.` })
        : JSON.stringify({ __type: 'LimitExceededException', message: `Rate exceeded for stream ${stream} under account ${ACCOUNT}.` });
  }
  res.writeHead(400, { 'content-type': contentType, 'x-amzn-requestid': id, 'content-length': Buffer.byteLength(json) });
  res.end(json);
}

/**
 * An HTTP proxy on 127.0.0.1 in front of an emulator (`target`, e.g. `http://127.0.0.1:4567`) that
 * refuses the requests `policy` names with the throttling error the real `service` sends — S3's
 * 503 SlowDown, DynamoDB's ThrottlingException, Kinesis' ProvisionedThroughputExceededException
 * (GetRecords, PutRecords) or LimitExceededException (other operations), Lambda's 429
 * TooManyRequestsException — and forwards every other
 * request unchanged (method, path, headers including the signed `host`, body), streaming the answer
 * back. A refused request never reaches the emulator, as a throttled one never reaches AWS's storage.
 *
 * @example
 * ```ts
 * const proxy = await startThrottlingProxy(stack.dynamo.endpoint, 'dynamodb', { every: 4 });
 * // ... clients on proxy.endpoint ...
 * await proxy.stop();
 * ```
 */
export async function startThrottlingProxy(target: string, service: ThrottledService, policy: ThrottlePolicy): Promise<ThrottlingProxy> {
  const { every } = policy;
  if (every !== undefined && !(Number.isInteger(every) && every >= 1)) throw new Error(`every must be a whole number >= 1, got ${every}`);
  const to = new URL(target);
  // One connection per forwarded request: nothing is left open towards the emulator between requests.
  const agent = new Agent({ keepAlive: false });
  let seen = 0;
  let refused = 0;
  let forwarded = 0;
  const operations: string[] = [];
  const requests: ProxiedRequest[] = [];
  const refusedOperations: string[] = [];
  const bursts: { after: number; count: number }[] = [];
  const losses: { path: RegExp; count: number }[] = [];
  const lost = (req: IncomingMessage) => {
    const loss = (req.method === 'GET' || req.method === 'HEAD') && losses.find((l) => l.count > 0 && l.path.test((req.url ?? '/').split('?')[0]));
    if (loss) loss.count--;
    return Boolean(loss);
  };
  const refuses = (n: number) => (every !== undefined && n % every === 0) || bursts.some((b) => n > b.after && n <= b.after + b.count);

  const server = createServer((req, res) => {
    const n = ++seen;
    const operation = operationOf(service, req);
    operations.push(operation);
    const keepBody = !(service === 's3' && req.method === 'PUT');
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => {
      if (keepBody) chunks.push(c);
    });
    res.on('finish', () => requests.push({ operation, method: req.method ?? 'GET', url: req.url ?? '/', body: Buffer.concat(chunks).toString('utf8'), status: res.statusCode }));
    if (service === 's3' && lost(req)) {
      req.on('end', () => {
        const id = requestId();
        const key = decodeURIComponent((req.url ?? '/').split('?')[0].split('/').slice(2).join('/'));
        const xml = `<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message><Key>${key}</Key><RequestId>${id}</RequestId></Error>`;
        res.writeHead(404, { 'content-type': 'application/xml', 'x-amz-request-id': id, 'content-length': Buffer.byteLength(xml) });
        res.end(req.method === 'HEAD' ? undefined : xml);
      });
      return;
    }
    if (refuses(n)) {
      refused++;
      refusedOperations.push(operation);
      req.on('end', () => refuse(service, operation, req, Buffer.concat(chunks).toString('utf8'), res));
      req.on('error', () => res.destroy());
      return;
    }
    forwarded++;
    const upstream = request(
      // The signed `host` header goes on as it came: emulators that check signatures (s3rver) see what was signed.
      { protocol: to.protocol, hostname: to.hostname, port: to.port, method: req.method, path: req.url, headers: endToEnd(req.headers), agent },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.statusMessage, endToEnd(answer.headers));
        answer.pipe(res);
        answer.on('error', () => res.destroy());
      },
    );
    // The emulator went away, or the client gave up: drop the other side too (the SDK retries a reset).
    upstream.on('error', () => res.destroy());
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    req.pipe(upstream);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    refused: () => refused,
    forwarded: () => forwarded,
    refusedOperations: () => [...refusedOperations],
    operations: () => [...operations],
    requests: () => [...requests],
    refuseNext: (count) => {
      bursts.push({ after: seen, count });
    },
    loseNext: (path, count = 1) => {
      if (service !== 's3') throw new Error(`loseNext is for S3, not ${service}`);
      losses.push({ path, count });
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
        agent.destroy();
      }),
  };
}
