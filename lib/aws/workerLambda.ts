import type { JobDefinition } from '../api/job.ts';
import { createWorkerHandler } from './handlers.ts';
import { awsWorkerRuntime, configFromEnv, withEnvOptions } from './runtime.ts';

/**
 * The worker function of a deployed job: runs one task per invocation. Its bundle, which the
 * `SluiceJob` construct builds from this module (cdk/bundle.ts), holds what this module reaches
 * and nothing of the coordinator's: no DynamoDB or Lambda client, no batch protocol.
 *
 * @example
 * ```ts
 * import job from './my-job.ts';
 * export const handler = workerHandler(async () => job);
 * ```
 */
export function workerHandler(load: () => Promise<JobDefinition>, env: NodeJS.ProcessEnv = process.env): (event: unknown) => Promise<unknown> {
  return createWorkerHandler(async () => withEnvOptions(await load(), env), (graph) => awsWorkerRuntime(graph, configFromEnv(env, 'worker')));
}
