// The worker Lambda: runs one task. Configuration comes from the environment (lib/aws/runtime.ts).
import { createWorkerHandler } from '../lib/aws/handlers.ts';
import { awsWorkerRuntime, configFromEnv, loadJobFromEnv } from '../lib/aws/runtime.ts';

export const handler = createWorkerHandler(() => loadJobFromEnv(), (graph) => awsWorkerRuntime(graph, configFromEnv(process.env, 'worker')));
