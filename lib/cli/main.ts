import { Command, CommanderError, Option } from 'commander';
import { EXIT, reportError } from './errors.ts';
import { packageInfo } from './packageInfo.ts';
import type { DeadLetterFlags } from './deadLetters.ts';
import type { DevAwsFlags } from './devAws.ts';
import type { Operation, OperateFlags } from './operate.ts';
import type { PlanFlags } from './plan.ts';
import type { ProduceFlags } from './produce.ts';
import type { StateFlags } from './state.ts';
import type { StatusFlags } from './status.ts';
import type { UiFlags } from './ui.ts';

const RUN_NOTES = `
Stops after --batches or --duration, or on Ctrl-C after the current batch; a second Ctrl-C stops
at once (the next run resumes from the last committed batch).
Environment: SLUICE_BATCH_INTERVAL, SLUICE_ON_RECORD_ERROR and SLUICE_WRITE_EMPTY_BATCHES (true or
false) set what the flags set, as on AWS; SLUICE_DEBUG=1 is --debug.`;

/**
 * Points commander's own errors (unknown option, missing argument) at the command's help:
 * `error: unknown option '--bogus' (see sluice help run)`.
 */
function pointToHelp(cmd: Command, helpFor: string): Command {
  return cmd.configureOutput({
    outputError: (text, write) => write(`${text.trimEnd()} (see ${helpFor})\n`),
  });
}

/** The options that name a deployed job, on the commands that read or operate one (lib/cli/jobStores.ts). */
function deployedJobOptions(cmd: Command): Command {
  return cmd
    .option('--stack <name>', "a deployed job's CloudFormation stack: its outputs name the table, state bucket and stream")
    .option('--table <name>', "a deployed job's DynamoDB table (with --bucket), instead of --stack")
    .option('--bucket <name>', "a deployed job's state bucket (with --table)")
    .option('--job <name>', 'which job of the stack or table: its name, or its construct id in the stack (needed when there are several)')
    .option('--stream <name>', "the job's Kinesis stream (default: the stack's)")
    .option('--region <region>', 'the AWS region (default: AWS_REGION, else your profile\'s)');
}

const DEPLOYED_NOTES = `
A deployed job is read with your AWS credentials (environment, AWS_PROFILE, SSO: the SDK's default
chain). SLUICE_AWS_ENDPOINT (or SLUICE_DYNAMODB_ENDPOINT, SLUICE_S3_ENDPOINT, SLUICE_KINESIS_ENDPOINT,
SLUICE_CLOUDFORMATION_ENDPOINT) points it at LocalStack or an emulator.`;

/**
 * A command that reads a job, local or deployed (`status`, `state`, `dead-letters`, `ui`): the job
 * file, `--state-dir`, the options that name a deployed job, and the note on credentials.
 */
function jobCommand(parent: Command, name: string, description: string, jobHelp = 'the job file: its state is under .sluice/<job name>'): Command {
  const cmd = parent
    .command(name)
    .description(description)
    .argument('[job]', jobHelp)
    .option('--state-dir <dir>', 'the state directory instead (as given to sluice run --state-dir)');
  return deployedJobOptions(cmd).addHelpText('after', DEPLOYED_NOTES);
}

