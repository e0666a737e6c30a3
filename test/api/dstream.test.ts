import { describe, expect, it } from 'vitest';
import { defineJob, DStream, JobDefinitionError, StateSpec, type StreamingContext } from 'sluice';
import { runBatches } from 'sluice/testing';
import { buildGraph } from '../../lib/api/job.ts';
import { reduceByKeyAndWindowArgs, reduceByWindowArgs } from '../../lib/api/dstream/windowArgs.ts';
import { caught } from '../helpers/semantics.ts';

// The DStream class is built from one file per operator family (lib/api/dstream/): these tests
// hold what that layout must not change (every operator there, the plan a job makes) and check the
// decoders of the overloaded window reduces.

const add = (a: number, b: number) => a + b;
const sub = (a: number, b: number) => a - b;

/** A job with every operator of every family, in both forms where an operator has two. */
function everyOperator(ctx: StreamingContext): void {
  const words = ctx.queueStream([['a b', 'c']], { numPartitions: 2 }).flatMap((l) => l.split(' ')).filter((w) => w !== '');
  const pairs = words.map((w) => [w, 1] as [string, number]);
  const lengths = words.map((w) => w.length);
  // stateless
  words.mapPartitions((r) => [r.length]).glom().repartition(3).union(words.map(() => [0])).print();
  words.count().print();
  words.countByValue({ numPartitions: 2 }).print();
  lengths.reduce(add).print();
  words.transform((b) => b).transformWith(lengths, (a, b) => a.map((x) => x.length).union(b)).persist().cache().print();
  // pair
  pairs.mapValues((v) => v + 1).flatMapValues((v) => [v]).groupByKey({ numPartitions: 2 }).print();
  pairs.reduceByKey(add, { numPartitions: 4 }).named('counts').print();
  pairs.combineByKey((v) => v, add, add).print();
  // joins
  pairs.join(pairs).leftOuterJoin(pairs, { numPartitions: 2 }).rightOuterJoin(pairs).fullOuterJoin(pairs).cogroup(pairs).print();
  // windows
  words.window(2000, 1000, { numPartitions: 2 }).print();
  words.countByWindow(2000).checkpoint(4000).print();
  lengths.reduceByWindow(add, 3000, 1000).print();
  lengths.reduceByWindow(add, sub, 2000, 1000).print();
  pairs.reduceByKeyAndWindow(add, 2000, undefined, { numPartitions: 5 }).print();
  pairs.reduceByKeyAndWindow(add, sub, 2000, 1000, { numPartitions: 3, filter: ([, n]) => n > 0 }).print();
  words.countByValueAndWindow(2000, 1000).print();
  pairs.groupByKeyAndWindow(2000, 2000).print();
  // state
  pairs.updateStateByKey((vs: number[], s: number | undefined) => (s ?? 0) + vs.length, { numPartitions: 2 }).print();
  const sessions = pairs.mapWithState(StateSpec.function((k: string) => k).timeout('3s'));
  sessions.print();
  sessions.stateSnapshots().checkpoint(2000).print();
  // outputs
  words.saveAsTextFiles('out/words', 'txt');
  words.saveAsJsonFiles('out/words');
  words.foreachRDD(() => {});
  words.foreachBatch(() => {});
  words.foreachPartition(() => {});
}

describe('DStream operator families', () => {
  it('every operator is on DStream once lib/api/dstream.ts is loaded', () => {
    const families = {
      stateless: ['map', 'flatMap', 'filter', 'mapPartitions', 'glom', 'repartition', 'union', 'count', 'countByValue', 'reduce', 'transform', 'transformWith', 'slice'],
      pair: ['mapValues', 'flatMapValues', 'groupByKey', 'reduceByKey', 'combineByKey'],
      joins: ['join', 'leftOuterJoin', 'rightOuterJoin', 'fullOuterJoin', 'cogroup'],
      windows: ['window', 'countByWindow', 'reduceByWindow', 'reduceByKeyAndWindow', 'countByValueAndWindow', 'groupByKeyAndWindow'],
      state: ['updateStateByKey', 'mapWithState'],
      outputs: ['print', 'saveAsTextFiles', 'saveAsJsonFiles', 'foreachRDD', 'foreachBatch', 'foreachPartition'],
      core: ['named', 'persist', 'cache', 'checkpoint'],
    };
    const prototype = DStream.prototype as unknown as Record<string, unknown>;
    for (const names of Object.values(families)) for (const name of names) expect(typeof prototype[name], name).toBe('function');
  });

  it('a job with every operator makes the plan it made before the split: same node ids, same fingerprint (checkpoints stay valid)', () => {
    const graph = buildGraph(defineJob({ name: 'every-operator', batchInterval: 1000 }, everyOperator));
    expect(graph.nodes.filter((n) => n.kind !== 'print').map((n) => n.id)).toEqual([
      ...['queue-1', 'flatMap-1', 'filter-1', 'map-1', 'map-2', 'mapPartitions-1', 'glom-1', 'repartition-1', 'map-3', 'union-1', 'count-1', 'countByValue-1'],
      ...['reduce-1', 'transform-1', 'transformWith-1', 'mapValues-1', 'flatMapValues-1', 'groupByKey-1', 'counts', 'combineByKey-1'],
      ...['join-1', 'leftOuterJoin-1', 'rightOuterJoin-1', 'fullOuterJoin-1', 'cogroup-1', 'window-1', 'countByWindow-ones-1', 'countByWindow-1', 'countByWindow-value-1'],
      ...['reduceByWindow-batch-1', 'reduceByWindow-1', 'reduceByWindow-value-1', 'reduceByWindow-keyed-1', 'reduceByWindow-2', 'reduceByWindow-value-2'],
      ...['reduceByKeyAndWindow-1', 'reduceByKeyAndWindow-2', 'countByValueAndWindow-ones-1', 'countByValueAndWindow-1', 'groupByKeyAndWindow-1', 'groupByKeyAndWindow-group-1'],
      ...['updateStateByKey-1', 'mapWithState-1', 'mapWithState-values-1', 'stateSnapshots-1'],
      ...['saveAsTextFiles-1', 'saveAsJsonFiles-1', 'foreachRDD-1', 'foreachRDD-2', 'foreachPartition-1'],
    ]);
    // Kinds, wiring, parameters, slides and function counts of every node, as the pre-split code made them.
    expect(graph.fingerprint()).toBe('fad76aa7817c5bb8');
  });
});

