import { setTimeout as sleep } from 'node:timers/promises';
import {
  GetRecordsCommand,
  type GetRecordsCommandOutput,
  GetShardIteratorCommand,
  type GetShardIteratorCommandInput,
  type KinesisClient,
  ListShardsCommand,
  type ListShardsCommandOutput,
  type Shard,
} from '@aws-sdk/client-kinesis';
import { SluiceError } from '../../core/errors.ts';
import { fixedRetryDelayOf } from '../clients.ts';
import { errorCode, isRetryable, isThrottling, withRetries } from '../sdkErrors.ts';
import type { Position } from './positions.ts';
import type { ListedShard } from './shardLineage.ts';

/** How the calls to Kinesis of one source behave. */
export interface KinesisApiOptions {
  readonly client: KinesisClient;
  readonly stream: string;
  /** The source's node, named in every error. */
  readonly nodeId: string;
  /** Wall-clock time, as Kinesis arrival timestamps see it. */
  readonly clock: () => number;
  /** Retries of a throttled (or transiently failed) call before it fails; the client from `kinesisClient` does not retry too. */
  readonly throughputRetries: number;
  /** First backoff after a throttled call; doubles at each retry (with jitter). */
  readonly backoffMs: number;
  /** How long an AT_TIMESTAMP GetShardIterator may take before the timestamp is found by reading from the trim horizon. */
  readonly atTimestampTimeoutMs: number;
  /** The least time between two GetRecords calls on one shard (Kinesis allows 5 reads/s/shard); unit tests with a fake client set 0. @default 200 */
  readonly readIntervalMs?: number;
}

/** A call that took longer than it was given (an AT_TIMESTAMP iterator on an emulator that never answers). */
export class TimedOut extends Error {}

/**
 * The Kinesis calls of one source: throttled calls backed off and retried, GetRecords paced to the
 * per-shard read limit, emulator quirks of AT_TIMESTAMP worked around, and every other failure
 * turned into a SluiceError that names the stream and shard.
 */
export class KinesisApi {
  /** When GetRecords was last called per shard (5 reads/s/shard: at most one call every 200 ms). */
  private readonly lastRead = new Map<string, number>();

  constructor(private readonly options: KinesisApiOptions) {}

  now(): number {
    return this.options.clock();
  }

  /** Every shard the stream lists, closed ones included, until retention trims them away. */
  async listShards(): Promise<ListedShard[]> {
    const shards: Shard[] = [];
    let token: string | undefined;
    do {
      const input = token ? { NextToken: token } : { StreamName: this.options.stream };
      let out: ListShardsCommandOutput;
      try {
        out = await this.throttled(`ListShards`, undefined, () => this.options.client.send(new ListShardsCommand(input)));
      } catch (e) {
        throw this.failed(e, 'ListShards');
      }
      shards.push(...(out.Shards ?? []));
      token = out.NextToken;
    } while (token);
    return shards.filter((s) => typeof s.ShardId === 'string').map(listed);
  }

  /** An iterator at `position`; `skipBefore` when a timestamp had to be emulated by skipping older records. */
  async iterator(shard: string, position: Position): Promise<{ iterator: string | null; skipBefore?: number }> {
    const base = { StreamName: this.options.stream, ShardId: shard };
    let input: GetShardIteratorCommandInput;
    switch (position.type) {
      case 'AFTER_SEQUENCE_NUMBER':
      case 'AT_SEQUENCE_NUMBER':
        input = { ...base, ShardIteratorType: position.type, StartingSequenceNumber: position.seq };
        break;
      case 'TRIM_HORIZON':
      case 'LATEST':
        input = { ...base, ShardIteratorType: position.type };
        break;
      case 'AT_TIMESTAMP':
        return this.iteratorAt(shard, position.time);
    }
    const out = await this.call('GetShardIterator', shard, (signal) => this.options.client.send(new GetShardIteratorCommand(input), { abortSignal: signal }));
    return { iterator: out.ShardIterator ?? null };
  }

  /**
   * AT_TIMESTAMP. Emulators are not all faithful here: kinesalite never answers when no record is
   * at or after the time, and refuses a time ahead of its clock. Both are read the long way
   * round (from the trim horizon, or from LATEST, skipping records that arrived before the time).
   */
  private async iteratorAt(shard: string, time: number): Promise<{ iterator: string | null; skipBefore?: number }> {
    const { client, stream, atTimestampTimeoutMs } = this.options;
    const input = { StreamName: stream, ShardId: shard, ShardIteratorType: 'AT_TIMESTAMP' as const, Timestamp: new Date(time) };
    try {
      const out = await this.call('GetShardIterator', shard, (signal) => client.send(new GetShardIteratorCommand(input), { abortSignal: signal }), atTimestampTimeoutMs);
      return { iterator: out.ShardIterator ?? null };
    } catch (e) {
      const err = e instanceof SluiceError && e.cause !== undefined ? e.cause : e;
      if (errorName(err) === 'InvalidArgumentException' && /greater than the current/i.test(messageOf(err))) {
        const out = await this.call('GetShardIterator', shard, (signal) => client.send(new GetShardIteratorCommand({ ...input, ShardIteratorType: 'LATEST', Timestamp: undefined }), { abortSignal: signal }));
        return { iterator: out.ShardIterator ?? null, skipBefore: time };
      }
      if (!(e instanceof TimedOut)) throw e;
      const out = await this.call('GetShardIterator', shard, (signal) => client.send(new GetShardIteratorCommand({ ...input, ShardIteratorType: 'TRIM_HORIZON', Timestamp: undefined }), { abortSignal: signal }));
      return { iterator: out.ShardIterator ?? null, skipBefore: time };
    }
  }

