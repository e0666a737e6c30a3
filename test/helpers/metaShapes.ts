import type { BatchRecord, Checkpoint } from '../../lib/engine/protocol.ts';
import type { InputSplit, JsonValue } from '../../lib/ports/index.ts';

/**
 * MetaStore values shaped as the engine writes them for large inputs: the source state and
 * splits of a Kinesis stream with many shards (lib/aws/kinesisSource.ts) and of a textFileStream
 * over an S3 prefix with many objects (lib/aws/s3TextFileSource.ts, lib/engine/newFiles.ts), as a
 * checkpoint and as a batch record (lib/engine/protocol.ts). Deterministic: the same arguments
 * give the same value, so sizes quoted in tests stay true.
 */

const BATCH_TIME = 1_767_225_600_000; // 2026-01-01T00:00:00Z
const FINGERPRINT = '9f2c4be07d1a3e58';

/** A digit string of `length` digits, different for every `seed`. */
function digits(seed: number, length: number): string {
  let s = '';
  let x = seed * 2654435761 + 97;
  while (s.length < length) {
    x = (x * 1103515245 + 12345) % 2147483648;
    s += String(x % 100_000).padStart(5, '0');
  }
  return s.slice(0, length);
}

/** A shard id as Kinesis spells it. */
export function shardId(i: number): string {
  return `shardId-${String(i).padStart(12, '0')}`;
}

/** A 56-digit sequence number, as Kinesis hands them out. */
export function sequenceNumber(shard: number, n: number): string {
  return `49${digits(shard * 1_000_003 + n, 54)}`;
}

/** A shard iterator of about 250 characters (base64, as GetShardIterator returns). */
export function shardIterator(shard: number): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  const d = digits(shard + 7, 248 * 2);
  let s = 'AAAAAAAAAAG';
  for (let i = 0; s.length < 250; i += 2) s += alphabet[Number(d.slice(i, i + 2)) % 64];
  return s;
}

/**
 * A Kinesis stream of `shards` shards, the first `active` of them read since the job started (they
 * have a position), the others idle since a `LATEST` start (a start and a resume iterator each).
 * Returns the source state `{ positions, starts, resume, exhausted }` and the sealed splits of one
 * batch: an active shard's range of 250 records, an idle shard's empty read with its iterator.
 */
export function kinesisShapes(shards: number, active: number): { state: JsonValue; splits: InputSplit[] } {
  const positions: Record<string, string> = {};
  const starts: Record<string, JsonValue> = {};
  const resume: Record<string, JsonValue> = {};
  const splits: InputSplit[] = [];
  for (let i = 0; i < shards; i++) {
    const id = shardId(i);
    if (i < active) {
      positions[id] = sequenceNumber(i, 1);
      splits.push({ shard: id, after: sequenceNumber(i, 0), start: null, end: sequenceNumber(i, 1), count: 250 });
    } else {
      const r = { iterator: shardIterator(i), at: BATCH_TIME - 180, since: BATCH_TIME - 3_600_000 };
      starts[id] = 'LATEST';
      resume[id] = r;
      splits.push({ shard: id, after: null, start: 'LATEST', end: null, count: 0, resume: r });
    }
  }
  return { state: { positions, starts, resume, exhausted: [] }, splits };
}

/** An object name as a producer might write it under a watched prefix (42 characters). */
export function fileName(i: number): string {
  return `clicks-2026-01-01T00-00-00Z-${String(i).padStart(6, '0')}.json.gz`;
}

/**
 * A textFileStream watching `s3://clicks-landing/in/` that has seen `files` objects, the last
 * `fresh` of them new in this batch. Returns the source state `{ ignoreBefore, seen }` (names in
 * order, as `boundedSeenState` keeps them) and the batch's sealed splits `{ bucket, key, size, etag }`.
 */
export function textFileShapes(files: number, fresh: number): { state: JsonValue; splits: InputSplit[] } {
  const seen: Record<string, JsonValue> = {};
  const splits: InputSplit[] = [];
  const names = Array.from({ length: files }, (_, i) => fileName(i)).sort();
  names.forEach((name, i) => {
    seen[name] = BATCH_TIME - (files - i) * 1000;
    if (i >= files - fresh) splits.push({ bucket: 'clicks-landing', key: `in/${name}`, size: 1_048_576 + i, etag: `"${digits(i, 32).replace(/[0-9]/g, (c) => 'abcdef0123456789'[Number(c)])}"` });
  });
  return { state: { ignoreBefore: 0, seen }, splits };
}

/** The job checkpoint with one source in the given state. */
export function checkpointWith(nodeId: string, state: JsonValue): Checkpoint {
  return {
    job: 'clicks',
    fingerprint: FINGERPRINT,
    signatures: { [nodeId]: 'a41be3f0c2d97e65', 'map-1': '5d0e9c8b7a6f4132', 'saveAsTextFiles-2': '0b7c2e4f6a8d1935' },
    batchInterval: 1000,
    lastCompleted: BATCH_TIME - 1000,
    sourceState: { [nodeId]: state },
    state: {},
    rates: {},
  };
}

/** The lineage record of one running batch, with one source's splits and state. */
export function batchRecordWith(nodeId: string, shapes: { state: JsonValue; splits: InputSplit[] }): BatchRecord {
  return {
    time: BATCH_TIME,
    fingerprint: FINGERPRINT,
    status: 'RUNNING',
    splits: { [nodeId]: shapes.splits },
    sourceState: { [nodeId]: shapes.state },
    outputs: [],
    state: {},
    writeEmptyBatches: false,
  };
}

/** Bytes of a value's JSON text (what a MetaStore stores and DynamoDB counts). */
export function jsonBytes(value: JsonValue): number {
  return Buffer.byteLength(JSON.stringify(value), 'utf8');
}
