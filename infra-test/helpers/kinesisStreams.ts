import { createHash } from 'node:crypto';
import {
  CreateStreamCommand,
  DescribeStreamSummaryCommand,
  type KinesisClient,
  ListShardsCommand,
  PutRecordsCommand,
  type Shard,
} from '@aws-sdk/client-kinesis';
import type { InputSplit, JsonValue, RecordSource } from '../../lib/ports/index.ts';

let streams = 0;

/** A stream name no other test uses. */
export function uniqueStreamName(prefix = 's'): string {
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${streams++}`;
}

/** Waits until the stream is ACTIVE (kinesalite flips CREATING/UPDATING to ACTIVE on a timer). */
export async function waitActive(client: KinesisClient, stream: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const out = await client.send(new DescribeStreamSummaryCommand({ StreamName: stream }));
    if (out.StreamDescriptionSummary?.StreamStatus === 'ACTIVE') return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`stream ${stream} did not become ACTIVE`);
}

/** Creates a stream with `shards` shards and waits until it is ACTIVE. */
export async function createStream(client: KinesisClient, stream: string, shards: number): Promise<void> {
  await client.send(new CreateStreamCommand({ StreamName: stream, ShardCount: shards }));
  await waitActive(client, stream);
}

/** The stream's shards, by shard id. */
export async function shardsOf(client: KinesisClient, stream: string): Promise<Shard[]> {
  const out = await client.send(new ListShardsCommand({ StreamName: stream }));
  return (out.Shards ?? []).sort((a, b) => (a.ShardId! < b.ShardId! ? -1 : 1));
}

/** One record to put: its partition key, its text (or bytes), optionally an explicit hash key. */
export interface Put {
  readonly key: string;
  readonly data: string | Uint8Array;
  readonly hashKey?: string;
}

/** Puts the records in order (PutRecords, 500 at a time); returns each one's shard and sequence number. */
export async function putAll(client: KinesisClient, stream: string, records: readonly Put[]): Promise<{ shard: string; seq: string }[]> {
  const out: { shard: string; seq: string }[] = [];
  for (let i = 0; i < records.length; i += 500) {
    const chunk = records.slice(i, i + 500);
    const res = await client.send(
      new PutRecordsCommand({
        StreamName: stream,
        Records: chunk.map((r) => ({
          PartitionKey: r.key,
          Data: typeof r.data === 'string' ? new TextEncoder().encode(r.data) : r.data,
          ...(r.hashKey ? { ExplicitHashKey: r.hashKey } : {}),
        })),
      }),
    );
    if (res.FailedRecordCount) throw new Error(`${res.FailedRecordCount} records were refused`);
    for (const r of res.Records ?? []) out.push({ shard: r.ShardId!, seq: r.SequenceNumber! });
  }
  return out;
}

/** What one batch of a source did, as the coordinator and its tasks would. */
export interface BatchRun {
  readonly splits: InputSplit[];
  readonly sealed: InputSplit[];
  /** The records of each split, in split order. */
  readonly records: unknown[][];
  /** The state after the batch (as committed: through JSON). */
  readonly state: JsonValue;
}

/** Cuts the batch at `time`, reads every split in parallel, seals what was read and advances. */
export async function runBatch(source: RecordSource, time: number, state: JsonValue | undefined, limit?: number): Promise<BatchRun> {
  const cut = await source.cut(time, state, limit);
  const splits = json(cut.splits);
  const results = await Promise.all(splits.map((s) => source.read(s)));
  const sealed = json(results.map((r, i) => r.sealedSplit ?? splits[i]));
  const next = source.advance ? source.advance(json(cut.state), sealed) : cut.state;
  return { splits, sealed, records: results.map((r) => r.records), state: json(next) };
}

function json<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}

// -------------------------------------------------------------------------------------------
// KPL aggregation, written by hand: magic, AggregatedRecord protobuf, MD5 of the protobuf.
// -------------------------------------------------------------------------------------------

function varint(n: number): number[] {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n % 128) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}

function field(num: number, bytes: Uint8Array): number[] {
  return [...varint(num * 8 + 2), ...varint(bytes.length), ...bytes];
}

/** A KPL-aggregated record holding `records` (partition keys are shared through the key table). */
export function aggregate(records: readonly { key: string; data: string; hashKey?: string }[], options: { corruptChecksum?: boolean } = {}): Uint8Array {
  const enc = new TextEncoder();
  const keys = [...new Set(records.map((r) => r.key))];
  const hashKeys = [...new Set(records.flatMap((r) => (r.hashKey ? [r.hashKey] : [])))];
  const body: number[] = [];
  for (const k of keys) body.push(...field(1, enc.encode(k)));
  for (const h of hashKeys) body.push(...field(2, enc.encode(h)));
  for (const r of records) {
    const rec: number[] = [...varint(1 * 8 + 0), ...varint(keys.indexOf(r.key))];
    if (r.hashKey) rec.push(...varint(2 * 8 + 0), ...varint(hashKeys.indexOf(r.hashKey)));
    rec.push(...field(3, enc.encode(r.data)));
    // An unknown field (tags, 4) that the reader must skip.
    rec.push(...field(4, enc.encode('')));
    body.push(...field(3, Uint8Array.from(rec)));
  }
  const protobuf = Uint8Array.from(body);
  const md5 = createHash('md5').update(protobuf).digest();
  if (options.corruptChecksum) md5[0] ^= 0xff;
  return Uint8Array.from([0xf3, 0x89, 0x9a, 0xc2, ...protobuf, ...md5]);
}
