import { describe, expect, it } from 'vitest';
import type { StreamingContext } from 'sluice';
import { FencedError } from '../../lib/core/errors.ts';
import { MAX_PENDING_NOTICES } from '../../lib/engine/commitNotices.ts';
import { keys } from '../../lib/engine/protocol.ts';
import { MemoryBlobStore } from '../../lib/local/memoryBlobStore.ts';
import { MemoryMetaStore } from '../../lib/local/memoryMetaStore.ts';
import type { MetaStore } from '../../lib/ports/index.ts';
import { AckQueue, type AckQueueSourceOptions, ackQueueSources } from '../helpers/ackQueue.ts';
import { interceptInvoker, testCoordinator } from '../helpers/engine.ts';

// RecordSource.committed (lib/ports/index.ts): a source that acknowledges what it consumed — an
// in-memory queue with acknowledgements and a visibility timeout, like SQS — run through the real
// coordinator. It is told only after its batch is committed, at least once, and coordinators that
// overlap in time never make it acknowledge input that is not committed.

class Crash extends Error {}

/** Every message of the queue goes to a saveAsTextFiles sink. */
const job = (ctx: StreamingContext) => ctx.receiverStream<string>({ start() {}, stop() {} }).saveAsTextFiles('out/acked');

/** Stores shared by the coordinators of one job: its meta store, its blobs, its sink. */
function stores() {
  return { meta: new MemoryMetaStore(), blobs: new MemoryBlobStore(), sink: new MemoryBlobStore() };
}

/** A coordinator named `owner` of the job over `queue` and the shared stores. */
function coordinator(queue: AckQueue, s: ReturnType<typeof stores>, owner: string, extra: Parameters<typeof testCoordinator>[2] = {}, source?: AckQueueSourceOptions) {
  return testCoordinator({ batchInterval: 1000 }, job, {
    meta: s.meta,
    blobs: s.blobs,
    sources: ackQueueSources(queue, owner, s.meta, source),
    sinks: (location) => ({ store: s.sink, key: location }),
    owner,
    leaseMs: 5000,
    ...extra,
  });
}

