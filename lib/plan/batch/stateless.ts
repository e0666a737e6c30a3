import { RecordError, SluiceError } from '../../core/errors.ts';
import { describeValue } from '../../core/values.ts';
import { userFunctionError } from '../recordErrors.ts';
import { Batch, type Emit, type PartitionReader } from './base.ts';

/*
 * Stateless operators, record by record (map, flatMap, filter) or partition by partition
 * (mapPartitions, glom), and union. The record-by-record ones are fused: each is a link that
 * wraps the next operator's receiver, so a task runs the whole chain as one loop per record.
 */

/** The error of a function that had to return records and returned something else. */
function notIterable(label: string, got: unknown, record: unknown): RecordError {
  return new RecordError(`${label}: the function must return an array or iterable, got ${describeValue(got)}`, { nodeId: label, record });
}

/** A chain link of fused narrow operators. */
export class NarrowBatch<T, U> extends Batch<U> {
  constructor(
    readonly parent: Batch<T>,
    label: string,
    /** Turns the downstream receiver into this operator's receiver. */
    readonly link: (emit: Emit<U>, r: PartitionReader) => Emit<T>,
  ) {
    super([parent as Batch<unknown>], label);
  }
  get numPartitions(): number {
    return this.parent.numPartitions;
  }
  protected compute(p: number, r: PartitionReader, emit: Emit<U>): Promise<void> {
    return this.parent.push(p, r, this.link(emit, r));
  }
}

/** An operator that needs a whole partition (mapPartitions, glom): the fused loop stops here. */
export class WholePartitionBatch<T, U> extends Batch<U> {
  constructor(
    readonly parent: Batch<T>,
    label: string,
    readonly fn: (records: T[], partition: number) => Iterable<U>,
  ) {
    super([parent as Batch<unknown>], label);
  }
  get numPartitions(): number {
    return this.parent.numPartitions;
  }
  protected async compute(p: number, r: PartitionReader, emit: Emit<U>): Promise<void> {
    const records: T[] = [];
    await this.parent.push(p, r, (x) => {
      records.push(x);
    });
    let out: U[];
    try {
      out = this.output(records, p);
    } catch (e) {
      // The partition is the record: when the function fails on it, the whole partition is set aside.
      r.recordFailed(this.label, records, userFunctionError(this.label, { partition: p, records }, e));
      return;
    }
    for (let i = 0; i < out.length; i++) emit(out[i]);
  }

  /** The function's output as an array: a lazy iterable is run here, so its errors are the function's and not those of operators further down. */
  private output(records: T[], p: number): U[] {
    const out = this.fn(records, p);
    if (Array.isArray(out)) return out as U[];
    if (out == null || typeof (out as Iterable<U>)[Symbol.iterator] !== 'function') throw notIterable(this.label, out, records);
    return Array.from(out);
  }
}

/** Partitions of several datasets side by side. */
export class UnionBatch<T> extends Batch<T> {
  constructor(parents: readonly Batch<T>[], label: string) {
    super(parents as readonly Batch<unknown>[], label);
  }
  get numPartitions(): number {
    let n = 0;
    for (const p of this.parents) n += p.numPartitions;
    return n;
  }
  /** The parent and its partition that partition `p` of the union is. */
  locate(p: number): [Batch<unknown>, number] {
    let q = p;
    for (const parent of this.parents) {
      const n = parent.numPartitions;
      if (q < n) return [parent, q];
      q -= n;
    }
    throw new SluiceError(`${this.label}: partition ${p} out of range`);
  }
  protected compute(p: number, r: PartitionReader, emit: Emit<T>): Promise<void> {
    const [parent, q] = this.locate(p);
    return parent.push(q, r, emit as Emit<unknown>);
  }
}

declare module './base.ts' {
  interface Batch<T> {
    /**
     * One output record per input record (Spark's `map`).
     * @example
     * ```ts
     * batch.map((line) => line.length);
     * ```
     */
    map<U>(fn: (record: T) => U, label?: string): Batch<U>;

