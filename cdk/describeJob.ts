// Run by the SluiceJob construct in a child process at synth time (CDK constructs are synchronous;
// loading a TypeScript job file is not): loads the job with the deployment's environment, builds
// its graph — so a broken job fails the synth, not the first batch — and prints what the construct
// needs to know as one JSON line.
import { buildGraph } from '../lib/api/job.ts';
import { loadJob } from '../lib/node/loadJob.ts';
import { withEnvOptions } from '../lib/aws/runtime.ts';

/** What the construct learns of a job. */
export interface JobDescription {
  readonly name: string;
  readonly batchInterval: number;
  readonly onRecordError: string;
  /** Kinesis streams the job reads. */
  readonly streams: string[];
  /** s3:// locations the job reads (textFileStream) or writes (saveAs…Files). */
  readonly s3: string[];
  /** What in the job cannot run on AWS (a socket source, a local folder, a local output). */
  readonly problems: string[];
}

async function describe(file: string): Promise<JobDescription> {
  const job = withEnvOptions(await loadJob(file));
  const graph = buildGraph(job);
  const streams = graph.sources.filter((s) => s.kind === 'kinesis').map((s) => String(s.params.stream));
  const reads = graph.sources.filter((s) => s.kind === 'textFile').map((s) => String(s.params.directory));
  const writes = graph.outputs.flatMap((o) => (o.prefix === undefined ? [] : [o.prefix]));
  const problems = [
    ...graph.sources.filter((s) => s.kind === 'socket').map((s) => `${s.nodeId}: socketTextStream runs locally only`),
    ...reads.filter((d) => !d.startsWith('s3://')).map((d) => `textFileStream(${JSON.stringify(d)}): on AWS, watch an s3:// prefix`),
    ...writes.filter((d) => !d.startsWith('s3://')).map((d) => `output ${JSON.stringify(d)}: on AWS, outputs go to s3://bucket/prefix`),
  ];
  return {
    problems,
    name: job.options.name,
    batchInterval: job.options.batchInterval,
    onRecordError: job.options.onRecordError,
    streams,
    s3: [...reads, ...writes].filter((l) => l.startsWith('s3://')),
  };
}

try {
  process.stdout.write(`${JSON.stringify(await describe(process.argv[2] ?? ''))}\n`);
} catch (e) {
  process.stderr.write(`${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}\n`);
  process.exitCode = 1;
}
