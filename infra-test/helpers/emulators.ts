import { fork } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

// kinesalite, dynalite and s3rver are started by lib/ (`sluice dev-aws` runs them too).
export { type Emulator, startDynalite, startKinesalite, startS3rver } from '../../lib/aws/dev/emulators.ts';
import type { Emulator } from '../../lib/aws/dev/emulators.ts';

/** The ports kinesis-local is told to use; the loopback preload binds a free port for each and reports it. */
const PLAIN_PORT = 1;
const TLS_PORT = 2;

/**
 * kinesis-local (kinesis-mock, the Kinesis emulator LocalStack runs) in a child process, on a free
 * 127.0.0.1 port, in memory. Its resharding is closer to Kinesis than kinesalite's: split and merged
 * shards close, children carry their parents' ids, and GetRecords on a closed shard ends with
 * `ChildShards`. Stream operations take `opDelayMs` (Kinesis: seconds) before the stream is ACTIVE.
 */
export async function startKinesisLocal(options: { opDelayMs?: number } = {}): Promise<Emulator> {
  const require = createRequire(import.meta.url);
  const main = require.resolve('kinesis-local/main.js');
  const delay = `${options.opDelayMs ?? 50}ms`;
  const child = fork(main, [], {
    // Its own flags only: not the test runner's.
    execArgv: ['--require', join(dirname(fileURLToPath(import.meta.url)), 'loopback-only.cjs')],
    env: {
      PATH: process.env.PATH,
      KINESIS_MOCK_PLAIN_PORT: String(PLAIN_PORT),
      KINESIS_MOCK_TLS_PORT: String(TLS_PORT),
      KINESIS_MOCK_CERT_PATH: join(dirname(main), 'server.json'),
      LOG_LEVEL: 'ERROR',
      ...Object.fromEntries(
        ['CREATE_STREAM', 'DELETE_STREAM', 'MERGE_SHARDS', 'SPLIT_SHARD', 'UPDATE_SHARD_COUNT', 'UPDATE_STREAM_MODE'].map((op) => [`${op}_DURATION`, delay]),
      ),
    },
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    stderr = (stderr + d).slice(-4000);
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.on('message', (m: { requested: number; port: number }) => m.requested === PLAIN_PORT && resolve(m.port));
    child.once('exit', (code) => reject(new Error(`kinesis-local exited (${code}) before listening: ${stderr}`)));
  });
  return {
    endpoint: `http://127.0.0.1:${port}`,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      // In memory, nothing to flush; its graceful shutdown waits for clients' keep-alive sockets.
      child.kill('SIGKILL');
      await exited;
    },
  };
}
