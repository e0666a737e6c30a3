import { isDeepStrictEqual } from 'node:util';
import { buildGraph } from '../lib/api/job.ts';
import { Coordinator } from '../lib/engine/coordinator.ts';
import { decodeRecords } from '../lib/engine/codec.ts';
import { outputLocation, partName } from '../lib/engine/format.ts';
import { planBatch } from '../lib/plan/planBatch.ts';
import { type Checkpoint, keys } from '../lib/engine/protocol.ts';
import { SpillingMetaStore } from '../lib/engine/spillingMetaStore.ts';
import { Worker } from '../lib/engine/worker.ts';
import { ManualClock } from '../lib/node/clock.ts';
import { InProcessInvoker } from '../lib/local/inProcessInvoker.ts';
import { memoryLog } from '../lib/local/log.ts';
import { MemoryBlobStore } from '../lib/local/memoryBlobStore.ts';
import { MemoryMetaStore } from '../lib/local/memoryMetaStore.ts';
import type { StatePointer } from '../lib/plan/state.ts';
import type { BlobStore, InputSplit, JsonValue, MetaStore, RecordSource } from '../lib/ports/index.ts';
import type { StreamRecord } from './inputs.ts';
import { batchOf, type Call, type Commit, type Files, filesUnder, jobDefinition, type World } from './world.ts';

/** What the fault-free run of the committed input produced. */
export interface Reference {
  readonly sinks: Map<number, Files>;
  readonly deadLetters: Map<number, Files>;
  readonly calls: Call[];
  readonly state: Map<string, string>;
}

/**
 * A source that hands out exactly the records a committed batch of the faulty run sealed, split
 * by split: the reference run computes each batch from the same input, without faults.
 */
class ReplaySource implements RecordSource {
  constructor(
    private readonly nodeId: string,
    private readonly inputs: Map<number, Record<string, unknown[][]>>,
    /** The batches the faulty run ran quiet: here too the source stays where it was, and only those. */
    private readonly quiet: Set<number>,
  ) {}
  async cut(time: number, state: JsonValue): Promise<{ splits: InputSplit[]; state: JsonValue }> {
    const parts = this.inputs.get(time)?.[this.nodeId] ?? [];
    return { splits: parts.map((records, p) => ({ time, p, count: records.length })), state: this.quiet.has(time) ? (state ?? null) : time };
  }
  async read(split: InputSplit): Promise<{ records: unknown[] }> {
    return { records: this.inputs.get(split.time as number)![this.nodeId][split.p as number] };
  }
}

/**
 * The model: the job run without faults over the input each committed batch sealed, batch by
 * batch, in one process, on a manual clock. Its outputs are what the faulty run must have committed.
 */
export async function reference(world: World): Promise<Reference> {
  const plan = world.plan;
  const calls: Call[] = [];
  const definition = jobDefinition(plan.job, plan, {
    receiver: () => ({ start: () => {}, stop: () => {} }),
    called: (time, partition, records) => calls.push({ time, partition, records: JSON.stringify(records) }),
  });
  const graph = buildGraph(definition);
  const inputs = new Map(world.commits.map((c) => [c.time, c.inputs]));
  const quiet = new Set(world.commits.filter((c) => c.quiet).map((c) => c.time));
  const blobs = new MemoryBlobStore();
  const meta = new MemoryMetaStore();
  const sinkStore = new MemoryBlobStore();
  let n = 0;
  const rt = { blobs, sources: (spec: { nodeId: string }) => new ReplaySource(spec.nodeId, inputs, quiet), sinks: (location: string) => ({ store: sinkStore, key: location }), nonce: () => `ref-${n++}` };
  const first = world.commits[0]?.time;
  const sinks = new Map<number, Files>();
  const deadLetters = new Map<number, Files>();
  if (first === undefined) return { sinks, deadLetters, calls, state: new Map() };
  const clock = new ManualClock(first - plan.interval);
  // Each batch is cut with the writeEmptyBatches its committed record holds (coordinators of a seed may differ).
  const options = { ...definition.options };
  const coordinator = new Coordinator(graph, options, { ...rt, meta, invoker: new InProcessInvoker(new Worker(graph, rt)), clock, log: memoryLog(), owner: 'reference' });
  await coordinator.start();
  for (const c of world.commits) {
    clock.set(c.time);
    options.writeEmptyBatches = c.writeEmptyBatches;
    await coordinator.runNextBatch();
    sinks.set(c.time, await world.outputFiles(sinkStore, c.time));
    deadLetters.set(c.time, await filesUnder(blobs, keys.deadLetterPrefix(c.time)));
  }
  return { sinks, deadLetters, calls, state: await liveState(meta, blobs, graph.stateful.map((s) => ({ id: s.node.id, keepSlicesMs: s.op.keepSlicesMs }))) };
}

