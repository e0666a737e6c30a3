import type { KinesisClient } from '@aws-sdk/client-kinesis';
import type { JsonValue } from '../ports/index.ts';
import { KinesisApi } from './kinesis/api.ts';
import { arrivalOf } from './kinesis/decode.ts';
import { parseStart, type Position } from './kinesis/positions.ts';

/** How far a job's committed position in one shard is behind the newest record of the shard. */
export interface ShardLag {
  readonly shard: string;
  /**
   * `caught-up`: nothing after the committed position; `behind`: records wait after it; `ended`:
   * a closed shard read to its end; `unread`: no batch has read the shard yet (it starts at the
   * job's initial position, or after its parents).
   */
  readonly state: 'caught-up' | 'behind' | 'ended' | 'unread';
  /** Kinesis's `MillisBehindLatest` for a read from the committed position: how far its next record is from the tip. */
  readonly millisBehindLatest?: number;
  /** When the oldest record not committed yet arrived (ms), when there is one. */
  readonly oldestWaiting?: number;
}

/** The parts of a Kinesis source's checkpointed state that say where each shard stands (lib/aws/kinesis/shardLineage.ts). */
interface Committed {
  readonly positions: Record<string, string>;
  readonly starts: Record<string, JsonValue>;
  readonly exhausted: readonly string[];
}

/**
 * Whether a source's checkpointed state is a Kinesis source's (`{ positions, starts, … }`).
 *
 * @example
 * ```ts
 * const kinesis = Object.entries(checkpoint.sourceState).filter(([, state]) => isKinesisState(state));
 * ```
 */
export function isKinesisState(state: JsonValue | undefined): boolean {
  return !!state && typeof state === 'object' && !Array.isArray(state) && typeof state.positions === 'object' && state.positions !== null && !Array.isArray(state.positions);
}

/**
 * For each shard of `stream`, how far the position a checkpoint committed (a Kinesis source's
 * `sourceState`) is behind the newest record: one `GetShardIterator` after the committed sequence
 * number (or at the shard's start position) and one `GetRecords` of one record, whose
 * `MillisBehindLatest` and arrival time say it. Reads only; a few requests per shard.
 *
 * @example
 * ```ts
 * const lag = await streamLag(kinesisClient(), 'clicks', checkpoint.sourceState['kinesis-1']);
 * // [{ shard: 'shardId-000000000000', state: 'behind', millisBehindLatest: 4200, oldestWaiting: 1796162150000 }, …]
 * ```
 */
export async function streamLag(client: KinesisClient, stream: string, sourceState: JsonValue | undefined): Promise<ShardLag[]> {
  const api = new KinesisApi({ client, stream, nodeId: `stream ${stream}`, clock: Date.now, throughputRetries: 4, backoffMs: 200, atTimestampTimeoutMs: 5000 });
  const s = (isKinesisState(sourceState) ? sourceState : { positions: {}, starts: {}, exhausted: [] }) as unknown as Committed;
  const exhausted = new Set(Array.isArray(s.exhausted) ? s.exhausted : []);
  const out: ShardLag[] = [];
  for (const shard of (await api.listShards()).sort((a, b) => (a.id < b.id ? -1 : 1))) {
    const seq = s.positions[shard.id];
    if (exhausted.has(shard.id) || (seq !== undefined && seq === shard.endingSequenceNumber)) {
      out.push({ shard: shard.id, state: 'ended' });
      continue;
    }
    const start = s.starts?.[shard.id];
    let position: Position;
    if (seq !== undefined) position = { type: 'AFTER_SEQUENCE_NUMBER', seq };
    else if (start === undefined || start === null) position = { type: 'TRIM_HORIZON' };
    else {
      const p = parseStart(start, `stream ${stream}`);
      position = p === 'TRIM_HORIZON' || p === 'LATEST' ? { type: p } : { type: 'AT_TIMESTAMP', time: p.timestamp };
    }
    const { iterator } = await api.iterator(shard.id, position);
    const page = iterator ? await api.getRecords(shard.id, iterator, 1) : undefined;
    const first = page?.Records?.[0];
    const behind = page?.MillisBehindLatest;
    out.push({
      shard: shard.id,
      state: seq === undefined ? 'unread' : first ? 'behind' : 'caught-up',
      ...(behind === undefined ? {} : { millisBehindLatest: behind }),
      ...(first ? { oldestWaiting: arrivalOf(first) } : {}),
    });
  }
  return out;
}
