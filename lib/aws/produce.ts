import { PutRecordsCommand } from '@aws-sdk/client-kinesis';
import { type AwsConfig, kinesisClient } from './clients.ts';
import { withRetries } from './sdkErrors.ts';

/** Options of {@link produceLines}. */
export interface ProduceOptions {
  /** The Kinesis stream to put into. */
  readonly stream: string;
  /** Records a second. @default 100 */
  readonly rate?: number;
  /** Stop after this many records. @default until `signal` aborts */
  readonly count?: number;
  /** Words to put, one a record, in turn. @default lines like "I am a dummy source 7" */
  readonly words?: readonly string[];
  /** Where AWS is. @default SLUICE_AWS_ENDPOINT (LocalStack, an emulator), else AWS */
  readonly aws?: AwsConfig;
  readonly signal?: AbortSignal;
}

/**
 * Feeds a Kinesis stream with generated lines at a steady rate (what `sluice produce` does), for
 * trying jobs on your own stream. Resolves to the number of records put.
 *
 * @example
 * ```ts
 * const put = await produceLines({ stream: 'clicks', rate: 500, count: 10_000 });
 * ```
 */
export async function produceLines(options: ProduceOptions): Promise<number> {
  const rate = options.rate ?? 100;
  const count = options.count ?? Number.POSITIVE_INFINITY;
  const words = options.words?.length ? options.words : undefined;
  const make = (i: number) => (words ? words[i % words.length] : `I am a dummy source ${i % 10}`);
  const client = kinesisClient(options.aws);
  let sent = 0;
  const started = Date.now();
  try {
    while (sent < count && !options.signal?.aborted) {
      // Top up to where the rate says we should be, in PutRecords calls of at most 500 records.
      const due = Math.min(count, Math.floor(((Date.now() - started) / 1000) * rate) + 1);
      while (sent < due) {
        const n = Math.min(500, due - sent);
        const Records = Array.from({ length: n }, (_, k) => ({ Data: new TextEncoder().encode(make(sent + k)), PartitionKey: `p${(sent + k) % 64}` }));
        const out = await withRetries(() => client.send(new PutRecordsCommand({ StreamName: options.stream, Records })), { attempts: 3, baseDelayMs: 100 });
        if (out.FailedRecordCount) throw new Error(`${out.FailedRecordCount} of ${n} records were refused (throttled?)`);
        sent += n;
      }
      if (sent < count) await new Promise((r) => setTimeout(r, 50));
    }
    return sent;
  } finally {
    client.destroy();
  }
}
