import { randomBytes } from 'node:crypto';
import { SluiceError } from '../core/errors.ts';
import type { CoordinatorRuntime } from '../engine/coordinator.ts';
import { WallClock } from '../node/clock.ts';
import type { JobGraph } from '../plan/graph.ts';
import { dynamoClient, lambdaClient } from './clients.ts';
import { DynamoMetaStore } from './dynamoMetaStore.ts';
import type { OutputLog } from '../ports/index.ts';
import { emfMetrics } from './emfMetrics.ts';
import type { LambdaLog } from './lambdaLog.ts';
import { LambdaInvoker } from './lambdaInvoker.ts';
import { type AwsRuntimeConfig, awsWorkerRuntime } from './runtime.ts';

// The coordinator's runtime, apart from the worker's (runtime.ts) so that only the coordinator's
// bundle holds the DynamoDB and Lambda clients: workers never call either service.

/**
 * What the coordinator function needs: the worker runtime's stores, the DynamoDB meta store, the
 * Lambda invoker, the wall clock, EMF metrics (dimension `Stack` from `config.deployment`).
 * `write`, when given, takes every line, log and metrics alike (tests, benchmarks); otherwise log
 * lines go to `log` (the deployed function's structured log, `lambdaLog`) or `console.log`, and
 * metric lines to `log.metric` or stdout, never through `console`, which Lambda's JSON log format
 * would wrap so that CloudWatch no longer reads them as metrics.
 *
 * @example
 * ```ts
 * export const handler = createCoordinatorHandler(loadJobFromEnv, (graph) => awsCoordinatorRuntime(graph, configFromEnv(process.env, 'coordinator')));
 * ```
 */
export function awsCoordinatorRuntime(graph: JobGraph, config: AwsRuntimeConfig, write?: (line: string) => void, log?: LambdaLog): CoordinatorRuntime {
  if (!config.workerFunction) throw new SluiceError('the coordinator needs the worker function name (SLUICE_WORKER_FUNCTION)');
  const worker = awsWorkerRuntime(graph, config);
  return {
    ...worker,
    meta: new DynamoMetaStore({ client: dynamoClient(config.aws), table: config.table, job: graph.name }),
    // Tasks and results over Lambda's 6 MB go through the state store.
    invoker: new LambdaInvoker({ client: lambdaClient(config.aws), functionName: config.workerFunction, concurrency: config.concurrency, blobs: worker.blobs }),
    clock: new WallClock(),
    log: log && !write ? log : lines(write ?? ((l) => console.log(l))),
    metrics: emfMetrics(write ?? (log ? (l) => log.metric(l) : undefined), { deployment: config.deployment, highResolution: config.highResolutionMetrics }),
    owner: `lambda:${process.env.AWS_LAMBDA_LOG_STREAM_NAME ?? randomBytes(6).toString('hex')}:${randomBytes(4).toString('hex')}`,
    stateLocation: `s3://${config.stateBucket}/${config.statePrefix ?? `${graph.name}/`} and table ${config.table}`,
  };
}

/** Log lines as plain text, each through `write`. */
const lines = (write: (line: string) => void): OutputLog => ({ print: (text) => write(text.trimEnd()), info: write, warn: (l) => write(`warning: ${l}`) });
