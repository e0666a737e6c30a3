import type { Batch } from '../plan/batch.ts';
import type { OutputNode } from '../plan/graph.ts';
import type { OutputLog, SinkResolver } from '../ports/index.ts';
import { outputLocation, printBlock } from './format.ts';
import type { BatchRun } from './stageScheduler.ts';

/**
 * Runs one output operation of a batch (Spark's output operations).
 *
 * - `saveAsTextFiles` / `saveAsJsonFiles` are exactly-once: every task computes from sealed input
 *   and writes its part to `prefix-<t>/part-<p>`, so any attempt, recomputation or late writer
 *   writes the same bytes to the same name; `_SUCCESS` comes last, once every part exists.
 * - `foreachPartition`, `foreachRDD` and `print` run user code or print: they may run again when a
 *   task or batch is retried or recovered (at-least-once). `foreachPartition` always sees the
 *   sealed records of its `(batchTime, partition)`, so a custom sink can make itself idempotent
 *   with that pair as the key.
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
      await run.runJob(b, { kind: 'output', outputId: out.node.id });
      await env.step('part', t);
      const location = outputLocation(out.prefix!, t, out.suffix);
      const { store, key } = env.sinks(location);
      // _SUCCESS last: readers that wait for it never see a partial batch.
      await store.put(`${key}/_SUCCESS`, '');
      run.record.outputs.push(location);
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

/** Where the `saveAs*` outputs of batch `t` write. */
export function outputLocations(outputs: readonly OutputNode[], t: number): string[] {
  return outputs.filter((o) => o.kind === 'saveAsTextFiles' || o.kind === 'saveAsJsonFiles').map((o) => outputLocation(o.prefix!, t, o.suffix));
}

/**
 * Removes what an earlier attempt of a batch may have written to output `locations`, before a
 * re-cut batch (a changed plan) writes there: its parts may be of another partition count, and
 * its `_SUCCESS` must not stand beside the new parts. `_SUCCESS` goes first, so a reader never
 * sees it beside a half-cleared directory.
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
