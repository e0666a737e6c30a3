import { describe, expect, it } from 'vitest';
import type { StreamingContext } from 'sluice';
import { FencedError } from '../../lib/core/errors.ts';
import type { Receiver } from '../../lib/core/receiver.ts';
import { MemoryBlobStore } from '../../lib/local/memoryBlobStore.ts';
import { MemoryMetaStore } from '../../lib/local/memoryMetaStore.ts';
import type { BlobStore, SinkResolver } from '../../lib/ports/index.ts';
import { interceptInvoker, testCoordinator } from '../helpers/engine.ts';

/**
 * What a batch writes to a `saveAs*` sink when its output is empty, and when it is not: the same
 * on every sink (the local file system, S3). A batch with a record writes Spark's layout (a part
 * per partition, empty ones included, then `_SUCCESS`); a batch without writes nothing there
 * unless it was cut with `writeEmptyBatches`; and so whatever crashes or overlaps. Each sink's
 * test file calls {@link describeEmptyBatches} with a fixture.
 */

/** A sink area of its own for one test. */
export interface SinkSubject {
  readonly sinks: SinkResolver;
  /** The output location (`saveAs*` prefix) named `name` in this area. */
  location(name: string): string;
  /** The names of the objects put under `location` (a batch's directory), in order, as the sink's service saw the requests. */
  putsUnder(location: string): string[];
  dispose(): Promise<void>;
}

/** How to make a {@link SinkSubject}, and the name its tests run under. */
export interface SinkFixture {
  readonly name: string;
  create(): Promise<SinkSubject>;
}

/** Every object under a batch's `location`, by name within it, as text. */
async function filesAt(sinks: SinkResolver, location: string): Promise<Record<string, string>> {
  const { store, key } = sinks(location);
  const out: Record<string, string> = {};
  for (const k of (await store.list(`${key}/`)).sort()) out[k.slice(key.length + 1)] = new TextDecoder().decode(await store.get(k));
  return out;
}

/** Sinks whose puts `hold` picks wait until `release()` (a write that lands late), and notes of what every put wrote. */
function holdingSinks(inner: SinkResolver, hold: (key: string) => boolean) {
  const held: (() => Promise<void>)[] = [];
  let onHeld: (() => void) | undefined;
  const wrap = (store: BlobStore): BlobStore => ({
    put: (key, body) => {
      if (!hold(key)) return store.put(key, body);
      return new Promise<void>((resolve, reject) => {
        held.push(() => store.put(key, body).then(resolve, reject));
        onHeld?.();
      });
    },
    get: (k) => store.get(k),
    getRange: (k, a, b) => store.getRange(k, a, b),
    exists: (k) => store.exists(k),
    delete: (k) => store.delete(k),
    list: (p) => store.list(p),
  });
  return {
    sinks: ((location: string) => {
      const { store, key } = inner(location);
      return { store: wrap(store), key };
    }) as SinkResolver,
    /** Resolves once a put is held. */
    held: () => new Promise<void>((resolve) => (held.length ? resolve() : (onHeld = resolve))),
    /** Lets every held put land now, in order. */
    release: async () => {
      for (const land of held.splice(0)) await land();
    },
  };
}

/** A promise the test settles itself. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { opened, open };
}

const EMPTY3 = { _SUCCESS: '', 'part-00000': '', 'part-00001': '', 'part-00002': '' };

/**
 * Declares the tests once per fixture.
 *
 * @example
 * ```ts
 * describeEmptyBatches([{ name: 'local files', create: async () => ({ sinks, location, putsUnder, dispose }) }]);
 * ```
 */
