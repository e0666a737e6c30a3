/**
 * Entry point of a WorkerThreadInvoker thread. Plain JavaScript because a worker thread starts
 * without the main thread's module hooks: tsx has to be registered here before any TypeScript
 * (the engine, the job file) can load. The real work is in workerThreadMain.ts.
 */
import { register } from 'tsx/esm/api';

register();
const { runWorkerThread } = await import('./workerThreadMain.ts');
await runWorkerThread();
