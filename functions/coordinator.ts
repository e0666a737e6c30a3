// The coordinator Lambda, scheduled every minute: runs the batch clock for that minute, then hands
// the lease over. The job comes from SLUICE_JOB_FILE (the SluiceJob construct bundles it in
// instead); the rest of the configuration from the environment (lib/aws/runtime.ts).
import { coordinatorHandler } from '../lib/aws/coordinatorLambda.ts';
import { loadJobFromEnv } from '../lib/aws/runtime.ts';

export const handler = coordinatorHandler(() => loadJobFromEnv());
