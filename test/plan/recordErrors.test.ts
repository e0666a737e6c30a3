import { describe, expect, it } from 'vitest';
import { RecordError, SluiceError } from 'sluice';
import type { TaskFailure } from '../../lib/engine/protocol.ts';
import { inTask, userFunctionError } from '../../lib/plan/recordErrors.ts';
import { toJsonSafe } from '../../lib/engine/taskReader.ts';
import { interceptInvoker, testCoordinator } from '../helpers/engine.ts';
import { caught } from '../helpers/semantics.ts';

// One error for a user function that threw, whatever it was called on (lib/plan/recordErrors.ts).

describe('userFunctionError: the one RecordError of a user function that threw', () => {
  const boom = new Error('boom');

  it('on a record: names the operator and the record (a pair by its key), and carries both', () => {
    const e = userFunctionError('map-1', { record: 7 }, boom) as RecordError;
    expect(e).toBeInstanceOf(RecordError);
    expect(e.name).toBe('RecordError');
    expect(e.message).toBe('map-1 threw on the number 7: boom');
    expect([e.nodeId, e.record, e.cause, 'key' in e]).toEqual(['map-1', 7, boom, false]);
    expect(userFunctionError('mapValues-1', { record: ['x', 0] }, boom).message).toBe('mapValues-1 threw on the pair with key "x": boom');
  });

  it('on a record that is itself undefined: the error still says it concerns one', () => {
    const e = userFunctionError('map-1', { record: undefined }, boom) as RecordError;
    expect(e.message).toBe('map-1 threw on undefined: boom');
    expect('record' in e).toBe(true);
    expect(e.record).toBeUndefined();
  });

  it('on the values of a key: names the key and carries it', () => {
    const e = userFunctionError('reduceByKey-1', { key: ['k', 1] }, boom) as RecordError;
    expect(e.message).toBe('reduceByKey-1 threw on key ["k",1]: boom');
    expect([e.key, 'record' in e]).toEqual([['k', 1], false]);
  });

  it('on a whole partition: names the partition, and its records are the record', () => {
    const e = userFunctionError('mapPartitions-1', { partition: 3, records: [1, 2] }, boom) as RecordError;
    expect(e.message).toBe('mapPartitions-1 threw on partition 3 (2 records): boom');
    expect([e.partition, e.record]).toEqual([3, [1, 2]]);
  });

  it("on a batch's plan: names the transform function and the batch", () => {
    const e = userFunctionError('transform-1', { planAt: 2000 }, boom) as RecordError;
    expect(e.message).toBe('transform-1: the transform function threw: boom');
    expect(e.batchTime).toBe(2000);
  });

  it('anything thrown, not only Errors: its text is the message', () => {
    const e = userFunctionError('filter-1', { record: 'a' }, 'not an Error');
    expect(e.message).toBe('filter-1 threw on the string "a": not an Error');
    expect(e.cause).toBe('not an Error');
  });

  it("an error of Sluice's own (or of an operator further down) is returned as it is", () => {
    const own = new SluiceError('already said');
    expect(userFunctionError('map-1', { record: 1 }, own)).toBe(own);
  });
});

describe("inTask: a task's batch and partition added to a record error", () => {
  it('adds them to the message and the fields, keeping the record or key and the cause', () => {
    const cause = new Error('boom');
    const e = inTask(new RecordError('map-1 threw on the number 7: boom', { nodeId: 'map-1', record: 7, cause }), 3000, 2) as RecordError;
    expect(e.message).toBe('map-1 threw on the number 7: boom (batch 3000, partition 2)');
    expect([e.nodeId, e.batchTime, e.partition, e.record, e.cause, 'key' in e]).toEqual(['map-1', 3000, 2, 7, cause, false]);
    const k = inTask(new RecordError('reduceByKey-1 threw on key "a": boom', { nodeId: 'reduceByKey-1', key: 'a' }), 3000, 0) as RecordError;
    expect([k.key, 'record' in k]).toEqual(['a', false]);
  });

  it('leaves alone an error that already has its batch, and anything that is not a RecordError', () => {
    const planned = new RecordError('transform-1: the transform function threw: boom', { nodeId: 'transform-1', batchTime: 1000 });
    expect(inTask(planned, 3000, 2)).toBe(planned);
    const other = new SluiceError('lost');
    expect(inTask(other, 3000, 2)).toBe(other);
    expect(inTask('a string', 3000, 2)).toBe('a string');
  });
});

