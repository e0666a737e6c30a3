import { describe, expect, it } from 'vitest';
import { RecordError } from 'sluice';
import { decodeAll } from '../../lib/aws/kinesis/decode.ts';

// Decoding Kinesis records (lib/aws/kinesis/decode.ts): a record the user's decoder throws on is
// left out and listed, with a RecordError that carries the record as it is set aside.

const record = (seq: string, text: string) => ({
  SequenceNumber: seq,
  PartitionKey: 'k',
  Data: new TextEncoder().encode(text),
  ApproximateArrivalTimestamp: new Date(1_000),
});

describe('decodeAll', () => {
  it('decodes every record with the decoder, in order', () => {
    const out = decodeAll({ nodeId: 'kinesis-1', stream: 'events', decode: (d) => Number(new TextDecoder().decode(d)) }, 'shardId-0', [record('1', '10'), record('2', '20')]);
    expect(out.records).toEqual([10, 20]);
    expect(out.failures ?? []).toEqual([]);
  });

  it('leaves out a record the decoder throws on; its failure names it and carries it', () => {
    const decode = (d: Uint8Array) => {
      const n = Number(new TextDecoder().decode(d));
      if (Number.isNaN(n)) throw new Error('not a number');
      return n;
    };
    const out = decodeAll({ nodeId: 'kinesis-1', stream: 'events', decode }, 'shardId-0', [record('1', '10'), record('2', 'ten'), record('3', '30')]);
    expect(out.records).toEqual([10, 30]);
    expect(out.failures).toHaveLength(1);
    const [failure] = out.failures!;
    const expected = { shard: 'shardId-0', partitionKey: 'k', sequenceNumber: '2', arrivalTime: 1_000, data: Buffer.from('ten').toString('base64') };
    expect(failure.record).toEqual(expected);
    expect(failure.error).toBeInstanceOf(RecordError);
    expect(failure.error.message).toBe('kinesis-1: the decoder threw on record 2 of shard shardId-0 of Kinesis stream events: not a number');
    expect((failure.error as RecordError).record).toEqual(expected);
  });
});
