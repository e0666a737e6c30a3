import type { JobOptions } from '../lib/api/job.ts';
import type { Receiver } from '../lib/core/receiver.ts';
import type { StreamingContext } from '../lib/api/context.ts';
import { StateSpec } from '../lib/api/dstream.ts';
import type { State } from '../lib/plan/state.ts';
import type { StreamRecord } from './inputs.ts';

/** What a simulated job's build function gets besides the context. */
export interface JobEnv {
  /** A receiver fed by the simulation (a dummy where it is never started). */
  receiver(): Receiver<string>;
  /** Notes a `foreachPartition` call, for the at-least-once check. */
  called(batchTime: number, partition: number, records: unknown[]): void;
}

/** A job the simulation runs: which inputs it reads, its options, and its streams. */
export interface SimJob {
  readonly name: string;
  readonly inputs: { readonly stream?: boolean; readonly receiver?: boolean };
  readonly options?: Partial<JobOptions>;
  build(ctx: StreamingContext, env: JobEnv): void;
}

const pair = (r: StreamRecord): [string, number] => [r.k, r.v];

/** The jobs; each seed picks one. Every output that must be exactly-once is a `saveAs*` sink under `out/`. */
export const JOBS: readonly SimJob[] = [
  {
    name: 'map-only',
    inputs: { stream: true },
    build: (ctx) => {
      ctx
        .kinesisStream<StreamRecord>('events')
        .filter((r) => r.v % 5 !== 0)
        .map((r) => `${r.s}/${r.n} ${r.k}=${r.v}`)
        .saveAsTextFiles('out/lines');
    },
  },
  {
    name: 'shuffle',
    inputs: { stream: true },
    build: (ctx) => {
      const counts = ctx
        .kinesisStream<StreamRecord>('events')
        .map(pair)
        .reduceByKey((a, b) => a + b, { numPartitions: 3 });
      counts.saveAsTextFiles('out/sums');
      counts.print(3);
    },
  },
  {
    name: 'self-join',
    inputs: { stream: true },
    build: (ctx) => {
      const pairs = ctx.kinesisStream<StreamRecord>('events').map(pair);
      pairs
        .join(pairs.mapValues((v) => v * 10), { numPartitions: 2 })
        .map(([k, [a, b]]) => `${k} ${a} ${b}`)
        .saveAsTextFiles('out/joined');
    },
  },
  {
    name: 'windows',
    inputs: { stream: true },
    build: (ctx) => {
      const pairs = ctx.kinesisStream<StreamRecord>('events').map((r): [string, number] => [r.k, 1]);
      const interval = ctx.batchInterval;
      pairs.reduceByKeyAndWindow((a, b) => a + b, (a, b) => a - b, 3 * interval, interval, { numPartitions: 2 }).saveAsTextFiles('out/inverse');
      pairs.reduceByKeyAndWindow((a, b) => a + b, 4 * interval, 2 * interval, { numPartitions: 2 }).saveAsTextFiles('out/plain');
      pairs.countByWindow(2 * interval, interval).saveAsTextFiles('out/count');
    },
  },
  {
    name: 'update-state',
    inputs: { stream: true },
    build: (ctx) => {
      ctx
        .kinesisStream<StreamRecord>('events')
        .map(pair)
        .updateStateByKey((vs: number[], s: number | undefined) => (s ?? 0) + vs.reduce((a, b) => a + b, 0), { numPartitions: 3 })
        .saveAsJsonFiles('out/totals');
    },
  },
  {
    name: 'map-with-state',
    inputs: { stream: true },
    build: (ctx) => {
      const spec = StateSpec.function((k: string, v: number | undefined, state: State<number>) => {
        if (state.isTimingOut()) return `${k} timed out at ${state.get()}`;
        const n = (state.getOption() ?? 0) + 1;
        state.update(n);
        return `${k}#${n}=${v}`;
      })
        .timeout(3 * ctx.batchInterval)
        .numPartitions(2);
      const mapped = ctx.kinesisStream<StreamRecord>('events').map(pair).mapWithState(spec);
      mapped.saveAsTextFiles('out/mapped');
      mapped.stateSnapshots().saveAsTextFiles('out/snapshots');
    },
  },
  {
    name: 'dead-letters',
    inputs: { stream: true },
    options: { onRecordError: 'dead-letter' },
    build: (ctx) => {
      ctx
        .kinesisStream<StreamRecord>('events')
        .map((r): [string, number] => {
          if (r.v % 11 === 3) throw new Error(`poison record ${r.v}`);
          return [r.k, r.v % 17 === 0 ? -r.v : r.v];
        })
        // A poison key: the reduce function refuses negative values, so the key is set aside for the batch.
        .reduceByKey(
          (a, b) => {
            if (a < 0 || b < 0) throw new Error('negative');
            return a + b;
          },
          { numPartitions: 2 },
        )
        .saveAsTextFiles('out/sums');
    },
  },
  {
    name: 'sparse',
    inputs: { stream: true },
    build: (ctx) => {
      // Most batches hold no record that passes the filter: their outputs write nothing (or, with
      // writeEmptyBatches, Spark's empty parts and _SUCCESS); the others write every part.
      const rare = ctx.kinesisStream<StreamRecord>('events').filter((r) => r.v % 150 === 0);
      rare.map((r) => `${r.s}/${r.n} ${r.k}=${r.v}`).saveAsTextFiles('out/rare');
      rare.map(pair).reduceByKey((a, b) => a + b, { numPartitions: 3 }).saveAsJsonFiles('out/rare-sums');
    },
  },
  {
    name: 'receiver',
    inputs: { receiver: true },
    build: (ctx, env) => {
      ctx
        .receiverStream(env.receiver())
        .map((r) => r.split(':')[1])
        .countByValue()
        .saveAsTextFiles('out/counts');
    },
  },
  {
    name: 'union-cache',
    inputs: { stream: true },
    build: (ctx) => {
      const queue = ctx.queueStream(
        Array.from({ length: 60 }, (_, i) => [`q${i}`, `q${i % 3}`]),
        { numPartitions: 2 },
      );
      const both = ctx.kinesisStream<StreamRecord>('events').map((r) => r.k).union(queue).persist();
      both.saveAsTextFiles('out/all');
      both.map((w): [string, number] => [w, 1]).reduceByKey((a, b) => a + b, { numPartitions: 2 }).saveAsTextFiles('out/counts');
    },
  },
  {
    name: 'foreach-partition',
    inputs: { stream: true },
    build: (ctx, env) => {
      // One output only: a stream with several outputs is cached, which would seal its input first anyway.
      ctx
        .kinesisStream<StreamRecord>('events')
        .map((r) => `${r.k}=${r.v}`)
        .foreachPartition((records, { batchTime, partition }) => env.called(batchTime, partition, records));
    },
  },
];
