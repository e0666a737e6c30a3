import { describe, expect, expectTypeOf, it } from 'vitest';
import type { Batch, DStream } from 'sluice';
import { runBatches } from 'sluice/testing';
import { sorted } from '../helpers/semantics.ts';

// Type-level contract of the pair operators. The positive checks run inside real jobs (and check
// the values too); the negative ones live in functions that are never called. vitest hands this
// file to tsc as well (typecheck in vitest.config.ts): an `expectTypeOf` that no longer holds, or a
// `@ts-expect-error` line that stops being an error, fails the test it is in.

describe('pair operator types', () => {
  it('reduceByKey, groupByKey, mapValues, flatMapValues, combineByKey keep the key type', async () => {
    const out = await runBatches({ batchInterval: 1000, batches: 1 }, (ctx) => {
      const pairs = ctx.queueStream<[string, number]>([
        [
          ['a', 1],
          ['a', 2],
        ],
      ]);
      const reduced = pairs.reduceByKey((a, b) => a + b);
      expectTypeOf(reduced).toEqualTypeOf<DStream<[string, number]>>();
      expectTypeOf(pairs.groupByKey()).toEqualTypeOf<DStream<[string, number[]]>>();
      expectTypeOf(pairs.mapValues((v) => String(v))).toEqualTypeOf<DStream<[string, string]>>();
      expectTypeOf(pairs.flatMapValues((v) => [v, v > 1])).toEqualTypeOf<DStream<[string, number | boolean]>>();
      expectTypeOf(
        pairs.combineByKey(
          (v) => [v, 1] as [number, number],
          ([s, n], v) => [s + v, n + 1] as [number, number],
          ([s1, n1], [s2, n2]) => [s1 + s2, n1 + n2] as [number, number],
        ),
      ).toEqualTypeOf<DStream<[string, [number, number]]>>();
      return reduced.mapValues((v) => v * 2);
    });
    expect(out[0].data).toEqual([['a', 6]]);
  });

  it('joins: value pairs, undefined on the optional side, cogroup arrays', async () => {
    const out = await runBatches({ batchInterval: 1000, batches: 1 }, (ctx) => {
      const a = ctx.queueStream<[string, number]>([[['k', 1]]]);
      const b = ctx.queueStream<[string, boolean]>([[['k', true]]]);
      expectTypeOf(a.join(b)).toEqualTypeOf<DStream<[string, [number, boolean]]>>();
      expectTypeOf(a.leftOuterJoin(b)).toEqualTypeOf<DStream<[string, [number, boolean | undefined]]>>();
      expectTypeOf(a.rightOuterJoin(b)).toEqualTypeOf<DStream<[string, [number | undefined, boolean]]>>();
      expectTypeOf(a.fullOuterJoin(b)).toEqualTypeOf<DStream<[string, [number | undefined, boolean | undefined]]>>();
      expectTypeOf(a.cogroup(b)).toEqualTypeOf<DStream<[string, [number[], boolean[]]]>>();
      return a.join(b).map(([k, [n, flag]]) => `${k}:${n.toFixed(1)}:${flag}`);
    });
    expect(out[0].data).toEqual(['k:1.0:true']);
  });

  it('tuple keys keep their type', async () => {
    const out = await runBatches({ batchInterval: 1000, batches: 1 }, (ctx) => {
      const s = ctx.queueStream<[[string, number], number]>([
        [
          [['a', 1], 1],
          [['a', 1], 2],
        ],
      ]);
      const r = s.reduceByKey((x, y) => x + y);
      expectTypeOf(r).toEqualTypeOf<DStream<[[string, number], number]>>();
      return r;
    });
    expect(out[0].data).toEqual([[['a', 1], 3]]);
  });

  it('stateless operators', async () => {
    const out = await runBatches({ batchInterval: 1000, batches: 1 }, (ctx) => {
      const words = ctx.queueStream([['a', 'b', 'a']]);
      expectTypeOf(words).toEqualTypeOf<DStream<string>>();
      expectTypeOf(words.count()).toEqualTypeOf<DStream<number>>();
      expectTypeOf(words.countByValue()).toEqualTypeOf<DStream<[string, number]>>();
      expectTypeOf(words.glom()).toEqualTypeOf<DStream<string[]>>();
      expectTypeOf(words.map((w) => w.length)).toEqualTypeOf<DStream<number>>();
      expectTypeOf(words.flatMap((w) => w.split(''))).toEqualTypeOf<DStream<string>>();
      expectTypeOf(words.mapPartitions((rs, p) => [rs.length + p])).toEqualTypeOf<DStream<number>>();
      expectTypeOf(words.reduce((x, y) => x + y)).toEqualTypeOf<DStream<string>>();
      expectTypeOf(words.transform((b, time) => b.map((w) => [w, time] as [string, number]))).toEqualTypeOf<DStream<[string, number]>>();
      expectTypeOf(words.transform(() => [1, 2])).toEqualTypeOf<DStream<number>>();
      expectTypeOf(words.transformWith(words.count(), (x, y) => x.map((w) => w.length).union(y))).toEqualTypeOf<DStream<number>>();
      words.foreachRDD((b, time) => {
        expectTypeOf(b).toEqualTypeOf<Batch<string>>();
        expectTypeOf(time).toEqualTypeOf<number>();
      });
      return words.countByValue();
    });
    expect(sorted(out[0].data)).toEqual([
      ['a', 2],
      ['b', 1],
    ]);
  });
});

