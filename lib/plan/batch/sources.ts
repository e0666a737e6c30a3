import { activeScope, Batch, type Emit, type PartitionReader, type Scope } from './base.ts';

/*
 * Datasets without a parent, where a batch's records come from: a source's input splits, and
 * records every process holds in memory.
 */

/** Records of one source node in one batch: one partition per input split. */
export class SourceBatch<T> extends Batch<T> {
  constructor(
    scope: Scope,
    readonly nodeId: string,
  ) {
    super([], nodeId, scope);
  }
  get numPartitions(): number {
    return this.scope.splitCount(this.nodeId);
  }
  protected async compute(p: number, r: PartitionReader, emit: Emit<T>): Promise<void> {
    const records = await r.source(this.nodeId, p);
    // The position is kept up to date only for dead letters to name where a bad record came from.
    const pos = { nodeId: this.nodeId, partition: p, offset: 0 };
    const outer = r.position;
    r.position = pos;
    for (let i = 0; i < records.length; i++) {
      pos.offset = i;
      emit(records[i] as T);
    }
    r.position = outer;
  }
}

/** Records held in memory in every process: `ctx.parallelize` data, or an array a transform returned. */
export class StaticBatch<T> extends Batch<T> {
  readonly partitions: readonly (readonly T[])[];
  constructor(data: readonly T[], numPartitions: number, label: string, scope?: Scope) {
    super([], label, scope ?? activeScope());
    // Spark's parallelize slices into contiguous, nearly equal ranges.
    const parts: T[][] = [];
    for (let i = 0; i < numPartitions; i++) {
      parts.push(data.slice(Math.floor((i * data.length) / numPartitions), Math.floor(((i + 1) * data.length) / numPartitions)));
    }
    this.partitions = parts;
  }
  get numPartitions(): number {
    return this.partitions.length;
  }
  protected compute(p: number, _r: PartitionReader, emit: Emit<T>): Promise<void> {
    const part = this.partitions[p];
    for (let i = 0; i < part.length; i++) emit(part[i]);
    return Promise.resolve();
  }
}
