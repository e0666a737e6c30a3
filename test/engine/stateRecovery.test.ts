import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type State, StateSpec, type StreamingContext } from 'sluice';
import { runBatches } from 'sluice/testing';
import { PROTOCOL_STEPS, type ProtocolStep } from '../../lib/engine/coordinator.ts';
import { MemoryBlobStore } from '../../lib/local/memoryBlobStore.ts';
import { MemoryMetaStore } from '../../lib/local/memoryMetaStore.ts';
import { localSinks } from '../../lib/local/sinks.ts';
import { readSavedBatches } from '../helpers/outputs.ts';

/** Ten batches of user clicks: windows with and without inverse, running totals, sessions with timeouts. */
const input = [
  ['u1', 'u2', 'u1'],
  ['u3'],
  [],
  ['u1', 'u4', 'u4'],
  ['u2'],
  [],
  [],
  ['u5', 'u1'],
  ['u5', 'u5', 'u2'],
  ['u6'],
];

function job(out: string) {
  return (ctx: StreamingContext) => {
    const clicks = ctx.queueStream(input, { numPartitions: 2 }).map((u) => [u, 1] as [string, number]);
    clicks.reduceByKeyAndWindow((a, b) => a + b, (a, b) => a - b, '4s', '2s', { numPartitions: 3, filter: ([, n]) => n > 0 }).saveAsTextFiles(join(out, 'inverse'));
    clicks.reduceByKeyAndWindow((a, b) => a + b, '3s', '1s', { numPartitions: 2 }).saveAsTextFiles(join(out, 'window'));
    clicks.updateStateByKey((ns, total: number | undefined) => (total ?? 0) + ns.length, { numPartitions: 2 }).saveAsTextFiles(join(out, 'totals'));
    const sessions = clicks.mapWithState(
      StateSpec.function((user: string, n: number | undefined, state: State<number>) => {
        if (state.isTimingOut()) return `${user} closed after ${state.get()} clicks`;
        state.update((state.getOption() ?? 0) + (n ?? 0));
        return undefined;
      })
        .timeout('2s')
        .numPartitions(2),
    );
    sessions.saveAsTextFiles(join(out, 'sessions'));
    sessions.stateSnapshots().saveAsTextFiles(join(out, 'open'));
  };
}

const OUTPUTS = ['inverse', 'window', 'totals', 'sessions', 'open'];

class Crash extends Error {}

