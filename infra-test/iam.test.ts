import { join } from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleJob } from '../cdk/bundle.ts';
import { SluiceJob } from '../cdk/sluiceJob.ts';
import type { CoordinatorRun } from '../lib/aws/handlers.ts';
import { type AwsStack, createResources, putLines, readS3Batches, startAwsStack } from './helpers/awsStack.ts';
import { type BundleHost, startBundleHost } from './helpers/bundleHost.ts';
import { projectContext } from './helpers/cdkContext.ts';
import { type AccessRequest, ACCOUNT, accessOf, allows, REGION, resolver, roleStatements, type Statement } from './helpers/iamPolicy.ts';
import { startThrottlingProxy, type ThrottledService, type ThrottlingProxy } from './helpers/throttlingProxy.ts';

// The least-privilege IAM of SluiceJob, checked against what the deployed code does rather than
// against a reading of it: the template's policies, resolved to this run's resource names, judge
// every request each function sent during a real run of its deployment bundle on the emulators.
// Each function runs in its own process with only the environment the template gives it, behind
// its own recording proxies, so every request is known to come from one role.

const ROOT = join(import.meta.dirname, '..');
const ENTRY = join(ROOT, 'infra-test/fixtures/stateful-aws-job.ts');
const JOB = 'stateful-aws';
const SERVICES: readonly ThrottledService[] = ['s3', 'dynamodb', 'kinesis', 'lambda'];
/** The coordinator stops starting batches 15 s before its time runs out (lib/aws/lambda.ts). */
const MARGIN_MS = 15_000;

type Role = 'coordinator' | 'worker';
type Resources = Record<string, { Type: string; Properties?: Record<string, unknown> }>;

interface Deployed {
  readonly env: Record<string, unknown>;
  readonly roleId: string;
}

/** The function with logical id `id`: its environment variables and the logical id of its role. */
function deployedFunction(resources: Resources, id: string): Deployed {
  const p = resources[id].Properties as { Environment: { Variables: Record<string, unknown> }; Role: { 'Fn::GetAtt': [string, string] } };
  return { env: p.Environment.Variables, roleId: p.Role['Fn::GetAtt'][0] };
}

