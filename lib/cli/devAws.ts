import { spawn } from 'node:child_process';
import { debugWanted, EXIT, reportError } from './errors.ts';
import { durationMs, positiveInt, positiveNumber, stopOnCtrlC } from './options.ts';

/** The flags of `sluice dev-aws`, as commander gives them. */
export interface DevAwsFlags {
  readonly rate: string;
  readonly minute: string;
  readonly shards: string;
  readonly stream: string;
  readonly debug?: boolean;
}

const LEGACY_PROVIDER = '--openssl-legacy-provider';

/** Whether this Node runs with OpenSSL's legacy provider (a flag, or NODE_OPTIONS). */
function legacyProviderOn(): boolean {
  return process.execArgv.includes(LEGACY_PROVIDER) || (process.env.NODE_OPTIONS ?? '').includes(LEGACY_PROVIDER);
}

/**
 * Runs this very command again in a Node started with OpenSSL's legacy provider, which s3rver
 * (the S3 emulator of `sluice dev-aws`) needs to page listings: a flag Node only takes at start.
 * Ctrl-C and SIGTERM are passed on; resolves to the child's exit code.
 */
function rerunWithLegacyProvider(): Promise<number> {
  const child = spawn(process.execPath, [LEGACY_PROVIDER, ...process.execArgv, ...process.argv.slice(1)], { stdio: 'inherit' });
  const pass = (signal: NodeJS.Signals) => () => child.kill(signal);
  const onInt = pass('SIGINT');
  const onTerm = pass('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  return new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      resolve(code ?? (signal ? EXIT.failed : EXIT.ok));
    });
  });
}

/**
 * `sluice dev-aws job.ts`: the AWS path on this machine (emulators, a producer, the real handlers)
 * until Ctrl-C. Resolves to the exit code.
 *
 * @example
 * ```ts
 * process.exitCode = await devAwsCommand('job.ts', { rate: '200', minute: '20s', shards: '2', stream: 'sluice-dev' });
 * ```
 */
export async function devAwsCommand(job: string, flags: DevAwsFlags): Promise<number> {
  // s3rver pages listings only with the legacy provider; LocalStack needs nothing of the kind.
  if (!process.env.SLUICE_AWS_ENDPOINT && !legacyProviderOn()) return rerunWithLegacyProvider();
  try {
    const options = {
      rate: positiveNumber(flags.rate, '--rate')!,
      minuteMs: durationMs(flags.minute, '--minute')!,
      shards: positiveInt(flags.shards, '--shards')!,
      name: flags.stream,
    };
    const [{ runDevAws }, { loadJob }] = await Promise.all([import('../aws/dev/devAws.ts'), import('../node/loadJob.ts')]);
    await runDevAws(() => loadJob(job), { ...options, signal: stopOnCtrlC(), log: (l) => process.stderr.write(`${l}\n`) });
    return EXIT.ok;
  } catch (e) {
    return reportError(e, { jobFile: job, debug: debugWanted(flags.debug) });
  }
}
