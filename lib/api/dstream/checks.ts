import type { PartitionOptions } from '../../plan/batch.ts';
import { describeValue } from '../../core/values.ts';
import { JobDefinitionError } from '../../core/errors.ts';

// The argument checks every operator family shares: each throws when the job is built, naming the
// operator, so a wrong argument never reaches a running batch.

/** @internal Throws unless `fn` is a function. */
export function checkFn(fn: unknown, op: string): void {
  if (typeof fn !== 'function') throw new JobDefinitionError(`${op}: expected a function, got ${describeValue(fn)}`);
}

/** @internal Throws unless `options.numPartitions` is absent or a whole number >= 1. */
export function checkNumPartitions(options: PartitionOptions | undefined, op: string): void {
  const n = options?.numPartitions;
  if (n !== undefined && (!Number.isInteger(n) || n < 1)) {
    throw new JobDefinitionError(`${op}: numPartitions must be a whole number >= 1, got ${String(n)}`);
  }
}

/** @internal Throws unless every stream produces batches at the same interval: operators over several streams pair their batches by time. */
export function checkSameSlide(streams: readonly { readonly id: string; readonly slideDuration: number }[], op: string): void {
  const slides = new Set(streams.map((s) => s.slideDuration));
  if (slides.size > 1) {
    throw new JobDefinitionError(
      `${op}: all streams must produce batches at the same interval, got ${streams.map((s) => `${s.id} every ${s.slideDuration} ms`).join(', ')}`,
    );
  }
}
