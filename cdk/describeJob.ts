// Run by the SluiceJob construct in a child process at synth time (CDK constructs are synchronous;
// loading a TypeScript job file is not): loads the job with the deployment's environment, builds
// its graph — so a broken job fails the synth, not the first batch — and prints what the construct
// needs to know as one JSON line.
import { buildGraph } from '../lib/api/job.ts';
import { type AwsAccess, awsAccessOf, refusalOf } from '../lib/core/sources.ts';
import { loadJob } from '../lib/node/loadJob.ts';
import { withEnvOptions } from '../lib/aws/runtime.ts';

/** What the construct learns of a job. */
export interface JobDescription {
  readonly name: string;
  readonly batchInterval: number;
  readonly onRecordError: string;
  /** What the job's sources read on AWS, as the source catalogue says: one entry per source node that reads an AWS resource. */
  readonly reads: AwsAccess[];
  /** s3:// locations the job writes (saveAs…Files). */
  readonly writes: string[];
  /** What in the job cannot run on AWS (a socket source, a local folder, a local output). */
  readonly problems: string[];
}

async function describe(file: string): Promise<JobDescription> {
  const job = withEnvOptions(await loadJob(file));
  const graph = buildGraph(job);
  const writes = graph.outputs.flatMap((o) => (o.prefix === undefined ? [] : [o.prefix]));
  const problems = [
    // The source catalogue (lib/core/sources.ts) says which sources run on AWS, in the words the AWS runtime would refuse them with.
    ...graph.sources.flatMap((s) => refusalOf(s, 'aws') ?? []),
    ...writes.filter((d) => !d.startsWith('s3://')).map((d) => `output ${JSON.stringify(d)}: on AWS, outputs go to s3://bucket/prefix`),
  ];
  return {
    problems,
    name: job.options.name,
    batchInterval: job.options.batchInterval,
    onRecordError: job.options.onRecordError,
    reads: graph.sources.flatMap((s) => awsAccessOf(s) ?? []),
    writes: writes.filter((l) => l.startsWith('s3://')),
  };
}

try {
  process.stdout.write(`${JSON.stringify(await describe(process.argv[2] ?? ''))}\n`);
} catch (e) {
  process.stderr.write(`${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}\n`);
  process.exitCode = 1;
}
