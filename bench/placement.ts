/**
 * The bench's "coordinator or workers" section (issue 14): the wall time of one word-count batch
 * of N Kinesis records on the AWS path on emulators (kinesalite, dynalite, s3rver, the in-process
 * Lambda Invoke endpoint), run inside the coordinator (`coordinatorBatchRecords` above N) and
 * fanned out to workers (`coordinatorBatchRecords: 0`), in the same run. It prints the ratio
 * workers ÷ coordinator per N and the first N where fanning out is faster: the crossover from
 * which the default bound is chosen. The emulated Invoke is a local HTTP call into this process,
 * far cheaper than a real Lambda Invoke (tens of ms, cold starts), so the real crossover is higher.
 */
import { DeleteStreamCommand } from '@aws-sdk/client-kinesis';
import { buildGraph, defineJob } from '../lib/api/job.ts';
import { kinesisClient } from '../lib/aws/clients.ts';
import { createWorkerHandler } from '../lib/aws/handlers.ts';
import { awsCoordinatorRuntime } from '../lib/aws/coordinatorRuntime.ts';
import { awsWorkerRuntime } from '../lib/aws/runtime.ts';
import { Coordinator } from '../lib/engine/coordinator.ts';
import { type AwsStack, createResources, putLines, startAwsStack } from '../infra-test/helpers/awsStack.ts';

/** Batch sizes timed by the full run and by `--quick`. */
export const PLACEMENT_FULL = [10, 100, 1_000, 10_000, 100_000];
export const PLACEMENT_QUICK = [10, 1_000];

/** One batch size, timed both ways (median over `reps`). */
export interface PlacementRow {
  readonly records: number;
  readonly coordinatorMs: number;
  readonly workersMs: number;
}

const SHARDS = 4;

function job(name: string, bound: number) {
  return defineJob({ name, batchInterval: '200ms', coordinatorBatchRecords: bound }, (ctx) =>
    ctx
      .kinesisStream(name, { initialPosition: 'TRIM_HORIZON', maxRecordsPerBatch: 200_000 })
      .flatMap((l) => l.split(' '))
      .map((w) => [w, 1] as [string, number])
      .reduceByKey((a, b) => a + b, { numPartitions: 4 })
      .saveAsTextFiles(`s3://${name}-out/counts`),
  );
}

let jobs = 0;

/** Wall time of the first batch of a fresh job over `records` lines, placed by `bound`. */
async function timeBatch(stack: AwsStack, records: number, bound: number): Promise<number> {
  const name = `place-${jobs++}`;
  await createResources(stack, name, SHARDS);
  await putLines(
    stack,
    name,
    Array.from({ length: records }, (_, i) => `w${i % 101} x${i % 7} y${i}`),
  );
  const definition = job(name, bound);
  const config = stack.config(name);
  stack.lambda.register(
    config.workerFunction!,
    createWorkerHandler(async () => definition, (graph) => awsWorkerRuntime(graph, config)),
  );
  const graph = buildGraph(definition);
  const coordinator = new Coordinator(graph, definition.options, awsCoordinatorRuntime(graph, config, () => {}));
  await coordinator.start();
  while (Date.now() <= coordinator.nextBatchTime) await new Promise((r) => setTimeout(r, 10));
  const began = performance.now();
  const info = await coordinator.runNextBatch();
  const ms = performance.now() - began;
  await coordinator.stop();
  await coordinator.releaseLease();
  // The emulator holds at most 100 shards: each timed job's stream goes once it has been read.
  await kinesisClient(config.aws).send(new DeleteStreamCommand({ StreamName: name }));
  if (info.numRecords !== records) throw new Error(`coordinator or workers: the batch read ${info.numRecords} of ${records} records`);
  return ms;
}

/**
 * Times each size inside the coordinator and fanned out, alternating, `reps` times each.
 *
 * @example
 * ```ts
 * const rows = await runPlacementBench([10, 1000], 1);
 * console.log(formatPlacement(rows));
 * ```
 */
export async function runPlacementBench(sizes: readonly number[], reps: number, log: (m: string) => void = () => {}): Promise<PlacementRow[]> {
  const stack = await startAwsStack();
  try {
    // Untimed: the first job pays for the emulators' and the SDK's warm-up.
    await timeBatch(stack, 10, 1_000_000);
    await timeBatch(stack, 10, 0);
    const rows: PlacementRow[] = [];
    for (const records of sizes) {
      const inside: number[] = [];
      const fanned: number[] = [];
      for (let r = 0; r < reps; r++) {
        log(`coordinator or workers: ${records} records, round ${r + 1}/${reps}`);
        inside.push(await timeBatch(stack, records, Number.MAX_SAFE_INTEGER));
        fanned.push(await timeBatch(stack, records, 0));
      }
      rows.push({ records, coordinatorMs: median(inside), workersMs: median(fanned) });
    }
    return rows;
  } finally {
    await stack.stop();
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** The table, and the crossover: the first size at which fanning out is faster. */
export function formatPlacement(rows: readonly PlacementRow[]): string {
  const lines = ['', 'Coordinator or workers (one word-count batch of N Kinesis records, AWS path on emulators, 4 shards, 4 reduce partitions)', ''];
  lines.push('| records | in the coordinator (ms) | fanned out (ms) | fanned out ÷ coordinator |', '|---:|---:|---:|---:|');
  for (const r of rows) lines.push(`| ${r.records} | ${r.coordinatorMs.toFixed(0)} | ${r.workersMs.toFixed(0)} | ${(r.workersMs / r.coordinatorMs).toFixed(2)} |`);
  // The crossover is past the largest size at which the coordinator still won (the smallest sizes are the noisiest).
  let last = -1;
  rows.forEach((r, i) => {
    if (r.coordinatorMs <= r.workersMs) last = i;
  });
  const cross = last >= 0 && last < rows.length - 1 ? rows[last + 1] : last < 0 ? rows[0] : undefined;
  lines.push(
    '',
    cross
      ? `Crossover: fanning out is faster from about ${cross.records} records (emulated Invoke; a real Invoke costs more, so the real crossover is higher).`
      : 'Crossover: none in this range (the coordinator was faster at every size measured).',
    '',
  );
  return lines.join('\n');
}
