import { describe, expect, it } from 'vitest';
import type { BatchInfo, StreamingContext } from 'sluice';
import { CheckpointError, PlanChangedError, RecordError } from 'sluice';
import { interceptInvoker, testCoordinator } from '../helpers/engine.ts';

const words = [['a b a', 'c'], ['b b', 'd a']];

function wordCount(sink: Map<number, [string, number][]>) {
  return (ctx: StreamingContext) => {
    ctx
      .queueStream(words, { numPartitions: 2 })
      .flatMap((l) => l.split(' '))
      .map((w) => [w, 1] as [string, number])
      .reduceByKey((x, y) => x + y, { numPartitions: 2 })
      .foreachRDD(async (b, t) => {
        sink.set(t, ((await b.collect()) as [string, number][]).sort());
      });
  };
}

const expected = new Map<number, [string, number][]>([
  [
    1000,
    [
      ['a', 2],
      ['b', 1],
      ['c', 1],
    ],
  ],
  [
    2000,
    [
      ['a', 1],
      ['b', 2],
      ['d', 1],
    ],
  ],
]);

describe('task scheduling', () => {
  it('retries a task whose invocation failed, and the batch output is unchanged', async () => {
    // Prepare: the first attempt of every map task fails as a crashed worker would.
    const out = new Map<number, [string, number][]>();
    const failed: string[] = [];
    const { run, log } = testCoordinator({ batchInterval: 1000 }, wordCount(out), {
      wrapInvoker: (inner) =>
        interceptInvoker(inner, async (task, go) => {
          if (task.stage.kind === 'map' && task.attempt === 0) {
            failed.push(`${task.stageKey}/${task.partition}`);
            throw new Error('worker lost');
          }
          return go();
        }),
    });
    // Act
    await run(2);
    // Assess
    expect(out).toEqual(expected);
    expect(failed).toHaveLength(4);
    expect(log.warnings.filter((w) => w.includes('worker lost'))).toHaveLength(4);
  });

  it('recomputes a lost shuffle output from lineage when a reducer cannot read it', async () => {
    // Prepare: shuffle output goes to blobs (inlineLimit 0); the blob of map task 0 vanishes once.
    const out = new Map<number, [string, number][]>();
    let deleted = 0;
    let mapRuns = 0;
    const t = testCoordinator({ batchInterval: 1000 }, wordCount(out), {
      inlineLimit: 0,
      wrapInvoker: (inner) =>
        interceptInvoker(inner, async (task, go) => {
          if (task.stage.kind === 'map') mapRuns++;
          const res = await go();
          if (task.stage.kind === 'map' && task.partition === 0 && deleted === 0) {
            deleted++;
            await t.blobs.delete([(res as { map: { blob: string } }).map.blob]);
          }
          return res;
        }),
    });
    // Act
    await t.run(2);
    // Assess: same output; one extra map task ran; the reducer reported the loss.
    expect(out).toEqual(expected);
    expect(mapRuns).toBe(2 * 2 + 1);
    expect(t.log.warnings.some((w) => w.includes('is missing') && w.includes('recomputing'))).toBe(true);
  });

  it('fails the batch after maxTaskAttempts and leaves the checkpoint at the previous batch', async () => {
    const out = new Map<number, [string, number][]>();
    let attempts = 0;
    const t = testCoordinator({ batchInterval: 1000, maxTaskAttempts: 3 }, wordCount(out), {
      wrapInvoker: (inner) =>
        interceptInvoker(inner, async (task, go) => {
          if (task.time === 2000 && task.stage.kind === 'map' && task.partition === 1) {
            attempts++;
            throw new Error('always down');
          }
          return go();
        }),
    });
    await t.run(1);
    await expect(t.run(1)).rejects.toThrow(/failed after 3 attempt\(s\).*always down/);
    expect(attempts).toBe(3);
    expect(t.coordinator.lastCompleted).toBe(1000);
    expect((await t.meta.get<{ lastCompleted: number }>('checkpoint'))!.value.lastCompleted).toBe(1000);
  });

  it('a record error is retried, then reported as a RecordError with its batch and partition', async () => {
    const t = testCoordinator({ batchInterval: 1000, maxTaskAttempts: 2 }, (ctx) => {
      ctx
        .queueStream([[1, 2, 3]])
        .map((n) => {
          if (n === 2) throw new Error('two is not allowed');
          return n;
        })
        .print();
    });
    const err = await t.run(1).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RecordError);
    expect((err as RecordError).message).toMatch(/map-1 threw on the number 2: two is not allowed/);
    expect((err as RecordError).batchTime).toBe(1000);
    expect((err as RecordError).partition).toBe(0);
  });

  it('tells listeners about each batch: submitted, started and completed, with delays', async () => {
    const events: [string, BatchInfo][] = [];
    const t = testCoordinator({ batchInterval: 1000 }, (ctx) => {
      ctx.addListener({
        onBatchSubmitted: (b) => events.push(['submitted', b]),
        onBatchStarted: (b) => events.push(['started', b]),
        onBatchCompleted: (b) => events.push(['completed', b]),
      });
      ctx.queueStream([['x', 'y'], []]).count().print();
    });
    await t.run(2);
    expect(events.map(([e, b]) => `${e}@${b.batchTime}`)).toEqual([
      'submitted@1000',
      'started@1000',
      'completed@1000',
      'submitted@2000',
      'started@2000',
      'completed@2000',
    ]);
    const done = events.filter(([e]) => e === 'completed').map(([, b]) => b);
    expect(done.map((b) => b.numRecords)).toEqual([2, 0]);
    for (const b of done) expect(b.totalDelay).toBe(b.schedulingDelay! + b.processingDelay!);
  });
});

