import type { CoordinatorHandlerOptions } from './handlers.ts';

// How the deployed functions run: the timing the SluiceJob construct and the coordinator's handler
// share. No adapter is imported here, so the construct reads it without loading the AWS SDK. The
// handlers themselves are in coordinatorLambda.ts and workerLambda.ts, one module per function,
// each the root of that function's bundle.

/** The coordinator function's timeout (a minute of batches, plus time to finish the last one). */
export const COORDINATOR_TIMEOUT_MS = 75_000;

/**
 * How the deployed coordinator function runs (see `coordinatorHandler`): invoked every
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
