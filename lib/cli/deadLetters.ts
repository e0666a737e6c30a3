import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { putAllRecords, type StreamRecord } from '../aws/putRecords.ts';
import { errorCode } from '../aws/sdkErrors.ts';
import { type DeadLetter, listDeadLetters, readDeadLetters } from '../engine/deadLetters.ts';
import { debugWanted, EXIT, reportError, UsageError } from './errors.ts';
import { type JobStoreFlags, jobStores, withStores } from './jobStores.ts';
import { positiveInt } from './options.ts';

/** The flags of `sluice dead-letters`. */
export interface DeadLetterFlags extends JobStoreFlags {
  readonly batch?: string;
  readonly limit?: string;
  readonly redriveTo?: string;
  /** `--redrive-stream [name]`: true for the job's own stream (a stack's, or `--stream`). */
  readonly redriveStream?: string | true;
  readonly debug?: boolean;
}

/** A record as a line of input again: text as it was, anything else as JSON. */
function asLine(record: unknown): string {
  return typeof record === 'string' ? record : JSON.stringify(record);
}

/** The records a letter set aside: its record, or a key's records. */
function recordsOf(l: DeadLetter): unknown[] {
  return l.record !== null && l.record !== undefined ? [l.record] : [...(l.records ?? [])];
}

/** A Kinesis record its decoder refused, as the dead letter keeps it (lib/aws/kinesis/decode.ts): its bytes in base64 and its partition key. */
function rawKinesisRecord(record: unknown): { data: string; partitionKey: string } | undefined {
  const r = record as { data?: unknown; partitionKey?: unknown; sequenceNumber?: unknown } | null;
  return r && typeof r === 'object' && typeof r.data === 'string' && typeof r.partitionKey === 'string' && typeof r.sequenceNumber === 'string' ? { data: r.data, partitionKey: r.partitionKey } : undefined;
}

/**
 * What a letter puts back into a stream: a record its decoder refused goes back as it came, its
 * bytes and its partition key; a record an operator refused goes as its text (or JSON), with a
 * partition key made from it (the same record, the same shard).
 */
function streamRecordsOf(l: DeadLetter): StreamRecord[] {
  const raw = rawKinesisRecord(l.record);
  if (raw) return [{ data: Buffer.from(raw.data, 'base64'), partitionKey: raw.partitionKey }];
  return recordsOf(l).map((r) => {
    const line = asLine(r);
    return { data: Buffer.from(line, 'utf8'), partitionKey: createHash('sha256').update(line).digest('hex').slice(0, 32) };
  });
}

/**
 * `sluice dead-letters [job]`: the records a job set aside (`onRecordError: 'dead-letter'`) by
 * batch; `--batch` shows one batch's letters; `--redrive-to <file>` writes their records as lines
 * of input, to feed back (a file source, `sluice produce`); `--redrive-stream [name]` puts them
 * into a Kinesis stream (the deployed job's own by default), where the job reads them as new input,
 * in a new batch. A local job's letters, or with `--stack` / `--table` a deployed job's. Reads the
 * job's state only; the letters stay (the state bucket's lifecycle rule expires them).
 */
export async function deadLettersCommand(file: string | undefined, flags: DeadLetterFlags): Promise<number> {
  try {
    const limit = positiveInt(flags.limit, '--limit') ?? 20;
    const batch = flags.batch === undefined ? undefined : positiveInt(flags.batch, '--batch');
    if (flags.redriveTo !== undefined && flags.redriveStream !== undefined) throw new UsageError('give --redrive-to FILE or --redrive-stream, not both');
    const named = typeof flags.redriveStream === 'string' ? flags.redriveStream : undefined;
    return await withStores(jobStores(file, { ...flags, ...(named !== undefined ? { stream: named } : {}) }), async (stores) => {
      const { blobs, where } = stores;
      const batches = (await listDeadLetters(blobs)).filter((b) => batch === undefined || b.time === batch);
      if (batch !== undefined && batches.length === 0) throw new UsageError(`batch ${batch} set no record aside in ${where}; sluice dead-letters without --batch lists the batches that did`);
      const lines: string[] = [];
      if (flags.redriveStream !== undefined) {
        if (!stores.stream) {
          throw new UsageError(
            stores.deployed
              ? "the job's stream is not known: give it, --redrive-stream NAME (or --stack, whose outputs name it)"
              : 'a local job has no Kinesis stream of its own: give one, --redrive-stream NAME',
          );
        }
        const records: StreamRecord[] = [];
        for (const b of batches) for (const l of await readDeadLetters(blobs, b.files)) records.push(...streamRecordsOf(l));
        const put = records.length ? await putAllRecords(stores.stream.client, stores.stream.name, records).catch((e: unknown) => {
          if (errorCode(e) !== 'ResourceNotFoundException') throw e;
          throw new UsageError(`there is no Kinesis stream ${stores.stream!.name} (region ${stores.stream!.region}): check --redrive-stream; nothing was put`);
        }) : 0;
        lines.push(`put ${put} record(s) of ${batches.length} batch(es) into stream ${stores.stream.name}: new input, read again in a new batch (the letters stay)`);
      } else if (flags.redriveTo !== undefined) {
        const records: string[] = [];
        for (const b of batches) for (const l of await readDeadLetters(blobs, b.files)) for (const r of recordsOf(l)) records.push(asLine(r));
        await writeFile(flags.redriveTo, records.length ? `${records.join('\n')}\n` : '');
        lines.push(`${records.length} record(s) of ${batches.length} batch(es) written to ${flags.redriveTo}, one a line`);
      } else if (batches.length === 0) {
        lines.push(`no dead letters in ${where}`);
      } else if (batch === undefined) {
        for (const b of batches.slice(-limit)) {
          const letters = await readDeadLetters(blobs, b.files);
          lines.push(`batch ${b.time} (${new Date(b.time).toISOString()}): ${letters.length} letter(s); first: ${letters[0]?.node}: ${letters[0]?.error}`);
        }
        if (batches.length > limit) lines.unshift(`… ${batches.length - limit} earlier batch(es) (--limit)`);
      } else {
        for (const l of (await readDeadLetters(blobs, batches[0].files)).slice(0, limit)) {
          lines.push(`${l.node}: ${l.error}`, `  from ${JSON.stringify(l.source)}`, `  ${l.record !== null ? `record ${JSON.stringify(l.record)}` : `key ${JSON.stringify(l.key)}, records ${JSON.stringify(l.records)}`}`);
        }
      }
      process.stdout.write(`${lines.join('\n')}\n`);
      return EXIT.ok;
    });
  } catch (e) {
    return reportError(e, { jobFile: file, debug: debugWanted(flags.debug) });
  }
}
