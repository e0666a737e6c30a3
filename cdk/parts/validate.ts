import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { type Duration as SluiceDuration, toMillis } from '../../lib/api/duration.ts';
import type { SluiceJobProps } from '../sluiceJob.ts';

// SluiceJob's props checked before anything is built, each error naming the prop and the value given.

/** The shortest batch interval on AWS: the coordinator's clock and Kinesis's 5 reads/s per shard. */
export const MIN_INTERVAL_MS = 1000;

function checkMemory(value: number | undefined, prop: string): void {
  if (value !== undefined && (!Number.isInteger(value) || value < 128 || value > 10240)) {
    throw new Error(`SluiceJob: ${prop} must be a whole number of MB from 128 to 10240, got ${value}`);
  }
}

/** The batch interval in ms, or undefined for the job's own; throws on a bad value. */
export function checkInterval(value: SluiceDuration | undefined): number | undefined {
  if (value === undefined) return undefined;
  let ms: number;
  try {
    ms = toMillis(value, 'batchInterval');
  } catch (e) {
    throw new Error(`SluiceJob: ${(e as Error).message}`, { cause: e });
  }
  if (!Number.isInteger(ms)) throw new Error(`SluiceJob: batchInterval must be a whole number of milliseconds, got ${ms} ms`);
  if (ms < MIN_INTERVAL_MS) throw new Error(`SluiceJob: batchInterval must be at least 1s on AWS, got ${ms} ms`);
  return ms;
}

/** Throws on the first prop that is missing, contradicts another or is out of range. */
export function validate(props: SluiceJobProps): void {
  if (!props || typeof props.entry !== 'string' || props.entry === '') throw new Error('SluiceJob: entry (the job file) is required');
  if (!existsSync(resolve(props.entry))) throw new Error(`SluiceJob: job file ${props.entry} does not exist (resolved to ${resolve(props.entry)})`);
  if (props.existingStream && props.streamProps) throw new Error('SluiceJob: give either existingStream or streamProps, not both');
  const sp = props.streamProps;
  if (sp?.mode !== undefined && sp.mode !== 'provisioned' && sp.mode !== 'on-demand') throw new Error(`SluiceJob: streamProps.mode must be 'provisioned' or 'on-demand', got ${String(sp.mode)}`);
  if (sp?.shardCount !== undefined) {
    if (sp.mode === 'on-demand') throw new Error('SluiceJob: streamProps.shardCount applies to provisioned streams only; an on-demand stream scales its own shards');
    if (!Number.isInteger(sp.shardCount) || sp.shardCount < 1) throw new Error(`SluiceJob: streamProps.shardCount must be a whole number >= 1, got ${sp.shardCount}`);
  }
  checkMemory(props.workerMemoryMB, 'workerMemoryMB');
  checkMemory(props.coordinatorMemoryMB, 'coordinatorMemoryMB');
  if (props.workerTimeout && (props.workerTimeout.toSeconds() < 1 || props.workerTimeout.toSeconds() > 900)) {
    throw new Error(`SluiceJob: workerTimeout must be from 1 second to 15 minutes, got ${props.workerTimeout.toHumanString()}`);
  }
  const c = props.maxConcurrency;
  if (c !== undefined && (!Number.isInteger(c) || c < 1 || c > 1000)) throw new Error(`SluiceJob: maxConcurrency must be a whole number from 1 to 1000, got ${c}`);
  if (props.onRecordError !== undefined && props.onRecordError !== 'fail' && props.onRecordError !== 'dead-letter') {
    throw new Error(`SluiceJob: onRecordError must be 'fail' or 'dead-letter', got ${String(props.onRecordError)}`);
  }
  if (props.writeEmptyBatches !== undefined && typeof props.writeEmptyBatches !== 'boolean') {
    throw new Error(`SluiceJob: writeEmptyBatches must be true or false, got ${JSON.stringify(props.writeEmptyBatches)}`);
  }
  if (props.shuffleExpiration && props.shuffleExpiration.toDays({ integral: false }) < 1) throw new Error('SluiceJob: shuffleExpiration must be at least 1 day');
  const retention = props.deadLetterRetention;
  if (retention) {
    // S3 expires objects by whole days: 36 hours would be neither 1 nor 2 days, so say so here rather than let the bucket fail.
    const days = retention.toDays({ integral: false });
    if (!Number.isInteger(days) || days < 1) {
      throw new Error(`SluiceJob: deadLetterRetention must be a whole number of days, at least 1 (such as Duration.days(14)), got ${retention.toHumanString()}`);
    }
  }
  if (props.sourceMaps !== undefined && typeof props.sourceMaps !== 'boolean') throw new Error(`SluiceJob: sourceMaps must be true or false, got ${JSON.stringify(props.sourceMaps)}`);
  if (props.maxInputLag && props.maxInputLag.toMilliseconds() < 60_000) throw new Error(`SluiceJob: maxInputLag must be at least 1 minute, got ${props.maxInputLag.toHumanString()}`);
}
