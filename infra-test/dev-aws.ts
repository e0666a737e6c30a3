// `npm run dev:aws` in this repository: `sluice dev-aws` with the Kinesis word count when no job is
// given. The command itself lives in lib/ (lib/aws/dev/), so an installed sluice has it too.
//   npm run dev:aws                              # examples/kinesis-wordcount.ts
//   npm run dev:aws -- path/to/job.ts --rate 500 --minute 20s
import { main } from '../lib/cli/main.ts';

const args = process.argv.slice(2);
const jobGiven = args.length > 0 && !args[0].startsWith('-');
process.exitCode = await main(['dev-aws', ...(jobGiven ? [] : ['examples/kinesis-wordcount.ts']), ...args]);
