import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { defineJob, type PartitionInfo } from 'sluice';
import { runBatches } from 'sluice/testing';
import { memoryLog } from '../../lib/local/log.ts';
import { localSinks } from '../../lib/local/sinks.ts';
import { makeTempDir, readDirFiles, removeTempDir, sorted } from '../helpers/semantics.ts';

const interval = 1000;
const RULE = '-'.repeat(43);

/** Spark's DStream.print block: rule, `Time: <t> ms`, rule, records, `...` if more, empty line. */
const block = (time: number, lines: string[]) => [RULE, `Time: ${time} ms`, RULE, ...lines, '', ''].join('\n');

describe('print', () => {
  it("prints Spark's block for every batch: pairs as (a,1), at most 10 records then ...", async () => {
    const log = memoryLog();
    const twelve = Array.from({ length: 12 }, (_, i) => `w${i}`);
    await runBatches({ batchInterval: interval, batches: 3, log }, (ctx) => {
      const s = ctx.queueStream([['a', 'b'], twelve, []]).map((w) => [w, 1] as [string, number]);
      s.print();
      return s;
    });
    expect(log.printed).toEqual([
      block(1000, ['(a,1)', '(b,1)']),
      block(2000, [...twelve.slice(0, 10).map((w) => `(${w},1)`), '...']),
      block(3000, []),
    ]);
    expect(log.printed[2]).toBe(`${RULE}\nTime: 3000 ms\n${RULE}\n\n`);
  });

  it('print(num) prints num records; exactly num records gives no ...', async () => {
    const log = memoryLog();
    await runBatches({ batchInterval: interval, batches: 2, log }, (ctx) => {
      const s = ctx.queueStream([[1, 2, 3], [4, 5, 6, 7]], { numPartitions: 2 });
      s.print(3);
      return s;
    });
    expect(log.printed).toEqual([block(1000, ['1', '2', '3']), block(2000, ['4', '5', '6', '...'])]);
  });

  it('formats nested tuples, numbers and strings like Scala toString', async () => {
    const log = memoryLog();
    await runBatches({ batchInterval: interval, batches: 1, log }, (ctx) => {
      const s = ctx.queueStream<[string, [number, string]]>([[['k', [1, 'x']]]]);
      s.print();
      s.map(([k]) => k).print();
      s.map(([, [n]]) => n * 1.5).print();
      return s;
    });
    expect(log.printed).toEqual([block(1000, ['(k,(1,x))']), block(1000, ['k']), block(1000, ['1.5'])]);
  });

  it('prints records in partition order', async () => {
    const log = memoryLog();
    await runBatches({ batchInterval: interval, batches: 1, log }, (ctx) => {
      const a = ctx.queueStream([['a1', 'a2', 'a3']], { numPartitions: 3 });
      const s = a.union(ctx.queueStream([['b1']]));
      s.print(10);
      return s;
    });
    expect(log.printed).toEqual([block(1000, ['a1', 'a2', 'a3', 'b1'])]);
  });
});