/** The `sluice` command: subcommands, their options and help, each action resolving to an exit code. */
function program(done: (code: number) => void): Command {
  const sluice = new Command('sluice')
    .description("Spark Streaming's DStream model on serverless AWS: run jobs locally, feed streams, make projects.")
    .version(packageInfo().version, '-V, --version', 'the version of sluice')
    .helpOption('-h, --help', 'help for a command (or: sluice help <command>)')
    .exitOverride()
    .showSuggestionAfterError(true);
  pointToHelp(sluice, 'sluice help');

  const run = sluice
    .command('run')
    .description('run a job locally: one coordinator, tasks in this process or on worker threads, state under .sluice/<job>/ (resumed when it exists)')
    .argument('<job>', 'the job file (.ts, .mts, .cts, .js, .mjs) whose default export is defineJob(...)')
    .option('--batches <n>', 'stop after n batches')
    .option('--duration <d>', 'stop after d of wall time (e.g. 30s, 5m)')
    .option('--parallelism <k>', "run tasks on k worker threads (like Spark's local[k])", '1')
    .option('--batch-interval <d>', "a batch every d instead of the job's batchInterval (e.g. 5s)")
    .addOption(new Option('--on-record-error <mode>', "fail or dead-letter instead of the job's onRecordError"))
    .option('--write-empty-batches', "a batch without records still writes empty parts and _SUCCESS for each saveAs output (Spark's layout)")
    .option('--no-write-empty-batches', 'a batch without records writes nothing for its saveAs outputs (the default)')
    .option('--state-dir <dir>', 'where checkpoints and lineage live (default: .sluice/<job name>)')
    .option('--reset', 'delete the state directory first (start from scratch)')
    .option('--allow-plan-change', 'resume from a checkpoint made by a changed job')
    .option('--quiet', 'no progress lines')
    .option('--ui [port]', 'serve the Streaming UI on 127.0.0.1 while the job runs (default port 4040; 0 for any free one)')
    .option('--debug', 'print the whole stack of an error (also SLUICE_DEBUG=1)')
    .addHelpText('after', RUN_NOTES)
    .action(async (job: string, flags) => done(await (await import('./run.ts')).runCommand(job, flags)));
  pointToHelp(run, 'sluice help run');

  const plan = sluice
    .command('plan')
    .description("show a job's graph and the stages of a batch (split at shuffles), as text or as a Mermaid flowchart; runs nothing")
    .argument('<job>', 'the job file whose default export is defineJob(...)')
    .option('--mermaid', 'a Mermaid flowchart (one box per stage) instead of text')
    .option('--debug', 'print the whole stack of an error (also SLUICE_DEBUG=1)')
    .action(async (job: string, flags: PlanFlags) => done(await (await import('./plan.ts')).planCommand(job, flags)));
  pointToHelp(plan, 'sluice help plan');

  const status = jobCommand(
    sluice,
    'status',
    'where a job stands: the last batch done, the lease, batches a run stopped in, dead letters, a pause; for a deployed job its lag behind the stream too; takes nothing, writes nothing',
  )
    .option('--debug', 'print the whole stack of an error (also SLUICE_DEBUG=1)')
    .action(async (job: string | undefined, flags: StatusFlags) => done(await (await import('./status.ts')).statusCommand(job, flags)));
  pointToHelp(status, 'sluice help status');

  const state = jobCommand(sluice, 'state', "the keys and values of a job's stateful operators as its last commit left them, decoded; reads only")
    .option('--node <id>', 'only this operator (e.g. updateStateByKey-1)')
    .option('--key <key>', 'only the key whose JSON or text this is')
    .option('--limit <n>', 'at most n keys per operator', '100')
    .option('--debug', 'print the whole stack of an error (also SLUICE_DEBUG=1)')
    .action(async (job: string | undefined, flags: StateFlags) => done(await (await import('./state.ts')).stateCommand(job, flags)));
  pointToHelp(state, 'sluice help state');

  const deadLetters = jobCommand(
    sluice,
    'dead-letters',
    "the records a job set aside (onRecordError: 'dead-letter'), by batch; one batch's letters; or their records sent back, into a file or the job's stream",
  )
    .option('--batch <time>', "one batch's letters (its time in ms, as listed)")
    .option('--limit <n>', 'at most n batches or letters', '20')
    .option('--redrive-to <file>', 'write the records (of --batch, or of every batch) to a file, one a line, to feed back into the job')
    .option('--redrive-stream [name]', "put the records (of --batch, or of every batch) back into a Kinesis stream: the deployed job's own, or the one named")
    .addHelpText(
      'after',
      `
A redriven record is new input: the job reads it again, in a new batch (not in the batch that set it
aside), and a record that fails again is set aside again. A record its decoder refused goes back as it
came (its bytes, its partition key); one an operator refused goes back as that operator got it, as text
(or JSON). The letters stay where they are.`,
    )
    .option('--debug', 'print the whole stack of an error (also SLUICE_DEBUG=1)')
    .action(async (job: string | undefined, flags: DeadLetterFlags) => done(await (await import('./deadLetters.ts')).deadLettersCommand(job, flags)));
  pointToHelp(deadLetters, 'sluice help dead-letters');

  const ui = jobCommand(
    sluice,
    'ui',
    'the Streaming UI of a job that is not running here, from the history its coordinators wrote: a stopped local job (its state directory), or a deployed one (--stack), followed as it runs',
    'the job file: its state is under .sluice/<job name>, and the page shows its plan',
  )
    .option('--port <port>', 'the port on 127.0.0.1 (0 for any free one)', '4040')
    .option('--debug', 'print the whole stack of an error (also SLUICE_DEBUG=1)')
    .action(async (job: string | undefined, flags: UiFlags) => done(await (await import('./ui.ts')).uiCommand(job, flags)));
  pointToHelp(ui, 'sluice help ui');

  const OPERATIONS: { name: Operation; description: string; notes: string }[] = [
    {
      name: 'pause',
      description: 'pause a deployed job: its coordinator stops within 10 s, at a batch boundary, and does nothing until sluice resume (kept through deployments)',
      notes: '\nWrites a pause record in the job\'s table; each coordinator invocation reads it before taking the lease and between batches.',
    },
    { name: 'resume', description: 'resume a paused deployed job: the next coordinator invocation goes on from the checkpoint, missed batches first', notes: '' },
    {
      name: 'reset',
      description: "remove a paused deployed job's checkpoint, batch records and state (not its sink or dead letters), to start again from the stream's initial position",
      notes: '\nOnly while the job is paused and no coordinator holds the lease (sluice status shows both).',
    },
  ];
  for (const op of OPERATIONS) {
    const cmd = sluice.command(op.name).description(op.description).argument('[job]', 'the job file, naming the job by its name (or give --job)');
    deployedJobOptions(cmd)
      .option('--yes', "do it without typing the job's name (needed when the input is not a terminal)")
      .option('--debug', 'print the whole stack of an error (also SLUICE_DEBUG=1)')
      .addHelpText('after', `${op.notes}${DEPLOYED_NOTES}`)
      .action(async (job: string | undefined, flags: OperateFlags) => done(await (await import('./operate.ts')).operateCommand(op.name, job, flags)));
    pointToHelp(cmd, `sluice help ${op.name}`);
  }

  const init = sluice
    .command('init')
    .description('make a new project: a job, its test, a CDK app with SluiceJob, cdk.json, tsconfig, README')
    .argument('[dir]', 'an empty or new folder', '.')
    .option('--name <name>', 'the package and job name (default: the folder name)')
    .option('--batch-interval <d>', 'the batch interval of the job', '1s')
    .addOption(new Option('--source <source>', 'where the job reads lines: a generated source, or a Kinesis stream').choices(['local', 'kinesis']).default('local'))
    .option('--sluice <spec>', 'the sluice dependency to write: a version range, a tarball or a folder (default: ^<this version>)')
    .action(async (dir: string, flags) => done(await (await import('./init.ts')).initCommand(dir, flags)));
  pointToHelp(init, 'sluice help init');

  const produce = sluice
    .command('produce')
    .description('put generated text lines into a Kinesis stream at a steady rate, until --count records or Ctrl-C')
    .requiredOption('--stream <name>', 'the stream to put into')
    .option('--rate <n>', 'records a second', '100')
    .option('--count <n>', 'stop after n records')
    .option('--lines <words>', 'put these words in turn (e.g. "a b c") instead of lines like "I am a dummy source 7"')
    .addHelpText('after', '\nThe endpoint comes from SLUICE_AWS_ENDPOINT (LocalStack, an emulator), else AWS and its usual credentials.')
    .action(async (flags: ProduceFlags) => done(await (await import('./produce.ts')).produceCommand(flags)));
  pointToHelp(produce, 'sluice help produce');

  const devAws = sluice
    .command('dev-aws')
    .description('run a job on the AWS path on this machine: S3, DynamoDB and Kinesis emulators, a producer, the real Lambda handlers')
    .argument('<job>', 'the job file; it reads its stream and bucket from SLUICE_STREAM and SLUICE_SINK_BUCKET')
    .option('--rate <n>', 'lines a second put into the stream', '200')
    .option('--minute <d>', "how long one coordinator invocation runs (the schedule's minute, shortened)", '20s')
    .option('--shards <n>', 'shards of the stream', '2')
    .option('--stream <name>', 'the stream (the table and buckets are named after it)', 'sluice-dev')
    .option('--debug', 'print the whole stack of an error (also SLUICE_DEBUG=1)')
    .addHelpText(
      'after',
      '\nNeeds the emulator packages beside sluice: npm install --save-dev dynalite kinesalite s3rver.\nWith SLUICE_AWS_ENDPOINT set (LocalStack), uses it instead of the emulators. Ctrl-C stops.',
    )
    .action(async (job: string, flags: DevAwsFlags) => done(await (await import('./devAws.ts')).devAwsCommand(job, flags)));
  pointToHelp(devAws, 'sluice help dev-aws');

  return sluice;
}

/** Runs the `sluice` command with `argv` (without node and the script); resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  let code: number = EXIT.ok;
  const cli = program((c) => {
    code = c;
  });
  if (argv.length === 0) {
    // No command: the overview, and a usage exit code since nothing was done.
    process.stdout.write(cli.helpInformation());
    return EXIT.usage;
  }
  try {
    await cli.parseAsync(argv, { from: 'user' });
    return code;
  } catch (e) {
    if (e instanceof CommanderError) {
      // Help and version end with exit code 0; commander has already printed its error text.
      return e.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    return reportError(e);
  }
}
