import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SluiceError } from 'sluice';
import { MemoryBlobStore } from '../../lib/local/memoryBlobStore.ts';
import { KeyedState, parseStateKey, pointerBlobs, STATE_FORMAT, StateBlobs, type StatePointer, stateKey } from '../../lib/plan/state/format.ts';

// The state format's one implementation (lib/plan/state/format.ts), against the blobs release 0.1
// wrote (test/fixtures/state-format-1.json): reads them back and writes the same bytes.

/** A blob store holding the fixture's state blobs, and the fixture's pointers. */
async function fixture() {
  const f = JSON.parse(await readFile(join(import.meta.dirname, '../fixtures/state-format-1.json'), 'utf8')) as {
    checkpoint: { state: Record<string, StatePointer> };
    blobs: Record<string, string>;
  };
  const blobs = new MemoryBlobStore();
  const bytes = new Map<string, Uint8Array>();
  for (const [k, b64] of Object.entries(f.blobs)) {
    bytes.set(k, new Uint8Array(Buffer.from(b64, 'base64')));
    await blobs.put(k, bytes.get(k)!);
  }
  return { blobs, bytes, pointers: f.checkpoint.state };
}

const pointer = (p: Partial<StatePointer>): StatePointer => ({ format: STATE_FORMAT, partitions: 2, firstTime: 1000, fullTime: 2000, lastTime: 3000, ...p });

describe('state blob names', () => {
  it('a name and what it says go both ways', () => {
    const key = stateKey('totals', 3, 'delta', 4000);
    expect(key).toBe('state/totals/p3/delta-000000000004000');
    expect(parseStateKey(key)).toEqual({ nodeId: 'totals', partition: 3, kind: 'delta', time: 4000 });
  });

  it('a name that is no state blob says nothing', () => {
    for (const key of ['state/totals/p3/snapshot-000000000004000', 'state/totals/delta-000000000004000', 'batch/000000000004000/cache/x', 'state/a/b/p0/full-1', '']) {
      expect(parseStateKey(key)).toBeUndefined();
    }
  });

  it('the state at a pointer is its full blob, then every delta after it, in order', () => {
    expect(pointerBlobs(pointer({ fullTime: 2000, lastTime: 5000 }), 1000)).toEqual([
      { kind: 'full', time: 2000 },
      { kind: 'delta', time: 3000 },
      { kind: 'delta', time: 4000 },
      { kind: 'delta', time: 5000 },
    ]);
    expect(pointerBlobs(pointer({ fullTime: 3000, lastTime: 3000 }), 1000)).toEqual([{ kind: 'full', time: 3000 }]);
  });
});

