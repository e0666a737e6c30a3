import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Duration } from 'aws-cdk-lib';
import { ApplicationLogLevel, LoggingFormat } from 'aws-cdk-lib/aws-lambda';
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
  for (const [name, retention] of [
    ['deadLetterRetention', props.deadLetterRetention],
    ['historyRetention', props.historyRetention],
  ] as const) {
    if (!retention) continue;
    // S3 expires objects by whole days: 36 hours would be neither 1 nor 2 days, so say so here rather than let the bucket fail.
    const days = retention.toDays({ integral: false });
    if (!Number.isInteger(days) || days < 1) {
      throw new Error(`SluiceJob: ${name} must be a whole number of days, at least 1 (such as Duration.days(14)), got ${retention.toHumanString()}`);
    }
  }
  if (props.sourceMaps !== undefined && typeof props.sourceMaps !== 'boolean') throw new Error(`SluiceJob: sourceMaps must be true or false, got ${JSON.stringify(props.sourceMaps)}`);
  if (props.maxInputLag && props.maxInputLag.toMilliseconds() < 60_000) throw new Error(`SluiceJob: maxInputLag must be at least 1 minute, got ${props.maxInputLag.toHumanString()}`);
  validateResources(props);
  validateFunctions(props);
  validateMonitoring(props);
}

function checkBoolean(value: unknown, prop: string): void {
  if (value !== undefined && typeof value !== 'boolean') throw new Error(`SluiceJob: ${prop} must be true or false, got ${JSON.stringify(value)}`);
}

/** The stream, buckets and table: each either given or made with its props, not both. */
function validateResources(props: SluiceJobProps): void {
  const pairs = [
    ['existingStateBucket', 'stateBucketProps'],
    ['existingSinkBucket', 'sinkBucketProps'],
    ['existingTable', 'tableProps'],
  ] as const;
  for (const [existing, made] of pairs) {
    if (props[existing] && props[made]) {
      throw new Error(
        `SluiceJob: give either ${existing} or ${made}, not both; an existing resource encrypted with a key of yours is imported with it (such as Bucket.fromBucketAttributes(this, 'State', { bucketName, encryptionKey })), and its functions are granted that key`,
      );
    }
  }
}

/** The functions' network, concurrency, logging and bundling. */
function validateFunctions(props: SluiceJobProps): void {
  if (!props.vpc) {
    for (const prop of ['vpcSubnets', 'securityGroups'] as const) {
      if (props[prop]) throw new Error(`SluiceJob: ${prop} needs vpc: give the VPC the functions run in, or leave ${prop} out`);
    }
  }
  const worker = props.workerReservedConcurrency;
  if (worker !== undefined && (!Number.isInteger(worker) || worker < 1)) {
    throw new Error(`SluiceJob: workerReservedConcurrency must be a whole number >= 1, got ${worker} (leave it out for the account's unreserved pool; 0 would stop every task)`);
  }
  const coordinator = props.coordinatorReservedConcurrency;
  if (coordinator !== undefined && (!Number.isInteger(coordinator) || coordinator < 2)) {
    throw new Error(
      `SluiceJob: coordinatorReservedConcurrency must be a whole number >= 2, got ${coordinator}: each minute's run starts while the last one finishes its batch, and a throttled run is not retried (the minute would be lost); leave it out or give 2`,
    );
  }
  const level = props.applicationLogLevel;
  const format = props.loggingFormat ?? LoggingFormat.JSON;
  if ((level !== undefined || props.systemLogLevel !== undefined) && format !== LoggingFormat.JSON) {
    throw new Error(`SluiceJob: applicationLogLevel and systemLogLevel need loggingFormat JSON (Lambda filters JSON lines only), got loggingFormat ${format}`);
  }
  if (level !== undefined && !KEEPS_METRICS.has(level)) {
    throw new Error(
      `SluiceJob: applicationLogLevel ${level} would drop the coordinator's metric lines (EMF, level INFO) and with them every Sluice metric, alarm and graph: use INFO, DEBUG or TRACE`,
    );
  }
  const b = props.bundling;
  if (b) {
    if (b.external !== undefined && (!Array.isArray(b.external) || b.external.some((e) => typeof e !== 'string' || e === ''))) {
      throw new Error(`SluiceJob: bundling.external must be a list of module names (such as ['@aws-sdk/client-s3']), got ${JSON.stringify(b.external)}`);
    }
    for (const [name, value] of Object.entries(b.define ?? {})) {
      if (typeof value !== 'string') throw new Error(`SluiceJob: bundling.define.${name} must be a string of JavaScript (such as '"production"' or 'true'), got ${JSON.stringify(value)}`);
    }
    checkBoolean(b.minify, 'bundling.minify');
    checkBoolean(b.sourcesContent, 'bundling.sourcesContent');
  }
}

/** Application log levels at which INFO lines, the EMF lines among them, are kept. */
const KEEPS_METRICS: ReadonlySet<string> = new Set([ApplicationLogLevel.INFO, ApplicationLogLevel.DEBUG, ApplicationLogLevel.TRACE]);

/** Alarms and metrics. */
function validateMonitoring(props: SluiceJobProps): void {
  checkBoolean(props.createCloudWatchAlarms, 'createCloudWatchAlarms');
  checkBoolean(props.highResolutionMetrics, 'highResolutionMetrics');
  if (props.alarmTopic && props.createCloudWatchAlarms === false) {
    throw new Error('SluiceJob: alarmTopic has no alarm to notify, since createCloudWatchAlarms is false: leave one of them out');
  }
}

/**
 * Checks the period of a metric of a job: under a minute only with high-resolution metrics, and one
 * CloudWatch takes (1, 5, 10 or 30 seconds, or whole minutes). `what` names the metric's helper.
 */
export function checkMetricPeriod(period: Duration | undefined, highResolution: boolean, what: string): void {
  if (period === undefined) return;
  const seconds = period.toSeconds({ integral: false });
  if (seconds < 60 && !highResolution) {
    throw new Error(
      `SluiceJob: ${what}: a period of ${period.toHumanString()} is under a minute, but the job's metrics are stored per minute: set highResolutionMetrics: true on the SluiceJob, or use a period of at least 1 minute`,
    );
  }
  if (![1, 5, 10, 30].includes(seconds) && seconds % 60 !== 0) {
    throw new Error(`SluiceJob: ${what}: CloudWatch takes a period of 1, 5, 10 or 30 seconds or whole minutes, got ${period.toHumanString()}`);
  }
}
