import { type KinesisClient, PutRecordsCommand, type PutRecordsRequestEntry } from '@aws-sdk/client-kinesis';
import { SluiceError } from '../core/errors.ts';
import { fixedRetryDelayOf } from './clients.ts';
import { withRetries } from './sdkErrors.ts';

/** One record to put: its bytes and its partition key. */
export interface StreamRecord {
  readonly data: Uint8Array;
  readonly partitionKey: string;
}

/** Kinesis's limits of one `PutRecords` request: 500 records, 5 MiB with the partition keys. */
const MAX_RECORDS = 500;
const MAX_REQUEST_BYTES = 5 * 1024 * 1024;
/** Kinesis's limit of one record, data and partition key together. */
const MAX_RECORD_BYTES = 1024 * 1024;

/** The size Kinesis counts for a record: its data and its partition key (UTF-8). */
function sizeOf(r: StreamRecord): number {
  return r.data.byteLength + Buffer.byteLength(r.partitionKey);
}

/**
 * The records in requests Kinesis accepts: at most 500 records and 5 MiB each, in order.
 *
 * @example
 * ```ts
 * chunksOf(Array.from({ length: 1200 }, () => ({ data: new Uint8Array(10), partitionKey: 'k' }))).map((c) => c.length); // [500, 500, 200]
 * ```
 */
export function chunksOf(records: readonly StreamRecord[]): StreamRecord[][] {
  const out: StreamRecord[][] = [];
  let chunk: StreamRecord[] = [];
  let bytes = 0;
  for (const r of records) {
    const size = sizeOf(r);
    if (chunk.length === MAX_RECORDS || (chunk.length > 0 && bytes + size > MAX_REQUEST_BYTES)) {
      out.push(chunk);
      chunk = [];
      bytes = 0;
    }
    chunk.push(r);
    bytes += size;
  }
  if (chunk.length) out.push(chunk);
  return out;
}

/** Options of {@link putAllRecords}. */
export interface PutAllOptions {
  /** Rounds of `PutRecords` for the entries a request refused (throttled shards), the first included. @default 8 */
  readonly rounds?: number;
  /** Told after each request how many records are in so far. */
  readonly progress?: (put: number) => void;
}

/**
 * Puts every record into `stream`: `PutRecords` requests of at most 500 records and 5 MiB, each
 * entry a request refused (`FailedRecordCount`: a shard over its write throughput) sent again in a
 * later round, with backoff, until all are in; a throttled or failed request is retried as a whole.
 * Resolves to the number of records put; throws, saying how many went in, when some are still
 * refused after the last round. A record over Kinesis's 1 MiB is refused before anything is sent.
 *
 * @example
 * ```ts
 * const put = await putAllRecords(kinesisClient(), 'clicks', [{ data: new TextEncoder().encode('a b'), partitionKey: 'user-7' }]);
 * ```
 */
export async function putAllRecords(client: KinesisClient, stream: string, records: readonly StreamRecord[], options: PutAllOptions = {}): Promise<number> {
  const big = records.findIndex((r) => sizeOf(r) > MAX_RECORD_BYTES);
  if (big >= 0) throw new SluiceError(`record ${big + 1} is ${sizeOf(records[big])} bytes with its partition key, over the 1 MiB a Kinesis record may hold; nothing was put`);
  const rounds = options.rounds ?? 8;
  const fixed = fixedRetryDelayOf(client);
  let put = 0;
  for (const chunk of chunksOf(records)) {
    let left: StreamRecord[] = chunk;
    for (let round = 1; left.length > 0; round++) {
      const entries: PutRecordsRequestEntry[] = left.map((r) => ({ Data: r.data, PartitionKey: r.partitionKey }));
      const out = await withRetries(() => client.send(new PutRecordsCommand({ StreamName: stream, Records: entries })), { attempts: 6, baseDelayMs: 100, maxDelayMs: 2000, fixedDelayMs: fixed });
      // Kinesis answers entry by entry, in order: an entry with an ErrorCode was not put.
      const refused = left.filter((_, i) => out.Records?.[i]?.ErrorCode !== undefined);
      put += left.length - refused.length;
      options.progress?.(put);
      if (refused.length === 0) break;
      if (round >= rounds) {
        const code = out.Records?.find((r) => r.ErrorCode !== undefined)?.ErrorCode;
        throw new SluiceError(`${refused.length} record(s) still refused by stream ${stream} after ${rounds} tries (${code}); ${put} of ${records.length} were put`);
      }
      left = refused;
      const wait = fixed ?? Math.min(2000, 100 * 2 ** (round - 1));
      await new Promise((r) => setTimeout(r, wait));
    }
  }
  return put;
}
