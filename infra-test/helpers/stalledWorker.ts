import type { JobDefinition } from '../../lib/api/job.ts';
import type { AwsRuntimeConfig } from '../../lib/aws/runtime.ts';
import { containerWorker, type Interceptor } from './workerContainer.ts';

/**
 * The worker handler of a Lambda container of its own, for a second run of a task that is already
 * running (Lambda ran the invocation twice): it starts at once — plans the batch, opens its shard
 * iterators, reads shuffle and cached input — but its Kinesis `GetRecords` and S3 `PutObject`
 * calls wait until `gate` resolves. A straggler stalled mid-run, whose reads and writes land
 * when the test says.
 *
 * @example
 * ```ts
 * const late = stalledWorker(definition, config, released)(event); // runs beside the original
 * // ... the original answers, the coordinator moves on ...
 * release();
 * await late;
 * ```
 */
export function stalledWorker(definition: JobDefinition, config: AwsRuntimeConfig, gate: Promise<void>): (event: unknown) => Promise<unknown> {
  return containerWorker(definition, config, { kinesis: holdAt('GetRecordsCommand', gate), s3: holdAt('PutObjectCommand', gate) });
}

/** Holds every `command` until `gate` opens. */
function holdAt(command: string, gate: Promise<void>): Interceptor {
  return async (name, _input, send) => {
    if (name === command) await gate;
    return send();
  };
}
