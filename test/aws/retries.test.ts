import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { afterEach, describe, expect, it } from 'vitest';
import { SluiceError } from '../../lib/core/errors.ts';
import { dynamoClient, fixedRetryDelayOf, kinesisClient, lambdaClient, s3Client } from '../../lib/aws/clients.ts';
import { DynamoMetaStore } from '../../lib/aws/dynamoMetaStore.ts';
import { KinesisApi } from '../../lib/aws/kinesis/api.ts';
import { LambdaInvoker } from '../../lib/aws/lambdaInvoker.ts';
import { isRetryable, isThrottling, isTransient, withRetries } from '../../lib/aws/sdkErrors.ts';

/** An AWS SDK error as the SDK builds it from a response: its code as `name`, the HTTP status in `$metadata`. */
function sdkError(name: string, httpStatusCode: number): Error {
  return Object.assign(new Error(`${name} (test)`), { name, $metadata: { httpStatusCode } });
}

describe('which AWS errors are throttling, transient or retryable', () => {
  it('throttling codes of every service Sluice calls, and HTTP 429, are throttling and retryable', () => {
    const throttles = [
      sdkError('ProvisionedThroughputExceededException', 400), // DynamoDB, Kinesis
      sdkError('ThrottlingException', 400), // DynamoDB
      sdkError('KMSThrottlingException', 400), // Kinesis with a KMS key
      sdkError('LimitExceededException', 400), // Kinesis
      sdkError('TooManyRequestsException', 429), // Lambda
      sdkError('SlowDown', 503), // S3
      sdkError('SomethingNew', 429),
    ];
    for (const e of throttles) {
      expect(isThrottling(e), e.name).toBe(true);
      expect(isRetryable(e), e.name).toBe(true);
    }
  });

  it("Lambda's ServiceException (a 500) is transient and retryable, not throttling", () => {
    const e = sdkError('ServiceException', 500);
    expect(isThrottling(e)).toBe(false);
    expect(isTransient(e)).toBe(true);
    expect(isRetryable(e)).toBe(true);
  });

  it('a function busy with an update is retryable, not throttling', () => {
    const e = sdkError('ResourceConflictException', 409);
    expect(isThrottling(e)).toBe(false);
    expect(isRetryable(e)).toBe(true);
  });

  it('refusals that would fail again, Sluice errors and non-errors are not retryable', () => {
    for (const e of [sdkError('ConditionalCheckFailedException', 400), sdkError('ResourceNotFoundException', 404), sdkError('ExpiredIteratorException', 400), new SluiceError('x'), 'text', undefined, null]) {
      expect(isRetryable(e), String((e as Error | undefined)?.name ?? e)).toBe(false);
    }
  });
});

describe('withRetries', () => {
  it('sends a call again while it fails retryably, backing off exponentially up to the cap', async () => {
    // Prepare: a call throttled `failures` times, then answering.
    const failures = 4;
    let calls = 0;
    const waits: number[] = [];
    const call = async () => {
      if (++calls <= failures) throw sdkError('ThrottlingException', 400);
      return 'done';
    };
    // Act: random() = 1 waits the whole backoff, so the waits are the backoff itself.
    const out = await withRetries(call, { attempts: failures + 1, baseDelayMs: 10, maxDelayMs: 50, random: () => 1, sleep: async (ms) => void waits.push(ms) });
    // Assess
    expect(out).toBe('done');
    expect(calls).toBe(failures + 1);
    expect(waits).toEqual(Array.from({ length: failures }, (_, i) => Math.min(50, 10 * 2 ** i)));
  });

  it('waits the fixed delay a client was made with (retryDelayMs) before every retry, for the adapters that retry its calls', async () => {
    // Prepare: the delay travels with the clients whose calls the adapters retry.
    const retryDelayMs = 7;
    const clients = [dynamoClient({ retryDelayMs }), kinesisClient({ retryDelayMs }), lambdaClient({ retryDelayMs })];
    const fixedDelayMs = fixedRetryDelayOf(clients[0]!);
    let calls = 0;
    const waits: number[] = [];
    // Act
    await withRetries(async () => {
      if (++calls < 4) throw sdkError('ThrottlingException', 400);
    }, { attempts: 4, baseDelayMs: 100, fixedDelayMs, sleep: async (ms) => void waits.push(ms) });
    // Assess
    expect(clients.map((c) => fixedRetryDelayOf(c))).toEqual([retryDelayMs, retryDelayMs, retryDelayMs]);
    expect(fixedRetryDelayOf(dynamoClient())).toBeUndefined();
    expect(waits).toEqual([retryDelayMs, retryDelayMs, retryDelayMs]);
    for (const c of clients) c.destroy();
  });

  it('gives up after its attempts with the error it is given, and never retries an error that is not retryable', async () => {
    let calls = 0;
    const throttled = withRetries(async () => {
      calls++;
      throw sdkError('ThrottlingException', 400);
    }, { attempts: 3, baseDelayMs: 0, exhausted: (e, retries) => new SluiceError(`gave up after ${retries} retries`, { cause: e }) });
    await expect(throttled).rejects.toThrow('gave up after 2 retries');
    expect(calls).toBe(3);

    let refusedCalls = 0;
    const refused = withRetries(async () => {
      refusedCalls++;
      throw sdkError('ConditionalCheckFailedException', 400);
    }, { attempts: 3, baseDelayMs: 0 });
    await expect(refused).rejects.toThrow('ConditionalCheckFailedException');
    expect(refusedCalls).toBe(1);
  });
});

