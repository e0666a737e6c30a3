import type { _Record } from '@aws-sdk/client-kinesis';
import { RecordError } from '../../core/errors.ts';
import type { SourceRecordFailure } from '../../ports/index.ts';
import { messageOf } from './api.ts';
import { deaggregate, type UserRecord } from './kpl.ts';

/** What a decoder is told about a record besides its bytes. */
export interface RecordMeta {
  /** The shard the record was read from (after resharding, a key's records move to a child shard). */
  readonly shardId: string;
  readonly partitionKey: string;
  readonly sequenceNumber: string;
  /** The index of a user record within a KPL-aggregated record. */
  readonly subSequenceNumber?: number;
  readonly arrivalTime: number;
}

/** Turns a record's bytes into the value the job sees. */
export type Decoder = (data: Uint8Array, meta: RecordMeta) => unknown;

const utf8 = new TextDecoder();
/** Records are UTF-8 text unless the job gives its own decoder. */
export const defaultDecode: Decoder = (data) => utf8.decode(data);

/** Decoded records, and the ones that could not be decoded. */
export interface Decoded {
  records: unknown[];
  failures?: SourceRecordFailure[];
}

/** Which source decodes, and how. */
export interface DecodeContext {
  readonly nodeId: string;
  readonly stream: string;
  readonly decode: Decoder;
}

/**
 * Decodes (and de-aggregates) the records; one that cannot be decoded is left out and listed as
 * a failure, so the engine can fail the batch or set it aside (onRecordError).
 */
export function decodeAll(context: DecodeContext, shard: string, records: readonly _Record[]): Decoded {
  const { nodeId, stream, decode } = context;
  const out: unknown[] = [];
  const failures: SourceRecordFailure[] = [];
  // The record as a dead letter: its metadata and its bytes in base64.
  const raw = (data: Uint8Array, { shardId: _, ...meta }: RecordMeta) => ({ shard, ...meta, data: Buffer.from(data).toString('base64') });
  records.forEach((r, index) => {
    const seq = r.SequenceNumber!;
    const arrivalTime = arrivalOf(r);
    const data = r.Data ?? new Uint8Array(0);
    let parts: UserRecord[] | undefined;
    try {
      parts = deaggregate(data);
    } catch (e) {
      const record = raw(data, { shardId: shard, partitionKey: r.PartitionKey ?? '', sequenceNumber: seq, arrivalTime });
      const error = new RecordError(`${nodeId}: the KPL-aggregated record ${seq} of shard ${shard} of Kinesis stream ${stream} is malformed: ${messageOf(e)}`, {
        nodeId,
        record,
        cause: e,
      });
      failures.push({ index, record, error });
      return;
    }
    const one = (bytes: Uint8Array, meta: RecordMeta) => {
      try {
        out.push(decode(bytes, meta));
      } catch (e) {
        const which = meta.subSequenceNumber === undefined ? `record ${meta.sequenceNumber}` : `record ${meta.sequenceNumber} (user record ${meta.subSequenceNumber})`;
        const record = raw(bytes, meta);
        const error = new RecordError(`${nodeId}: the decoder threw on ${which} of shard ${shard} of Kinesis stream ${stream}: ${messageOf(e)}`, { nodeId, record, cause: e });
        failures.push({ index, record, error });
      }
    };
    if (parts === undefined) one(data, { shardId: shard, partitionKey: r.PartitionKey ?? '', sequenceNumber: seq, arrivalTime });
    else parts.forEach((p, i) => one(p.data, { shardId: shard, partitionKey: p.partitionKey, sequenceNumber: seq, subSequenceNumber: i, arrivalTime }));
  });
  return failures.length ? { records: out, failures } : { records: out };
}

/** When Kinesis received the record (epoch ms). */
export function arrivalOf(r: _Record): number {
  const t = r.ApproximateArrivalTimestamp;
  return t instanceof Date ? t.getTime() : typeof t === 'number' ? t : 0;
}
