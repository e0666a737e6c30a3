import { RecordError, SluiceError } from '../core/errors.ts';
import type { PartitionReader } from './batch.ts';
import type { BatchPlan } from './graph.ts';
import { describeValue } from '../core/values.ts';
import { describeKey } from './keys.ts';

/**
 * Where a user function's failure goes: the `onRecordError` job option. What the failure
 * concerns decides where it is handed:
 *
 * - one record (map, flatMap, filter, mapValues, flatMapValues, a decoder, a sortBy key,
 *   map-side create; for mapPartitions the record is the whole partition): the operator catches
 *   and calls `PartitionReader.recordFailed`. Each operator has its own try/catch around its own
 *   call: through a shared wrapper the call to the user's function would be one call site for
 *   every operator of the job, which V8 then cannot inline (word count ran about 10% slower);
 * - one key and its values (a reduce or combine function merging, on the map or the reduce side
 *   (`mergeByKey` in shuffle.ts); updateStateByKey, mapWithState, window reduce, inverse and filter
 *   functions): {@link onKey}, which calls `PartitionReader.keyFailed`; the caller leaves the key out;
 * - one batch's plan (transform functions, called while the plan is built): {@link planFailed}.
 *
 * The reader (the worker's task reader) and `planFailed` apply the one rule, {@link setsAside}:
 * under `'fail'` the error ({@link recordError}, {@link keyError}) is thrown and fails the task
 * (retried, then the batch); under `'dead-letter'` a user's fault is written as a dead letter and
 * the batch goes on without it.
 */

/** What {@link onKey} returns when the function threw and the key was set aside. */
export const FAILED: unique symbol = Symbol('failed');
export type Failed = typeof FAILED;

/** The rule of `onRecordError`: whether `err` is set aside rather than thrown. Only a user's fault (a RecordError) is. */
export function setsAside(mode: 'fail' | 'dead-letter', err: SluiceError): boolean {
  return mode === 'dead-letter' && err instanceof RecordError;
}

/** The message of anything thrown. */
export function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** A record in an error message: a pair by its key, anything else by what it is. */
function describeRecord(record: unknown): string {
  if (Array.isArray(record) && record.length === 2 && (typeof record[0] === 'string' || typeof record[0] === 'number')) {
    return `the pair with key ${describeKey(record[0])}`;
  }
  return describeValue(record);
}

/** The error of a user function that threw on `record`, naming the operator and the record. */
export function recordError(label: string, record: unknown, e: unknown): SluiceError {
  // SluiceErrors come from Sluice itself or from operators further down: they are already theirs.
  if (e instanceof SluiceError) return e;
  return new RecordError(`${label} threw on ${describeRecord(record)}: ${messageOf(e)}`, { nodeId: label, cause: e });
}

/** The error of a user function that threw on the values of `key`, naming the operator and the key. */
export function keyError(label: string, key: unknown, e: unknown): SluiceError {
  if (e instanceof SluiceError) return e;
  return new RecordError(`${label} threw on key ${describeKey(key)}: ${messageOf(e)}`, { nodeId: label, cause: e });
}

/**
 * Calls `fn(key, a, b, c)`, a function of `key`'s values. If it throws, the reader fails the task
 * or sets the key aside with `[a, b]` (the values it was given; a state operator passes the
 * key's state as `b`, left out when the key has none), and this returns {@link FAILED}: the
 * caller leaves the key out of this batch. `note` says what became of the key's state.
 */
export function onKey<A, B, C, R>(
  r: PartitionReader,
  label: string,
  note: string | undefined,
  fn: (key: unknown, a: A, b: B, c: C) => R,
  key: unknown,
  a: A,
  b: B,
  c: C,
): R | Failed {
  try {
    return fn(key, a, b, c);
  } catch (e) {
    r.keyFailed(label, key, b === undefined ? [a] : [a, b], e, note);
    return FAILED;
  }
}

/**
 * A transform function of node `nodeId` threw `e` (or returned no batch) while the plan of batch
 * `plan.time` was built: throws under `'fail'`, or notes a dead letter on the plan, and the
 * caller gives the stream an empty batch at this time. Coordinator and workers plan the same
 * batch alike; only the coordinator writes the plan's dead letters, once per batch.
 */
export function planFailed(plan: BatchPlan, nodeId: string, e: unknown): void {
  const err = e instanceof SluiceError ? e : new RecordError(`${nodeId}: the transform function threw: ${messageOf(e)}`, { nodeId, batchTime: plan.time, cause: e });
  if (!setsAside(plan.graph.onRecordError, err)) throw err;
  plan.deadLetters.push({ node: nodeId, error: messageOf(e) || err.message });
}
