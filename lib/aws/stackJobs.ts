import { type CloudFormationClient, DescribeStacksCommand, type Output } from '@aws-sdk/client-cloudformation';
import { SluiceError } from '../core/errors.ts';

/** What a `SluiceJob` construct outputs, by the suffix after its path in the stack (cdk/parts/monitoring.ts, `jobOutputs`). */
const SUFFIXES = ['JobName', 'StreamName', 'StateBucketName', 'SinkBucketName', 'TableName', 'CoordinatorFunctionName', 'WorkerFunctionName'] as const;

/** One deployed job, as its stack's outputs describe it. */
export interface StackJob {
  /** The construct's path in the stack, letters and digits (`Job`, `Clicks`): the outputs' prefix. */
  readonly construct: string;
  /** The job's name (its state is under `<name>/` in the state bucket), when the outputs say it. */
  readonly jobName?: string;
  readonly stream?: string;
  readonly stateBucket: string;
  readonly sinkBucket?: string;
  readonly table: string;
  readonly coordinatorFunction?: string;
  readonly workerFunction?: string;
}

/**
 * A stack that CloudFormation does not know (in this account and region).
 *
 * @example
 * ```ts
 * try { await stackOutputs(cfn, 'typo'); } catch (e) { if (e instanceof StackNotFoundError) console.error('no such stack'); }
 * ```
 */
export class StackNotFoundError extends SluiceError {
  constructor(message: string, cause?: unknown) {
    super(message, { cause });
    this.name = 'StackNotFoundError';
  }
}

/**
 * The Sluice jobs among a stack's outputs: every group of outputs named `<construct>StreamName`,
 * `<construct>StateBucketName`, `<construct>TableName`, … that has at least a table and a state
 * bucket. The job's name is its `<construct>JobName` output, or, in a stack deployed before that
 * output, read from the state bucket output's description (`… under <job>/`).
 *
 * @example
 * ```ts
 * sluiceJobsOf([{ OutputKey: 'JobTableName', OutputValue: 't' }, { OutputKey: 'JobStateBucketName', OutputValue: 'b', Description: 'Lineage, shuffle and state blobs, under wordcount/' }]);
 * // [{ construct: 'Job', jobName: 'wordcount', table: 't', stateBucket: 'b' }]
 * ```
 */
export function sluiceJobsOf(outputs: readonly Output[]): StackJob[] {
  const groups = new Map<string, Partial<Record<(typeof SUFFIXES)[number], Output>>>();
  for (const o of outputs) {
    const suffix = SUFFIXES.find((s) => o.OutputKey?.endsWith(s) && o.OutputKey.length > s.length);
    if (!suffix || o.OutputValue === undefined) continue;
    const construct = o.OutputKey!.slice(0, -suffix.length);
    groups.set(construct, { ...groups.get(construct), [suffix]: o });
  }
  const jobs: StackJob[] = [];
  for (const [construct, g] of groups) {
    if (!g.TableName || !g.StateBucketName) continue;
    // The JobName output; a stack deployed before it had one says the name in the state bucket's description.
    const jobName = g.JobName?.OutputValue ?? /under (.+)\/$/.exec(g.StateBucketName.Description ?? '')?.[1];
    jobs.push({
      construct,
      ...(jobName ? { jobName } : {}),
      ...(g.StreamName ? { stream: g.StreamName.OutputValue } : {}),
      stateBucket: g.StateBucketName.OutputValue!,
      ...(g.SinkBucketName ? { sinkBucket: g.SinkBucketName.OutputValue } : {}),
      table: g.TableName.OutputValue!,
      ...(g.CoordinatorFunctionName ? { coordinatorFunction: g.CoordinatorFunctionName.OutputValue } : {}),
      ...(g.WorkerFunctionName ? { workerFunction: g.WorkerFunctionName.OutputValue } : {}),
    });
  }
  return jobs.sort((a, b) => (a.construct < b.construct ? -1 : a.construct > b.construct ? 1 : 0));
}

/**
 * A stack's outputs (`DescribeStacks`); {@link StackNotFoundError} when there is no such stack.
 *
 * @example
 * ```ts
 * const jobs = sluiceJobsOf(await stackOutputs(cloudFormationClient(), 'sluice-kinesis-wordcount'));
 * ```
 */
export async function stackOutputs(client: CloudFormationClient, stackName: string): Promise<Output[]> {
  try {
    const out = await client.send(new DescribeStacksCommand({ StackName: stackName }));
    const stack = out.Stacks?.[0];
    if (!stack) throw new StackNotFoundError(`stack ${stackName} does not exist`);
    return stack.Outputs ?? [];
  } catch (e) {
    // CloudFormation says a missing stack with a ValidationError: "Stack with id X does not exist".
    if ((e as Error).name === 'ValidationError' && /does not exist/.test((e as Error).message)) throw new StackNotFoundError(`stack ${stackName} does not exist`, e);
    throw e;
  }
}
