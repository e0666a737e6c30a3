/**
 * Entry point of a WorkerThreadInvoker thread. Plain JavaScript because a worker thread starts
 * without the main thread's module hooks. In the repository the engine is TypeScript, so tsx has
 * to be registered here before it can load; the published package (this file copied into dist/)
 * has the engine compiled next to it. The real work is in workerThreadMain.ts.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const compiled = new URL('./workerThreadMain.js', import.meta.url);
if (existsSync(compiled)) {
  const { runWorkerThread } = await import(compiled.href);
  await runWorkerThread();
} else {
  const { register } = await import('tsx/esm/api');
  // As bin/sluice.mjs: the repository's tsconfig maps `sluice` to the sources, whatever the working directory.
  register({ tsconfig: fileURLToPath(new URL('../../tsconfig.json', import.meta.url)) });
  const { runWorkerThread } = await import('./workerThreadMain.ts');
  await runWorkerThread();
}
