import { isKinesisState, type ShardLag, streamLag } from '../aws/streamLag.ts';
import { formatJobStatus, readJobStatus } from '../engine/jobStatus.ts';
import { type Checkpoint, keys } from '../engine/protocol.ts';
import { debugWanted, EXIT, reportError } from './errors.ts';
import { type JobStoreFlags, jobStores, withStores } from './jobStores.ts';

/** The flags of `sluice status`. */
export interface StatusFlags extends JobStoreFlags {
  readonly debug?: boolean;
}

/** A duration for a person: `850 ms`, `42 s`, `7 min`, `3 h`. */
function span(ms: number): string {
  return ms < 1000 ? `${ms} ms` : ms < 120_000 ? `${Math.round(ms / 1000)} s` : ms < 7_200_000 ? `${Math.round(ms / 60_000)} min` : `${Math.round(ms / 3_600_000)} h`;
}

/** One line per shard: how far the committed position is behind the newest record. */
function lagLines(source: string, stream: string, lag: readonly ShardLag[], now: number): string[] {
  const lines = [`lag behind stream ${stream} (${source}, from the last commit):`];
  for (const s of lag) {
    const oldest = s.oldestWaiting === undefined ? '' : `the oldest record not committed arrived ${span(Math.max(0, now - s.oldestWaiting))} ago`;
    const kinesis = s.millisBehindLatest === undefined ? '' : ` (MillisBehindLatest ${span(s.millisBehindLatest)})`;
    const text =
      s.state === 'ended'
        ? 'closed, read to its end'
        : s.state === 'caught-up'
          ? 'caught up: no record after the committed position'
          : s.state === 'behind'
            ? `behind: ${oldest}${kinesis}`
            : `not read yet (it starts at the job's initial position, or after its parent shards)${oldest ? `; ${oldest}` : ''}`;
    lines.push(`  ${s.shard.padEnd(22)} ${text}`);
  }
  return lines;
}

/**
 * `sluice status [job]`: where a job stands — the last batch done, the lease, batches a run stopped
 * in (a batch a coordinator failed in), dead letters, a pause — read without taking the lease. A
 * local job's state is under `.sluice/<job name>` (or `--state-dir`); a deployed job's is found by
 * `--stack` or `--table`/`--bucket`, and then its lag behind its Kinesis stream is shown too: for
 * each shard, whether records wait after the last committed position, how far behind the newest
 * record (`MillisBehindLatest`) and when the oldest waiting one arrived.
 */
export async function statusCommand(file: string | undefined, flags: StatusFlags): Promise<number> {
  try {
    return await withStores(jobStores(file, flags), async (stores) => {
      const now = Date.now();
      const status = await readJobStatus(stores.meta, stores.blobs);
      let text = `state in ${stores.where}\n${formatJobStatus(status, now)}`;
      if (stores.deployed && status.checkpoint) {
        const checkpoint = (await stores.meta.get<Checkpoint>(keys.checkpoint))?.value;
        const kinesisSources = Object.entries(checkpoint?.sourceState ?? {}).filter(([, s]) => isKinesisState(s));
        if (!stores.stream) {
          if (kinesisSources.length) text += 'lag: give --stream NAME (the job\'s Kinesis stream) to see how far it is behind\n';
        } else {
          for (const [nodeId, state] of kinesisSources) text += `${lagLines(nodeId, stores.stream.name, await streamLag(stores.stream.client, stores.stream.name, state), now).join('\n')}\n`;
        }
      }
      process.stdout.write(text);
      return EXIT.ok;
    });
  } catch (e) {
    return reportError(e, { jobFile: file, debug: debugWanted(flags.debug) });
  }
}
