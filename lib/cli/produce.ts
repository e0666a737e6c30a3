import { EXIT, reportError } from './errors.ts';
import { positiveInt, positiveNumber, stopOnCtrlC } from './options.ts';

/** The flags of `sluice produce`, as commander gives them. */
export interface ProduceFlags {
  readonly stream: string;
  readonly rate: string;
  readonly count?: string;
  readonly lines?: string;
}

/**
 * `sluice produce`: puts generated lines into a Kinesis stream until `--count` or Ctrl-C, then says
 * how many it put. Resolves to the exit code.
 *
 * @example
 * ```ts
 * process.exitCode = await produceCommand({ stream: 'clicks', rate: '500', count: '10000' });
 * ```
 */
export async function produceCommand(flags: ProduceFlags): Promise<number> {
  try {
    const rate = positiveNumber(flags.rate, '--rate');
    const count = positiveInt(flags.count, '--count');
    const { produceLines } = await import('../aws/produce.ts');
    const started = Date.now();
    const put = await produceLines({ stream: flags.stream, rate, count, words: flags.lines?.split(/\s+/).filter(Boolean), signal: stopOnCtrlC() });
    process.stderr.write(`put ${put} records into ${flags.stream} in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
    return EXIT.ok;
  } catch (e) {
    return reportError(e);
  }
}