describe('saveAsTextFiles and saveAsJsonFiles', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await makeTempDir();
  });
  afterEach(async () => {
    await removeTempDir(dir);
  });

  it('writes prefix-<time>/part-NNNNN, one per partition (empty ones too), and _SUCCESS; a batch without records writes nothing', async () => {
    await runBatches({ batchInterval: interval, batches: 2, sinks: localSinks(dir) }, (ctx) => {
      const s = ctx.queueStream([['a', 'b'], []], { numPartitions: 3 });
      s.saveAsTextFiles('out/words');
      return s;
    });
    expect((await readdir(join(dir, 'out'))).sort()).toEqual(['words-1000']);
    expect(await readDirFiles(join(dir, 'out/words-1000'))).toEqual({
      _SUCCESS: '',
      'part-00000': '',
      'part-00001': 'a\n',
      'part-00002': 'b\n',
    });
  });

  it("with writeEmptyBatches: true, a batch without records writes Spark's empty parts and _SUCCESS", async () => {
    await runBatches({ batchInterval: interval, batches: 2, sinks: localSinks(dir), writeEmptyBatches: true }, (ctx) => {
      const s = ctx.queueStream([['a', 'b'], []], { numPartitions: 3 });
      s.saveAsTextFiles('out/words');
      s.saveAsJsonFiles('out/json');
      return s;
    });
    expect((await readdir(join(dir, 'out'))).sort()).toEqual(['json-1000', 'json-2000', 'words-1000', 'words-2000']);
    const empty = { _SUCCESS: '', 'part-00000': '', 'part-00001': '', 'part-00002': '' };
    expect(await readDirFiles(join(dir, 'out/words-2000'))).toEqual(empty);
    expect(await readDirFiles(join(dir, 'out/json-2000'))).toEqual(empty);
    expect(await readDirFiles(join(dir, 'out/words-1000'))).toEqual({ _SUCCESS: '', 'part-00000': '', 'part-00001': 'a\n', 'part-00002': 'b\n' });
  });

  it('an output that filters every record away writes nothing, beside an output of the same batch that has records', async () => {
    // Prepare: a sink that notes every write, so "nothing" means no write at all, not a write undone.
    const puts: string[] = [];
    const inner = localSinks(dir);
    const sinks = (location: string) => {
      const { store, key } = inner(location);
      return { key, store: { ...store, put: (k: string, body: Uint8Array | string) => (puts.push(k), store.put(k, body)), get: store.get.bind(store), getRange: store.getRange.bind(store), exists: store.exists.bind(store), delete: store.delete.bind(store), list: store.list.bind(store) } };
    };
    const log = memoryLog();
    const partitions: number[] = [];

    // Act: three records in batch 1000, none in 2000; the "long" output keeps only words longer than 5 letters.
    await runBatches({ batchInterval: interval, batches: 2, sinks, log }, (ctx) => {
      const s = ctx.queueStream([['a', 'bb', 'ccc'], []], { numPartitions: 2 });
      s.saveAsTextFiles('all');
      s.filter((w) => w.length > 5).saveAsJsonFiles('long');
      s.print();
      s.foreachPartition((_records, { partition }) => void partitions.push(partition));
      return s;
    });

    // Assess: only batch 1000 of "all" was written; print and foreachPartition ran for both batches, as in Spark.
    expect(sorted(puts)).toEqual(['all-1000/_SUCCESS', 'all-1000/part-00000', 'all-1000/part-00001']);
    expect(sorted(await readdir(dir))).toEqual(['all-1000']);
    expect(log.printed).toEqual([block(1000, ['a', 'bb', 'ccc']), block(2000, [])]);
    expect(partitions).toEqual([0, 1, 0, 1]);
  });

  it('refuses a writeEmptyBatches that is not true or false, saying what it got', () => {
    expect(() => defineJob({ name: 'j', batchInterval: '1s', writeEmptyBatches: 'yes' as unknown as boolean }, () => undefined)).toThrow(
      /^job j: writeEmptyBatches must be true or false, got the string "yes"$/,
    );
    expect(() => defineJob({ name: 'j', batchInterval: '1s', writeEmptyBatches: 1 as unknown as boolean }, () => undefined)).toThrow(/writeEmptyBatches must be true or false, got the number 1/);
    expect(defineJob({ name: 'j', batchInterval: '1s' }, () => undefined).options.writeEmptyBatches).toBe(false);
    expect(defineJob({ name: 'j', batchInterval: '1s', writeEmptyBatches: true }, () => undefined).options.writeEmptyBatches).toBe(true);
  });

  it('writes pairs as (k,v) lines, one part per reduce partition', async () => {
    const out = await runBatches({ batchInterval: interval, batches: 1, sinks: localSinks(dir) }, (ctx) => {
      const counts = ctx
        .queueStream([['a b a c']])
        .flatMap((l) => l.split(' '))
        .map((w) => [w, 1] as [string, number])
        .reduceByKey((x, y) => x + y, { numPartitions: 2 });
      counts.saveAsTextFiles('counts');
      return counts;
    });
    const files = await readDirFiles(join(dir, 'counts-1000'));
    expect(Object.keys(files)).toEqual(['_SUCCESS', 'part-00000', 'part-00001']);
    // Each part holds exactly its partition's records.
    out[0].partitions.forEach((part, p) => {
      expect(files[`part-0000${p}`]).toBe(part.map(([w, n]) => `(${w},${n})\n`).join(''));
    });
    expect(sorted((files['part-00000'] + files['part-00001']).split('\n').filter(Boolean))).toEqual(['(a,2)', '(b,1)', '(c,1)']);
  });

  it('with a suffix: prefix-<time>.suffix/', async () => {
    await runBatches({ batchInterval: interval, batches: 1, sinks: localSinks(dir) }, (ctx) => {
      const s = ctx.queueStream([[1, 2]]);
      s.saveAsTextFiles('nums', 'txt');
      return s;
    });
    expect(await readdir(dir)).toEqual(['nums-1000.txt']);
    expect(await readDirFiles(join(dir, 'nums-1000.txt'))).toEqual({ _SUCCESS: '', 'part-00000': '1\n2\n' });
  });

  it('takes an absolute prefix, whatever the working directory', async () => {
    const prefix = join(dir, 'abs', 'out');
    await runBatches({ batchInterval: interval, batches: 1 }, (ctx) => {
      const s = ctx.queueStream([['x']]);
      s.saveAsTextFiles(prefix);
      return s;
    });
    expect(await readDirFiles(join(dir, 'abs', 'out-1000'))).toEqual({ _SUCCESS: '', 'part-00000': 'x\n' });
  });

  it('saveAsJsonFiles writes one JSON document per line; undefined becomes null', async () => {
    await runBatches({ batchInterval: interval, batches: 1, sinks: localSinks(dir) }, (ctx) => {
      const a = ctx.queueStream<[string, number]>([
        [
          ['k', 1],
          ['only', 2],
        ],
      ]);
      const b = ctx.queueStream<[string, { tag: string }]>([[['k', { tag: 't' }]]]);
      const joined = a.leftOuterJoin(b, { numPartitions: 1 });
      joined.saveAsJsonFiles('json/joined', 'jsonl');
      return joined;
    });
    const files = await readDirFiles(join(dir, 'json', 'joined-1000.jsonl'));
    expect(Object.keys(files)).toEqual(['_SUCCESS', 'part-00000']);
    const lines = files['part-00000'].split('\n');
    expect(lines.pop()).toBe('');
    expect(sorted(lines.map((l) => JSON.parse(l)))).toEqual(
      sorted([
        ['k', [1, { tag: 't' }]],
        ['only', [2, null]],
      ]),
    );
  });

  it('saveAsJsonFiles: part count = partition count, empty partitions give empty parts', async () => {
    await runBatches({ batchInterval: interval, batches: 1, sinks: localSinks(dir) }, (ctx) => {
      const s = ctx.queueStream([[{ a: 1 }, 'two']], { numPartitions: 4 });
      s.saveAsJsonFiles('j');
      return s;
    });
    expect(await readDirFiles(join(dir, 'j-1000'))).toEqual({
      _SUCCESS: '',
      'part-00000': '',
      'part-00001': '{"a":1}\n',
      'part-00002': '',
      'part-00003': '"two"\n',
    });
  });
});

