import { createHash } from 'node:crypto';

// KPL aggregation: the Kinesis Producer Library packs many user records into one Kinesis record
// as 0xF3 0x89 0x9A 0xC2, an AggregatedRecord protobuf, and the MD5 of the protobuf.

/** One user record inside a KPL-aggregated Kinesis record. */
export interface UserRecord {
  readonly partitionKey: string;
  readonly explicitHashKey?: string;
  readonly data: Uint8Array;
}

const KPL_MAGIC = [0xf3, 0x89, 0x9a, 0xc2];

/**
 * The user records of a KPL-aggregated record, or `undefined` when `data` is not one (no magic
 * bytes, or an MD5 trailer that does not match: like the KCL, such data is an ordinary record).
 * Throws when the checksum matches but the protobuf is malformed.
 *
 * @example
 * ```ts
 * const parts = deaggregate(record.Data) ?? [{ partitionKey: record.PartitionKey, data: record.Data }];
 * ```
 */
export function deaggregate(data: Uint8Array): UserRecord[] | undefined {
  if (data.length < KPL_MAGIC.length + 16) return undefined;
  for (let i = 0; i < KPL_MAGIC.length; i++) if (data[i] !== KPL_MAGIC[i]) return undefined;
  const body = data.subarray(KPL_MAGIC.length, data.length - 16);
  const digest = createHash('md5').update(body).digest();
  const trailer = data.subarray(data.length - 16);
  for (let i = 0; i < 16; i++) if (digest[i] !== trailer[i]) return undefined;

  const keys: string[] = [];
  const hashKeys: string[] = [];
  const entries: { pk: number; ehk?: number; data: Uint8Array }[] = [];
  const msg = new ProtoReader(body);
  while (!msg.done()) {
    const [field, wire] = msg.tag();
    if (field === 1 && wire === 2) keys.push(utf8Strict.decode(msg.bytes()));
    else if (field === 2 && wire === 2) hashKeys.push(utf8Strict.decode(msg.bytes()));
    else if (field === 3 && wire === 2) {
      const rec = new ProtoReader(msg.bytes());
      let pk: number | undefined;
      let ehk: number | undefined;
      let payload: Uint8Array | undefined;
      while (!rec.done()) {
        const [f, w] = rec.tag();
        if (f === 1 && w === 0) pk = rec.varint();
        else if (f === 2 && w === 0) ehk = rec.varint();
        else if (f === 3 && w === 2) payload = rec.bytes();
        else rec.skip(w);
      }
      if (pk === undefined || payload === undefined) throw new Error('a user record lacks its partition_key_index or data');
      entries.push({ pk, ...(ehk === undefined ? {} : { ehk }), data: payload });
    } else msg.skip(wire);
  }
  return entries.map((e) => {
    if (e.pk >= keys.length) throw new Error(`partition_key_index ${e.pk} is outside the table of ${keys.length} keys`);
    if (e.ehk !== undefined && e.ehk >= hashKeys.length) throw new Error(`explicit_hash_key_index ${e.ehk} is outside the table of ${hashKeys.length} keys`);
    return { partitionKey: keys[e.pk], ...(e.ehk === undefined ? {} : { explicitHashKey: hashKeys[e.ehk] }), data: e.data };
  });
}

const utf8Strict = new TextDecoder('utf-8', { fatal: true });

/** Just enough of the protobuf wire format for AggregatedRecord. */
class ProtoReader {
  private pos = 0;
  constructor(private readonly buf: Uint8Array) {}

  done(): boolean {
    return this.pos >= this.buf.length;
  }

  tag(): [number, number] {
    const t = this.varint();
    return [Math.floor(t / 8), t % 8];
  }

  varint(): number {
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.buf.length) throw new Error('truncated varint');
      const b = this.buf[this.pos++];
      result += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) return result;
      scale *= 128;
    }
    throw new Error('varint longer than 10 bytes');
  }

  bytes(): Uint8Array {
    const n = this.varint();
    if (this.pos + n > this.buf.length) throw new Error('truncated length-delimited field');
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 1) this.advance(8);
    else if (wire === 2) this.bytes();
    else if (wire === 5) this.advance(4);
    else throw new Error(`unsupported protobuf wire type ${wire}`);
  }

  private advance(n: number): void {
    if (this.pos + n > this.buf.length) throw new Error('truncated fixed-width field');
    this.pos += n;
  }
}
