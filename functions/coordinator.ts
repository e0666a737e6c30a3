// The coordinator Lambda, scheduled every minute: runs the batch clock for that minute, then hands
// the lease over. Configuration comes from the environment (lib/aws/runtime.ts).
import { createCoordinatorHandler } from '../lib/aws/handlers.ts';
import { awsCoordinatorRuntime, configFromEnv, loadJobFromEnv } from '../lib/aws/runtime.ts';

export const handler = createCoordinatorHandler(
  () => loadJobFromEnv(),
  (graph) => awsCoordinatorRuntime(graph, configFromEnv(process.env, 'coordinator')),
  { log: (line) => console.log(line) },
);
