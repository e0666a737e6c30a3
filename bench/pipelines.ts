/**
 * The two sides of each comparison — a Sluice job run through the real coordinator and worker
 * (`runBatches`), and the loop someone would write by hand — plus the checks that they computed
 * the same thing, so a broken pipeline can never show up as a fast one.
 */
import { type BatchOutput, type RunBatchesOptions, runBatches } from '../lib/testing/index.ts';
import { ERROR_MARKER } from './data.ts';

/** The batch interval of every bench job. It does not slow anything down (the clock is manual). */
export const BATCH_INTERVAL_MS = 1000;

/** State stores for `runBatches`; left out, it uses fresh in-memory ones. */
export type Stores = Pick<RunBatchesOptions, 'blobs' | 'meta'>;

export type WordCounts = Map<string, number>;
/** What the Sluice word-count job produced: `[word, count]` pairs per batch. */
export type SluiceWordCounts = BatchOutput<[string, number]>[];
/** What the Sluice grep job produced: the matching lines per batch. */
export type SluiceMatches = BatchOutput<string>[];

// ------------------------------------------------------------------------------- word count

/** Word count per batch, the obvious way: split on ' ' and count in a Map. */
export function handWordCount(batches: readonly (readonly string[])[]): WordCounts[] {
  const out: WordCounts[] = [];
  for (const lines of batches) {
    const counts: WordCounts = new Map();
    for (let i = 0; i < lines.length; i++) {
      const words = lines[i].split(' ');
      for (let j = 0; j < words.length; j++) {
        const w = words[j];
        counts.set(w, (counts.get(w) ?? 0) + 1);
      }
    }
    out.push(counts);
  }
  return out;
}

/**
 * The same word count as a Sluice job. The whole `runBatches` call is what gets timed: cutting
 * each queued batch into input blocks, the map stage with its map-side combine, the shuffle,
 * the reduce stage and collecting the result to the coordinator, i.e. everything a batch costs.
 */
export function sluiceWordCount(batches: string[][], numPartitions: number, stores: Stores = {}): Promise<SluiceWordCounts> {
  return runBatches({ batchInterval: BATCH_INTERVAL_MS, batches: batches.length, ...stores }, (ctx) =>
    ctx
      .queueStream(batches, { numPartitions })
      .flatMap((l) => l.split(' '))
      .map((w) => [w, 1] as [string, number])
      .reduceByKey((a, b) => a + b, { numPartitions }),
  );
}

/**
 * The same word count, 1 partition, with the input *received* instead of queued: a
 * `generatorStream` hands out `lines[i]` in order, `linesPerBatch` per batch. A queueStream's
 * split is only a position in the queue (the queue is part of the job's code); a receiver-type
 * source (generator, receiver, socket) instead writes each batch's records as a block to the
 * blob store at the cut, before the batch is sealed, so this path pays for serialising the input.
 *
 * Batch b holds exactly lines [b × linesPerBatch, (b + 1) × linesPerBatch): the generator makes
 * `ratePerSec × elapsed / 1000` records per batch, the first batch covering one batch interval
 * and every later one the interval since the previous cut, and the manual clock advances by
 * exactly one interval per batch.
 */
export function sluiceReceivedWordCount(lines: readonly string[], batches: number, linesPerBatch: number, stores: Stores = {}): Promise<SluiceWordCounts> {
  return runBatches({ batchInterval: BATCH_INTERVAL_MS, batches, ...stores }, (ctx) =>
    ctx
      .generatorStream({ ratePerSec: (linesPerBatch * 1000) / BATCH_INTERVAL_MS, make: (i) => lines[i], numPartitions: 1 })
      .flatMap((l) => l.split(' '))
      .map((w) => [w, 1] as [string, number])
      .reduceByKey((a, b) => a + b, { numPartitions: 1 }),
  );
}

/** Why Sluice's word counts differ from the hand loop's, or undefined when they are equal. */
export function wordCountMismatch(sluice: Readonly<SluiceWordCounts>, hand: readonly WordCounts[]): string | undefined {
  if (sluice.length !== hand.length) return `Sluice produced ${sluice.length} batches, expected ${hand.length}`;
  for (let b = 0; b < hand.length; b++) {
    const { time, data } = sluice[b];
    const expectedTime = (b + 1) * BATCH_INTERVAL_MS;
    if (time !== expectedTime) return `batch ${b} came at time ${time}, expected ${expectedTime}`;
    const want = hand[b];
    // Every key exactly once over all reduce partitions, with the hand loop's count.
    const seen = new Set<string>();
    for (const [word, n] of data) {
      if (seen.has(word)) return `batch ${b}: word ${JSON.stringify(word)} appears twice in the output`;
      seen.add(word);
      if (want.get(word) !== n) return `batch ${b}: word ${JSON.stringify(word)} counted ${n}, expected ${String(want.get(word))}`;
    }
    if (seen.size !== want.size) return `batch ${b}: ${seen.size} distinct words, expected ${want.size}`;
  }
  return undefined;
}

// ------------------------------------------------------------------------------- grep

/** The lines containing the marker, per batch, with a plain loop. */
export function handGrep(batches: readonly (readonly string[])[]): string[][] {
  const out: string[][] = [];
  for (const lines of batches) {
    const hits: string[] = [];
    for (let i = 0; i < lines.length; i++) if (lines[i].includes(ERROR_MARKER)) hits.push(lines[i]);
    out.push(hits);
  }
  return out;
}

/** The same filter as a Sluice job; the harness collects the matching lines of every batch. */
export function sluiceGrep(batches: string[][]): Promise<SluiceMatches> {
  return runBatches({ batchInterval: BATCH_INTERVAL_MS, batches: batches.length }, (ctx) =>
    ctx.queueStream(batches, { numPartitions: 1 }).filter((l) => l.includes(ERROR_MARKER)),
  );
}

/** Why Sluice's matches differ from the hand loop's (same lines, same order), or undefined. */
export function grepMismatch(sluice: Readonly<SluiceMatches>, hand: readonly string[][]): string | undefined {
  if (sluice.length !== hand.length) return `Sluice produced ${sluice.length} batches, expected ${hand.length}`;
  for (let b = 0; b < hand.length; b++) {
    const got = sluice[b].data;
    const want = hand[b];
    if (got.length !== want.length) return `batch ${b}: ${got.length} matching lines, expected ${want.length}`;
    for (let i = 0; i < want.length; i++) if (got[i] !== want[i]) return `batch ${b}: match ${i} is ${JSON.stringify(got[i])}, expected ${JSON.stringify(want[i])}`;
  }
  return undefined;
}

// ------------------------------------------------------------------------------- empty batches

/**
 * `batches` empty batches through a job with a shuffle and an output: what the engine costs
 * when there is nothing to do (planning, task payloads, metadata writes, the two stages).
 */
export async function sluiceEmptyBatches(batches: number): Promise<BatchOutput<[string, number]>[]> {
  return runBatches({ batchInterval: BATCH_INTERVAL_MS, batches }, (ctx) =>
    ctx
      .queueStream<string>([])
      .map((w) => [w, 1] as [string, number])
      .reduceByKey((a, b) => a + b),
  );
}

/** Why the empty-batch run did not produce `batches` empty outputs, or undefined. */
export function emptyMismatch(out: readonly BatchOutput<unknown>[], batches: number): string | undefined {
  if (out.length !== batches) return `Sluice produced ${out.length} batches, expected ${batches}`;
  const nonEmpty = out.findIndex((b) => b.data.length !== 0);
  return nonEmpty === -1 ? undefined : `batch ${nonEmpty} has ${out[nonEmpty].data.length} records, expected none`;
}
