import { writeFile } from 'node:fs/promises';
import { type DeadLetter, listDeadLetters, readDeadLetters } from '../engine/deadLetters.ts';
import { debugWanted, EXIT, reportError, UsageError } from './errors.ts';
import { localStateStores } from './localState.ts';
import { positiveInt } from './options.ts';

/** The flags of `sluice dead-letters`. */
export interface DeadLetterFlags {
  readonly stateDir?: string;
  readonly batch?: string;
  readonly limit?: string;
  readonly redriveTo?: string;
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

/**
 * `sluice dead-letters [job]`: the records a local job set aside (`onRecordError: 'dead-letter'`)
 * by batch; `--batch` shows one batch's letters; `--redrive-to <file>` writes their records as lines
 * of input, to feed back (a file source, `sluice produce`). Reads the state only.
 */
export async function deadLettersCommand(file: string | undefined, flags: DeadLetterFlags): Promise<number> {
  try {
    const limit = positiveInt(flags.limit, '--limit') ?? 20;
    const batch = flags.batch === undefined ? undefined : positiveInt(flags.batch, '--batch');
    const { dir, blobs } = await localStateStores(file, flags.stateDir);
    const batches = (await listDeadLetters(blobs)).filter((b) => batch === undefined || b.time === batch);
    if (batch !== undefined && batches.length === 0) throw new UsageError(`batch ${batch} set no record aside in ${dir}; sluice dead-letters without --batch lists the batches that did`);
    const lines: string[] = [];
    if (flags.redriveTo !== undefined) {
      const records: string[] = [];
      for (const b of batches) for (const l of await readDeadLetters(blobs, b.files)) for (const r of recordsOf(l)) records.push(asLine(r));
      await writeFile(flags.redriveTo, records.length ? `${records.join('\n')}\n` : '');
      lines.push(`${records.length} record(s) of ${batches.length} batch(es) written to ${flags.redriveTo}, one a line`);
    } else if (batches.length === 0) {
      lines.push(`no dead letters in ${dir}`);
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
  } catch (e) {
    return reportError(e, { jobFile: file, debug: debugWanted(flags.debug) });
  }
}
