import { describe, expect, it } from 'vitest';
import { FencedError, LeaseHeldError } from '../../lib/core/errors.ts';
import { CommitLog } from '../../lib/engine/commitLog.ts';
import { pauseJob, readPause, resetJob, ResetRefusedError, resumeJob } from '../../lib/engine/pause.ts';
import { keys, type Lease } from '../../lib/engine/protocol.ts';
import { MemoryBlobStore } from '../../lib/local/memoryBlobStore.ts';
import { MemoryMetaStore } from '../../lib/local/memoryMetaStore.ts';
import type { Clock, JsonValue, MetaStore } from '../../lib/ports/index.ts';

// Pause, resume and reset of a deployed job (lib/engine/pause.ts) over the memory stores, with the
// attempts overlapping in time: each overlap is made to happen by holding one side at a gate.

/** A clock a test moves by hand. */
function manualClock(start = 1_000_000): Clock & { set(t: number): void } {
  let now = start;
  return {
    now: () => now,
    set: (t) => {
      now = t;
    },
    sleepUntil: async (t) => {
      now = Math.max(now, t);
    },
    deadline: async () => undefined,
  };
}

/** A promise the test settles itself. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { opened, open };
}

/** A job as a coordinator leaves it: lease released, a checkpoint, two batch records, state, lineage and dead-letter blobs. */
async function committedJob(): Promise<{ meta: MemoryMetaStore; blobs: MemoryBlobStore; epoch: number }> {
  const meta = new MemoryMetaStore();
  const blobs = new MemoryBlobStore();
  const clock = manualClock();
  const log = new CommitLog(meta, { job: 'clicks', owner: 'lambda:a', clock, leaseMs: 60_000 });
  await log.acquireLease();
  await meta.put(keys.checkpoint, { job: 'clicks', lastCompleted: 5000 }, { expectedVersion: 0, epoch: log.epoch });
  await meta.put(keys.batch(4000), { time: 4000 }, { expectedVersion: 0, epoch: log.epoch });
  await meta.put(keys.batch(5000), { time: 5000 }, { expectedVersion: 0, epoch: log.epoch });
  await log.releaseLease();
  const written = ['state/updateStateByKey-1/p0/full-000000000005000', 'batch/000000000005000/shuffle/s1/m0-e1', 'meta/checkpoint/abc', 'dead-letters/000000000005000/s1-p0.jsonl', 'history/lambda-a-1.json'];
  for (const k of written) await blobs.put(k, 'x');
  return { meta, blobs, epoch: log.epoch };
}

describe('pause and resume', () => {
  it('two pauses at once: one writes the record, the other finds it and says so; the record is the first one', async () => {
    // Prepare: both pauses' writes wait until both have been sent.
    const meta = new MemoryMetaStore();
    const bothSent = gate();
    let sent = 0;
    const overlapping: MetaStore = {
      get: (k) => meta.get(k),
      list: (p) => meta.list(p),
      delete: (k, c) => meta.delete(k, c),
      put: async (k: string, v: JsonValue, c) => {
        if (k === keys.pause && ++sent === 2) bothSent.open();
        if (k === keys.pause) await bothSent.opened;
        return meta.put(k, v, c);
      },
    };

    // Act
    const [a, b] = await Promise.all([pauseJob(overlapping, { by: 'ana@laptop', now: 1000 }), pauseJob(overlapping, { by: 'bo@desk', now: 1001 })]);

    // Assess
    expect([a.already, b.already].sort()).toEqual([false, true]);
    const winner = a.already ? b.pause : a.pause;
    expect(a.pause).toEqual(winner);
    expect(b.pause).toEqual(winner);
    expect(await readPause(meta)).toEqual(winner);
  });

  it('resume removes the pause and says what it was; twice is harmless; a pause after it writes a new one', async () => {
    const meta = new MemoryMetaStore();
    await pauseJob(meta, { by: 'ana@laptop', now: 1000 });
    const [r1, r2] = await Promise.all([resumeJob(meta), resumeJob(meta)]);
    expect(r1).toEqual({ since: 1000, by: 'ana@laptop' });
    expect(r2 === undefined || r2.since === 1000).toBe(true);
    expect(await readPause(meta)).toBeUndefined();
    expect(await resumeJob(meta)).toBeUndefined();
    expect((await pauseJob(meta, { by: 'bo@desk', now: 2000 })).already).toBe(false);
  });

  it('a pause record Sluice did not write is refused, not guessed at', async () => {
    const meta = new MemoryMetaStore();
    await meta.put(keys.pause, { paused: true }, { expectedVersion: 0, epoch: 0 });
    await expect(readPause(meta)).rejects.toThrow(/the pause record of this job is not one Sluice wrote/);
  });
});

