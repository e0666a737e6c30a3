import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runBatches } from 'sluice/testing';
import { MemoryBlobStore } from '../../lib/local/memoryBlobStore.ts';
import { MemoryMetaStore } from '../../lib/local/memoryMetaStore.ts';
import { KeyedState, STATE_FORMAT } from '../../lib/plan/state.ts';
import type { JsonValue } from '../../lib/ports/index.ts';
import { job } from '../fixtures/stateFormatJob.ts';

/** Stores holding the checkpoint and state blobs that release 0.1 wrote (format 1). */
async function storesFromFixture(edit?: (checkpoint: Record<string, any>) => void) {
  const fixture = JSON.parse(await readFile(join(import.meta.dirname, '../fixtures/state-format-1.json'), 'utf8')) as {
    checkpoint: Record<string, any>;
    blobs: Record<string, string>;
  };
  edit?.(fixture.checkpoint);
  const meta = new MemoryMetaStore();
  const blobs = new MemoryBlobStore();
  await meta.put('checkpoint', fixture.checkpoint as JsonValue, { expectedVersion: 0, epoch: 0 });
  for (const [k, b64] of Object.entries(fixture.blobs)) await blobs.put(k, Buffer.from(b64, 'base64'));
  return { meta, blobs };
}

describe('durable state format', () => {
  it(`format ${STATE_FORMAT} state written by an earlier release is read back: full blobs plus deltas`, async () => {
    const { meta, blobs } = await storesFromFixture();
    const out = await runBatches({ name: 'state-format', batchInterval: 1000, checkpointInterval: '2s', batches: 1, blobs, meta }, job);
    expect(out).toHaveLength(1);
    expect(out[0].time).toBe(4000);
    const byKey = (x: [unknown, unknown]) => JSON.stringify(x[0]);
    expect(out[0].data.sort((a, b) => byKey(a as [unknown, unknown]).localeCompare(byKey(b as [unknown, unknown])))).toEqual([
      ['a', { n: 3, keys: 'a' }],
      ['b', { n: 1, keys: 'b' }],
      ['c', { n: 1, keys: 'c' }],
      [
        ['k', 1],
        { n: 1, keys: ['k', 1] },
      ],
    ]);
  });

  it('refuses state written in a newer format instead of misreading it', async () => {
    const { meta, blobs } = await storesFromFixture((c) => {
      c.state['mapWithState-1'].format = STATE_FORMAT + 1;
    });
    await expect(runBatches({ name: 'state-format', batchInterval: 1000, checkpointInterval: '2s', batches: 1, blobs, meta, maxTaskAttempts: 1 }, job)).rejects.toThrow(
      /mapWithState-1: its state was written in format 2, newer than this release reads \(1\)/,
    );
  });

  it('says which blob is missing when state cannot be rebuilt', async () => {
    const { meta, blobs } = await storesFromFixture();
    await blobs.delete(['state/mapWithState-1/p1/full-000000000002000']);
    await expect(runBatches({ name: 'state-format', batchInterval: 1000, checkpointInterval: '2s', batches: 1, blobs, meta, maxTaskAttempts: 1 }, job)).rejects.toThrow(
      /state blob state\/mapWithState-1\/p1\/full-000000000002000 is missing/,
    );
  });

  it('refuses a change of a stateful operator’s partition count', async () => {
    const { meta, blobs } = await storesFromFixture((c) => {
      c.state.totals.partitions = 3;
    });
    await expect(runBatches({ name: 'state-format', batchInterval: 1000, checkpointInterval: '2s', batches: 1, blobs, meta, maxTaskAttempts: 1 }, job)).rejects.toThrow(
      /totals: its state has 3 partitions, the job now asks for 2/,
    );
  });

  it('a delta holds what changed and what was removed, and applying it to the full state gives the new state', () => {
    const s = KeyedState.fromFull('t', [
      ['a', 1, 1000],
      [['k', 1], 2, 1000],
      ['gone', 3, 1000],
    ]);
    s.markSaved();
    s.set('a', 10, 2000);
    s.set(['k', 1], 20, 2000);
    s.delete('gone');
    s.set('new', 4, 2000);
    const delta = s.delta();
    const rebuilt = KeyedState.fromFull('t', [
      ['a', 1, 1000],
      [['k', 1], 2, 1000],
      ['gone', 3, 1000],
    ]);
    rebuilt.applyDelta(delta);
    expect(rebuilt.full()).toEqual(s.full());
    expect(delta).toHaveLength(4);
    expect(delta).toContainEqual(['gone']);
  });
});
