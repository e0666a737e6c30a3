import type { Batch } from './batch.ts';
import { ShuffledBatch } from './batch/pair.ts';
import { SourceBatch } from './batch/sources.ts';
import type { JobGraph } from './graph.ts';
import { planBatch } from './planBatch.ts';

/**
 * What `sluice plan` shows: a job's graph of operators and the stages one batch runs, split at
 * shuffles as Spark's DAGScheduler splits a job. Pure: the job's graph in, text out.
 */

/** One stage of a batch: the operators it runs in one task per partition. */
export interface PlanStage {
  /** 1, 2, …: a stage comes after every stage it reads. */
  readonly id: number;
  /** `map`: writes a shuffle's input; `result`: computes what an output writes. */
  readonly kind: 'map' | 'result';
  /** Node ids, parents first (or, for a dataset a transform function made, its label); a result stage ends with its output's node. */
  readonly nodes: readonly string[];
  /** Tasks: one per input split when it reads sources (`'splits'`), else the partitions of its first dataset. */
  readonly tasks: number | 'splits';
  /** The stages whose shuffle output it reads. */
  readonly reads: readonly number[];
  /** The shuffles it reads, as `[what was shuffled, the dataset that reads it]` labels. */
  readonly shuffles: readonly (readonly [string, string])[];
}

/**
 * The stages of one batch of `graph`, at a time when every window is due.
 *
 * @example
 * ```ts
 * planStages(buildGraph(wordcount)).map((s) => `${s.id} ${s.kind} ${s.nodes.join(' → ')}`);
 * // ['1 map generator-1 → flatMap-1 → map-1', '2 result reduceByKey-1 → print-1', '3 result reduceByKey-1 → saveAsTextFiles-1']
 * ```
 */
export function planStages(graph: JobGraph): PlanStage[] {
  // A time at which every node's slide is due, with one split per source: the shape, not the sizes.
  const time = graph.nodes.reduce((t, n) => lcm(t, n.slide), graph.batchInterval);
  const plan = planBatch(graph, time, Object.fromEntries(graph.sources.map((s) => [s.nodeId, 1])));
  const stages: PlanStage[] = [];
  const mapStages = new Map<Batch<unknown>, number>();

  const build = (root: Batch<unknown>, kind: PlanStage['kind'], output?: string): number => {
    const members: Batch<unknown>[] = [];
    const reads = new Set<number>();
    const shuffles: [string, string][] = [];
    let readsSources = false;
    const visit = (b: Batch<unknown>) => {
      if (members.includes(b)) return;
      members.push(b);
      if (b instanceof SourceBatch) readsSources = true;
      // A shuffle's dataset starts the stage that reads it; what it shuffles is computed by map stages before.
      if (b instanceof ShuffledBatch) {
        for (const p of b.parents) {
          reads.add(mapStage(p));
          shuffles.push([p.label, b.label]);
        }
      }
      else for (const p of b.parents) visit(p);
    };
    visit(root);
    const nodes = [...new Set(members.reverse().map((b) => b.label))];
    const stage: PlanStage = {
      id: stages.length + 1,
      kind,
      nodes: output ? [...nodes, output] : nodes,
      tasks: readsSources ? 'splits' : root.numPartitions,
      reads: [...reads].sort((a, b) => a - b),
      shuffles,
    };
    stages.push(stage);
    return stage.id;
  };
  const mapStage = (parent: Batch<unknown>): number => {
    let id = mapStages.get(parent);
    if (id === undefined) mapStages.set(parent, (id = build(parent, 'map')));
    return id;
  };
  graph.outputs.forEach((out, i) => {
    const b = plan.outputBatches[i];
    if (b) build(b, 'result', out.node.id);
  });
  return stages;
}

function lcm(a: number, b: number): number {
  const gcd = (x: number, y: number): number => (y === 0 ? x : gcd(y, x % y));
  return (a / gcd(a, b)) * b;
}

/** A node's parameters, short: `stream=clicks, window=30000`. */
function paramsOf(params: Readonly<Record<string, unknown>>): string {
  return Object.entries(params)
    .filter(([, v]) => v !== undefined && v !== null && typeof v !== 'object')
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(', ');
}

