import { parseArgs } from 'node:util';
import { PutRecordsCommand } from '@aws-sdk/client-kinesis';
import { kinesisClient } from './clients.ts';

const USAGE = `Usage: npm run produce -- --stream NAME [--rate N] [--count N] [--lines "a b c"]

Puts generated text lines into a Kinesis stream at N records/s (default 100), until --count
records were put or Ctrl-C. Lines look like "I am a dummy source 7", or are drawn from --lines.
The endpoint comes from SLUICE_AWS_ENDPOINT (LocalStack, an emulator), else AWS.
`;

/**
 * `npm run produce`: feeds a Kinesis stream with generated lines, for trying jobs on your own
 * stream. Resolves to the exit code.
 *
 * @example
 * ```sh
 * SLUICE_AWS_ENDPOINT=http://localhost:4566 npm run produce -- --stream clicks --rate 500
 * ```
 */
export async function produce(argv: string[]): Promise<number> {
  let values: { stream?: string; rate?: string; count?: string; lines?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: { stream: { type: 'string' }, rate: { type: 'string' }, count: { type: 'string' }, lines: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    }));
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const rate = Number(values.rate ?? 100);
  const count = values.count === undefined ? Number.POSITIVE_INFINITY : Number(values.count);
  if (!values.stream || !Number.isFinite(rate) || rate <= 0 || !(count > 0)) {
    process.stderr.write(`--stream is required, --rate and --count must be positive numbers\n${USAGE}`);
    return 2;
  }
  const words = values.lines?.split(/\s+/).filter(Boolean);
  const make = (i: number) => (words ? words[i % words.length] : `I am a dummy source ${i % 10}`);
  const client = kinesisClient();
  const stop = new AbortController();
  process.once('SIGINT', () => stop.abort());
  let sent = 0;
  const started = Date.now();
  try {
    while (sent < count && !stop.signal.aborted) {
      // Top up to where the rate says we should be, in PutRecords calls of at most 500 records.
      const due = Math.min(count, Math.floor(((Date.now() - started) / 1000) * rate) + 1);
      while (sent < due) {
        const n = Math.min(500, due - sent);
        const Records = Array.from({ length: n }, (_, k) => ({ Data: new TextEncoder().encode(make(sent + k)), PartitionKey: `p${(sent + k) % 64}` }));
        const out = await client.send(new PutRecordsCommand({ StreamName: values.stream, Records }));
        if (out.FailedRecordCount) throw new Error(`${out.FailedRecordCount} of ${n} records were refused (throttled?)`);
        sent += n;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    process.stderr.write(`put ${sent} records into ${values.stream} in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
    return 0;
  } catch (e) {
    process.stderr.write(`produce: ${(e as Error).name}: ${(e as Error).message}\n`);
    return 1;
  } finally {
    client.destroy();
  }
}

if (process.argv[1]?.endsWith('produce.ts')) process.exitCode = await produce(process.argv.slice(2));