describe('reset', () => {
  it('removes the checkpoint, the batch records and the blobs but the dead letters and the batch history, and releases the lease with a greater epoch', async () => {
    const { meta, blobs, epoch } = await committedJob();
    await pauseJob(meta, { by: 'ana@laptop', now: 1 });

    const done = await resetJob(meta, blobs, { job: 'clicks', owner: 'sluice reset (ana@laptop)', clock: manualClock() });

    expect(done).toEqual({ lastCompleted: 5000, batchRecords: 2, blobs: 3, deadLetterFiles: 1, historyFiles: 1 });
    expect(await meta.list('')).toEqual(['lease', 'pause']);
    expect(await blobs.list('')).toEqual(['dead-letters/000000000005000/s1-p0.jsonl', 'history/lambda-a-1.json']);
    const lease = await meta.get<Lease>(keys.lease);
    expect(lease?.value.owner).toBe('');
    // Epochs keep growing: a coordinator older than the reset stays fenced.
    expect(lease!.epoch).toBe(epoch + 1);
  });

  it('is refused while the job runs: not paused, or a coordinator holding a live lease', async () => {
    const { meta, blobs } = await committedJob();
    await expect(resetJob(meta, blobs, { job: 'clicks', owner: 'reset', clock: manualClock() })).rejects.toThrow(ResetRefusedError);
    await expect(resetJob(meta, blobs, { job: 'clicks', owner: 'reset', clock: manualClock() })).rejects.toThrow(/not paused: pause it first/);

    // A coordinator took the lease before it read the pause (it stops after its batch).
    await pauseJob(meta, { by: 'ana@laptop', now: 1 });
    const running = new CommitLog(meta, { job: 'clicks', owner: 'lambda:b', clock: manualClock(), leaseMs: 60_000 });
    await running.acquireLease();
    await expect(resetJob(meta, blobs, { job: 'clicks', owner: 'reset', clock: manualClock() })).rejects.toThrow(/a coordinator still holds the job's lease until .* \(lambda:b\): a paused coordinator stops within 10 s/);
    expect(await meta.list('batch/')).toHaveLength(2);
    expect(await blobs.list('')).toHaveLength(5);

    // Its lease released (the paused coordinator stopped), the reset goes through.
    await running.releaseLease();
    await expect(resetJob(meta, blobs, { job: 'clicks', owner: 'reset', clock: manualClock() })).resolves.toMatchObject({ batchRecords: 2 });
  });

  it('a resume racing the reset: no coordinator starts while the reset runs; the next one starts afresh', async () => {
    const { meta, blobs } = await committedJob();
    await pauseJob(meta, { by: 'ana@laptop', now: 1 });
    const tried: string[] = [];

    await resetJob(meta, blobs, {
      job: 'clicks',
      owner: 'reset',
      clock: manualClock(),
      // Between the checkpoint's removal and the rest: resumed, and the next minute's coordinator starts.
      onStep: async (step) => {
        if (step !== 'checkpoint') return;
        await resumeJob(meta);
        const coordinator = new CommitLog(meta, { job: 'clicks', owner: 'lambda:c', clock: manualClock(), leaseMs: 60_000 });
        await coordinator.acquireLease().catch((e: Error) => tried.push(e.name));
      },
    });

    expect(tried).toEqual([LeaseHeldError.name]);
    expect(await meta.list('')).toEqual(['lease']);
    const next = new CommitLog(meta, { job: 'clicks', owner: 'lambda:d', clock: manualClock(), leaseMs: 60_000 });
    await next.acquireLease();
    expect(await meta.get(keys.checkpoint)).toBeUndefined();
  });

  it("a reset whose lease ran out while a coordinator took the job over removes nothing: the checkpoint goes first, fenced by the reset's epoch", async () => {
    const { meta, blobs } = await committedJob();
    await pauseJob(meta, { by: 'ana@laptop', now: 1 });
    const clock = manualClock();

    const reset = resetJob(meta, blobs, {
      job: 'clicks',
      owner: 'reset',
      clock,
      leaseMs: 1000,
      onStep: async (step) => {
        if (step !== 'lease') return;
        // The reset stalls past its lease; meanwhile the job is resumed and a coordinator takes it over.
        await resumeJob(meta);
        const later = manualClock(clock.now() + 5000);
        const coordinator = new CommitLog(meta, { job: 'clicks', owner: 'lambda:e', clock: later, leaseMs: 60_000 });
        await coordinator.acquireLease();
        await coordinator.takeOverCheckpoint((stored) => stored!.value as never);
      },
    });

    // The pause was read again after the lease was taken, before the take-over: the reset went on, and was fenced at its first delete.
    await expect(reset).rejects.toThrow(FencedError);
    expect((await meta.get<{ lastCompleted: number }>(keys.checkpoint))?.value.lastCompleted).toBe(5000);
    expect(await meta.list('batch/')).toHaveLength(2);
    expect(await blobs.list('')).toHaveLength(5);
  });
});