/** The state blobs the checkpoint points at (full, deltas, slices in reach), by key, decoded. */
async function liveState(meta: MetaStore, blobs: BlobStore, nodes: { id: string; keepSlicesMs: number }[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  // Read as the engine reads it: a checkpoint past the spill size is in a blob.
  const cp = (await new SpillingMetaStore(meta, blobs).get<Checkpoint>(keys.checkpoint))?.value;
  if (!cp) return out;
  const interval = cp.batchInterval;
  for (const { id, keepSlicesMs } of nodes) {
    const ptr = cp.state[id] as StatePointer | undefined;
    if (!ptr) continue;
    for (let p = 0; p < ptr.partitions; p++) {
      const names = [keys.state(id, p, 'full', ptr.fullTime)];
      for (let t = ptr.fullTime + interval; t <= ptr.lastTime; t += interval) names.push(keys.state(id, p, 'delta', t));
      for (let t = Math.max(ptr.firstTime, ptr.lastTime - keepSlicesMs + interval); t <= ptr.lastTime; t += interval) names.push(keys.state(id, p, 'slice', t));
      for (const k of names) {
        const b = await blobs.get(k);
        // Decoded, not bytes: V8 may write one number as an int or a double, depending on how the code that made it was optimised.
        out.set(k, b ? JSON.stringify(decodeRecords(b)) : 'missing');
      }
    }
  }
  return out;
}

/**
 * Dead letters without the description of the split they came from: the model reads replayed
 * splits, whose description differs; the source, partition and offset must still agree.
 */
function withoutSplits(files: Files | undefined): Files {
  const out: Files = {};
  for (const [k, text] of Object.entries(files ?? {})) {
    out[k] = text
      .split('\n')
      .map((line) => {
        if (!line) return line;
        const l = JSON.parse(line) as { source?: { split?: unknown } };
        if (l.source) delete l.source.split;
        return JSON.stringify(l);
      })
      .join('\n');
  }
  return out;
}

/** Lines that say how two sets of files differ (empty when equal). */
function diffFiles(what: string, expected: Files | undefined, actual: Files): string[] {
  const out: string[] = [];
  const e = expected ?? {};
  for (const k of new Set([...Object.keys(e), ...Object.keys(actual)])) {
    if (!(k in actual)) out.push(`${what}: ${k} is missing (expected ${JSON.stringify(e[k]).slice(0, 120)})`);
    else if (!(k in e)) out.push(`${what}: ${k} should not exist (holds ${JSON.stringify(actual[k]).slice(0, 120)})`);
    else if (e[k] !== actual[k]) out.push(`${what}: ${k} differs: expected ${JSON.stringify(e[k]).slice(0, 160)}, got ${JSON.stringify(actual[k]).slice(0, 160)}`);
  }
  return out;
}

/**
 * Lines that say how the model's output of a committed batch breaks Spark's layout, or the rule for
 * empty batches. Checked on the model itself (the engine run without faults), so that the faulty
 * run, which must equal the model, is held to them too: an output due at the batch whose parts
 * hold a record is `_SUCCESS` and parts `part-00000`…, none missing; one whose parts hold none is
 * absent, or, in a batch cut with writeEmptyBatches, that layout with every part empty.
 */
function layoutFailures(world: World, c: Commit, files: Files | undefined): string[] {
  const out: string[] = [];
  const plan = planBatch(world.graph, c.time, Object.fromEntries(Object.entries(c.inputs).map(([id, parts]) => [id, parts.length])));
  world.graph.outputs.forEach((o, i) => {
    if (o.kind !== 'saveAsTextFiles' && o.kind !== 'saveAsJsonFiles') return;
    const location = outputLocation(o.prefix!, c.time, o.suffix);
    const names = Object.keys(files ?? {})
      .filter((k) => k.startsWith(`${location}/`))
      .map((k) => k.slice(location.length + 1))
      .sort();
    const parts = names.filter((n) => n !== '_SUCCESS');
    const records = parts.some((n) => files![`${location}/${n}`] !== '');
    const due = plan.outputBatches[i] !== undefined;
    const what = `the model's ${location}`;
    if (!due || (!records && !c.writeEmptyBatches)) {
      if (names.length) out.push(`${what} should not exist (${due ? 'the batch has no record there' : 'the output is not due'}), holds ${names.join(' ')}`);
      return;
    }
    const layout = ['_SUCCESS', ...parts.map((_, p) => partName(p))].sort();
    if (!parts.length || names.join(' ') !== layout.join(' ')) out.push(`${what} is not Spark's layout: ${names.join(' ') || 'nothing'}`);
  });
  return out;
}

/** Every property of the seed's run, as failure lines (empty: the seed passed). */
export async function check(world: World, ref: Reference): Promise<string[]> {
  const plan = world.plan;
  const failures: string[] = [];
  // Quiet batches read nothing, so a foreachPartition they call has nothing to check, and they acknowledge nothing.
  const ranInFull = new Set(world.commits.filter((c) => !c.quiet).map((c) => c.time));

  // 1. Every saveAs* output of every committed batch equals the model's, at the commit and after every late write landed.
  const finalSinks = await filesUnder(world.sinkStore, '');
  for (const c of world.commits) {
    failures.push(...layoutFailures(world, c, ref.sinks.get(c.time)));
    failures.push(...diffFiles(`batch ${c.time} at its commit`, ref.sinks.get(c.time), c.sinks));
    const now: Files = {};
    for (const [k, v] of Object.entries(finalSinks)) if (batchOf(k) === c.time) now[k] = v;
    failures.push(...diffFiles(`batch ${c.time} at the end`, ref.sinks.get(c.time), now));
    failures.push(...diffFiles(`dead letters of batch ${c.time}`, withoutSplits(ref.deadLetters.get(c.time)), withoutSplits(c.deadLetters)));
  }

  // 2. The state the checkpoint points at equals the model's.
  const state = await liveState(world.meta, world.blobs, world.graph.stateful.map((s) => ({ id: s.node.id, keepSlicesMs: s.op.keepSlicesMs })));
  for (const k of new Set([...ref.state.keys(), ...state.keys()])) {
    if (ref.state.get(k) !== state.get(k)) failures.push(`state blob ${k} differs from the model's (${state.get(k) === 'missing' ? 'missing' : state.has(k) ? 'other bytes' : 'not pointed at'})`);
  }

  // 3. foreachPartition: at least once per committed (batch, partition), and every call with the sealed records.
  const refCalls = new Map(ref.calls.map((c) => [`${c.time}/${c.partition}`, c.records]));
  const seen = new Set<string>();
  for (const call of world.calls) {
    const k = `${call.time}/${call.partition}`;
    if (!ranInFull.has(call.time)) continue;
    seen.add(k);
    if (refCalls.get(k) !== call.records) failures.push(`foreachPartition of ${k} was called with ${call.records.slice(0, 120)}, the batch committed ${String(refCalls.get(k)).slice(0, 120)}`);
  }
  for (const [k, c] of ref.calls.map((c) => [`${c.time}/${c.partition}`, c] as const)) if (ranInFull.has(c.time) && !seen.has(k)) failures.push(`foreachPartition of ${k} was never called`);

  // 4. The input: each shard read in order, no record skipped or read twice; receivers lose only what a dead coordinator held.
  if (world.stream) {
    const bySeq = new Map<string, number[]>();
    const streams = new Set(world.graph.sources.filter((s) => s.kind === 'kinesis').map((s) => s.nodeId));
    for (const c of world.commits) {
      for (const [nodeId, parts] of Object.entries(c.inputs)) {
        if (!streams.has(nodeId)) continue;
        for (const part of parts) for (const r of part as StreamRecord[]) bySeq.set(r.s, [...(bySeq.get(r.s) ?? []), r.n]);
      }
    }
    for (const [shard, seqs] of bySeq) {
      const bad = seqs.findIndex((n, i) => n !== i);
      if (bad >= 0) failures.push(`shard ${shard}: committed records out of order, skipped or doubled at position ${bad}: ${seqs.slice(Math.max(0, bad - 2), bad + 3).join(',')}`);
    }
  }
  if (world.feed) {
    const all: string[] = [];
    const receivers = new Set(world.graph.sources.filter((s) => s.kind === 'receiver').map((s) => s.nodeId));
    for (const c of world.commits) for (const [nodeId, parts] of Object.entries(c.inputs)) if (receivers.has(nodeId)) for (const part of parts) all.push(...(part as string[]));
    if (new Set(all).size !== all.length) failures.push('a received record was committed twice');
    const committedSet = new Set(all);
    for (const r of world.feed.receivers) {
      const taken = r.delivered.filter((x) => committedSet.has(x));
      if (!isDeepStrictEqual(taken, r.delivered.slice(0, taken.length))) failures.push(`receiver ${r.id}: committed records are not a prefix of what it received`);
    }
  }

  // 5. No name was written with two contents (two attempts that disagree, whatever a reader saw).
  for (const k of new Set(world.rewrites)) failures.push(`${k} was written twice with different content`);

  // 6. A coordinator gives up as fenced only when a newer one has taken over.
  for (const f of world.falseFences) failures.push(`fenced with no newer coordinator: ${f}`);

  // 7. Once faults stop, the job catches up: a fault-free minute's coordinator ran every batch due by its end.
  if (world.caughtUpAt === undefined) {
    const end = plan.start + plan.minutes * 60_000;
    failures.push(`the job did not catch up within ${plan.minutes} minutes: last committed batch ${world.lastCompleted}, ${world.dueBy(end)} was due`);
  }

  // 8. Acknowledgements (RecordSource.committed): only of committed batches, each exactly what its batch
  // committed, and every committed batch acknowledged at least once.
  const commitAt = new Map(world.commits.map((c) => [c.time, c]));
  for (const ack of world.acks) {
    const c = commitAt.get(ack.time);
    if (!c || ack.committedThrough < ack.time) failures.push(`${ack.by} acknowledged batch ${ack.time} of ${ack.nodeId} while the job was committed through ${ack.committedThrough}`);
    else if (!isDeepStrictEqual(ack.inputs, c.inputs[ack.nodeId])) failures.push(`${ack.by} acknowledged other input of ${ack.nodeId} in batch ${ack.time} than the batch committed`);
  }
  const streams = world.graph.sources.filter((s) => s.kind === 'kinesis').map((s) => s.nodeId);
  for (const c of world.commits) {
    if (c.quiet) continue;
    for (const id of streams) if (!world.acks.some((a) => a.time === c.time && a.nodeId === id)) failures.push(`batch ${c.time} was committed but ${id} never acknowledged it`);
  }

  return failures;
}
