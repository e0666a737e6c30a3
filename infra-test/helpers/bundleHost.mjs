// A Lambda execution environment for the deployment bundle, in a child process: it imports the
// bundle (argv[2]) once, as Lambda does on a cold start, with only the environment it was given,
// and runs one of its handlers for each message from the parent (see bundleHost.ts).
import { pathToFileURL } from 'node:url';

const bundle = await import(pathToFileURL(process.argv[2]).href);

process.on('message', async ({ id, handler, event, timeoutMs, functionName }) => {
  const deadline = Date.now() + timeoutMs;
  const context = { functionName, getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()) };
  try {
    const value = await bundle[handler](event, context);
    process.send({ id, ok: true, value });
  } catch (err) {
    process.send({ id, ok: false, error: { name: err?.name ?? 'Error', message: String(err?.message ?? err), stack: err?.stack } });
  }
});
process.send({ ready: true });
