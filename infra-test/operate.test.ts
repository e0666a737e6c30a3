import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetRecordsCommand, GetShardIteratorCommand, type KinesisClient } from '@aws-sdk/client-kinesis';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SluiceJob } from '../cdk/sluiceJob.ts';
import type { JobDefinition } from '../lib/api/job.ts';
import { type AwsConfig, dynamoClient, kinesisClient, s3Client } from '../lib/aws/clients.ts';
import { awsCoordinatorRuntime } from '../lib/aws/coordinatorRuntime.ts';
import { DynamoMetaStore } from '../lib/aws/dynamoMetaStore.ts';
import { type CoordinatorRun, createCoordinatorHandler, createWorkerHandler, PAUSE_CHECK_MS } from '../lib/aws/handlers.ts';
import { type AwsRuntimeConfig, awsWorkerRuntime } from '../lib/aws/runtime.ts';
import { S3BlobStore } from '../lib/aws/s3BlobStore.ts';
import type { CoordinatorRuntime, ProtocolStep } from '../lib/engine/coordinator.ts';
import { CommitLog } from '../lib/engine/commitLog.ts';
import { readHistory } from '../lib/engine/batchHistory.ts';
import { pauseJob, resetJob, resumeJob } from '../lib/engine/pause.ts';
import { keys, type Lease } from '../lib/engine/protocol.ts';
import { SpillingMetaStore } from '../lib/engine/spillingMetaStore.ts';
import { WallClock } from '../lib/node/clock.ts';
import { ROOT, runSluice, serveSluice, type SluiceRun } from '../test/helpers/cli.ts';
import { type AwsStack, createResources, putLines, startAwsStack } from './helpers/awsStack.ts';
import { projectContext } from './helpers/cdkContext.ts';
import { type DescribeStacksEndpoint, startDescribeStacks } from './helpers/describeStacks.ts';
import { createStream } from './helpers/kinesisStreams.ts';
import { HurriedClock } from './helpers/skewedClock.ts';
import { startThrottlingProxy, type ThrottledService, type ThrottlingProxy } from './helpers/throttlingProxy.ts';

// The operations commands on a deployed job: `sluice status`, `state`, `dead-letters` (with its
// redrive into the stream), `pause`, `resume` and `reset`, run as the user runs them (the real
// `sluice` in a child process) against the emulators, on the resources a deployment has: the
// stream, the table and the state bucket, written by real coordinator invocations of the job.
// `--stack` reads the outputs of the job's real synthesised template from a small DescribeStacks
// endpoint (helpers/describeStacks.ts), resolved to this run's resource names.

const ENTRY = join(ROOT, 'infra-test/fixtures/operate-job.ts');
const JOB = 'operate';
const STACK = 'sluice-operate';
const WORDS = ['alpha', 'beta', 'gamma', 'delta'];
/** 24 lines of words, two lines the decoder refuses, one word ("boom") an operator refuses. */
const FIRST = [...Array.from({ length: 24 }, (_, i) => `${WORDS[i % 4]} ${WORDS[(i + 1) % 4]}`), 'poison one', 'poison two', 'alpha boom'];

/** Word totals of `lines` as the job counts them: decoder-refused lines and "boom" left out. */
function totalsOf(lines: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const l of lines) if (!l.startsWith('poison')) for (const w of l.split(' ')) if (w !== 'boom') out[w] = (out[w] ?? 0) + 1;
  return out;
}

/** Every record of every shard of `stream`: its text and partition key. */
async function everyRecord(client: KinesisClient, stream: string): Promise<{ text: string; key: string }[]> {
  const out: { text: string; key: string }[] = [];
  for (const shard of ['shardId-000000000000', 'shardId-000000000001']) {
    const { ShardIterator } = await client.send(new GetShardIteratorCommand({ StreamName: stream, ShardId: shard, ShardIteratorType: 'TRIM_HORIZON' }));
    const page = await client.send(new GetRecordsCommand({ ShardIterator, Limit: 10_000 }));
    for (const r of page.Records ?? []) out.push({ text: new TextDecoder().decode(r.Data), key: r.PartitionKey! });
  }
  return out;
}

/** The command's own lines on stderr (on Node 20 the AWS SDK adds a warning that it will need Node 22). */
const errorLines = (stderr: string) => stderr.split('\n').filter((l) => l.startsWith('error: '));