describe('pair operators are refused on streams that are not pairs', () => {
  it('on streams: each refused call is a type error', () => {
    // Never called: it exists for the type checker.
    function notPairs(words: DStream<string>, lists: DStream<number[]>, triples: DStream<[string, number, number]>, pairs: DStream<[string, number]>) {
      // @ts-expect-error reduceByKey needs [key, value] pairs
      words.reduceByKey((a: string, b: string) => a + b);
      // @ts-expect-error groupByKey needs pairs
      words.groupByKey();
      // @ts-expect-error mapValues needs pairs
      words.mapValues((v: string) => v);
      // @ts-expect-error flatMapValues needs pairs
      words.flatMapValues((v: string) => [v]);
      // @ts-expect-error combineByKey needs pairs
      words.combineByKey((v: string) => v, (c: string, v: string) => c + v, (a: string, b: string) => a + b);
      // @ts-expect-error join needs pairs on this side
      words.join(pairs);
      // @ts-expect-error join needs pairs on the other side
      pairs.join(words);
      // @ts-expect-error leftOuterJoin needs pairs
      words.leftOuterJoin(pairs);
      // @ts-expect-error rightOuterJoin needs pairs
      words.rightOuterJoin(pairs);
      // @ts-expect-error fullOuterJoin needs pairs
      words.fullOuterJoin(pairs);
      // @ts-expect-error cogroup needs pairs
      words.cogroup(pairs);
      // @ts-expect-error an array of any length is not a pair
      lists.reduceByKey((a: number, b: number) => a + b);
      // @ts-expect-error a 3-tuple is not a pair
      triples.groupByKey();
      // @ts-expect-error the reduce function takes values, not keys
      pairs.reduceByKey((a: string, b: string) => a + b);
      // @ts-expect-error union needs streams of the same type
      words.union(pairs);
    }
    expectTypeOf(notPairs).parameter(0).toEqualTypeOf<DStream<string>>();
  });

  it('on batches: each refused call is a type error', () => {
    function batchNotPairs(words: Batch<string>, pairs: Batch<[string, number]>) {
      // @ts-expect-error reduceByKey needs pairs on batches too
      words.reduceByKey((a: string, b: string) => a + b);
      // @ts-expect-error join needs pairs on batches too
      words.join(pairs);
      // @ts-expect-error mapValues needs pairs on batches too
      words.mapValues((v: string) => v);
    }
    expectTypeOf(batchNotPairs).parameter(0).toEqualTypeOf<Batch<string>>();
  });
});