describe('foreachRDD', () => {
  it('is called for every batch (empty ones too) with the batch and its time; collect, take, count work inside', async () => {
    const seen: unknown[] = [];
    await runBatches({ batchInterval: interval, batches: 3 }, (ctx) => {
      const s = ctx.queueStream([['a', 'b', 'c'], [], ['d']], { numPartitions: 2 });
      s.foreachRDD(async (batch, time) => {
        seen.push({ time, partitions: batch.numPartitions, all: await batch.collect(), first2: await batch.take(2), n: await batch.count() });
      });
      return s;
    });
    expect(seen).toEqual([
      { time: 1000, partitions: 2, all: ['a', 'b', 'c'], first2: ['a', 'b'], n: 3 },
      { time: 2000, partitions: 2, all: [], first2: [], n: 0 },
      { time: 3000, partitions: 2, all: ['d'], first2: ['d'], n: 1 },
    ]);
  });

  it('can run transformations and shuffles on the batch inside', async () => {
    const seen: [number, unknown][] = [];
    await runBatches({ batchInterval: interval, batches: 2 }, (ctx) => {
      const s = ctx.queueStream([['a b', 'a'], ['c']], { numPartitions: 2 });
      s.foreachRDD(async (batch, time) => {
        const counts = await batch
          .flatMap((l) => l.split(' '))
          .map((w) => [w, 1] as [string, number])
          .reduceByKey((x, y) => x + y)
          .collect();
        seen.push([time, sorted(counts)]);
      });
      return s;
    });
    expect(seen).toEqual([
      [
        1000,
        [
          ['a', 2],
          ['b', 1],
        ],
      ],
      [2000, [['c', 1]]],
    ]);
  });

  it('foreachBatch is the same as foreachRDD', async () => {
    const seen: [number, number[]][] = [];
    await runBatches({ batchInterval: interval, batches: 2 }, (ctx) => {
      const s = ctx.queueStream([[1], [2, 3]]);
      s.foreachBatch(async (b, t) => {
        seen.push([t, await b.collect()]);
      });
      return s;
    });
    expect(seen).toEqual([
      [1000, [1]],
      [2000, [2, 3]],
    ]);
  });

  it('batch.foreachPartition inside foreachRDD is called once per partition', async () => {
    const calls: [PartitionInfo, string[]][] = [];
    await runBatches({ batchInterval: interval, batches: 1 }, (ctx) => {
      const s = ctx.queueStream([['a', 'b', 'c']], { numPartitions: 3 }).filter((x) => x !== 'b');
      s.foreachRDD(async (batch) => {
        await batch.foreachPartition((records, info) => {
          calls.push([info, records]);
        });
      });
      return s;
    });
    expect(calls.sort((x, y) => x[0].partition - y[0].partition)).toEqual([
      [{ partition: 0, batchTime: 1000 }, ['a']],
      [{ partition: 1, batchTime: 1000 }, []],
      [{ partition: 2, batchTime: 1000 }, ['c']],
    ]);
  });
});

