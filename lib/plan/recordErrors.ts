import { RecordError, SluiceError } from '../core/errors.ts';
import { describeValue } from '../core/values.ts';
import { describeKey } from './keys.ts';

/**
 * Where a user function's failure goes: the `onRecordError` job option. A function that threw
 * becomes one error, a {@link RecordError} made by {@link userFunctionError}, whatever it was
 * called on:
 *
 * - one record (map, flatMap, filter, mapValues, flatMapValues, a decoder, a sortBy key,
 *   map-side create): the operator catches and calls {@link RecordFailures.recordFailed}. Each
 *   operator has its own try/catch around its own call: through a shared wrapper the call to the
 *   user's function would be one call site for every operator of the job, which V8 then cannot
 *   inline (word count ran about 10% slower). Only the catch bodies are shared;
 * - a whole partition (mapPartitions, glom): the partition is the record, named by its index;
 * - one key and its values (a reduce or combine function merging, on the map or the reduce side
 *   (`mergeByKey` in shuffle.ts); updateStateByKey, mapWithState, window reduce, inverse and filter
 *   functions): {@link onKey}, which calls {@link RecordFailures.keyFailed}; the caller leaves the key out;
 * - one batch's plan (transform functions, called while the plan is built): {@link planFailed}.
 *
 * The reader (the worker's task reader) and `planFailed` apply the one rule, {@link setsAside}:
 * under `'fail'` the error is thrown and fails the task (retried, then the batch; the worker adds
 * the task's batch and partition, {@link inTask}); under `'dead-letter'` a user's fault is written
 * as a dead letter and the batch goes on without it.
 */

/**
 * Where failures of user functions go while a task computes a partition: the part of the reader
 * contract (`PartitionReader` in batch/base.ts) that shuffles and state operators need.
 */
export interface RecordFailures {
  /**
   * A user function threw on `record` (or the record is malformed for the operator): throws a
   * RecordError (`onRecordError: 'fail'`), or sets the record aside as a dead letter and returns.
   */
  recordFailed(label: string, record: unknown, error: unknown): void;
  /**
   * A user function threw on the values of `key` (reduce side, state, window): throws a
   * RecordError naming the operator and the key (`'fail'`), or sets the key aside with `records`
   * (the values or combiners it was given) and returns; the caller then leaves the key out of
   * this batch. `note` says what became of the key's state, when it is not plain.
   */
  keyFailed(label: string, key: unknown, records: readonly unknown[], error: unknown, note?: string): void;
}

/** What a user function was called on when it threw. */
export type CalledOn =
  /** One record. */
  | { readonly record: unknown }
  /** The values of one key. */
  | { readonly key: unknown }
  /** A whole partition (mapPartitions): its records are the record. */
  | { readonly partition: number; readonly records: readonly unknown[] }
  /** The plan of the batch at this time (a transform function). */
  | { readonly planAt: number };

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

/**
 * The error of a user function of operator `nodeId` that threw `error` (anything, or the text of
 * a misuse) when it was called `on` a record, a key's values, a partition or a batch's plan:
 * a RecordError naming the operator and what the function was given. Every place where a user
 * function's failure becomes an error goes through here.
 */
export function userFunctionError(nodeId: string, on: CalledOn, error: unknown): SluiceError {
  // SluiceErrors come from Sluice itself or from operators further down: they are already theirs.
  if (error instanceof SluiceError) return error;
  const message = messageOf(error);
  if ('record' in on) return new RecordError(`${nodeId} threw on ${describeRecord(on.record)}: ${message}`, { nodeId, record: on.record, cause: error });
  if ('key' in on) return new RecordError(`${nodeId} threw on key ${describeKey(on.key)}: ${message}`, { nodeId, key: on.key, cause: error });
  if ('records' in on) {
    // The record is the partition: name it, rather than describe an array.
    return new RecordError(`${nodeId} threw on partition ${on.partition} (${on.records.length} records): ${message}`, { nodeId, partition: on.partition, record: on.records, cause: error });
  }
  return new RecordError(`${nodeId}: the transform function threw: ${message}`, { nodeId, batchTime: on.planAt, cause: error });
}

/**
 * A task's error with the task's batch time and partition in it and in its message, when it is a
 * RecordError that has no batch time yet (operators do not know where they run; an error of a
 * transform function already has its batch). Anything else is returned as it is.
 */
export function inTask(e: unknown, batchTime: number, partition: number): unknown {
  if (!(e instanceof RecordError) || e.batchTime !== undefined) return e;
  return new RecordError(`${e.message} (batch ${batchTime}, partition ${partition})`, {
    nodeId: e.nodeId,
    batchTime,
    partition,
    ...('record' in e ? { record: e.record } : {}),
    ...('key' in e ? { key: e.key } : {}),
    cause: e.cause ?? e,
  });
}

/**
 * Calls `fn(key, a, b, c)`, a function of `key`'s values. If it throws, the reader fails the task
 * or sets the key aside with `[a, b]` (the values it was given; a state operator passes the
 * key's state as `b`, left out when the key has none), and this returns {@link FAILED}: the
 * caller leaves the key out of this batch. `note` says what became of the key's state.
 */
export function onKey<A, B, C, R>(
  r: RecordFailures,
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

/** What {@link planFailed} needs of the plan being built (a `BatchPlan`). */
export interface PlanFailures {
  readonly time: number;
  readonly graph: { readonly onRecordError: 'fail' | 'dead-letter' };
  readonly deadLetters: { readonly node: string; readonly error: string }[];
}

/**
 * A transform function of node `nodeId` threw `e` (or returned no batch) while the plan of batch
 * `plan.time` was built: throws under `'fail'`, or notes a dead letter on the plan, and the
 * caller gives the stream an empty batch at this time. Coordinator and workers plan the same
 * batch alike; only the coordinator writes the plan's dead letters, once per batch.
 */
export function planFailed(plan: PlanFailures, nodeId: string, e: unknown): void {
  const err = userFunctionError(nodeId, { planAt: plan.time }, e);
  if (!setsAside(plan.graph.onRecordError, err)) throw err;
  plan.deadLetters.push({ node: nodeId, error: messageOf(e) || err.message });
}