  /** One GetRecords call, paced to one call per shard every 200 ms. */
  async getRecords(shard: string, iterator: string, limit: number): Promise<GetRecordsCommandOutput> {
    return this.call('GetRecords', shard, async (signal) => {
      const last = this.lastRead.get(shard);
      const wait = last === undefined ? 0 : last + (this.options.readIntervalMs ?? MIN_READ_INTERVAL_MS) - Date.now();
      if (wait > 0) await sleep(wait);
      this.lastRead.set(shard, Date.now());
      return this.options.client.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: limit }), { abortSignal: signal });
    });
  }

  /** Runs a call with throughput retries; other errors become clear ones (ExpiredIterator passes through). */
  private async call<T>(op: string, shard: string | undefined, fn: (signal: AbortSignal | undefined) => Promise<T>, timeoutMs?: number): Promise<T> {
    try {
      return await this.throttled(op, shard, async () => {
        if (timeoutMs === undefined) return fn(undefined);
        const ctl = new AbortController();
        const timer = setTimeout(() => ctl.abort(), timeoutMs);
        try {
          return await fn(ctl.signal);
        } catch (e) {
          if (ctl.signal.aborted) throw new TimedOut();
          throw e;
        } finally {
          clearTimeout(timer);
        }
      });
    } catch (e) {
      if (e instanceof TimedOut || errorName(e) === 'ExpiredIteratorException') throw e;
      throw this.failed(e, op, shard);
    }
  }

  /** Retries throttled and transient failures with exponential backoff (200 ms, 400 ms, …), then gives up clearly. */
  private async throttled<T>(op: string, shard: string | undefined, fn: () => Promise<T>): Promise<T> {
    const { nodeId, stream, throughputRetries, backoffMs } = this.options;
    return withRetries(fn, {
      attempts: throughputRetries + 1,
      baseDelayMs: backoffMs,
      fixedDelayMs: fixedRetryDelayOf(this.options.client),
      // A timed-out AT_TIMESTAMP iterator is read the long way round instead (see iteratorAt).
      retryable: (e) => !(e instanceof TimedOut) && isRetryable(e),
      exhausted: (e, retries) =>
        isThrottling(e)
          ? new SluiceError(
              `${nodeId}: Kinesis ${op}${shard ? ` on shard ${shard}` : ''} of stream ${stream} is still throttled (${errorCode(e)}) after ${retries} retries; ` +
                'other consumers may be using up the read throughput (5 reads/s and 2 MB/s per shard): add shards, or use fewer consumers',
              { nodeId, cause: e },
            )
          : e,
    });
  }

  private failed(e: unknown, op: string, shard?: string): SluiceError {
    if (e instanceof SluiceError) return e;
    const { nodeId, stream } = this.options;
    const name = errorName(e);
    const where = shard ? `shard ${shard} of Kinesis stream ${stream}` : `Kinesis stream ${stream}`;
    if (name === 'ResourceNotFoundException') {
      return new SluiceError(
        shard
          ? `${nodeId}: ${where} does not exist (${op}: ${messageOf(e)})`
          : `${nodeId}: kinesisStream('${stream}'): there is no Kinesis stream named ${stream} in this account and region (${op}: ${messageOf(e)})`,
        { nodeId, cause: e },
      );
    }
    return new SluiceError(`${nodeId}: Kinesis ${op} on ${where} failed: ${name}: ${messageOf(e)}`, { nodeId, cause: e });
  }
}

const MIN_READ_INTERVAL_MS = 200;

/** What the lineage needs of a listed shard. */
function listed(s: Shard): ListedShard {
  const parents = [s.ParentShardId, s.AdjacentParentShardId].filter((p): p is string => typeof p === 'string' && p !== '');
  const end = s.SequenceNumberRange?.EndingSequenceNumber;
  return end === undefined ? { id: s.ShardId!, parents } : { id: s.ShardId!, parents, endingSequenceNumber: end };
}

export function errorName(e: unknown): string {
  return e && typeof e === 'object' && typeof (e as { name?: unknown }).name === 'string' ? (e as { name: string }).name : '';
}

export function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
