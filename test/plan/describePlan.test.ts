import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { defineJob, StateSpec, type StreamingContext } from 'sluice';
import { buildGraph } from '../../lib/api/job.ts';
import demo from '../../examples/wordcount.ts';
import { planMermaid, planStages, planText } from '../../lib/plan/describePlan.ts';

// `sluice plan`'s description of a job: its operators, and the stages a batch runs, split at
// shuffles as the engine splits them (lib/engine/stageLineage.ts runs the same plan).

const graphOf = (build: (ctx: StreamingContext) => void) => buildGraph(defineJob({ name: 'plan', batchInterval: '1s' }, build));

const wordcount = (ctx: StreamingContext) => {
  const counts = ctx
    .queueStream<string>([], { numPartitions: 2 })
    .flatMap((l) => l.split(' '))
    .map((w) => [w, 1] as [string, number])
    .reduceByKey((a, b) => a + b, { numPartitions: 3 });
  counts.print();
  counts.saveAsTextFiles('out/counts');
};

describe('planStages: the stages of a batch, split at shuffles', () => {
  it('a word count: one map stage over the input splits, a result stage per output reading its shuffle', () => {
    expect(planStages(graphOf(wordcount))).toEqual([
      { id: 1, kind: 'map', nodes: ['queue-1', 'flatMap-1', 'map-1'], tasks: 'splits', reads: [], shuffles: [] },
      { id: 2, kind: 'result', nodes: ['reduceByKey-1', 'print-1'], tasks: 3, reads: [1], shuffles: [['map-1', 'reduceByKey-1']] },
      { id: 3, kind: 'result', nodes: ['reduceByKey-1', 'saveAsTextFiles-1'], tasks: 3, reads: [1], shuffles: [['map-1', 'reduceByKey-1']] },
    ]);
  });

  it('a join reads two shuffles; a window is described at a time when it is due; a stateful node shuffles into its partitions', () => {
    const stages = planStages(
      graphOf((ctx) => {
        const a = ctx.queueStream<[string, number]>([]);
        const b = ctx.queueStream<[string, string]>([]);
        a.join(b, { numPartitions: 2 }).print();
        a.reduceByKeyAndWindow((x, y) => x + y, '3s', '3s').print();
        a.mapWithState(StateSpec.function((k: string, v: number | undefined) => [k, v ?? 0] as [string, number])).print();
      }),
    );
    const join = stages.find((s) => s.nodes.includes('join-1'))!;
    expect(join).toMatchObject({ kind: 'result', tasks: 2, nodes: ['join-1', 'print-1'] });
    expect(join.reads.map((id) => stages[id - 1].nodes)).toEqual([['queue-1'], ['queue-2']]);
    expect(stages.find((s) => s.nodes.includes('print-2'))!.nodes).toEqual(['reduceByKeyAndWindow-1', 'print-2']);
    expect(stages.find((s) => s.nodes.includes('print-3'))).toMatchObject({ nodes: ['mapWithState-1', 'mapWithState-values-1', 'print-3'], tasks: 4 });
    // Every stage comes after the stages it reads.
    for (const s of stages) for (const r of s.reads) expect(r).toBeLessThan(s.id);
  });
});

describe('planText and planMermaid', () => {
  it('says each operator, what it reads, and each stage, in words', () => {
    expect(planText(graphOf(wordcount))).toBe(
      [
        'job plan: a batch every 1000 ms',
        '',
        'graph (each operator, from what it reads):',
        '  queue-1            source  (numPartitions=2, oneAtATime=true, hasDefault=false)',
        '  flatMap-1          ← queue-1',
        '  map-1              ← flatMap-1',
        '  reduceByKey-1      ← map-1  (numPartitions=3)',
        '  print-1            output ← reduceByKey-1  (num=10)',
        '  saveAsTextFiles-1  output ← reduceByKey-1  (prefix=out/counts)',
        '',
        'stages of a batch (split at shuffles; a stage runs one task per partition):',
        '  stage 1  map     queue-1 → flatMap-1 → map-1  (a task per input split)',
        '  stage 2  result  reduceByKey-1 → print-1  (3 tasks, reads the shuffle of stage 1)',
        '  stage 3  result  reduceByKey-1 → saveAsTextFiles-1  (3 tasks, reads the shuffle of stage 1)',
        '',
      ].join('\n'),
    );
  });

  it('draws a box per stage, each operator once, and the shuffle as a dotted arrow', () => {
    const mermaid = planMermaid(graphOf(wordcount));
    expect(mermaid.startsWith('flowchart LR\n')).toBe(true);
    expect(mermaid.match(/subgraph stage\d/g)).toEqual(['subgraph stage1', 'subgraph stage2', 'subgraph stage3']);
    for (const id of ['n_queue_1', 'n_flatMap_1', 'n_map_1', 'n_reduceByKey_1', 'n_print_1', 'n_saveAsTextFiles_1']) expect(mermaid.match(new RegExp(`^ +${id}[[(]`, 'gm'))).toHaveLength(1);
    expect(mermaid).toContain('  n_map_1 -. shuffle .-> n_reduceByKey_1\n');
    expect(mermaid).toContain('  n_reduceByKey_1 --> n_saveAsTextFiles_1\n');
    expect(mermaid).toContain('  n_queue_1 --> n_flatMap_1\n');
  });

  it('places a transform in the stage that runs the datasets its function makes, and names those', () => {
    const mermaid = planMermaid(
      graphOf((ctx) => {
        const history = ctx.parallelize([['a', 1]] as [string, number][]);
        ctx
          .queueStream<[string, number]>([])
          .reduceByKey((a, b) => a + b)
          .transform((batch) => batch.join(history))
          .print();
      }),
    );
    expect(mermaid).toMatch(/subgraph stage\d\["stage \d \(result\)"\]\n {4}n_transform_1\["transform-1<br\/>transform"\]\n {4}n_print_1\(\["print-1"\]\)\n {4}s\d_n_join/);
    expect(mermaid).toContain('  n_reduceByKey_1 -. shuffle .-> n_transform_1\n');
  });
});

describe("the README's picture of the demo's stages", () => {
  it('is what `sluice plan examples/wordcount.ts --mermaid` prints', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const block = /```mermaid\n([\s\S]*?)```/.exec(readme);
    expect(block?.[1]).toBe(planMermaid(buildGraph(demo)));
  });
});