describe('SluiceJob grants each function the AWS calls it makes in a real run, and no more', () => {
  let stack: AwsStack;
  let name: string;
  let statements: Record<Role, Statement[]>;
  const proxies = {} as Record<Role, Record<ThrottledService, ThrottlingProxy>>;
  const hosts: BundleHost[] = [];
  // Long enough that the first batch of each run has pairs past the 64 KiB a task may return inline.
  const lines = Array.from({ length: 3000 }, (_, i) => `alpha beta${i % 3} gamma${i % 7} ${'payload'.repeat(16)}${i % 50}`);
  const runs: CoordinatorRun[] = [];

  beforeAll(async () => {
    stack = await startAwsStack();
    name = stack.name('iam');
    await createResources(stack, name, 2);
    const config = stack.config(name);

    // The template of a default SluiceJob, and what each of its logical resources is called in this run.
    const template = Template.fromStack(
      (() => {
        const s = new Stack(new App({ context: projectContext() }), 'S', { env: { region: REGION, account: ACCOUNT } });
        new SluiceJob(s, 'Job', { entry: ENTRY });
        return s;
      })(),
    ).toJSON() as { Resources: Resources };
    const resources = template.Resources;
    const fnIds = Object.keys(resources).filter((id) => resources[id].Type === 'AWS::Lambda::Function' && id.startsWith('Job'));
    const coordinatorId = fnIds.find((id) => 'SLUICE_WORKER_FUNCTION' in deployedFunction(resources, id).env)!;
    const workerId = (deployedFunction(resources, coordinatorId).env.SLUICE_WORKER_FUNCTION as { Ref: string }).Ref;
    const physical: Record<string, string> = {
      SLUICE_STREAM: name,
      SLUICE_SINK_BUCKET: `${name}-out`,
      SLUICE_STATE_BUCKET: config.stateBucket,
      SLUICE_TABLE: config.table,
      SLUICE_WORKER_FUNCTION: config.workerFunction!,
    };
    const names: Record<string, string> = { [coordinatorId]: `${name}-coordinator` };
    for (const [variable, value] of Object.entries(deployedFunction(resources, coordinatorId).env)) {
      const ref = (value as { Ref?: string }).Ref;
      if (ref) names[ref] = physical[variable];
    }
    for (const id of Object.keys(resources)) if (resources[id].Type === 'AWS::Logs::LogGroup') names[id] = `/aws/lambda/${id}`;
    const resolve = resolver(resources, names);
    statements = {
      coordinator: roleStatements(resources, deployedFunction(resources, coordinatorId).roleId, resolve),
      worker: roleStatements(resources, deployedFunction(resources, workerId).roleId, resolve),
    };

    const targets: Record<ThrottledService, string> = { s3: stack.s3.endpoint, dynamodb: stack.dynamo.endpoint, kinesis: stack.kinesis.endpoint, lambda: stack.lambda.endpoint };
    for (const role of ['coordinator', 'worker'] as const) {
      proxies[role] = Object.fromEntries(await Promise.all(SERVICES.map(async (s) => [s, await startThrottlingProxy(targets[s], s, {})] as const))) as Record<
        ThrottledService,
        ThrottlingProxy
      >;
    }
    // Each function gets exactly the environment the template sets (resolved), plus where AWS is.
    const envOf = (id: string, role: Role) => ({
      ...Object.fromEntries(Object.entries(deployedFunction(resources, id).env).map(([k, v]) => [k, resolve(v)])),
      AWS_REGION: REGION,
      AWS_LAMBDA_FUNCTION_NAME: names[id] ?? `${name}-worker`,
      SLUICE_S3_ENDPOINT: proxies[role].s3.endpoint,
      SLUICE_DYNAMODB_ENDPOINT: proxies[role].dynamodb.endpoint,
      SLUICE_KINESIS_ENDPOINT: proxies[role].kinesis.endpoint,
      SLUICE_LAMBDA_ENDPOINT: proxies[role].lambda.endpoint,
    });
    const bundles = bundleJob(ENTRY);
    const worker = await startBundleHost(bundles.worker.dir, config.workerFunction!, envOf(workerId, 'worker'));
    const coordinator = await startBundleHost(bundles.coordinator.dir, `${name}-coordinator`, envOf(coordinatorId, 'coordinator'));
    hosts.push(worker, coordinator);
    stack.lambda.register(config.workerFunction!, (event) => worker.invoke('worker', event, 300_000));

    // Two scheduled runs: the first starts the job from nothing, the second resumes from its checkpoint.
    await putLines(stack, name, lines.slice(0, 1500));
    runs.push((await coordinator.invoke('coordinator', {}, MARGIN_MS + 3000)) as CoordinatorRun);
    await putLines(stack, name, lines.slice(1500));
    // In the second run, a shuffle blob a worker reads is gone (S3 answers NoSuchKey): the
    // coordinator recomputes that map output. Only a role that may list the bucket gets that 404 from S3.
    proxies.worker.s3.loseNext(/\/shuffle\//);
    runs.push((await coordinator.invoke('coordinator', {}, MARGIN_MS + 4000)) as CoordinatorRun);
  }, 120_000);

  afterAll(async () => {
    await Promise.all(hosts.map((h) => h.stop()));
    for (const role of Object.values(proxies)) await Promise.all(Object.values(role).map((p) => p.stop()));
    await stack?.stop();
  });

  /** Every authorization question the requests of `role` raised, with the request that raised it. */
  const accessesOf = (role: Role) =>
    SERVICES.flatMap((s) =>
      proxies[role][s].requests().flatMap((r) => accessOf(s, r, name).map((a) => ({ ...a, request: s === 's3' ? `${r.operation} → ${r.status}` : `${r.operation} ${r.body.slice(0, 100)}` }))),
    );
  const denied = (role: Role) => accessesOf(role).filter((a) => !allows(statements[role], a));
  const exercised = (role: Role) => new Set(accessesOf(role).map((a) => a.action));
  const granted = (role: Role) => new Set(statements[role].filter((s) => s.Effect === 'Allow').flatMap((s) => s.Action));

  it('the run did the job: every word counted once, state carried across the two runs', async () => {
    expect(runs.map((r) => r.skipped)).toEqual([undefined, undefined]);
    expect(runs[0].batches).toBeGreaterThan(0);
    expect(runs[1].lastCompleted).toBeGreaterThan(runs[0].lastCompleted);
    const totals = await readS3Batches(stack, `${name}-out`, 'totals');
    const last = [...totals.values()].at(-1)!.sort();
    const expected = new Map<string, number>();
    for (const w of lines.flatMap((l) => l.split(' '))) expected.set(w, (expected.get(w) ?? 0) + 1);
    expect(last).toEqual([...expected].map(([w, n]) => `(${w},${n})`).sort());
    expect((await readS3Batches(stack, `${name}-out`, 'window')).size).toBe(totals.size);
  });

  it.each(['coordinator', 'worker'] as const)('every request the %s sent is allowed by its role', (role) => {
    expect(accessesOf(role).length).toBeGreaterThan(20);
    if (role === 'worker') expect(proxies.worker.s3.requests().filter((r) => r.status === 404).map((r) => r.method)).toEqual(['GET']);
    expect(denied(role)).toEqual([]);
  });

  it('each role was used for what it is for: the coordinator cut, committed, cleaned up and invoked; the worker read records and wrote blobs and output', () => {
    const c = exercised('coordinator');
    for (const a of ['kinesis:ListShards', 'dynamodb:UpdateItem', 'dynamodb:GetItem', 's3:DeleteObject', 's3:PutObject', 'lambda:InvokeFunction']) expect(c).toContain(a);
    const w = exercised('worker');
    for (const a of ['kinesis:GetShardIterator', 'kinesis:GetRecords', 's3:GetObject', 's3:PutObject']) expect(w).toContain(a);
    expect(proxies.worker.lambda.requests()).toEqual([]);
    expect(proxies.worker.dynamodb.requests()).toEqual([]);
  });

  it('no role is granted an action the run never needed, except the ones named here with their reason', () => {
    const unused = (role: Role) => [...granted(role)].filter((a) => !exercised(role).has(a)).sort();
    // Lambda's runtime, not the job's code, writes the function's log lines with these.
    const logs = ['logs:CreateLogStream', 'logs:PutLogEvents'];
    expect(unused('coordinator')).toEqual(logs);
    expect(unused('worker')).toEqual(logs);
  });

  it('the check can say no: what each role may not do is refused', () => {
    const stateObject = (key: string) => `arn:aws:s3:::${stack.config(name).stateBucket}/${key}`;
    const sinkObject = (key: string) => `arn:aws:s3:::${name}-out/${key}`;
    const refused: [Role, AccessRequest][] = [
      ['worker', { action: 'lambda:InvokeFunction', resource: `arn:aws:lambda:${REGION}:${ACCOUNT}:function:${name}-worker` }],
      ['worker', { action: 's3:DeleteObject', resource: stateObject(`${JOB}/batch/x`) }],
      ['worker', { action: 'dynamodb:UpdateItem', resource: `arn:aws:dynamodb:${REGION}:${ACCOUNT}:table/${name}-meta` }],
      ['coordinator', { action: 's3:GetObject', resource: stateObject('another-job/x') }],
      ['coordinator', { action: 's3:PutObject', resource: 'arn:aws:s3:::someone-elses-bucket/x' }],
      ['coordinator', { action: 's3:GetObject', resource: sinkObject('totals-1/part-00000') }],
      ['coordinator', { action: 'lambda:InvokeFunction', resource: `arn:aws:lambda:${REGION}:${ACCOUNT}:function:${name}-coordinator` }],
      ['coordinator', { action: 'kinesis:PutRecords', resource: `arn:aws:kinesis:${REGION}:${ACCOUNT}:stream/${name}` }],
    ];
    expect(refused.filter(([role, r]) => allows(statements[role], r))).toEqual([]);
    // …and the same questions on the resources each role does own are allowed.
    expect(allows(statements.coordinator, { action: 's3:GetObject', resource: stateObject(`${JOB}/x`) })).toBe(true);
    expect(allows(statements.worker, { action: 's3:PutObject', resource: sinkObject('totals-1/part-00000') })).toBe(true);
  });
});
