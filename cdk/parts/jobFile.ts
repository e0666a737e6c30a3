import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { Token } from 'aws-cdk-lib';
import type * as kinesis from 'aws-cdk-lib/aws-kinesis';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import { PACKAGE_ROOT } from '../bundle.ts';
import type { JobDescription } from '../describeJob.ts';
import type { SluiceJobProps } from '../sluiceJob.ts';
import { MIN_INTERVAL_MS } from './validate.ts';

// The job file as SluiceJob sees it at synth: the environment its functions get, and what the job
// reads, writes and how often, learnt by loading it with that environment.

const descriptions = new Map<string, JobDescription>();

/**
 * Loads the job in a child process (constructs are synchronous; importing a TypeScript module is
 * not) with the deployment's environment, and returns what it reads, writes and how often.
 */
function describeJob(entry: string, env: Record<string, string>): JobDescription {
  const key = JSON.stringify([entry, env]);
  const known = descriptions.get(key);
  if (known) return known;
  // Not the synth machine's own SLUICE_* variables (a SLUICE_BATCH_INTERVAL left in the shell would
  // change the interval learnt here, but not the one the functions run at): only the deployment's.
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('SLUICE_')));
  let out: string;
  try {
    out = execFileSync(process.execPath, [join(PACKAGE_ROOT, 'bin/run-ts.mjs'), join(PACKAGE_ROOT, 'cdk/describeJob.ts'), entry], {
      env: { ...inherited, ...env },
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } catch (e) {
    const stderr = String((e as { stderr?: string }).stderr ?? '').trim();
    throw new Error(`SluiceJob: job file ${entry} cannot be built: ${stderr.split('\n').at(-1) || (e as Error).message}`, { cause: e });
  }
  const description = JSON.parse(out.trim().split('\n').at(-1)!) as JobDescription;
  descriptions.set(key, description);
  return description;
}

/** The job file loaded for this deployment, and the environment both functions get. */
export interface LoadedJob {
  readonly job: JobDescription;
  /** The deployment's variables as the functions get them (tokens for names made at deploy time). */
  readonly env: Record<string, string>;
  /** The same variables as the job was loaded with at synth: placeholders stand in for tokens. */
  readonly synthEnv: Record<string, string>;
}

/**
 * Loads the job file with the environment its functions get, so its name and batch interval are the
 * ones it runs with on AWS; throws if it cannot run there.
 */
export function loadJob(
  props: Pick<SluiceJobProps, 'entry' | 'environment' | 'onRecordError' | 'writeEmptyBatches'>,
  stream: kinesis.IStream,
  sinkBucket: s3.IBucket,
  interval: number | undefined,
): LoadedJob {
  const env: Record<string, string> = {
    ...props.environment,
    SLUICE_STREAM: stream.streamName,
    SLUICE_SINK_BUCKET: sinkBucket.bucketName,
    ...(interval !== undefined ? { SLUICE_BATCH_INTERVAL: String(interval) } : {}),
    ...(props.onRecordError ? { SLUICE_ON_RECORD_ERROR: props.onRecordError } : {}),
    ...(props.writeEmptyBatches !== undefined ? { SLUICE_WRITE_EMPTY_BATCHES: String(props.writeEmptyBatches) } : {}),
  };
  // Names not known before deployment stand in as placeholders that are valid stream and bucket names.
  const synthEnv = Object.fromEntries(
    Object.entries(env).map(([k, v]) => [k, Token.isUnresolved(v) ? `sluice-synth-${k.toLowerCase().replace(/^sluice_/, '').replace(/_/g, '-')}` : v]),
  );
  const job = describeJob(props.entry, synthEnv);
  if (job.problems.length > 0) {
    throw new Error(`SluiceJob: job ${job.name} (${props.entry}) cannot run on AWS: ${job.problems.join('; ')}`);
  }
  if (job.batchInterval < MIN_INTERVAL_MS) {
    throw new Error(
      `SluiceJob: job ${job.name} has a batch interval of ${job.batchInterval} ms; on AWS it must be at least 1s (the coordinator's clock and Kinesis's 5 reads/s per shard): set batchInterval`,
    );
  }
  return { job, env, synthEnv };
}