describe('lease and fencing', () => {
  it('refuses a second coordinator while the first holds the lease', async () => {
    const first = testCoordinator({ batchInterval: 1000 }, (ctx) => ctx.queueStream([['a']]).print());
    await first.run(1);
    const second = testCoordinator({ batchInterval: 1000 }, (ctx) => ctx.queueStream([['a']]).print(), {
      meta: first.meta,
      blobs: first.blobs,
      owner: 'another',
    });
    await expect(second.coordinator.start()).rejects.toThrow(/already running: coordinator test-coordinator holds the lease/);
  });

  it('fences the old coordinator once a new one takes over: its commit is refused', async () => {
    const build = (ctx: StreamingContext) => ctx.queueStream([['a'], ['b'], ['c']]).print();
    const first = testCoordinator({ batchInterval: 1000 }, build);
    await first.run(1);
    // The new coordinator finds the lease expired (its clock is far ahead) and takes over.
    const second = testCoordinator({ batchInterval: 1000 }, build, { meta: first.meta, blobs: first.blobs, owner: 'successor' });
    second.clock.set(10_000_000);
    await second.coordinator.start();
    await expect(first.run(1)).rejects.toBeInstanceOf(CheckpointError);
    // The successor carries on from the last commit.
    expect(second.coordinator.nextBatchTime).toBe(2000);
    await second.run(1);
    expect(second.log.printed.join('')).toContain('Time: 2000 ms\n-------------------------------------------\nb\n');
  });
});

describe('checkpoints and plans', () => {
  it('refuses to resume with a changed plan, naming the changed nodes, unless allowed', async () => {
    const v1 = testCoordinator({ batchInterval: 1000 }, (ctx) => ctx.queueStream([['a']]).map((x) => x).print());
    await v1.run(1);
    await v1.coordinator.releaseLease();
    const build2 = (ctx: StreamingContext) => ctx.queueStream([['a']]).filter(Boolean).map((x) => x).print();
    const v2 = testCoordinator({ batchInterval: 1000 }, build2, { meta: v1.meta, blobs: v1.blobs });
    const err = await v2.coordinator.start().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CheckpointError);
    expect((err as Error).message).toMatch(/nodes changed: filter-1, map-1\. /);
    expect((err as Error).message).toMatch(/--allow-plan-change/);
    const v3 = testCoordinator({ batchInterval: 1000 }, build2, { meta: v1.meta, blobs: v1.blobs, allowPlanChange: true });
    await v3.run(1);
    expect(v3.coordinator.lastCompleted).toBe(2000);
  });

  it('a refused plan change is a PlanChangedError carrying the changed nodes; a changed batch interval is not', async () => {
    // Prepare: a checkpoint of a plan that then gains a filter before its map (the map's input changes too).
    const v1 = testCoordinator({ batchInterval: 1000 }, (ctx) => ctx.queueStream([['a']]).map((x) => x).print());
    await v1.run(1);
    await v1.coordinator.releaseLease();
    const redefined = testCoordinator({ batchInterval: 1000 }, (ctx) => ctx.queueStream([['a']]).filter(Boolean).map((x) => x).print(), { meta: v1.meta, blobs: v1.blobs });
    const otherInterval = testCoordinator({ batchInterval: 2000 }, (ctx) => ctx.queueStream([['a']]).map((x) => x).print(), { meta: v1.meta, blobs: v1.blobs });
    // Act
    const planChanged = await redefined.coordinator.start().catch((e: unknown) => e);
    const intervalChanged = await otherInterval.coordinator.start().catch((e: unknown) => e);
    // Assess: callers tell the refusals apart by type, not by message; the name stays the one the CLI prints.
    expect(planChanged).toBeInstanceOf(PlanChangedError);
    expect(planChanged).toBeInstanceOf(CheckpointError);
    expect((planChanged as PlanChangedError).changedNodes).toEqual(['filter-1', 'map-1']);
    expect((planChanged as Error).name).toBe('CheckpointError');
    expect(intervalChanged).toBeInstanceOf(CheckpointError);
    expect(intervalChanged).not.toBeInstanceOf(PlanChangedError);
  });

  it('recovers a sealed batch from its lineage record: records received after the cut stay out of it', async () => {
    // Prepare: a receiver the test feeds by hand; the first coordinator dies right after sealing batch 2000.
    let store: (r: string | readonly string[]) => void = () => {};
    const build = (ctx: StreamingContext) =>
      ctx
        .receiverStream<string>({
          start(s) {
            store = s;
          },
          stop() {},
        })
        .foreachRDD(async (b, t) => {
          seen.set(t, await b.collect());
        });
    const seen = new Map<number, string[]>();
    let crash = false;
    const first = testCoordinator({ batchInterval: 1000 }, build, {
      onStep: (step, t) => {
        if (crash && step === 'sealed' && t === 2000) throw new Error('crash after sealing');
      },
    });
    await first.coordinator.start();
    store(['one', 'two']);
    await first.run(1);
    store(['three']);
    crash = true;
    await expect(first.run(1)).rejects.toThrow('crash after sealing');
    store(['late']);
    // Act: a new coordinator resumes the sealed batch.
    const second = testCoordinator({ batchInterval: 1000 }, build, { meta: first.meta, blobs: first.blobs, owner: 'successor' });
    second.clock.set(10_000_000);
    await second.coordinator.start();
    await second.run(1);
    // Assess
    expect(seen.get(1000)).toEqual(['one', 'two']);
    expect(seen.get(2000)).toEqual(['three']);
    expect(second.log.infos).toContain('recovering batch 2000 from its lineage record');
  });
});

