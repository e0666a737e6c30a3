/**
 * The emulated AWS stack of the bench's "AWS path" section: the same emulators the infra tests use
 * (s3rver, dynalite, kinesalite, and their Lambda `Invoke` endpoint), all on 127.0.0.1, started
 * here instead of through `startAwsStack` so that every HTTP request reaching them is counted by
 * service and operation (what one batch costs in calls is then a difference of two snapshots).
 *
 * The object returned is an infra-test {@link AwsStack}, so the infra-test helpers that create
 * resources and read S3 outputs work on it unchanged.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import type { IncomingMessage, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import dynalite from 'dynalite';
import kinesalite from 'kinesalite';
import S3rver from 's3rver';
import { type AwsStack, stackConfig } from '../infra-test/helpers/awsStack.ts';
import type { Emulator } from '../infra-test/helpers/emulators.ts';
import { startLambdaEndpoint } from '../infra-test/helpers/lambdaEndpoint.ts';

/** Requests by `service:operation` (e.g. `dynamodb:PutItem`, `s3:PUT object`, `lambda:Invoke`). */
export type RequestCounts = ReadonlyMap<string, number>;

/** Counts the requests reaching the emulators. */
export class RequestCounter {
  private readonly counts = new Map<string, number>();

  add(key: string): void {
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
  }

  /** The counts so far (a copy). */
  snapshot(): RequestCounts {
    return new Map(this.counts);
  }
}

/** What happened between two snapshots (operations that did not happen are left out). */
export function diffCounts(before: RequestCounts, after: RequestCounts): Map<string, number> {
  const out = new Map<string, number>();
  for (const [k, n] of after) {
    const d = n - (before.get(k) ?? 0);
    if (d !== 0) out.set(k, d);
  }
  return out;
}

/** `X-Amz-Target: DynamoDB_20120810.PutItem` → `PutItem`. */
function targetOp(req: IncomingMessage): string {
  const t = req.headers['x-amz-target'];
  const s = Array.isArray(t) ? t[0] : t;
  return s ? s.slice(s.indexOf('.') + 1) : `${req.method ?? '?'} (no target)`;
}

/** Path-style S3 request → a short operation name. */
function s3Op(req: IncomingMessage): string {
  const url = new URL(req.url ?? '/', 'http://x');
  const objectLevel = url.pathname.split('/').filter((s) => s !== '').length > 1;
  const m = req.method ?? '?';
  if (m === 'GET' && !objectLevel) return 'LIST';
  if (m === 'POST' && url.searchParams.has('delete')) return 'DELETE (multi)';
  return `${m}${objectLevel ? '' : ' bucket'}`;
}

interface Listening {
  listen(port: number, host: string, cb: (err?: Error) => void): unknown;
  close(cb?: (err?: Error) => void): unknown;
  closeAllConnections?(): void;
  address(): AddressInfo | string | null;
  prependListener(event: 'request', fn: (req: IncomingMessage) => void): unknown;
}

async function listenCounted(server: Listening, count: (req: IncomingMessage) => void): Promise<Emulator> {
  server.prependListener('request', count);
  await new Promise<void>((resolve, reject) => server.listen(0, '127.0.0.1', (e) => (e ? reject(e) : resolve())));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // The SDK clients keep connections alive; close them so the server stops at once.
        server.closeAllConnections?.();
      }),
  };
}

/** The stack, counting the requests that reach it. */
export interface CountedAwsStack extends AwsStack {
  /** Requests so far by `service:operation`; Lambda as `lambda:Invoke` (invocations run, throttled ones not counted). */
  requests(): RequestCounts;
}

/** Starts s3rver, dynalite, kinesalite and a Lambda endpoint on free 127.0.0.1 ports, every request counted. */
export async function startCountedAwsStack(): Promise<CountedAwsStack> {
  const requests = new RequestCounter();
  const directory = await mkdtemp(join(tmpdir(), 'sluice-bench-s3rver-'));
  const s3rver = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory });
  const startS3 = async (): Promise<Emulator> => {
    const { port } = (await s3rver.run()) as AddressInfo;
    const http = (s3rver as unknown as { httpServer: Server }).httpServer;
    http.prependListener('request', (req: IncomingMessage) => requests.add(`s3:${s3Op(req)}`));
    return {
      endpoint: `http://127.0.0.1:${port}`,
      stop: async () => {
        const closed = s3rver.close();
        http.closeAllConnections();
        await closed;
        await rm(directory, { recursive: true, force: true });
      },
    };
  };
  const [s3, dynamo, kinesis, lambda] = await Promise.all([
    startS3(),
    listenCounted(dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 }) as Listening, (req) => requests.add(`dynamodb:${targetOp(req)}`)),
    listenCounted(kinesalite({ createStreamMs: 0, deleteStreamMs: 0, updateStreamMs: 0, shardLimit: 100 }) as Listening, (req) => requests.add(`kinesis:${targetOp(req)}`)),
    startLambdaEndpoint(),
  ]);
  return {
    s3,
    dynamo,
    kinesis,
    lambda,
    name: (base) => base,
    requests: () => {
      const out = new Map(requests.snapshot());
      let invokes = 0;
      for (const n of lambda.calls.values()) invokes += n;
      if (invokes > 0) out.set('lambda:Invoke', invokes);
      return out;
    },
    config: (name) => stackConfig(name, { s3, dynamo, kinesis, lambda }),
    stop: async () => {
      await Promise.all([s3.stop(), dynamo.stop(), kinesis.stop(), lambda.stop()]);
    },
  };
}