    /**
     * Zero or more output records per input record (Spark's `flatMap`).
     * @example
     * ```ts
     * batch.flatMap((line) => line.split(' '));
     * ```
     */
    flatMap<U>(fn: (record: T) => Iterable<U>, label?: string): Batch<U>;

    /**
     * The records for which `fn` is true (Spark's `filter`).
     * @example
     * ```ts
     * batch.filter((line) => line.includes('ERROR'));
     * ```
     */
    filter(fn: (record: T) => boolean, label?: string): Batch<T>;

    /**
     * A whole partition at once (Spark's `mapPartitions`): `fn` gets the partition's records and
     * its index and returns the output records. Use it to set up something once per partition.
     * @example
     * ```ts
     * batch.mapPartitions((records) => { const re = /\d+/; return records.filter((r) => re.test(r)); });
     * ```
     */
    mapPartitions<U>(fn: (records: T[], partition: number) => Iterable<U>, label?: string): Batch<U>;

    /**
     * Each partition as one array (Spark's `glom`).
     * @example
     * ```ts
     * batch.glom().map((partition) => partition.length);
     * ```
     */
    glom(label?: string): Batch<T[]>;

    /**
     * The records of this batch and of `others`, partitions side by side (Spark's `union`).
     * @example
     * ```ts
     * a.union(b);
     * ```
     */
    union(...others: Batch<T>[]): Batch<T>;
  }
}

// Each operator keeps its own try/catch around its own call of the user's function: see
// lib/plan/recordErrors.ts for why it is not one shared wrapper.

Batch.prototype.map = function map<T, U>(this: Batch<T>, fn: (record: T) => U, label = 'map'): Batch<U> {
  return new NarrowBatch<T, U>(this, label, (emit, r) => (x) => {
    let y: U;
    try {
      y = fn(x);
    } catch (e) {
      r.recordFailed(label, x, e);
      return;
    }
    emit(y);
  });
};

Batch.prototype.flatMap = function flatMap<T, U>(this: Batch<T>, fn: (record: T) => Iterable<U>, label = 'flatMap'): Batch<U> {
  return new NarrowBatch<T, U>(this, label, (emit, r) => (x) => {
    let ys: Iterable<U>;
    try {
      ys = fn(x);
    } catch (e) {
      r.recordFailed(label, x, e);
      return;
    }
    if (Array.isArray(ys)) {
      for (let i = 0; i < ys.length; i++) emit(ys[i]);
      return;
    }
    if (ys == null || typeof (ys as Iterable<U>)[Symbol.iterator] !== 'function') {
      r.recordFailed(label, x, notIterable(label, ys, x));
      return;
    }
    try {
      for (const y of ys) emit(y);
    } catch (e) {
      // Errors of operators further down are theirs (SluiceErrors); anything else came from the iterable.
      if (e instanceof SluiceError) throw e;
      r.recordFailed(label, x, e);
    }
  });
};

Batch.prototype.filter = function filter<T>(this: Batch<T>, fn: (record: T) => boolean, label = 'filter'): Batch<T> {
  return new NarrowBatch<T, T>(this, label, (emit, r) => (x) => {
    let keep: boolean;
    try {
      keep = fn(x);
    } catch (e) {
      r.recordFailed(label, x, e);
      return;
    }
    if (keep) emit(x);
  });
};

Batch.prototype.mapPartitions = function mapPartitions<T, U>(this: Batch<T>, fn: (records: T[], partition: number) => Iterable<U>, label = 'mapPartitions'): Batch<U> {
  return new WholePartitionBatch<T, U>(this, label, fn);
};

Batch.prototype.glom = function glom<T>(this: Batch<T>, label = 'glom'): Batch<T[]> {
  return new WholePartitionBatch<T, T[]>(this, label, (records) => [records]);
};

Batch.prototype.union = function union<T>(this: Batch<T>, ...others: Batch<T>[]): Batch<T> {
  return new UnionBatch<T>([this, ...others], 'union');
};