/** The messages each batch wrote to the sink, by batch time (a batch without _SUCCESS is not there). */
async function committedOutput(sink: MemoryBlobStore): Promise<Record<number, string[]>> {
  const out: Record<number, string[]> = {};
  for (const key of await sink.list('out/acked-')) {
    const time = Number(/acked-(\d+)\//.exec(key)![1]);
    if (!(await sink.exists(`out/acked-${time}/_SUCCESS`)) || key.endsWith('_SUCCESS')) continue;
    out[time] = [...(out[time] ?? []), ...new TextDecoder().decode(await sink.get(key)).split('\n').filter(Boolean)];
  }
  return out;
}

/** Every acknowledgement was of a batch already committed when it was made. */
function expectOnlyCommittedAcks(queue: AckQueue): void {
  for (const ack of queue.acks) expect(ack.time, `${ack.by} acknowledged batch ${ack.time} with the job committed through ${ack.committedThrough}`).toBeLessThanOrEqual(ack.committedThrough);
}

describe('RecordSource.committed: a source acknowledges what a batch consumed once the batch is committed', () => {
  it('each batch acknowledges exactly its messages, after its commit and never before', async () => {
    // Prepare: the acknowledgements made by the time each batch's outputs are all written (the step before its commit).
    const queue = new AckQueue();
    queue.send('m1', 'm2');
    const s = stores();
    const ackedBeforeCommit: number[] = [];
    const a = coordinator(queue, s, 'A', { onStep: (step) => void (step === 'success' && ackedBeforeCommit.push(queue.acks.length)) });

    // Act
    await a.run(1);
    queue.send('m3');
    await a.run(2);

    // Assess
    expect(ackedBeforeCommit).toEqual([0, 1, 2]);
    expect(queue.acks).toEqual([
      { by: 'A', time: 1000, ids: ['m1', 'm2'], committedThrough: 1000 },
      { by: 'A', time: 2000, ids: ['m3'], committedThrough: 2000 },
    ]);
    expect(queue.remaining).toEqual([]);
    // Batch 3000 consumed nothing: a quiet batch, which writes no output (writeEmptyBatches is off), commits nothing and has nothing to acknowledge.
    expect(await committedOutput(s.sink)).toEqual({ 1000: ['m1', 'm2'], 2000: ['m3'] });
  });

  it('a crash between the commit and the acknowledgement: the next coordinator acknowledges the batch when it starts, before its first cut', async () => {
    // Prepare: A crashes right after committing batch 2000; m3's visibility timeout passes before B starts.
    const queue = new AckQueue();
    queue.send('m1', 'm2');
    const s = stores();
    const a = coordinator(queue, s, 'A', { onStep: (step, t) => { if (step === 'commit' && t === 2000) throw new Crash(); } });
    await a.run(1);
    queue.send('m3');
    await expect(a.run(1)).rejects.toBeInstanceOf(Crash);
    const ackedByA = [...queue.acks];
    queue.expireVisibility();

    // Act
    const b = coordinator(queue, s, 'B');
    b.clock.set(10_000);
    await b.coordinator.start();
    const ackedAtStart = queue.acks.slice(ackedByA.length);
    queue.send('m4');
    await b.run(1);

    // Assess: m3 was committed by A, acknowledged by B's start, and never delivered again.
    expect(ackedByA).toEqual([{ by: 'A', time: 1000, ids: ['m1', 'm2'], committedThrough: 1000 }]);
    expect(ackedAtStart).toEqual([{ by: 'B', time: 2000, ids: ['m3'], committedThrough: 2000 }]);
    expect(queue.deliveries('m3')).toBe(1);
    expect(await committedOutput(s.sink)).toEqual({ 1000: ['m1', 'm2'], 2000: ['m3'], 3000: ['m4'] });
    expectOnlyCommittedAcks(queue);
  });

  it('a crash after the cut, before its lineage record: the queue delivers the messages again and one batch commits them', async () => {
    // Prepare: A received m1 and m2 and died before sealing them.
    const queue = new AckQueue();
    queue.send('m1', 'm2');
    const s = stores();
    const a = coordinator(queue, s, 'A', { onStep: (step) => { if (step === 'cut') throw new Crash(); } });
    await expect(a.run(1)).rejects.toBeInstanceOf(Crash);

    // Act: their visibility timeout passes; B runs the batch.
    queue.expireVisibility();
    const b = coordinator(queue, s, 'B');
    b.clock.set(10_000);
    await b.run(1);

    // Assess
    expect(queue.deliveries('m1')).toBe(2);
    expect(queue.acks).toEqual([{ by: 'B', time: 1000, ids: ['m1', 'm2'], committedThrough: 1000 }]);
    expect(await committedOutput(s.sink)).toEqual({ 1000: ['m1', 'm2'] });
  });

  it('a crash after the outputs, before the commit: the next coordinator recomputes the sealed batch and acknowledges it; the output is written once', async () => {
    // Prepare: A sealed m1 and m2, wrote its outputs and died before committing.
    const queue = new AckQueue();
    queue.send('m1', 'm2');
    const s = stores();
    const a = coordinator(queue, s, 'A', { onStep: (step) => { if (step === 'success') throw new Crash(); } });
    await expect(a.run(1)).rejects.toBeInstanceOf(Crash);

    // Act: the messages' visibility timeout passes; B recovers batch 1000 and runs the next one.
    queue.expireVisibility();
    const b = coordinator(queue, s, 'B');
    b.clock.set(10_000);
    await b.run(1);
    queue.send('m3');
    await b.run(1);

    // Assess: the batch was not cut again, so m1 and m2 were received once and committed once.
    expect(queue.acks).toEqual([
      { by: 'B', time: 1000, ids: ['m1', 'm2'], committedThrough: 1000 },
      { by: 'B', time: 2000, ids: ['m3'], committedThrough: 2000 },
    ]);
    expect(queue.deliveries('m1')).toBe(1);
    expect(await committedOutput(s.sink)).toEqual({ 1000: ['m1', 'm2'], 2000: ['m3'] });
  });

  it('overlapping coordinators: a superseded one whose batch a newer one committed never acknowledges it', async () => {
    // Prepare: A cuts batch 1000 and its task's answer is held; A's lease runs out.
    const queue = new AckQueue();
    queue.send('m1', 'm2');
    const s = stores();
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let holding!: () => void;
    const held = new Promise<void>((r) => (holding = r));
    const a = coordinator(queue, s, 'A', {
      wrapInvoker: (inner) =>
        interceptInvoker(inner, async (_task, go) => {
          holding();
          await released;
          return go();
        }),
    });
    await a.coordinator.start();
    a.clock.set(1000);
    const aRun = a.coordinator.runNextBatch();
    await held;

    // Act: B takes over, claims and commits batch 1000; then A's answer arrives.
    const b = coordinator(queue, s, 'B');
    b.clock.set(10_000);
    await b.run(1);
    release();

    // Assess: A's commit is fenced, and only B acknowledged, after its commit.
    await expect(aRun).rejects.toBeInstanceOf(FencedError);
    expect(queue.acks).toEqual([{ by: 'B', time: 1000, ids: ['m1', 'm2'], committedThrough: 1000 }]);
    expect(await committedOutput(s.sink)).toEqual({ 1000: ['m1', 'm2'] });
  });

  it('overlapping coordinators: a slow acknowledgement lands after a newer coordinator acknowledged a later batch, and is harmless', async () => {
    // Prepare: A commits batch 1000; its DeleteMessage of it is slow. A's lease runs out meanwhile.
    const queue = new AckQueue();
    queue.send('m1', 'm2');
    const s = stores();
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let slowing!: () => void;
    const slow = new Promise<void>((r) => (slowing = r));
    const a = coordinator(queue, s, 'A', {}, { slow: () => (slowing(), released) });
    await a.coordinator.start();
    a.clock.set(1000);
    const aRun = a.coordinator.runNextBatch();
    await slow;

    // Act: B starts (and acknowledges 1000 again), runs batch 2000; then A's slow call lands.
    const b = coordinator(queue, s, 'B');
    b.clock.set(10_000);
    await b.coordinator.start();
    queue.send('m3');
    await b.run(1);
    release();
    await aRun;

    // Assess: every acknowledgement was of committed input; A's, late and repeated, deleted nothing new.
    expect(queue.acks).toEqual([
      { by: 'B', time: 1000, ids: ['m1', 'm2'], committedThrough: 1000 },
      { by: 'B', time: 2000, ids: ['m3'], committedThrough: 2000 },
      { by: 'A', time: 1000, ids: ['m1', 'm2'], committedThrough: 2000 },
    ]);
    expect(['m1', 'm2', 'm3'].map((m) => queue.deliveries(m))).toEqual([1, 1, 1]);
    expect(await committedOutput(s.sink)).toEqual({ 1000: ['m1', 'm2'], 2000: ['m3'] });
  });

  it('an acknowledgement that throws does not fail the committed batch: it is logged and made again before the next cut', async () => {
    // Prepare: deleting the messages of batch 1000 fails once.
    const queue = new AckQueue();
    queue.send('m1');
    const s = stores();
    let failures = 0;
    const a = coordinator(queue, s, 'A', {}, { fail: (input) => (input.time === 1000 && failures++ === 0 ? new Error('ServiceUnavailable') : undefined) });

    // Act
    await a.run(1);
    const afterFirst = { committed: a.coordinator.lastCompleted, acks: queue.acks.length };
    queue.send('m2');
    await a.run(1);

    // Assess
    expect(afterFirst).toEqual({ committed: 1000, acks: 0 });
    expect(a.log.warnings).toEqual([
      'receiver-1: acknowledging the input of committed batch 1000 failed (ServiceUnavailable); the batch stays committed, and it is told again before the next cut',
    ]);
    expect(queue.acks).toEqual([
      { by: 'A', time: 1000, ids: ['m1'], committedThrough: 1000 },
      { by: 'A', time: 2000, ids: ['m2'], committedThrough: 2000 },
    ]);
    expect(await committedOutput(s.sink)).toEqual({ 1000: ['m1'], 2000: ['m2'] });
  });

  it('during an outage of the acknowledging service a batch waits for one failed call, however many notices wait; they are all made, in order, once it is back', async () => {
    // Prepare: deletes fail until the service is back.
    const queue = new AckQueue();
    const s = stores();
    let down = true;
    const calls: number[] = [];
    const a = coordinator(queue, s, 'A', {}, { fail: (input) => (calls.push(input.time), down ? new Error('ServiceUnavailable') : undefined) });

    // Act: five batches during the outage, then one after it.
    for (let i = 1; i <= 5; i++) {
      queue.send(`m${i}`);
      await a.run(1);
    }
    const callsDuringOutage = calls.length;
    down = false;
    await a.run(1);

    // Assess: two calls per batch (the retry before its cut, the notice after its commit), each of
    // the oldest waiting batch; afterwards every batch acknowledged once, oldest first.
    expect(callsDuringOutage).toBe(1 + 2 * 4);
    expect(calls.slice(0, callsDuringOutage)).toEqual([1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000]);
    expect(queue.acks.map((ack) => [ack.time, ack.ids])).toEqual([[1000, ['m1']], [2000, ['m2']], [3000, ['m3']], [4000, ['m4']], [5000, ['m5']]]);
    expect(a.log.warnings.at(-1)).toBe(
      'receiver-1: acknowledging the input of committed batch 1000 failed (ServiceUnavailable); the batch stays committed, and it and 4 later one(s) are told again before the next cut',
    );
    expectOnlyCommittedAcks(queue);
  });

  it(`gives up the oldest notices beyond ${MAX_PENDING_NOTICES} waiting, saying which`, async () => {
    // Prepare: every delete fails.
    const queue = new AckQueue();
    const s = stores();
    const a = coordinator(queue, s, 'A', {}, { fail: () => new Error('ServiceUnavailable') });

    // Act: a message a batch (a batch without one is quiet: it commits nothing, so it has no notice).
    for (let i = 1; i <= MAX_PENDING_NOTICES + 2; i++) {
      queue.send(`m${i}`);
      await a.run(1);
    }

    // Assess: the two oldest batches' notices are given up, one per commit.
    const givenUp = a.log.warnings.filter((w) => w.includes('gave up'));
    expect(givenUp).toEqual([
      `receiver-1: gave up acknowledging the input of committed batches 1000: ${MAX_PENDING_NOTICES} later notices wait too`,
      `receiver-1: gave up acknowledging the input of committed batches 2000: ${MAX_PENDING_NOTICES} later notices wait too`,
    ]);
    expect(queue.acks).toEqual([]);
  });

  it('a coordinator that stops makes the notices that wait once more', async () => {
    // Prepare: the delete of batch 1000 fails once.
    const queue = new AckQueue();
    queue.send('m1');
    const s = stores();
    let failures = 0;
    const a = coordinator(queue, s, 'A', {}, { fail: () => (failures++ === 0 ? new Error('ServiceUnavailable') : undefined) });
    await a.run(1);
    const acksBeforeStop = queue.acks.length;

    // Act
    await a.coordinator.stop();

    // Assess
    expect(acksBeforeStop).toBe(0);
    expect(queue.acks).toEqual([{ by: 'A', time: 1000, ids: ['m1'], committedThrough: 1000 }]);
  });

  it('a job whose sources acknowledge nothing reads no batch record when its coordinator starts', async () => {
    // Prepare: a committed job of a queueStream (its source has no committed step).
    const inner = new MemoryMetaStore();
    const reads: string[] = [];
    const meta: MetaStore = { get: (k) => (reads.push(k), inner.get(k)), put: (k, v, c) => inner.put(k, v, c), delete: (k, c) => inner.delete(k, c), list: (p) => inner.list(p) };
    const queueJob = (ctx: StreamingContext) => ctx.queueStream([['a'], ['b']]).print();
    await testCoordinator({ batchInterval: 1000 }, queueJob, { meta: inner }).run(1);

    // Act
    await testCoordinator({ batchInterval: 1000 }, queueJob, { meta }).coordinator.start();

    // Assess
    expect(reads.filter((k) => k.startsWith('batch/'))).toEqual([]);
    expect(reads).toContain(keys.checkpoint);
  });
});