/**
 * The graph and the stages as text, for a terminal.
 *
 * @example
 * ```ts
 * process.stdout.write(planText(buildGraph(job)));
 * ```
 */
export function planText(graph: JobGraph): string {
  const outputs = new Set(graph.outputs.map((o) => o.node.id));
  const width = Math.max(...graph.nodes.map((n) => n.id.length));
  const lines = [`job ${graph.name}: a batch every ${graph.batchInterval} ms`, '', 'graph (each operator, from what it reads):'];
  for (const n of graph.nodes) {
    const from = n.parents.length ? `← ${n.parents.map((p) => p.id).join(', ')}` : 'source';
    const params = paramsOf(n.params);
    lines.push(`  ${n.id.padEnd(width)}  ${outputs.has(n.id) ? 'output ' : ''}${from}${params ? `  (${params})` : ''}`);
  }
  lines.push('', 'stages of a batch (split at shuffles; a stage runs one task per partition):');
  for (const s of planStages(graph)) {
    const tasks = s.tasks === 'splits' ? 'a task per input split' : `${s.tasks} task${s.tasks === 1 ? '' : 's'}`;
    const reads = s.reads.length ? `, reads the shuffle of stage ${s.reads.join(', ')}` : '';
    lines.push(`  stage ${s.id}  ${s.kind.padEnd(6)}  ${s.nodes.join(' → ')}  (${tasks}${reads})`);
  }
  return `${lines.join('\n')}\n`;
}

/**
 * The graph as a Mermaid flowchart: one box per stage, a dotted arrow where data is shuffled.
 *
 * @example
 * ```ts
 * writeFileSync('plan.mmd', planMermaid(buildGraph(job))); // render with any Mermaid viewer
 * ```
 */
export function planMermaid(graph: JobGraph): string {
  const ref = (id: string) => `n_${id.replace(/[^A-Za-z0-9_]/g, '_')}`;
  const outputs = new Set(graph.outputs.map((o) => o.node.id));
  const stages = planStages(graph);
  const byId = new Map(graph.nodes.map((n) => [n.id, n]));
  // Each operator in the first stage that runs it; a transform, whose datasets its function names,
  // in the stage of the first operator that reads it.
  const stageOf = new Map<string, number>();
  for (const s of stages) for (const id of s.nodes) if (byId.has(id) && !stageOf.has(id)) stageOf.set(id, s.id);
  for (const n of [...graph.nodes].reverse()) {
    if (stageOf.has(n.id)) continue;
    const child = graph.nodes.find((c) => c.parents.includes(n) && stageOf.has(c.id));
    if (child) stageOf.set(n.id, stageOf.get(child.id)!);
  }
  const box = (id: string) => (outputs.has(id) ? `${ref(id)}(["${id}"])` : `${ref(id)}["${id}<br/>${byId.get(id)!.kind}"]`);
  const lines = ['flowchart LR'];
  for (const s of stages) {
    lines.push(`  subgraph stage${s.id}["stage ${s.id} (${s.kind})"]`);
    for (const n of graph.nodes) if (stageOf.get(n.id) === s.id) lines.push(`    ${box(n.id)}`);
    // What a transform's function made (a static dataset, say): named, as the stage runs it.
    for (const id of s.nodes) if (!byId.has(id)) lines.push(`    s${s.id}_${ref(id)}(["${id}"])`);
    lines.push('  end');
  }
  for (const n of graph.nodes) if (!stageOf.has(n.id)) lines.push(`  ${box(n.id)}`);
  // A shuffle into a dataset a transform made is drawn into the transform's node.
  const shuffled = new Set<string>();
  for (const s of stages) {
    for (const [from, to] of s.shuffles) {
      if (byId.has(to)) shuffled.add(`${from}>${to}`);
      else for (const n of graph.nodes) if (stageOf.get(n.id) === s.id && n.parents.some((p) => p.id === from)) shuffled.add(`${from}>${n.id}`);
    }
  }
  for (const n of graph.nodes) for (const p of n.parents) lines.push(`  ${ref(p.id)} ${shuffled.has(`${p.id}>${n.id}`) ? '-. shuffle .->' : '-->'} ${ref(n.id)}`);
  return `${lines.join('\n')}\n`;
}
