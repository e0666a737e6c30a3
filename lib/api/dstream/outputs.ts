import type { Batch, PartitionInfo } from '../../plan/batch.ts';
import type { GraphNode, OutputKind, OutputNode } from '../../plan/graph.ts';
import { describeValue } from '../../core/values.ts';
import { JobDefinitionError } from '../../core/errors.ts';
import { DStream } from './base.ts';
import { checkFn } from './checks.ts';

// Output operations (Spark's output operations on DStreams): what makes a job run. Each adds an
// output node that the coordinator runs at every batch (lib/engine/outputs.ts).

declare module './base.ts' {
  interface DStream<T> {
    /**
     * Prints the first `num` records of every batch on the coordinator, in Spark's format
     * (a `Time: <ms> ms` header, then one record per line, `...` when there are more).
     * @example
     * ```ts
     * counts.print(20);
     * ```
     */
    print(num?: number): void;

    /**
     * Saves every batch as text files, one record per line: `<prefix>-<batchTimeMs>[.<suffix>]/part-00000`,
     * `part-00001`, ... and `_SUCCESS` once all parts exist (Spark's `saveAsTextFiles`). The prefix is
     * a local path, or `s3://bucket/key` on AWS. A batch that is run again writes the same bytes to the
     * same files, so every batch is saved exactly once.
     * @example
     * ```ts
     * counts.saveAsTextFiles('out/wordcount');           // out/wordcount-1700000001000/part-00000
     * counts.saveAsTextFiles('s3://my-bucket/counts', 'txt');
     * ```
     */
    saveAsTextFiles(prefix: string, suffix?: string): void;

    /**
     * Like `saveAsTextFiles`, one JSON document per line.
     * @example
     * ```ts
     * events.saveAsJsonFiles('out/events', 'jsonl');
     * ```
     */
    saveAsJsonFiles(prefix: string, suffix?: string): void;

    /**
     * Runs `fn` on the coordinator for every batch (Spark's `foreachRDD`); use the batch's actions
     * (`collect`, `count`, `foreachPartition`, ...) inside. Runs again if the batch is recomputed
     * after a failure (at least once), like Spark.
     * @example
     * ```ts
     * counts.foreachRDD(async (batch, time) => {
     *   const top = await batch.take(3);
     *   console.log(new Date(time).toISOString(), top);
     * });
     * ```
     */
    foreachRDD(fn: (batch: Batch<T>, time: number) => unknown): void;

    /**
     * Same as {@link DStream.foreachRDD} (the name Spark's Structured Streaming uses).
     * @example
     * ```ts
     * counts.foreachBatch(async (batch, time) => console.log(time, await batch.count()));
     * ```
     */
    foreachBatch(fn: (batch: Batch<T>, time: number) => unknown): void;

    /**
     * Runs `fn` on the workers once per partition of every batch: open one connection per
     * partition here to write to a custom sink (Spark's `foreachRDD(rdd => rdd.foreachPartition(...))`).
     * @example
     * ```ts
     * counts.foreachPartition(async (records, { partition, batchTime }) => {
     *   const db = await connect();
     *   await db.upsert(records.map(([k, n]) => ({ k, n, batchTime, partition })));
     *   await db.close();
     * });
     * ```
     */
    foreachPartition(fn: (records: T[], info: PartitionInfo) => unknown): void;

    /** @internal The test harness's output: hands every batch's partitions to `fn` on the coordinator. */
    capture(fn: (time: number, partitions: T[][]) => void): void;
  }
}

DStream.prototype.print = function print<T>(this: DStream<T>, num = 10): void {
  if (!Number.isInteger(num) || num < 1) throw new JobDefinitionError(`print: num must be a whole number >= 1, got ${String(num)}`);
  addOutput(this, 'print', { num, params: { num } });
};

DStream.prototype.saveAsTextFiles = function saveAsTextFiles<T>(this: DStream<T>, prefix: string, suffix?: string): void {
  checkPrefix(prefix, suffix, 'saveAsTextFiles');
  addOutput(this, 'saveAsTextFiles', { prefix, suffix, params: { prefix, suffix: suffix ?? null } });
};

DStream.prototype.saveAsJsonFiles = function saveAsJsonFiles<T>(this: DStream<T>, prefix: string, suffix?: string): void {
  checkPrefix(prefix, suffix, 'saveAsJsonFiles');
  addOutput(this, 'saveAsJsonFiles', { prefix, suffix, params: { prefix, suffix: suffix ?? null } });
};

DStream.prototype.foreachRDD = function foreachRDD<T>(this: DStream<T>, fn: (batch: Batch<T>, time: number) => unknown): void {
  checkFn(fn, 'foreachRDD');
  addOutput(this, 'foreachRDD', { fn, fns: [fn] });
};

DStream.prototype.foreachBatch = function foreachBatch<T>(this: DStream<T>, fn: (batch: Batch<T>, time: number) => unknown): void {
  this.foreachRDD(fn);
};

DStream.prototype.foreachPartition = function foreachPartition<T>(this: DStream<T>, fn: (records: T[], info: PartitionInfo) => unknown): void {
  checkFn(fn, 'foreachPartition');
  addOutput(this, 'foreachPartition', { fn, fns: [fn] });
};

DStream.prototype.capture = function capture<T>(this: DStream<T>, fn: (time: number, partitions: T[][]) => void): void {
  addOutput(this, 'capture', { fn });
};

/** Adds an output node of `kind` reading `stream`; `params` and the count of `fns` enter the plan's fingerprint. */
function addOutput(stream: DStream<unknown>, kind: OutputKind, extra: Partial<OutputNode> & { params?: GraphNode['params']; fns?: unknown[] }): void {
  const node = stream.graph.addNode(kind, [stream.node], extra.params ?? {}, extra.fns ?? []);
  stream.graph.outputs.push({ ...extra, node, kind, batchAt: (plan) => stream.batchAt(plan) });
}

function checkPrefix(prefix: unknown, suffix: unknown, op: string): void {
  if (typeof prefix !== 'string' || prefix.trim() === '') {
    throw new JobDefinitionError(`${op}: prefix must be a non-empty path or s3:// location, got ${describeValue(prefix)}`);
  }
  if (suffix !== undefined && (typeof suffix !== 'string' || /[/\\]/.test(suffix))) {
    throw new JobDefinitionError(`${op}: suffix must be a string without slashes, got ${describeValue(suffix)}`);
  }
}