type Resources = Record<string, { Type: string; Properties?: { Environment?: { Variables: Record<string, unknown> } } }>;

describe('operating a deployed job on emulated AWS: sluice status, state, dead-letters, pause, resume, reset', () => {
  let stack: AwsStack;
  let cfn: DescribeStacksEndpoint;
  let config: AwsRuntimeConfig;
  let definition: JobDefinition;
  let name: string;
  /** The environment of every `sluice` command: the emulators' endpoints, a region. */
  let env: Record<string, string>;
  const put: string[] = [];

  /** Runs `sluice <args>` against the emulators; with SLUICE_OPERATE_SHOW=1 it prints what each command printed (the README's examples). */
  async function sluice(args: string[], extraEnv: Record<string, string> = {}): Promise<SluiceRun> {
    const r = await runSluice(args, { env: { ...env, ...extraEnv } });
    if (process.env.SLUICE_OPERATE_SHOW) process.stdout.write(`$ sluice ${args.join(' ')}\n${r.stdout}${errorLines(r.stderr).join('\n')}\n(exit ${r.code})\n\n`);
    return r;
  }

  /** One coordinator invocation given `ms` (batches run back to back), with the deployed handler's code and this run's resources. */
  async function invoke(ms: number, overrides: Partial<CoordinatorRuntime> = {}, at: AwsRuntimeConfig = config): Promise<{ run: CoordinatorRun; logs: string[] }> {
    const logs: string[] = [];
    const handler = createCoordinatorHandler(
      async () => definition,
      (graph) => ({ ...awsCoordinatorRuntime(graph, at, (l) => logs.push(l)), clock: new HurriedClock(), retryBackoffMs: 5, ...overrides }),
      { marginMs: 0, log: (l) => logs.push(l) },
    );
    return { run: await handler({}, { getRemainingTimeInMillis: () => ms }), logs };
  }

  /** The job's stores, as the coordinator sees them. */
  function stores() {
    const blobs = new S3BlobStore({ client: s3Client(config.aws), bucket: config.stateBucket, prefix: `${JOB}/` });
    return { meta: new SpillingMetaStore(new DynamoMetaStore({ client: dynamoClient(config.aws), table: config.table, job: JOB }), blobs), blobs };
  }

  async function putMore(lines: string[]): Promise<void> {
    await putLines(stack, name, lines);
    put.push(...lines);
  }

  beforeAll(async () => {
    stack = await startAwsStack();
    name = stack.name(JOB);
    await createResources(stack, name, 2);
    const emulated = stack.config(name);
    config = { ...emulated, aws: { ...emulated.aws, retryDelayMs: 5 } };
    process.env.SLUICE_STREAM = name;
    process.env.SLUICE_SINK_BUCKET = `${name}-out`;
    definition = ((await import(ENTRY)) as { default: JobDefinition }).default;
    stack.lambda.register(config.workerFunction!, createWorkerHandler(async () => definition, (graph) => awsWorkerRuntime(graph, config)));

    // The job's real template, its resources named as this run created them (as CloudFormation names them on deploy).
    const synthesised = new Stack(new App({ context: projectContext() }), STACK);
    new SluiceJob(synthesised, 'Job', { entry: ENTRY });
    const template = Template.fromStack(synthesised).toJSON() as { Resources: Resources; Outputs: Record<string, { Value: unknown; Description?: string }> };
    const resources = template.Resources;
    const envOf = (id: string) => resources[id].Properties?.Environment?.Variables ?? {};
    const coordinatorId = Object.keys(resources).find((id) => resources[id].Type === 'AWS::Lambda::Function' && 'SLUICE_WORKER_FUNCTION' in envOf(id))!;
    const byVariable: Record<string, string> = {
      SLUICE_STREAM: name,
      SLUICE_SINK_BUCKET: `${name}-out`,
      SLUICE_STATE_BUCKET: config.stateBucket,
      SLUICE_TABLE: config.table,
      SLUICE_WORKER_FUNCTION: config.workerFunction!,
    };
    const physical: Record<string, string> = { [coordinatorId]: `${name}-coordinator` };
    for (const [variable, value] of Object.entries(envOf(coordinatorId))) {
      const ref = (value as { Ref?: string }).Ref;
      if (ref && byVariable[variable]) physical[ref] = byVariable[variable];
    }
    // A stack of two jobs: the same outputs again under a second construct, as SluiceJob names them.
    const clicks = Object.fromEntries(
      Object.entries(template.Outputs)
        .filter(([k]) => k.startsWith('Job'))
        .map(([k, o]) => [`Clicks${k.slice(3)}`, k === 'JobJobName' ? { ...o, Value: 'clicks' } : { ...o, Description: o.Description?.replace(`under ${JOB}/`, 'under clicks/') }]),
    );
    cfn = await startDescribeStacks({
      [STACK]: { template, physical },
      'two-jobs': { template: { Outputs: { ...template.Outputs, ...clicks } }, physical },
      'not-sluice': { template: { Outputs: { WebsiteURL: { Value: 'https://example.com' } } }, physical: {} },
    });
    env = {
      SLUICE_AWS_ENDPOINT: '',
      SLUICE_S3_ENDPOINT: stack.s3.endpoint,
      SLUICE_DYNAMODB_ENDPOINT: stack.dynamo.endpoint,
      SLUICE_KINESIS_ENDPOINT: stack.kinesis.endpoint,
      SLUICE_CLOUDFORMATION_ENDPOINT: cfn.endpoint,
      AWS_REGION: 'us-east-1',
    };

    await putMore(FIRST);
    const first = await invoke(3000);
    expect(first.run.batches, first.logs.join('\n')).toBeGreaterThan(0);
  }, 120_000);

  afterAll(async () => {
    delete process.env.SLUICE_STREAM;
    delete process.env.SLUICE_SINK_BUCKET;
    await cfn?.stop();
    await stack?.stop();
  });

  it('status --stack: the last batch, the lease, dead letters, and per shard the lag behind the stream', async () => {
    const caughtUp = await sluice(['status', '--stack', STACK]);
    expect(caughtUp.code, caughtUp.stderr).toBe(0);
    expect(caughtUp.stdout).toMatch(new RegExp(`^state in table ${config.table} and s3://${config.stateBucket}/${JOB}/ \\(stack ${STACK}\\)\\njob ${JOB}: a batch every 1000 ms\\n`));
    expect(caughtUp.stdout).toMatch(/^last batch done: +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(batch \d+\)/m);
    expect(caughtUp.stdout).toMatch(/^lease: +free \(released\)$/m);
    expect(caughtUp.stdout).toMatch(/^dead letters: +\d file\(s\) in 1 batch\(es\)/m);
    expect(caughtUp.stdout).toMatch(/^stateful operators: +updateStateByKey-1$/m);
    expect(caughtUp.stdout).toMatch(new RegExp(`^lag behind stream ${name} \\(kinesis-1, from the last commit\\):\\n  shardId-000000000000 +caught up: no record after the committed position\\n  shardId-000000000001 +caught up`, 'm'));

    // Records put after the last commit wait in the stream.
    await putMore(['gamma delta', 'delta alpha', 'beta beta', 'alpha gamma']);
    const behind = await sluice(['status', '--stack', STACK]);
    expect(behind.stdout).toMatch(/^ {2}shardId-00000000000\d +behind: the oldest record not committed arrived \d+ (ms|s) ago \(MillisBehindLatest \d+ (ms|s)\)$/m);

    // The same job by its table and bucket: the table holds one job, so --job may be left out.
    const byTable = await sluice(['status', '--table', config.table, '--bucket', config.stateBucket, '--stream', name]);
    expect(byTable.code, byTable.stderr).toBe(0);
    expect(byTable.stdout).toMatch(new RegExp(`^state in table ${config.table} and s3://${config.stateBucket}/${JOB}/\\njob ${JOB}:`));
    expect(byTable.stdout).toMatch(/behind: the oldest record not committed arrived/);
    const noStream = await sluice(['status', '--table', config.table, '--bucket', config.stateBucket]);
    expect(noStream.stdout).toMatch(/^lag: give --stream NAME \(the job's Kinesis stream\) to see how far it is behind$/m);
  }, 60_000);

  it('state --stack: the keyed state as the last commit left it, from the state bucket', async () => {
    const totals = totalsOf(FIRST);
    const all = await sluice(['state', '--stack', STACK]);
    expect(all.code, all.stderr).toBe(0);
    expect(all.stdout).toMatch(/^updateStateByKey-1 as of batch \d+: 4 key\(s\)$/m);
    const alpha = await sluice(['state', '--stack', STACK, '--key', 'alpha']);
    expect(alpha.stdout).toMatch(new RegExp(`^updateStateByKey-1 as of batch \\d+: 4 key\\(s\\), 1 matching alpha\\n {2}"alpha" {2}${totals.alpha} {2}\\(partition \\d, last record in batch \\d+\\)\\n$`));
  }, 60_000);

  it('ui --stack: the Streaming UI of the deployed job, from the history its coordinators wrote to the state bucket', async () => {
    const ui = serveSluice(['ui', '--stack', STACK, '--port', '0'], { env, killAfterMs: 55_000 });
    try {
      const base = await ui.url;
      const get = async <T>(path: string): Promise<T> => (await (await fetch(`${base}${path}`)).json()) as T;
      const job = await get<{ name: string; batchInterval: number; live: boolean; where: string; plan: unknown }>('api/job');
      expect(job).toMatchObject({ name: JOB, batchInterval: 1000, live: true, plan: null });
      expect(job.where).toContain(`stack ${STACK}`);
      // What the page lists is what the coordinators wrote under <job>/history/ in the state bucket.
      const { rows } = await get<{ rows: { time: number; status: string; records: number }[] }>('api/batches?since=0');
      // The invocations' clock ran ahead of this one (their sleeps pass at once): read as far ahead as the page does.
      const written = await readHistory(stores().blobs, { before: Date.now() + 3_600_000 });
      expect(rows.map((r) => [r.time, r.status, r.records])).toEqual(written.batches.map((b) => [b.time, b.status, b.records]));
      expect(rows.length).toBeGreaterThan(0);
      expect(rows.reduce((n, r) => n + r.records, 0)).toBeGreaterThanOrEqual(FIRST.length - 2);
      // A batch with records: its tasks, and the shard ranges it sealed.
      const busy = rows.find((r) => r.records > 0)!;
      const batch = await get<{ stages: { tasks: unknown[] }[]; input: Record<string, { shard?: string }[]> }>(`api/batch/${busy.time}`);
      expect(batch.stages.length).toBeGreaterThan(0);
      expect(batch.stages.every((st) => st.tasks.length > 0)).toBe(true);
      expect(Object.values(batch.input)[0].map((sp) => sp.shard).sort()).toEqual(['shardId-000000000000', 'shardId-000000000001']);
      expect((await fetch(`${base}api/batch/1`)).status).toBe(404);
    } finally {
      ui.stop();
    }
    expect((await ui.ended).code).toBe(0);
    const missing = await sluice(['ui', '--stack', 'no-such-stack', '--port', '0']);
    expect(missing.code).toBe(2);
    expect(errorLines(missing.stderr).join('\n')).toMatch(/no-such-stack/);
  }, 60_000);

  it('dead-letters --stack lists the letters; --redrive-stream puts them back into the stream, a decoder-refused record with its partition key, and the job reads them again in a new batch', async () => {
    const client = kinesisClient(config.aws);
    try {
      const list = await sluice(['dead-letters', '--stack', STACK]);
      expect(list.code, list.stderr).toBe(0);
      const [, first] = /^batch (\d+) \(\S+Z\): 3 letter\(s\); first: /m.exec(list.stdout) ?? [];
      expect(first, list.stdout).toBeDefined();
      const shown = await sluice(['dead-letters', '--stack', STACK, '--batch', first]);
      expect(shown.stdout).toMatch(/^kinesis-1: .*not a line of words$/m);
      expect(shown.stdout).toMatch(/^map-1: cannot count boom\n {2}from \{"node":"kinesis-1".*\n {2}record "boom"$/m);

      const before = await everyRecord(client, name);
      const redrive = await sluice(['dead-letters', '--stack', STACK, '--redrive-stream']);
      expect(redrive.code, redrive.stderr).toBe(0);
      expect(redrive.stdout).toBe(`put 3 record(s) of 1 batch(es) into stream ${name}: new input, read again in a new batch (the letters stay)\n`);
      const after = await everyRecord(client, name);
      expect(after.length - before.length).toBe(3);
      const keyOf = (text: string) => before.find((r) => r.text === text)!.key;
      // The decoder's refusals go back as they came: same bytes, same partition key; the operator's as its record.
      expect(after.filter((r) => r.text === 'poison one').map((r) => r.key)).toEqual([keyOf('poison one'), keyOf('poison one')]);
      expect(after.filter((r) => r.text === 'poison two').map((r) => r.key)).toEqual([keyOf('poison two'), keyOf('poison two')]);
      expect(after.filter((r) => r.text === 'boom')).toHaveLength(1);
      put.push('poison one', 'poison two', 'boom');

      // New input: the next invocation reads them in a batch after the one that set them aside, and sets them aside again.
      // Time enough to catch up the batches missed since the last invocation (run back to back) on a loaded machine.
      const next = await invoke(10_000);
      const again = await sluice(['dead-letters', '--stack', STACK]);
      const batches = [...again.stdout.matchAll(/^batch (\d+) /gm)].map((m) => Number(m[1]));
      expect(batches.length, `${JSON.stringify(next.run)}\n${next.logs.join('\n')}`).toBe(2);
      expect(batches[1]).toBeGreaterThan(Number(first));
      expect(again.stdout).toMatch(/^batch \d+ \(\S+Z\): 3 letter\(s\)/m);

      // One batch's letters only.
      const one = await sluice(['dead-letters', '--stack', STACK, '--batch', first, '--redrive-stream', `${name}-redriven`]);
      expect(one.code).toBe(2);
      expect(errorLines(one.stderr)).toEqual([`error: there is no Kinesis stream ${name}-redriven (region us-east-1): check --redrive-stream; nothing was put`]);
      await createStream(client, `${name}-redriven`, 1);
      const into = await sluice(['dead-letters', '--stack', STACK, '--batch', first, '--redrive-stream', `${name}-redriven`]);
      expect(into.stdout).toBe(`put 3 record(s) of 1 batch(es) into stream ${name}-redriven: new input, read again in a new batch (the letters stay)\n`);
    } finally {
      client.destroy();
    }
  }, 90_000);

  it("dead-letters --redrive-stream NAME puts a local job's letters into a Kinesis stream", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sluice-redrive-'));
    const client = kinesisClient(config.aws);
    try {
      const job = join(ROOT, 'test/fixtures/failing-record-job.ts');
      expect((await runSluice(['run', job, '--batches', '2', '--quiet', '--on-record-error', 'dead-letter'], { cwd: dir })).code).toBe(0);
      await createStream(client, `${name}-local`, 1);
      const r = await runSluice(['dead-letters', job, '--redrive-stream', `${name}-local`], { cwd: dir, env });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toBe(`put 1 record(s) of 1 batch(es) into stream ${name}-local: new input, read again in a new batch (the letters stay)\n`);
      const { ShardIterator } = await client.send(new GetShardIteratorCommand({ StreamName: `${name}-local`, ShardId: 'shardId-000000000000', ShardIteratorType: 'TRIM_HORIZON' }));
      const page = await client.send(new GetRecordsCommand({ ShardIterator }));
      expect((page.Records ?? []).map((x) => new TextDecoder().decode(x.Data))).toEqual(['poison']);
      const unnamed = await runSluice(['dead-letters', job, '--redrive-stream'], { cwd: dir, env });
      expect(unnamed.code).toBe(2);
      expect(errorLines(unnamed.stderr)).toEqual(['error: a local job has no Kinesis stream of its own: give one, --redrive-stream NAME']);
    } finally {
      client.destroy();
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('pause: the running coordinator stops within PAUSE_CHECK_MS (it reads the pause before a batch every 10 s) and releases the lease; a later invocation reads the pause and nothing else; status shows it', async () => {
    // Act: pause (the command, with --yes) while an invocation runs the batch that reads new lines, between its cut and its commit.
    await putMore(['beta gamma', 'delta delta']);
    let paused: SluiceRun | undefined;
    let pausedIn: number | undefined;
    let pausedAt = 0;
    // The coordinator's clock (its sleeps pass at once), and when by that clock each batch was cut.
    const clock = new HurriedClock();
    const cutAt: number[] = [];
    // Time enough for the coordinator to look for the pause again after it was written.
    const running = await invoke(8000 + PAUSE_CHECK_MS, {
      clock,
      onStep: async (step: ProtocolStep, time: number) => {
        if (step === 'cut') cutAt.push(clock.now());
        if (step !== 'sealed' || paused) return;
        pausedIn = time;
        paused = await sluice(['pause', '--stack', STACK, '--yes']);
        pausedAt = clock.now();
      },
    });

    // Assess: that batch committed, the invocation stopped at its next look for the pause, and the lease is free.
    expect(paused?.code, paused?.stderr).toBe(0);
    expect(paused?.stdout).toMatch(new RegExp(`^paused job ${JOB} \\(table ${config.table} and s3://${config.stateBucket}/${JOB}/ \\(stack ${STACK}\\)\\) at \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d UTC\\n`));
    expect(running.run.lastCompleted).toBeGreaterThanOrEqual(pausedIn!);
    // No batch began PAUSE_CHECK_MS (by the coordinator's clock) after the pause: its last look came
    // before the pause, and the next one, before the first batch to begin 10 s after that look, found
    // it. (Counted in batches it is not bounded: a coordinator behind schedule runs batches back to back.)
    // A second of slack for the time between a look and its batch's cut on a loaded machine.
    expect(Math.max(...cutAt) - pausedAt).toBeLessThan(PAUSE_CHECK_MS + 1000);
    expect(running.run.paused).toBeTypeOf('number');
    expect(running.logs.join('\n')).toMatch(/coordinator: job operate paused \(since .*\); stopping after batch \d+/);
    const { meta } = stores();
    expect((await meta.get<Lease>(keys.lease))?.value.owner).toBe('');

    // A later invocation, every request it makes counted: one GetItem, of the pause record.
    const services: ThrottledService[] = ['s3', 'dynamodb', 'kinesis', 'lambda'];
    const targets: Record<ThrottledService, string> = { s3: stack.s3.endpoint, dynamodb: stack.dynamo.endpoint, kinesis: stack.kinesis.endpoint, lambda: stack.lambda.endpoint };
    const proxies = Object.fromEntries(await Promise.all(services.map(async (s) => [s, await startThrottlingProxy(targets[s], s, {})] as const))) as Record<ThrottledService, ThrottlingProxy>;
    try {
      const endpoint = Object.fromEntries(services.map((s) => [s, proxies[s].endpoint])) as AwsConfig['endpoint'];
      const idle = await invoke(3000, {}, { ...config, aws: { ...config.aws, endpoint } });
      expect(idle.run).toEqual({ batches: 0, lastCompleted: -1, paused: running.run.paused });
      expect(Object.fromEntries(services.map((s) => [s, proxies[s].operations()]))).toEqual({ s3: [], dynamodb: ['GetItem'], kinesis: [], lambda: [] });
      expect(JSON.parse(proxies.dynamodb.requests()[0].body).Key.sk.S).toBe('pause');
    } finally {
      await Promise.all(services.map((s) => proxies[s].stop()));
    }

    const status = await sluice(['status', '--stack', STACK]);
    expect(status.stdout).toMatch(/^paused: +since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC, \d+ s ago, by \S+@\S+ \(sluice resume goes on from the checkpoint\)$/m);
    const again = await sluice(['pause', '--stack', STACK, '--yes']);
    expect(again.stdout).toMatch(new RegExp(`^job ${JOB} was already paused, since .* UTC by \\S+; nothing changed\\n$`));
  }, 90_000);

  it('reset: refused while a coordinator holds the lease; then removes the checkpoint, batch records and state (not the sink, not dead letters); resume starts the job from the stream\'s initial position', async () => {
    const { meta } = stores();
    // A coordinator holding a live lease (one that started before the pause): refused, nothing removed.
    const holder = new CommitLog(meta, { job: JOB, owner: 'lambda:still-running', clock: new WallClock(), leaseMs: 60_000 });
    await holder.acquireLease();
    const refused = await sluice(['reset', '--stack', STACK, '--yes']);
    expect(refused.code).toBe(2);
    expect(errorLines(refused.stderr)).toEqual([
      expect.stringMatching(/^error: cannot reset job operate now: a coordinator still holds the job's lease until \S+ \(lambda:still-running\): a paused coordinator stops within 10 s and releases it; wait for that \(sluice status shows the lease\), then reset$/),
    ]);
    expect(await meta.get(keys.checkpoint)).toBeDefined();
    await holder.releaseLease();

    const reset = await sluice(['reset', '--stack', STACK, '--yes']);
    expect(reset.code, reset.stderr).toBe(0);
    expect(reset.stdout).toMatch(
      new RegExp(
        `^reset job ${JOB}: removed the checkpoint \\(last batch \\d+, .* UTC\\), \\d+ batch record\\(s\\) and \\d+ blob\\(s\\) under s3://${config.stateBucket}/${JOB}/; kept \\d+ dead-letter file\\(s\\), \\d+ batch history file\\(s\\) and the sink\\nthe job is still paused: sluice resume starts it from its stream's initial position\\n$`,
      ),
    );
    const s3 = s3Client(config.aws);
    const left = await s3.send(new ListObjectsV2Command({ Bucket: config.stateBucket, Prefix: `${JOB}/` }));
    expect((left.Contents ?? []).map((o) => o.Key!).filter((k) => !k.startsWith(`${JOB}/dead-letters/`) && !k.startsWith(`${JOB}/history/`))).toEqual([]);
    const sink = await s3.send(new ListObjectsV2Command({ Bucket: `${name}-out`, Prefix: 'totals-' }));
    expect(sink.KeyCount).toBeGreaterThan(0);
    expect(await meta.list('')).toEqual(['lease', 'pause']);
    const status = await sluice(['status', '--stack', STACK]);
    expect(status.stdout).toMatch(/no checkpoint: the job has not committed a batch here yet\npaused: +since /);

    const resumed = await sluice(['resume', '--stack', STACK, '--yes']);
    expect(resumed.stdout).toMatch(new RegExp(`^resumed job ${JOB} \\(paused since .* UTC by \\S+\\)\\nits next coordinator invocation \\(within a minute\\) goes on from the stream's initial position \\(no checkpoint\\)\\n$`));
    await invoke(4000);
    // Every line in the stream counted once, from the start: the state before the reset is gone.
    const alpha = await sluice(['state', '--stack', STACK, '--key', 'alpha']);
    expect(alpha.stdout).toMatch(new RegExp(`\\n {2}"alpha" {2}${totalsOf(put).alpha} {2}\\(`));
    const notPaused = await sluice(['reset', '--stack', STACK, '--yes']);
    expect(errorLines(notPaused.stderr)).toEqual([`error: cannot reset job ${JOB}: it is not paused; pause it first (sluice pause), then reset it`]);
  }, 120_000);

  it('a resume racing a reset on DynamoDB and S3: the coordinator that starts meanwhile finds the lease taken; after the reset it starts afresh', async () => {
    const { meta, blobs } = stores();
    await pauseJob(meta, { by: 'test@operate', now: Date.now() });
    const during: CoordinatorRun[] = [];
    await resetJob(meta, blobs, {
      job: JOB,
      owner: 'sluice reset (test@operate)',
      clock: new WallClock(),
      onStep: async (step) => {
        if (step !== 'checkpoint') return;
        await resumeJob(meta);
        during.push((await invoke(2000)).run);
      },
    });
    expect(during).toEqual([{ batches: 0, lastCompleted: -1, skipped: expect.stringMatching(/coordinator sluice reset \(test@operate\) holds the lease/) }]);
    expect(await meta.get(keys.checkpoint)).toBeUndefined();
    const after = await invoke(4000);
    expect(after.run.batches).toBeGreaterThan(0);
    const alpha = await sluice(['state', '--stack', STACK, '--key', 'alpha']);
    expect(alpha.stdout).toMatch(new RegExp(`\\n {2}"alpha" {2}${totalsOf(put).alpha} {2}\\(`));
  }, 90_000);

  // Side by side: each only reads, and is refused before it writes anything.
  it.concurrent.each([
    [['status', '--stack', 'nope'], /^error: stack nope does not exist in us-east-1: check the name \(npx cdk list, or the CloudFormation console\) and the region \(--region, AWS_REGION\)$/],
    [['status', '--stack', 'not-sluice'], /^error: stack not-sluice has no Sluice job: none of its outputs is a SluiceJob's \(.*; it has WebsiteURL\)\. Give the stack the SluiceJob was deployed in, or --table and --bucket$/],
    [['status', '--stack', 'two-jobs'], /^error: stack two-jobs holds 2 jobs, Clicks \(job clicks\), Job \(job operate\): say which with --job NAME$/],
    [['status', '--stack', STACK, '--job', 'Clicks'], /^error: stack sluice-operate has no job Clicks: its jobs are Job \(job operate\); give one of them with --job$/],
    [['status', '--table', 'operate-meta', '--bucket', 'operate-state', '--job', 'nope'], /^error: table operate-meta holds no job nope \(it holds operate\): check --job and --table$/],
    [['status', '--table', 'nope-meta', '--bucket', 'operate-state', '--job', 'operate'], /^error: DynamoDB table nope-meta does not exist in us-east-1: check --table/],
    [['status', '--table', 'operate-meta', '--bucket', 'nope-state', '--job', 'operate'], /^error: S3 bucket nope-state does not exist \(region us-east-1\): check --bucket/],
    [['status', '--table', 'operate-meta'], /^error: --table operate-meta needs --bucket: the job's state bucket/],
    [['status', '--stack', STACK, '--state-dir', '.sluice/x'], /^error: give --state-dir \(a local job\) or --stack \(a deployed one\), not both$/],
    [['pause', 'examples/kinesis-wordcount.ts', '--yes'], /^error: sluice pause operates a deployed job: give --stack NAME, or --table and --bucket \(and --job\)\. A local job stops with Ctrl-C/],
    [['pause', '--stack', STACK], /^error: sluice pause asks you to type the job's name, and its input is not a terminal: add --yes to pause job operate without the question$/],
    [['resume', '--stack', STACK], /^error: sluice resume asks you to type the job's name, .*: add --yes to resume job operate without the question$/],
    [['reset', '--stack', 'two-jobs', '--job', 'operate', '--yes'], /^error: cannot reset job operate: it is not paused; pause it first \(sluice pause\), then reset it$/],
    [['resume', '--table', 'operate-meta', '--bucket', 'operate-state', '--job', 'clicks', '--yes'], /^error: table operate-meta holds no job clicks \(it holds operate\)/],
  ])('sluice %j exits 2 saying what to do', async (args, message) => {
    const r = await sluice(args.map((a) => a.replace(/^operate-/, `${name}-`)));
    expect(r.code, r.stderr).toBe(2);
    expect(errorLines(r.stderr)).toEqual([expect.stringMatching(message)]);
  }, 30_000);

  describe('without AWS credentials or a region (no emulator endpoints: the commands would go to AWS)', () => {
    let home: string;
    beforeAll(async () => {
      home = await mkdtemp(join(tmpdir(), 'sluice-no-aws-'));
    });
    afterAll(async () => {
      await rm(home, { recursive: true, force: true });
    });
    /** No endpoint, no key, no profile, no instance metadata: nothing the SDK could sign with. */
    const bare = () => ({
      SLUICE_AWS_ENDPOINT: '',
      SLUICE_S3_ENDPOINT: '',
      SLUICE_DYNAMODB_ENDPOINT: '',
      SLUICE_KINESIS_ENDPOINT: '',
      SLUICE_CLOUDFORMATION_ENDPOINT: '',
      AWS_ENDPOINT_URL: '',
      AWS_ACCESS_KEY_ID: '',
      AWS_SECRET_ACCESS_KEY: '',
      AWS_SESSION_TOKEN: '',
      AWS_PROFILE: '',
      AWS_REGION: '',
      AWS_DEFAULT_REGION: '',
      AWS_CONFIG_FILE: join(home, 'config'),
      AWS_SHARED_CREDENTIALS_FILE: join(home, 'credentials'),
      AWS_WEB_IDENTITY_TOKEN_FILE: '',
      AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: '',
      AWS_CONTAINER_CREDENTIALS_FULL_URI: '',
      AWS_EC2_METADATA_DISABLED: 'true',
      HOME: home,
    });

    it.each([
      [['status', '--stack', STACK, '--region', 'eu-west-1'], /^error: no AWS credentials found \(.*\): sign in \(aws configure, aws sso login, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY\), or choose a profile with AWS_PROFILE$/],
      [['pause', '--stack', STACK, '--yes'], /^error: no AWS region: give --region, or set AWS_REGION \(or a region in your AWS profile\)$/],
    ])('sluice %j exits 2 saying how to sign in', async (args, message) => {
      const r = await runSluice(args, { env: bare() });
      expect(r.code, r.stderr).toBe(2);
      expect(errorLines(r.stderr)).toEqual([expect.stringMatching(message)]);
    }, 30_000);
  });
});
