import { type JobDefinition, type JobOptions, type OnRecordError, withJobOptions } from '../api/job.ts';
import { booleanSetting } from '../core/options.ts';

/** Job options `sluice run` may set over the job's own. */
export type LocalJobOptions = Partial<Pick<JobOptions, 'batchInterval' | 'onRecordError' | 'writeEmptyBatches'>>;

/**
 * The options a local run sets over the job's own: the flags first, else `SLUICE_BATCH_INTERVAL`,
 * `SLUICE_ON_RECORD_ERROR` and `SLUICE_WRITE_EMPTY_BATCHES`, as the deployed functions read them
 * (lib/aws/runtime.ts `withEnvOptions`), so one job behaves alike on the laptop and on AWS.
 *
 * @example
 * ```ts
 * const overrides = localJobOptions({ batchInterval: '5s' });
 * const job = withJobOptions(await loadJob('job.ts'), overrides);
 * ```
 */
export function localJobOptions(flags: LocalJobOptions = {}, env: NodeJS.ProcessEnv = process.env): LocalJobOptions {
  const interval = flags.batchInterval ?? (env.SLUICE_BATCH_INTERVAL || undefined);
  const onRecordError = flags.onRecordError ?? ((env.SLUICE_ON_RECORD_ERROR || undefined) as OnRecordError | undefined);
  const writeEmptyBatches = flags.writeEmptyBatches ?? booleanSetting(env.SLUICE_WRITE_EMPTY_BATCHES, 'SLUICE_WRITE_EMPTY_BATCHES');
  const out: { batchInterval?: JobOptions['batchInterval']; onRecordError?: OnRecordError; writeEmptyBatches?: boolean } = {};
  if (interval !== undefined) out.batchInterval = typeof interval === 'string' && /^\d+$/.test(interval) ? Number(interval) : interval;
  if (onRecordError !== undefined) out.onRecordError = onRecordError;
  if (writeEmptyBatches !== undefined) out.writeEmptyBatches = writeEmptyBatches;
  return out;
}

/** `job` with the local overrides applied (the same job when there are none). */
export function withLocalJobOptions(job: JobDefinition, overrides: LocalJobOptions): JobDefinition {
  return Object.keys(overrides).length === 0 ? job : withJobOptions(job, overrides);
}