export function describeEmptyBatches(fixtures: readonly SinkFixture[]): void {
  describe.each(fixtures)('empty batches on $name', (fixture) => {
    /** Runs `body` with a fresh sink area, disposed after. */
    const withSink = (body: (s: SinkSubject) => Promise<void>) => async () => {
      const s = await fixture.create();
      try {
        await body(s);
      } finally {
        await s.dispose();
      }
    };
    /** Three batches: two records over three partitions (the first one empty), none, one record. */
    const words = (prefix: string) => (ctx: StreamingContext) => ctx.queueStream([['a', 'b'], [], ['c']], { numPartitions: 3 }).saveAsTextFiles(prefix);

    it(
      'by default a batch without records writes nothing; a batch with records writes every part, empty ones included, then _SUCCESS',
      withSink(async (s) => {
        // Act
        const t = testCoordinator({ batchInterval: 1000 }, words(s.location('words')), { sinks: s.sinks });
        await t.run(3);

        // Assess: not one request for the empty batch, and it is committed all the same.
        expect(t.coordinator.lastCompleted).toBe(3000);
        expect(await filesAt(s.sinks, `${s.location('words')}-1000`)).toEqual({ _SUCCESS: '', 'part-00000': '', 'part-00001': 'a\n', 'part-00002': 'b\n' });
        expect(await filesAt(s.sinks, `${s.location('words')}-2000`)).toEqual({});
        expect(s.putsUnder(`${s.location('words')}-2000`)).toEqual([]);
        expect(await filesAt(s.sinks, `${s.location('words')}-3000`)).toEqual({ _SUCCESS: '', 'part-00000': '', 'part-00001': '', 'part-00002': 'c\n' });
        // _SUCCESS last.
        expect(s.putsUnder(`${s.location('words')}-3000`).at(-1)).toBe('_SUCCESS');
      }),
    );

    it(
      "with writeEmptyBatches: true a batch without records writes Spark's empty parts and _SUCCESS",
      withSink(async (s) => {
        const t = testCoordinator({ batchInterval: 1000, writeEmptyBatches: true }, words(s.location('words')), { sinks: s.sinks });
        await t.run(3);

        expect(await filesAt(s.sinks, `${s.location('words')}-2000`)).toEqual(EMPTY3);
        expect(s.putsUnder(`${s.location('words')}-2000`)).toEqual(['part-00000', 'part-00001', 'part-00002', '_SUCCESS']);
        expect(await filesAt(s.sinks, `${s.location('words')}-1000`)).toEqual({ _SUCCESS: '', 'part-00000': '', 'part-00001': 'a\n', 'part-00002': 'b\n' });
      }),
    );

    it(
      'a coordinator that dies after some parts of a batch with records: the next one writes every part and _SUCCESS, as a fault-free run does',
      withSink(async (s) => {
        // Prepare: the reference, fault-free; then coordinator A, whose second output task with records never answers.
        const ref = testCoordinator({ batchInterval: 1000 }, words(s.location('ref')), { sinks: s.sinks });
        await ref.run(1);
        const common = { meta: new MemoryMetaStore(), blobs: new MemoryBlobStore(), sinks: s.sinks, leaseMs: 5000 };
        const died = gate();
        let written = 0;
        const a = testCoordinator({ batchInterval: 1000 }, words(s.location('words')), {
          ...common,
          owner: 'A',
          wrapInvoker: (inner) =>
            interceptInvoker(inner, async (task, go) => {
              if (task.stage.kind === 'result' && written > 0) {
                died.open();
                return new Promise(() => {});
              }
              const answer = (await go()) as { value?: number };
              if (task.stage.kind === 'result' && (answer.value ?? 0) > 0) written++;
              return answer;
            }),
        });
        await a.coordinator.start();
        a.clock.set(1000);
        void a.coordinator.runNextBatch();
        await died.opened;
        expect(await filesAt(s.sinks, `${s.location('words')}-1000`)).toEqual({ 'part-00001': 'a\n' });

        // Act: B takes over once A's lease has run out.
        const b = testCoordinator({ batchInterval: 1000 }, words(s.location('words')), { ...common, owner: 'B' });
        b.clock.set(10_000);
        await b.run(1);

        // Assess
        expect(b.coordinator.lastCompleted).toBe(1000);
        expect(await filesAt(s.sinks, `${s.location('words')}-1000`)).toEqual(await filesAt(s.sinks, `${s.location('ref')}-1000`));
      }),
    );

    /**
     * Coordinator A cuts batch 1000 and stalls in its output stage; B (with `bOptions`) takes the
     * batch over and commits it; then A goes on. Resolves once A has given up (fenced) and B ran
     * `bBatches` batches.
     */
    async function overlap(s: SinkSubject, job: (ctx: StreamingContext) => void, aOptions: { writeEmptyBatches?: boolean }, bOptions: { writeEmptyBatches?: boolean }, bBatches = 1) {
      const common = { meta: new MemoryMetaStore(), blobs: new MemoryBlobStore(), sinks: s.sinks, leaseMs: 5000 };
      const stalled = gate();
      const resume = gate();
      const a = testCoordinator({ batchInterval: 1000, ...aOptions }, job, {
        ...common,
        owner: 'A',
        wrapInvoker: (inner) =>
          interceptInvoker(inner, async (task, go) => {
            if (task.stage.kind === 'result') {
              stalled.open();
              await resume.opened;
            }
            return go();
          }),
      });
      await a.coordinator.start();
      a.clock.set(1000);
      const aRun = a.coordinator.runNextBatch();
      await stalled.opened;
      const b = testCoordinator({ batchInterval: 1000, ...bOptions }, job, { ...common, owner: 'B' });
      b.clock.set(10_000);
      await b.run(bBatches);
      resume.open();
      await expect(aRun).rejects.toBeInstanceOf(FencedError);
      return b;
    }

    it(
      'an empty batch whose output stage two coordinators run at once: neither writes anything, whichever finishes last',
      withSink(async (s) => {
        const job = (ctx: StreamingContext) => ctx.queueStream<string>([[]], { numPartitions: 3 }).saveAsTextFiles(s.location('words'));

        const b = await overlap(s, job, {}, {});

        expect(b.coordinator.lastCompleted).toBe(1000);
        expect(s.putsUnder(`${s.location('words')}-1000`)).toEqual([]);
        expect(await filesAt(s.sinks, `${s.location('words')}-1000`)).toEqual({});
      }),
    );

    it(
      'the batch record decides: a coordinator with the other writeEmptyBatches that recovers an empty batch does what the one that cut it does',
      withSink(async (s) => {
        const spark = (ctx: StreamingContext) => ctx.queueStream<string>([[]], { numPartitions: 3 }).saveAsTextFiles(s.location('spark'));
        const quiet = (ctx: StreamingContext) => ctx.queueStream<string>([[]], { numPartitions: 3 }).saveAsTextFiles(s.location('quiet'));

        // Act: A cut batch 1000 with writeEmptyBatches, B (without) takes it over, then cuts 2000; and the other way round.
        await overlap(s, spark, { writeEmptyBatches: true }, { writeEmptyBatches: false }, 2);
        await overlap(s, quiet, { writeEmptyBatches: false }, { writeEmptyBatches: true }, 2);

        // Assess: both coordinators wrote the same objects to batch 1000 (or none); each later batch follows the coordinator that cut it.
        expect(await filesAt(s.sinks, `${s.location('spark')}-1000`)).toEqual(EMPTY3);
        expect(await filesAt(s.sinks, `${s.location('spark')}-2000`)).toEqual({});
        expect(s.putsUnder(`${s.location('quiet')}-1000`)).toEqual([]);
        expect(await filesAt(s.sinks, `${s.location('quiet')}-2000`)).toEqual(EMPTY3);
      }),
    );

    it(
      "a batch with records whose output two coordinators write at once, one part held back until after the other's commit: the parts and _SUCCESS of a fault-free run, each written with the same bytes",
      withSink(async (s) => {
        // Prepare: the reference; then A, whose first part write is held, and B, which takes the batch over meanwhile.
        const ref = testCoordinator({ batchInterval: 1000 }, words(s.location('ref')), { sinks: s.sinks });
        await ref.run(1);
        let holding = true;
        const late = holdingSinks(s.sinks, (key) => holding && key.includes('/part-'));
        const common = { meta: new MemoryMetaStore(), blobs: new MemoryBlobStore(), leaseMs: 5000 };
        const a = testCoordinator({ batchInterval: 1000 }, words(s.location('words')), { ...common, sinks: late.sinks, owner: 'A' });
        await a.coordinator.start();
        a.clock.set(1000);
        const aRun = a.coordinator.runNextBatch();
        await late.held();
        holding = false;

        // Act: B commits the batch; then A's held write lands and A goes on to its own empty parts and _SUCCESS.
        const b = testCoordinator({ batchInterval: 1000 }, words(s.location('words')), { ...common, sinks: s.sinks, owner: 'B' });
        b.clock.set(10_000);
        await b.run(1);
        const committed = await filesAt(s.sinks, `${s.location('words')}-1000`);
        await late.release();
        await expect(aRun).rejects.toBeInstanceOf(FencedError);

        // Assess: what B committed is the reference, and A's late writes changed nothing.
        const reference = await filesAt(s.sinks, `${s.location('ref')}-1000`);
        expect(committed).toEqual(reference);
        expect(await filesAt(s.sinks, `${s.location('words')}-1000`)).toEqual(reference);
        // Both coordinators wrote every object of the batch: B first, then A, late.
        const puts = s.putsUnder(`${s.location('words')}-1000`);
        for (const name of ['part-00000', 'part-00001', 'part-00002', '_SUCCESS']) expect(puts.filter((k) => k === name), name).toHaveLength(2);
      }),
    );

    /** Saves what a receiver got, repartitioned into `n` and kept by `keep`; its input is sealed at the cut. */
    const received = (s: SinkSubject, n: number, keep: (r: string) => boolean, records: string[]) => (ctx: StreamingContext) => {
      const receiver: Receiver<string> = { start: (store) => store(records), stop: () => {} };
      ctx.receiverStream(receiver).named('in').repartition(n).filter(keep).saveAsTextFiles(s.location('r'));
    };

    /** Runs batch 1000 of `v1` until it has written its parts and crashes; resolves to the stores a second run resumes on. */
    async function crashAfterParts(s: SinkSubject, v1: (ctx: StreamingContext) => void) {
      const meta = new MemoryMetaStore();
      const blobs = new MemoryBlobStore();
      const first = testCoordinator({ batchInterval: 1000 }, v1, {
        meta,
        blobs,
        sinks: s.sinks,
        onStep: (step) => {
          if (step === 'part') throw new Error('crash after the parts');
        },
      });
      await expect(first.run(1)).rejects.toThrow('crash after the parts');
      expect(Object.keys(await filesAt(s.sinks, `${s.location('r')}-1000`))).toEqual(['part-00000', 'part-00001']);
      await first.coordinator.releaseLease();
      return { meta, blobs, sinks: s.sinks };
    }

    it(
      '--allow-plan-change on a batch in flight whose new plan leaves the output empty: what the old plan wrote is cleared and nothing is written',
      withSink(async (s) => {
        // Prepare: v1 (two partitions) wrote the parts of batch 1000.
        const stores = await crashAfterParts(s, received(s, 2, () => true, ['p', 'q']));

        // Act: v2, another plan (three partitions, a filter that keeps nothing), resumes the batch, re-cut.
        const v2 = testCoordinator({ batchInterval: 1000 }, received(s, 3, () => false, []), { ...stores, allowPlanChange: true });
        await v2.run(1);

        // Assess
        expect(v2.log.infos.some((l) => l.includes('recovering batch'))).toBe(false);
        expect(v2.coordinator.lastCompleted).toBe(1000);
        expect(await filesAt(s.sinks, `${s.location('r')}-1000`)).toEqual({});
      }),
    );
  });
}
