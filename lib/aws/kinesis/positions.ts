import { SluiceError } from '../../core/errors.ts';
import type { JsonValue } from '../../ports/index.ts';

/** Where a shard with no sealed record yet starts: the stream's `initialPosition`. */
export type StartPosition = 'TRIM_HORIZON' | 'LATEST' | { readonly timestamp: number };

/** Where a shard iterator points. */
export type Position =
  | { readonly type: 'AFTER_SEQUENCE_NUMBER' | 'AT_SEQUENCE_NUMBER'; readonly seq: string }
  | { readonly type: 'TRIM_HORIZON' | 'LATEST' }
  | { readonly type: 'AT_TIMESTAMP'; readonly time: number };

/** An iterator kept from a read that consumed nothing, valid about 5 minutes; `since` is the time it stands for. */
export interface Resume {
  readonly iterator: string;
  readonly at: number;
  readonly since: number;
}

export function parseStart(v: JsonValue, nodeId: string): StartPosition {
  if (v === 'TRIM_HORIZON' || v === 'LATEST') return v;
  if (v && typeof v === 'object' && !Array.isArray(v) && typeof v.timestamp === 'number') return { timestamp: v.timestamp };
  throw new SluiceError(`${nodeId}: initialPosition must be 'TRIM_HORIZON', 'LATEST' or { timestamp }, got ${JSON.stringify(v)}`, { nodeId });
}

export function isResume(v: unknown): v is Resume {
  return !!v && typeof v === 'object' && typeof (v as Resume).iterator === 'string' && typeof (v as Resume).at === 'number' && typeof (v as Resume).since === 'number';
}