describe('a task that fails on a record sends the record back with its error', () => {
  /** What the coordinator threw after the last attempt, for the tests that look at it. */
  let thrown: RecordError;

  /** Runs one batch whose only task fails; the failures the worker answered with. */
  async function failures(build: Parameters<typeof testCoordinator>[1]): Promise<TaskFailure[]> {
    const seen: TaskFailure[] = [];
    const t = testCoordinator({ batchInterval: 1000, maxTaskAttempts: 1 }, build, {
      wrapInvoker: (inner) =>
        interceptInvoker(inner, async (_task, run) => {
          const res = (await run()) as TaskFailure;
          if (res.ok === false) seen.push(res);
          return res;
        }),
    });
    const e = await caught(() => t.run(1));
    expect(e).toBeInstanceOf(RecordError);
    thrown = e as RecordError;
    return seen;
  }

  it('the record of a function of records, the key of a function of keys, with operator, batch and partition', async () => {
    const [onRecord] = await failures((ctx) =>
      ctx.queueStream([[1, 2]]).map((n) => {
        if (n === 2) throw new Error('two');
        return n;
      }).print(),
    );
    expect(onRecord.error).toMatchObject({ name: 'RecordError', nodeId: 'map-1', batchTime: 1000, partition: 0, record: 2 });
    expect(onRecord.error).not.toHaveProperty('key');
    // The coordinator's error, after the last attempt, carries what the task failed on too.
    expect([thrown.nodeId, thrown.batchTime, thrown.partition, thrown.record, 'key' in thrown]).toEqual(['map-1', 1000, 0, 2, false]);
    const [onKey] = await failures((ctx) =>
      ctx.queueStream([[['a', 1], ['a', 2]] as [string, number][]]).reduceByKey(() => {
        throw new Error('no');
      }).print(),
    );
    expect(onKey.error).toMatchObject({ name: 'RecordError', nodeId: 'reduceByKey-1', batchTime: 1000, key: 'a' });
    expect(onKey.error).not.toHaveProperty('record');
    expect([thrown.nodeId, thrown.key, 'record' in thrown]).toEqual(['reduceByKey-1', 'a', false]);
  });

  it('sends what JSON cannot hold as its text, and leaves out what has no text either, still reporting the failure', async () => {
    const [asText] = await failures((ctx) =>
      ctx.queueStream([[1n]]).map((): bigint => {
        throw new Error('no bigints');
      }).print(),
    );
    expect(asText.error).toMatchObject({ name: 'RecordError', nodeId: 'map-1', record: '1' });
    const unprintable = { n: 1n, toString: () => { throw new Error('no text'); } };
    const [noText] = await failures((ctx) =>
      ctx.queueStream([[unprintable]]).map((): never => {
        throw new Error('nothing');
      }).print(),
    );
    expect(noText.error).toMatchObject({ name: 'RecordError', nodeId: 'map-1' });
    expect(noText.error).not.toHaveProperty('record');
  });

  it('leaves out a record too large to travel (a whole partition), keeping the message', async () => {
    const big = Array.from({ length: 5000 }, (_, i) => `record number ${i}`);
    const [failure] = await failures((ctx) =>
      ctx.queueStream([big]).mapPartitions((): string[] => {
        throw new Error('too much');
      }).print(),
    );
    expect(failure.error.message).toContain('mapPartitions-1 threw on partition 0 (5000 records): too much');
    expect(failure.error).not.toHaveProperty('record');
    expect('record' in thrown).toBe(false);
  });
});

describe('toJsonSafe: what a dead letter holds of a record', () => {
  it('the record itself when JSON holds it, its text when not, and what it is when it has no text', () => {
    expect(toJsonSafe({ a: 1 })).toEqual({ a: 1 });
    expect(toJsonSafe(undefined)).toBeNull();
    expect(toJsonSafe(1n)).toBe('1');
    const unprintable = { n: 1n, toString: () => { throw new Error('no text'); } };
    expect(toJsonSafe(unprintable)).toBe('[object Object]');
  });
});