describe('foreachPartition', () => {
  it('is called once per partition of every batch, with its records, partition and batch time', async () => {
    const calls: [number, number, string[]][] = [];
    await runBatches({ batchInterval: interval, batches: 2 }, (ctx) => {
      const s = ctx.queueStream([['a', 'b', 'c'], []], { numPartitions: 2 });
      s.foreachPartition(async (records, { partition, batchTime }) => {
        calls.push([batchTime, partition, [...records]]);
      });
      return s;
    });
    expect(calls.sort((x, y) => x[0] - y[0] || x[1] - y[1])).toEqual([
      [1000, 0, ['a']],
      [1000, 1, ['b', 'c']],
      [2000, 0, []],
      [2000, 1, []],
    ]);
  });

  it('runs on the partitions of a shuffle', async () => {
    const calls: [number, [string, number][]][] = [];
    const out = await runBatches({ batchInterval: interval, batches: 1 }, (ctx) => {
      const counts = ctx
        .queueStream([['a', 'b', 'a', 'c', 'd']])
        .map((w) => [w, 1] as [string, number])
        .reduceByKey((x, y) => x + y, { numPartitions: 3 });
      counts.foreachPartition((records, info) => {
        calls.push([info.partition, records]);
      });
      return counts;
    });
    expect(calls.sort((x, y) => x[0] - y[0]).map(([, r]) => r)).toEqual(out[0].partitions);
    expect(calls.map(([p]) => p)).toEqual([0, 1, 2]);
  });
});
