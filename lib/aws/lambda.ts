import type { JobDefinition } from '../api/job.ts';
import { type CoordinatorRun, createCoordinatorHandler, createWorkerHandler, type LambdaContext } from './handlers.ts';
import { awsCoordinatorRuntime, awsWorkerRuntime, configFromEnv, withEnvOptions } from './runtime.ts';

/** The coordinator function's timeout (a minute of batches, plus time to finish the last one). */
export const COORDINATOR_TIMEOUT_MS = 75_000;
/** The coordinator starts no batch in its last 15 s, so it hands over about when the next minute's invocation starts. */
const COORDINATOR_MARGIN_MS = 15_000;

/**
 * The coordinator function of a deployed job, configured from its environment (see
 * `configFromEnv` and `withEnvOptions`). `functions/coordinator.ts` loads the job from
 * `SLUICE_JOB_FILE`; the bundle the `SluiceJob` construct builds imports it.
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
    // The function times out after 75 s and is invoked every minute: it starts batches for about
    // 60 s, and the next invocation waits for the lease rather than losing its minute.
    { log: (line) => console.log(line), marginMs: COORDINATOR_MARGIN_MS, waitForLeaseMs: 20_000 },
  );
}

/**
 * The worker function of a deployed job: runs one task per invocation.
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