describe('the overloaded window reduces name their arguments', () => {
  it('reduceByWindow: (window, slide?) or (invFn, window, slide?)', () => {
    expect(reduceByWindowArgs<number>(['2s'])).toEqual({ invFn: undefined, window: '2s', slide: undefined });
    expect(reduceByWindowArgs<number>([2000, 1000])).toEqual({ invFn: undefined, window: 2000, slide: 1000 });
    expect(reduceByWindowArgs([sub, '2s'])).toEqual({ invFn: sub, window: '2s', slide: undefined });
    expect(reduceByWindowArgs([sub, 2000, '1s'])).toEqual({ invFn: sub, window: 2000, slide: '1s' });
  });

  it('reduceByKeyAndWindow: (window, slide?, options?) or (invFn, window, slide?, options?), options default to none', () => {
    const filter = ([, n]: [string, number]) => n > 0;
    expect(reduceByKeyAndWindowArgs<string, number>([2000])).toEqual({ invFn: undefined, window: 2000, slide: undefined, options: {} });
    expect(reduceByKeyAndWindowArgs<string, number>([2000, undefined, { numPartitions: 2 }])).toEqual({ invFn: undefined, window: 2000, slide: undefined, options: { numPartitions: 2 } });
    expect(reduceByKeyAndWindowArgs<string, number>([sub, '2s', '1s'])).toEqual({ invFn: sub, window: '2s', slide: '1s', options: {} });
    expect(reduceByKeyAndWindowArgs<string, number>([sub, '2s', '1s', { numPartitions: 3, filter }])).toEqual({ invFn: sub, window: '2s', slide: '1s', options: { numPartitions: 3, filter } });
  });

  it('both forms run: the inverse form gives the plain form’s sums', async () => {
    const input = [[1, 2], [3], [], [4]];
    const run = (op: (s: DStream<number>) => DStream<number>) =>
      runBatches({ batchInterval: 1000, batches: input.length }, (ctx) => op(ctx.queueStream(input.map((b) => [...b])))).then((out) => out.map((b) => b.data));
    const plain = await run((s) => s.reduceByWindow(add, 2000, 1000));
    expect(plain).toEqual([[3], [6], [3], [4]]);
    expect(await run((s) => s.reduceByWindow(add, sub, 2000, 1000))).toEqual(plain);
  });

  // What the overloads keep TypeScript callers from writing, a JavaScript job can still pass.
  type Loose = (...args: unknown[]) => DStream<unknown>;
  const refused = (op: (s: Record<string, Loose>) => unknown) =>
    caught(() => runBatches({ batchInterval: 1000, batches: 1 }, (ctx) => op(ctx.queueStream<[string, number]>([[['a', 1]]]) as unknown as Record<string, Loose>) as DStream<unknown>));

  it('an inverse function with no window is refused, naming the window', async () => {
    for (const op of ['reduceByWindow', 'reduceByKeyAndWindow']) {
      const e = await refused((s) => s[op](add, sub));
      expect(e).toBeInstanceOf(JobDefinitionError);
      expect(e.message).toBe(`the window of ${op}(): expected a number of milliseconds or a string like '2s', got undefined`);
    }
  });

  it('options where the inverse form has its slide are refused, naming the slide', async () => {
    const e = await refused((s) => s.reduceByKeyAndWindow(add, sub, 2000, { numPartitions: 2 }));
    expect(e).toBeInstanceOf(JobDefinitionError);
    expect(e.message).toBe("the slide of reduceByKeyAndWindow(): expected a number of milliseconds or a string like '2s', got object");
  });

  it('an inverse that is not a function is read as the window and refused as one', async () => {
    const e = await refused((s) => s.reduceByWindow(add, 'sub', 2000));
    expect(e).toBeInstanceOf(JobDefinitionError);
    expect(e.message).toContain('the window of reduceByWindow(): cannot read "sub" as a duration');
  });

  it('a filter that is not a function is refused', async () => {
    const e = await refused((s) => s.reduceByKeyAndWindow(add, sub, 2000, 1000, { filter: 'n > 0' }));
    expect(e).toBeInstanceOf(JobDefinitionError);
    expect(e.message).toBe('reduceByKeyAndWindow filter: expected a function, got the string "n > 0"');
  });
});
