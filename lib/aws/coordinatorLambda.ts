import type { JobDefinition } from '../api/job.ts';
import { awsCoordinatorRuntime } from './coordinatorRuntime.ts';
import { type CoordinatorRun, createCoordinatorHandler, type LambdaContext } from './handlers.ts';
import { DEPLOYED_COORDINATOR } from './lambda.ts';
import { configFromEnv, withEnvOptions } from './runtime.ts';

/**
 * The coordinator function of a deployed job, configured from its environment (see
 * `configFromEnv` and `withEnvOptions`). `functions/coordinator.ts` loads the job from
 * `SLUICE_JOB_FILE`; the coordinator's bundle, which the `SluiceJob` construct builds from this
 * module (cdk/bundle.ts), imports it.
 *
 * @example
 * ```ts
 * import job from './my-job.ts';
 * export const handler = coordinatorHandler(async () => job);
 * ```
 */
export function coordinatorHandler(load: () => Promise<JobDefinition>, env: NodeJS.ProcessEnv = process.env): (event: unknown, context?: LambdaContext) => Promise<CoordinatorRun> {
  return createCoordinatorHandler(
    async () => withEnvOptions(await load(), env),
    (graph) => awsCoordinatorRuntime(graph, configFromEnv(env, 'coordinator')),
    { ...DEPLOYED_COORDINATOR, log: (line) => console.log(line) },
  );
}