describe('stateful job: crash at every protocol step, resume, same output', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sluice-state-recovery-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function saved(out: string) {
    const all: Record<string, unknown> = {};
    for (const name of OUTPUTS) all[name] = await readSavedBatches(out, name);
    return all;
  }

  // A full checkpoint every 3 batches, so resumes rebuild state from a full blob plus deltas.
  const options = { batchInterval: 1000, checkpointInterval: '3s' };

  /** The uninterrupted run every crashed one is compared with, made once. */
  let reference: Record<string, unknown>;
  beforeAll(async () => {
    const refDir = await mkdtemp(join(tmpdir(), 'sluice-state-recovery-ref-'));
    try {
      await runBatches({ ...options, batches: input.length, sinks: localSinks(refDir) }, job(refDir));
      reference = await saved(refDir);
    } finally {
      await rm(refDir, { recursive: true, force: true });
    }
  });

  it('the reference run produces what the operators promise', () => {
    const s = reference as Record<string, { time: number; files: Record<string, string> }[]>;
    const lines = (name: string, time: number) =>
      Object.entries(s[name].find((b) => b.time === time)!.files)
        .filter(([f]) => f !== '_SUCCESS')
        .flatMap(([, text]) => text.split('\n').filter(Boolean))
        .sort();
    expect(lines('totals', 10_000)).toEqual(['(u1,4)', '(u2,3)', '(u3,1)', '(u4,2)', '(u5,3)', '(u6,1)']);
    // Window (6000, 10000]: batches 7..10.
    expect(lines('inverse', 10_000)).toEqual(['(u1,1)', '(u2,1)', '(u5,3)', '(u6,1)']);
    expect(s.inverse.map((b) => b.time)).toEqual([2000, 4000, 6000, 8000, 10_000]);
    // u3 clicked at 2000 and is idle for more than 2 s by 5000.
    expect(lines('sessions', 5000)).toEqual(['u3 closed after 1 clicks']);
  });

  const cases: [ProtocolStep, number][] = PROTOCOL_STEPS.flatMap((s) => [
    [s, 3],
    [s, 4],
    [s, 7],
  ] as [ProtocolStep, number][]);

  it.each(cases)('crash after %s in batch %i', async (step, batchNo) => {
    // Prepare
    const out = join(dir, 'crashed');
    const blobs = new MemoryBlobStore();
    const meta = new MemoryMetaStore();
    const common = { ...options, sinks: localSinks(out), blobs, meta };
    let crashed = false;
    // Act
    await expect(
      runBatches(
        {
          ...common,
          batches: input.length,
          onStep: (s, t) => {
            if (!crashed && s === step && t === batchNo * 1000) {
              crashed = true;
              throw new Crash(`${s}@${t}`);
            }
          },
        },
        job(out),
      ),
    ).rejects.toBeInstanceOf(Crash);
    const done = (await meta.get<{ lastCompleted: number }>('checkpoint'))!.value.lastCompleted;
    await runBatches({ ...common, batches: input.length - done / 1000 }, job(out));
    // Assess
    expect(await saved(out)).toEqual(reference);
  });

  it('keeps only the state blobs a restart needs', async () => {
    const blobs = new MemoryBlobStore();
    const out = join(dir, 'gc');
    await runBatches({ ...options, batches: input.length, sinks: localSinks(out), blobs }, job(out));
    const state = await blobs.list('state/');
    const byNode = new Map<string, string[]>();
    for (const k of state) {
      const [, node, , name] = k.split('/');
      byNode.set(node, [...(byNode.get(node) ?? []), name.replace(/-0+/, '-')]);
    }
    const uniq = (xs: string[]) => [...new Set(xs)].sort();
    // Last full checkpoint at 9000, then a delta for 10000.
    expect(uniq(byNode.get('mapWithState-1')!)).toEqual(['delta-10000', 'full-9000']);
    // updateStateByKey writes the whole state each batch: only the last one is kept.
    expect(uniq(byNode.get('updateStateByKey-1')!)).toEqual(['full-10000']);
    // The inverse window keeps what a slide at 11000 could still subtract: (11000 - 2000 - 4000, 10000].
    expect(uniq(byNode.get('reduceByKeyAndWindow-1')!)).toEqual(['delta-10000', 'full-9000', 'slice-10000', 'slice-6000', 'slice-7000', 'slice-8000', 'slice-9000']);
    expect(uniq(byNode.get('reduceByKeyAndWindow-2')!)).toEqual(['slice-10000', 'slice-8000', 'slice-9000']);
  });
});

describe('state blobs after a crash between commit and cleanup', () => {
  it('the next coordinator sweeps what the crashed one left, leaving what an uninterrupted run leaves', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sluice-state-sweep-'));
    try {
      const options = { batchInterval: 1000, checkpointInterval: '3s' };
      const refBlobs = new MemoryBlobStore();
      await runBatches({ ...options, batches: input.length, sinks: localSinks(join(dir, 'ref')), blobs: refBlobs }, job(join(dir, 'ref')));
      const blobs = new MemoryBlobStore();
      const meta = new MemoryMetaStore();
      const common = { ...options, sinks: localSinks(join(dir, 'crashed')), blobs, meta };
      // Crash right after the commit of 9000, a full-checkpoint batch: its cleanup never ran.
      await expect(
        runBatches(
          {
            ...common,
            batches: input.length,
            onStep: (s, t) => {
              if (s === 'commit' && t === 9000) throw new Crash('after commit');
            },
          },
          job(join(dir, 'crashed')),
        ),
      ).rejects.toBeInstanceOf(Crash);
      await runBatches({ ...common, batches: 1 }, job(join(dir, 'crashed')));
      expect(await blobs.list('state/')).toEqual(await refBlobs.list('state/'));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
