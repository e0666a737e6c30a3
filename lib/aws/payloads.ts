import { randomBytes } from 'node:crypto';
import { keys } from '../engine/protocol.ts';

/**
 * Lambda's synchronous `Invoke` carries at most 6 MB each way (6,291,456 bytes of request). A task
 * or a task result bigger than {@link DEFAULT_PAYLOAD_LIMIT} travels through the state store
 * instead, as Spark sends large task results through its block manager: the sender writes it as a
 * blob under the batch's prefix and sends {@link IndirectPayload}; the receiver reads the blob.
 */
export const INVOKE_PAYLOAD_LIMIT = 6 * 1024 * 1024;

/** Payloads above this many bytes go through the state store (room left for Lambda's own envelope). */
export const DEFAULT_PAYLOAD_LIMIT = INVOKE_PAYLOAD_LIMIT - 64 * 1024;

/** What travels in place of a payload that is too big for `Invoke`: the key of the blob holding it. */
export interface IndirectPayload {
  readonly sluiceIndirect: string;
}

export function isIndirect(v: unknown): v is IndirectPayload {
  return typeof v === 'object' && v !== null && typeof (v as IndirectPayload).sluiceIndirect === 'string';
}

/**
 * Where a task's oversized request or response goes: under its batch's prefix (so the cleanup of old
 * batches and the bucket's lifecycle rule reach it), named after the task attempt, with a random
 * part so that a duplicate invocation never reads the other's blob (`nonce`, random by default; a
 * runtime's own, as the simulation's, keeps names reproducible).
 */
export function payloadKey(task: unknown, side: 'request' | 'response', makeNonce?: () => string): string {
  const t = task as { time?: unknown; stageKey?: unknown; partition?: unknown; attempt?: unknown };
  const nonce = makeNonce?.() ?? randomBytes(4).toString('hex');
  if (typeof t?.time === 'number' && typeof t.stageKey === 'string') {
    return `${keys.batchBlobs(t.time)}payloads/${t.stageKey}-p${String(t.partition)}-a${String(t.attempt)}-${nonce}.${side}`;
  }
  return `payloads/${nonce}.${side}`;
}
