// The worker Lambda: runs one task. The job comes from SLUICE_JOB_FILE (the SluiceJob construct
// bundles it in instead); the rest of the configuration from the environment (lib/aws/runtime.ts).
import { workerHandler } from '../lib/aws/workerLambda.ts';
import { loadJobFromEnv } from '../lib/aws/runtime.ts';

export const handler = workerHandler(() => loadJobFromEnv());
