// `npm run dev:aws`: the AWS path on one laptop. Starts S3, DynamoDB and Kinesis emulators and a
// Lambda Invoke endpoint on 127.0.0.1, creates the stream, table and buckets, feeds the stream,
// and runs a job through the real coordinator and worker handlers, one "minute" after another,
// until Ctrl-C.
//   npm run dev:aws                              # examples/kinesis-wordcount.ts
//   npm run dev:aws -- path/to/job.ts --rate 500 --minute 20s
import { parseArgs } from 'node:util';
import { toMillis } from '../lib/api/duration.ts';
import { createCoordinatorHandler, createWorkerHandler } from '../lib/aws/handlers.ts';
import { awsCoordinatorRuntime, awsWorkerRuntime } from '../lib/aws/runtime.ts';
import { loadJob } from '../lib/local/loadJob.ts';
import { createResources, putLines, startAwsStack } from './helpers/awsStack.ts';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { rate: { type: 'string', default: '200' }, minute: { type: 'string', default: '20s' }, shards: { type: 'string', default: '2' } },
});
const jobFile = positionals[0] ?? 'examples/kinesis-wordcount.ts';
const name = 'sluice-dev';
process.env.SLUICE_STREAM = name;
process.env.SLUICE_SINK_BUCKET = `${name}-out`;

const stack = await startAwsStack();
const stop = new AbortController();
process.once('SIGINT', () => stop.abort());
try {
  await createResources(stack, name, Number(values.shards));
  const config = stack.config(name);
  const job = await loadJob(jobFile);
  stack.lambda.register(config.workerFunction!, createWorkerHandler(async () => job, (graph) => awsWorkerRuntime(graph, config)));
  console.error(`dev:aws: S3 ${stack.s3.endpoint}, DynamoDB ${stack.dynamo.endpoint}, Kinesis ${stack.kinesis.endpoint}, Lambda ${stack.lambda.endpoint}`);
  console.error(`dev:aws: stream ${name}, table ${config.table}, buckets ${config.stateBucket} and ${name}-out; job ${job.options.name}; Ctrl-C to stop`);

  // The producer: `rate` lines a second, like `npm run produce`.
  const rate = Number(values.rate);
  let i = 0;
  const producer = (async () => {
    while (!stop.signal.aborted) {
      const lines = Array.from({ length: Math.max(1, Math.round(rate / 10)) }, () => `I am a dummy source ${i++ % 10}`);
      await putLines(stack, name, lines);
      await new Promise((r) => setTimeout(r, 100));
    }
  })();

  // One coordinator invocation per "minute" (shortened), as EventBridge would schedule them.
  const minute = toMillis(values.minute!, '--minute');
  const coordinator = createCoordinatorHandler(async () => job, (graph) => awsCoordinatorRuntime(graph, config), { marginMs: 0, log: (l) => console.error(l) });
  while (!stop.signal.aborted) {
    const run = await coordinator({}, { getRemainingTimeInMillis: () => minute });
    console.error(`dev:aws: coordinator invocation ran ${run.batches} batch(es), last committed ${run.lastCompleted}`);
  }
  await producer;
} finally {
  await stack.stop();
}