// One retry layer per call, counted in HTTP requests: a local endpoint that throttles every request.
describe('retries do not stack on the SDK’s', () => {
  let server: http.Server | undefined;
  afterEach(async () => {
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    server = undefined;
  });

  /** An endpoint on 127.0.0.1 answering every request with `status` and the service's error code; counts the requests. */
  async function throttlingEndpoint(status: number, code: string, body: (code: string) => string) {
    const requests: string[] = [];
    server = http.createServer((req, res) => {
      requests.push(`${req.method} ${req.url}`);
      req.resume();
      req.on('end', () => {
        res.writeHead(status, { 'content-type': 'application/json', 'x-amzn-errortype': code, 'x-amzn-requestid': 'test' });
        res.end(body(code));
      });
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', () => r()));
    const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return { endpoint, requests };
  }
  const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };

  it('a throttled Invoke is sent exactly `attempts` times, not the SDK attempts times the invoker’s', async () => {
    const { endpoint, requests } = await throttlingEndpoint(429, 'TooManyRequestsException', (code) => JSON.stringify({ Type: 'User', message: `${code}: Rate exceeded` }));
    const attempts = 4;
    const invoker = new LambdaInvoker({ client: lambdaClient({ endpoint, credentials, retryDelayMs: 1 }), functionName: 'worker', attempts, backoffMs: 1 });
    try {
      const error = await invoker.invoke({ task: 1 }).catch((e: unknown) => e);
      expect(isThrottling(error)).toBe(true);
      expect(requests.length).toBe(attempts);
    } finally {
      await invoker.close();
    }
  });

  it('a throttled meta store write is sent exactly `throttleRetries` + 1 times, then fails naming the table', async () => {
    const { endpoint, requests } = await throttlingEndpoint(400, 'ThrottlingException', (code) => JSON.stringify({ __type: `com.amazonaws.dynamodb.v20120810#${code}`, message: 'Rate of requests exceeds the allowed throughput.' }));
    const throttleRetries = 2;
    const client = dynamoClient({ endpoint, credentials, retryDelayMs: 1 });
    const meta = new DynamoMetaStore({ client, table: 'jobs-meta', job: 'j', throttleRetries });
    try {
      await expect(meta.get('lease')).rejects.toThrow(new RegExp(`in table jobs-meta is still throttled \\(ThrottlingException\\) after ${throttleRetries} retries`));
      expect(requests.length).toBe(throttleRetries + 1);
    } finally {
      client.destroy();
    }
  });

  it('a throttled GetRecords is sent exactly `throughputRetries` + 1 times, then fails naming the shard and stream', async () => {
    const { endpoint, requests } = await throttlingEndpoint(400, 'ProvisionedThroughputExceededException', (code) => JSON.stringify({ __type: code, message: 'Rate exceeded for shard' }));
    const throughputRetries = 2;
    const client = kinesisClient({ endpoint, credentials, retryDelayMs: 1 });
    const api = new KinesisApi({ client, stream: 'events', nodeId: 'src', clock: Date.now, throughputRetries, backoffMs: 1, atTimestampTimeoutMs: 1000, readIntervalMs: 0 });
    try {
      await expect(api.getRecords('shardId-000000000000', 'iterator', 10)).rejects.toThrow(
        new RegExp(`GetRecords on shard shardId-000000000000 of stream events is still throttled \\(ProvisionedThroughputExceededException\\) after ${throughputRetries} retries`),
      );
      expect(requests.length).toBe(throughputRetries + 1);
    } finally {
      client.destroy();
    }
  });

  it('S3 requests keep the SDK’s own 3 attempts, retryDelayMs apart', async () => {
    const { endpoint, requests } = await throttlingEndpoint(503, 'SlowDown', (code) => `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>Please reduce your request rate.</Message></Error>`);
    const client = s3Client({ endpoint, credentials, retryDelayMs: 1 });
    try {
      const error = await client.send(new GetObjectCommand({ Bucket: 'b', Key: 'k' })).catch((e: unknown) => e);
      expect(isThrottling(error)).toBe(true);
      expect(requests.length).toBe(3);
    } finally {
      client.destroy();
    }
  });
});
