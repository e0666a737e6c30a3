import type { Batch } from '../plan/batch.ts';
import type { OutputNode } from '../plan/graph.ts';
import type { OutputLog, SinkResolver } from '../ports/index.ts';
import { outputLocation, partName, printBlock } from './format.ts';
import { forEachLimit } from './pool.ts';
import type { BatchRun } from './stageScheduler.ts';

/**
 * Runs one output operation of a batch (Spark's output operations).
 *
 * - `saveAsTextFiles` / `saveAsJsonFiles` are exactly-once. A batch whose output has a record
 *   writes Spark's layout: `prefix-<t>/part-<p>` for every partition, empty ones included, then
 *   `_SUCCESS`. A batch whose output has none writes nothing there, unless the batch was cut with
 *   `writeEmptyBatches` (then the same layout, every part empty). The argument:
 *   1. Every attempt of an output task computes from sealed input (an output never reads an open
 *      split: stageScheduler.ts), so every attempt of partition p — a retry, a recomputation, a
 *      superseded coordinator's task still running, a write that lands late — computes the same
 *      records, and so agrees whether p is empty.
 *   2. A task writes `part-p` only when p has a record, and always the same bytes. It reports its
 *      record count; the coordinator writes the empty parts itself (no bytes: the same whoever
 *      writes them) and only when the counts add up to more than zero.
 *   3. So in a batch whose output has no record no attempt of any task or coordinator ever writes
 *      a part or `_SUCCESS`: the location stays absent, however attempts overlap. In a batch with a
 *      record every write lands on a name the accepted run writes with the same bytes.
 *   4. Whether an empty output is written anyway comes from the batch's lineage record (the
 *      option when the batch was cut; a claim keeps it), not from the options of the coordinator
 *      that runs it: a coordinator deployed with the other setting that recovers the batch does
 *      what the superseded one may still be doing.
 *   5. A batch re-cut under a changed plan starts with {@link clearOutputs}, which deletes whatever
 *      the location holds, so parts of the old plan's attempts do not stay in a batch that is now
 *      empty, nor beside the new plan's parts.
 *   `_SUCCESS` comes last, once every part exists.
 * - `foreachPartition`, `foreachRDD` and `print` run user code or print, empty batches included
 *   (Spark prints the `Time:` header of an empty batch): they may run again when a task or batch
 *   is retried or recovered (at-least-once). `foreachPartition` always sees the sealed records of
 *   its `(batchTime, partition)`, so a custom sink can make itself idempotent with that pair as the
 *   key.
 *
 * @example
 * ```ts
 * await runOutput(out, plan.outputBatches[i], run, { sinks, log, step });
 * ```
 */
export async function runOutput(
  out: OutputNode,
  b: Batch<unknown>,
  run: BatchRun,
  env: { readonly sinks: SinkResolver; readonly log: OutputLog; readonly step: (step: 'part' | 'success', time: number) => Promise<void> },
): Promise<void> {
  const t = run.time;
  switch (out.kind) {
    case 'print': {
      const records = await b.take(out.num! + 1);
      env.log.print(printBlock(t, records, out.num!));
      return;
    }
    case 'saveAsTextFiles':
    case 'saveAsJsonFiles': {
      const counts = (await run.runJob(b, { kind: 'output', outputId: out.node.id })) as number[];
      // The choice made at the cut; a record of a release before the option has none, and those wrote them.
      const writeEmpty = run.record.writeEmptyBatches !== false;
      const written = writeEmpty || counts.some((n) => n > 0);
      const location = outputLocation(out.prefix!, t, out.suffix);
      const { store, key } = env.sinks(location);
      if (written) await forEachLimit(counts.length, EMPTY_PART_WRITES, async (p) => (counts[p] === 0 ? store.put(`${key}/${partName(p)}`, '') : undefined));
      await env.step('part', t);
      if (written) {
        // _SUCCESS last: readers that wait for it never see a partial batch.
        await store.put(`${key}/_SUCCESS`, '');
        run.record.outputs.push(location);
      }
      await env.step('success', t);
      return;
    }
    case 'foreachPartition':
      await run.runJob(b, { kind: 'output', outputId: out.node.id });
      return;
    case 'foreachRDD':
      await out.fn!(b, t);
      return;
    case 'capture':
      out.fn!(t, await b.collectPartitions());
      return;
  }
}

/** Empty parts the coordinator writes at once. */
const EMPTY_PART_WRITES = 16;

/** Where the `saveAs*` outputs of batch `t` write. */
export function outputLocations(outputs: readonly OutputNode[], t: number): string[] {
  return outputs.filter((o) => o.kind === 'saveAsTextFiles' || o.kind === 'saveAsJsonFiles').map((o) => outputLocation(o.prefix!, t, o.suffix));
}

/**
 * Removes what an earlier attempt of a batch may have written to output `locations`, before a
 * re-cut batch (a changed plan) writes there: its parts may be of another partition count, its
 * `_SUCCESS` must not stand beside the new parts, and if the re-cut batch's output is empty
 * nothing may stay at all. It lists the location rather than trusting the record's `outputs`: a
 * crashed attempt may have written parts before it recorded anything. `_SUCCESS` goes first, so a
 * reader never sees it beside a half-cleared directory.
 *
 * @example
 * ```ts
 * await clearOutputs(outputLocations(graph.outputs, 5000), sinks);
 * ```
 */
export async function clearOutputs(locations: readonly string[], sinks: SinkResolver): Promise<void> {
  for (const location of new Set(locations)) {
    const { store, key } = sinks(location);
    await store.delete([`${key}/_SUCCESS`]);
    const left = await store.list(`${key}/`);
    if (left.length) await store.delete(left);
  }
}
