import type { JobDefinition } from '../api/job.ts';
import { type CoordinatorHandlerOptions, type CoordinatorRun, createCoordinatorHandler, createWorkerHandler, type LambdaContext } from './handlers.ts';
import { awsCoordinatorRuntime, awsWorkerRuntime, configFromEnv, withEnvOptions } from './runtime.ts';

/** The coordinator function's timeout (a minute of batches, plus time to finish the last one). */
export const COORDINATOR_TIMEOUT_MS = 75_000;

/**
 * How the deployed coordinator function runs (see {@link coordinatorHandler}): invoked every
 * minute, it starts no batch in its last 15 s, so it hands the lease over about when the next
 * minute's invocation starts; that one waits up to 20 s for the lease rather than losing its
 * minute, and stands aside if the holder is still at work after that.
 *
 * @example
 * ```ts
 * // the deployed coordinator's timing, with a runtime of your own (a test clock, say)
 * const handler = createCoordinatorHandler(load, runtime, { ...DEPLOYED_COORDINATOR, log: console.log });
 * ```
 */
export const DEPLOYED_COORDINATOR: Required<Pick<CoordinatorHandlerOptions, 'marginMs' | 'waitForLeaseMs'>> = { marginMs: 15_000, waitForLeaseMs: 20_000 };

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
    { ...DEPLOYED_COORDINATOR, log: (line) => console.log(line) },
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