describe('StateBlobs: one partition of a stateful node', () => {
  it('reads the state back from a full blob and its deltas', async () => {
    const { blobs, pointers } = await fixture();
    const prev = pointers['mapWithState-1'];
    const state = await new StateBlobs(blobs, 'mapWithState-1', 1, 4000, 1000, prev).readState(prev);
    expect(state.full()).toEqual([
      ['a', { n: 3, keys: 'a' }, 3000],
      ['c', { n: 1, keys: 'c' }, 2000],
      [['k', 1], { n: 1, keys: ['k', 1] }, 2000],
    ]);
    // Read back, nothing has changed yet: a delta written now would be empty.
    expect(state.delta()).toEqual([]);
  });

  it('writes full blobs and deltas byte for byte as release 0.1 did', async () => {
    const { blobs, bytes, pointers } = await fixture();
    // Full: the totals of partition 1, written again at the next batch, are the same bytes.
    const totals = pointers.totals;
    const full = new StateBlobs(blobs, 'totals', 1, 4000, 1000, totals);
    await full.writeState(await full.readState(totals), { checkpointMs: 2000, alwaysFull: true });
    expect(await blobs.get(stateKey('totals', 1, 'full', 4000))).toEqual(bytes.get(stateKey('totals', 1, 'full', 3000)));
    // Delta: batch 3000 of mapWithState changed key "a" of partition 1 on top of the full blob of 2000.
    const at2000 = pointer({ fullTime: 2000, lastTime: 2000 });
    const state = await new StateBlobs(blobs, 'mapWithState-1', 1, 3000, 1000, at2000).readState(at2000);
    state.set('a', { n: 3, keys: 'a' }, 3000);
    const out = new MemoryBlobStore();
    await new StateBlobs(out, 'mapWithState-1', 1, 3000, 1000, at2000).writeState(state, { checkpointMs: 2000 });
    expect(await out.list('')).toEqual([stateKey('mapWithState-1', 1, 'delta', 3000)]);
    expect(await out.get(stateKey('mapWithState-1', 1, 'delta', 3000))).toEqual(bytes.get(stateKey('mapWithState-1', 1, 'delta', 3000)));
  });

  it('writes a full blob at the first batch and at multiples of the checkpoint interval, else a delta', async () => {
    const blobs = new MemoryBlobStore();
    const state = new KeyedState('w');
    state.set('a', 1, 1000);
    await new StateBlobs(blobs, 'w', 0, 1000, 1000, undefined).writeState(state, { checkpointMs: 2000 });
    state.set('a', 2, 2000);
    await new StateBlobs(blobs, 'w', 0, 2000, 1000, pointer({ fullTime: 1000, lastTime: 1000 })).writeState(state, { checkpointMs: 2000 });
    state.set('a', 3, 3000);
    await new StateBlobs(blobs, 'w', 0, 3000, 1000, pointer({ fullTime: 2000, lastTime: 2000 })).writeState(state, { checkpointMs: 2000 });
    expect(await blobs.list('state/w/')).toEqual([stateKey('w', 0, 'delta', 3000), stateKey('w', 0, 'full', 1000), stateKey('w', 0, 'full', 2000)]);
  });

  it('window slices: written and read back; before the first batch there are none, and none are lost', async () => {
    const blobs = new MemoryBlobStore();
    const first = new StateBlobs(blobs, 'window-1', 0, 1000, 1000, undefined);
    await first.writeSlice([['a', 1]]);
    const next = new StateBlobs(blobs, 'window-1', 0, 2000, 1000, pointer({ firstTime: 1000, fullTime: 1000, lastTime: 1000 }));
    expect(await next.readSlice(1000)).toEqual([['a', 1]]);
    expect(await next.readSlice(0)).toEqual([]);
  });

  it('a missing blob is an error naming the blob and the partition, not an empty state', async () => {
    const { blobs, pointers } = await fixture();
    await blobs.delete([stateKey('mapWithState-1', 1, 'delta', 3000)]);
    const prev = pointers['mapWithState-1'];
    const e = await new StateBlobs(blobs, 'mapWithState-1', 1, 4000, 1000, prev).readState(prev).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(SluiceError);
    expect((e as SluiceError).message).toBe(
      'mapWithState-1: state blob state/mapWithState-1/p1/delta-000000000003000 is missing; the state of partition 1 cannot be rebuilt',
    );
    expect([(e as SluiceError).batchTime, (e as SluiceError).partition]).toEqual([4000, 1]);
    const slices = new StateBlobs(new MemoryBlobStore(), 'window-1', 0, 3000, 1000, pointer({ lastTime: 2000 }));
    await expect(slices.readSlice(2000)).rejects.toThrow('state blob state/window-1/p0/slice-000000000002000 is missing');
    // A batch after the pointer's last was quiet: its slice is empty, not lost.
    const afterQuiet = new StateBlobs(new MemoryBlobStore(), 'window-1', 0, 5000, 1000, pointer({ lastTime: 2000 }));
    expect(await afterQuiet.readSlice(4000)).toEqual([]);
    await expect(afterQuiet.readSlice(2000)).rejects.toThrow('slice-000000000002000 is missing');
  });

  it('refuses a pointer it cannot start this batch from, saying why; accepts the one it can', () => {
    const at = (prev: StatePointer | undefined) => new StateBlobs(new MemoryBlobStore(), 'totals', 0, 4000, 1000, prev).refusal(2);
    expect(at(pointer({ format: STATE_FORMAT + 1 }))).toBe(`totals: its state was written in format ${STATE_FORMAT + 1}, newer than this release reads (${STATE_FORMAT})`);
    expect(at(pointer({ partitions: 3 }))).toBe(
      'totals: its state has 3 partitions, the job now asks for 2; the partitions of a stateful operator cannot change without starting from fresh state',
    );
    expect(at(pointer({ lastTime: 4000 }))).toBe('totals: its state is at batch 4000, but batch 4000 needs the state of an earlier batch');
    // Batches between the pointer's last and this one were quiet: they changed nothing.
    expect(at(pointer({ lastTime: 2000 }))).toBeUndefined();
    expect(at(pointer({}))).toBeUndefined();
    expect(at(undefined)).toBeUndefined();
  });
});
