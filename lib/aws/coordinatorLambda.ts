import type { JobDefinition } from '../api/job.ts';
import { awsCoordinatorRuntime } from './coordinatorRuntime.ts';
import { type CoordinatorRun, createCoordinatorHandler, type LambdaContext } from './handlers.ts';
import { DEPLOYED_COORDINATOR } from './lambda.ts';
import { lambdaLog } from './lambdaLog.ts';
import { configFromEnv, withEnvOptions } from './runtime.ts';

/**
 * The coordinator function of a deployed job, configured from its environment (see
 * `configFromEnv` and `withEnvOptions`). `functions/coordinator.ts` loads the job from
 * `SLUICE_JOB_FILE`; the coordinator's bundle, which the `SluiceJob` construct builds from this
 * module (cdk/bundle.ts), imports it.
 *
 * Its log lines are structured (`lambdaLog`): with Lambda's JSON log format, one JSON object each
 * with `timestamp`, `level`, `requestId`, the `batchTime` of the batch in progress, and `message`;
 * the metric lines are EMF objects with the level and request id added.
 *
 * @example
 * ```ts
 * import job from './my-job.ts';
 * export const handler = coordinatorHandler(async () => job);
 * ```
 */
export function coordinatorHandler(
  load: () => Promise<JobDefinition>,
  env: NodeJS.ProcessEnv = process.env,
): (event: unknown, context?: LambdaContext & { readonly awsRequestId?: string }) => Promise<CoordinatorRun> {
  const log = lambdaLog({ json: env.AWS_LAMBDA_LOG_FORMAT === 'JSON' });
  const handler = createCoordinatorHandler(
    async () => withEnvOptions(await load(), env),
    (graph) => {
      // Each invocation builds its graph afresh: the listener tells the log which batch runs.
      graph.listeners.push(log.listener);
      return awsCoordinatorRuntime(graph, configFromEnv(env, 'coordinator'), undefined, log);
    },
    { ...DEPLOYED_COORDINATOR, log: (line) => log.info(line) },
  );
  return (event, context) => {
    log.invocation(context?.awsRequestId);
    return handler(event, context);
  };
}