describe('task timeouts', () => {
  it('retries a task that does not answer within taskTimeout', async () => {
    const out = new Map<number, [string, number][]>();
    let hung = 0;
    const t = testCoordinator({ batchInterval: 1000, taskTimeout: '50ms' }, wordCount(out), {
      wrapInvoker: (inner) =>
        interceptInvoker(inner, async (task, go) => {
          if (task.stage.kind === 'map' && task.partition === 0 && task.attempt === 0) {
            hung++;
            // A worker that never answers, while a second of the manual clock goes by.
            queueMicrotask(() => t.clock.advance(1000));
            return new Promise(() => {});
          }
          return go();
        }),
    });
    await t.run(2);
    expect(out).toEqual(expected);
    expect(hung).toBe(2);
    expect(t.log.warnings.filter((w) => w.includes('timed out after 50 ms'))).toHaveLength(2);
  });
});

describe('resuming a changed job with state', () => {
  const v1 = (ctx: StreamingContext) =>
    ctx
      .queueStream([['a'], ['b'], ['a']])
      .map((w) => [w, 1] as [string, number])
      .updateStateByKey((ns, s: number | undefined) => (s ?? 0) + ns.length)
      .named('totals')
      .print();

  it('with --allow-plan-change, resumes when the stateful nodes kept their ids, and their state carries on', async () => {
    const first = testCoordinator({ batchInterval: 1000 }, v1);
    await first.run(2);
    await first.coordinator.releaseLease();
    // v2 adds a filter before the state: the plan changed, the stateful node kept its name.
    const v2 = (ctx: StreamingContext) =>
      ctx
        .queueStream([['a'], ['b'], ['a']])
        .filter((w) => w !== 'z')
        .map((w) => [w, 1] as [string, number])
        .updateStateByKey((ns, s: number | undefined) => (s ?? 0) + ns.length)
        .named('totals')
        .print();
    const refused = testCoordinator({ batchInterval: 1000 }, v2, { meta: first.meta, blobs: first.blobs });
    await expect(refused.coordinator.start()).rejects.toThrow(/nodes changed: filter-1, map-1\./);
    const second = testCoordinator({ batchInterval: 1000 }, v2, { meta: first.meta, blobs: first.blobs, allowPlanChange: true });
    await second.run(1);
    const block = second.log.printed.join('');
    expect(block).toContain('Time: 3000 ms\n');
    expect(block.split('\n').filter((l) => l.startsWith('(')).sort()).toEqual(['(a,2)', '(b,1)']);
  });

  it('refuses even with --allow-plan-change when a node with state lost its id', async () => {
    const first = testCoordinator({ batchInterval: 1000 }, v1);
    await first.run(1);
    await first.coordinator.releaseLease();
    const renamed = (ctx: StreamingContext) =>
      ctx
        .queueStream([['a']])
        .map((w) => [w, 1] as [string, number])
        .updateStateByKey((ns, s: number | undefined) => (s ?? 0) + ns.length)
        .print();
    const second = testCoordinator({ batchInterval: 1000 }, renamed, { meta: first.meta, blobs: first.blobs, allowPlanChange: true });
    await expect(second.coordinator.start()).rejects.toThrow(/holds state of totals, which the changed job no longer has under that id; give stateful streams stable ids with .named/);
  });
});
