import { Stack, Validations } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as s3 from 'aws-cdk-lib/aws-s3';
import type { Construct, IConstruct } from 'constructs';
import type { JobFunction } from './functions.ts';

/** What the acknowledgements name: the job's buckets and its two functions with their roles and log groups. */
export interface Acknowledged {
  readonly jobName: string;
  readonly stateBucket: s3.IBucket;
  readonly sinkBucket: s3.IBucket;
  readonly worker: JobFunction;
  readonly coordinator: JobFunction;
  /** Key prefixes of the sink bucket the job's sources read (granted by `grantData`). */
  readonly sinkReadPrefixes?: readonly string[];
  /** Whether the functions run in a VPC (their roles may manage network interfaces). */
  readonly inVpc?: boolean;
  /** The functions' X-Ray tracing (traced, their roles may write traces). */
  readonly tracing?: lambda.Tracing;
  /** The job's stream, when it made one encrypted with a customer-managed key (`streamProps.encryptionKey`). */
  readonly streamWithOwnKey?: IConstruct;
}

/**
 * The cdk-nag (AwsSolutions) findings this design accepts, each acknowledged with its reason
 * where it arises. Wildcards are acknowledged one resource pattern at a time, never a whole rule.
 */
export function acknowledgeNagFindings(scope: Construct, a: Acknowledged): void {
  const ack = (on: IConstruct, rule: string, reason: string) => Validations.of(on).acknowledge({ id: `AwsSolutions::${rule}`, reason });
  const wildcard = (arn: string, suffix: string) => `AwsSolutions-IAM5[Resource::${nagText(scope, arn)}${suffix}]`;
  for (const { role, logGroup } of [a.worker, a.coordinator]) {
    ack(role, wildcard(a.stateBucket.bucketArn, `/${a.jobName}/*`), "Blob keys are made at run time (batch times, node ids): the wildcard stops at the job's own prefix in the state bucket");
    ack(role, wildcard(a.sinkBucket.bucketArn, '/*'), "Output keys are made at run time by the job's outputs (prefix-<batch time>/part-…); the sink bucket is the job's own");
    ack(role, wildcard(logGroup.logGroupArn, ':log-stream:*'), "Lambda makes one log stream per container, named at run time, in the function's own log group");
    // EC2's network interface actions and X-Ray's trace writes name no resource narrower than *.
    const anyResource = [
      ...(a.inVpc ? ['Lambda makes, lists and deletes the network interfaces of a function in a VPC, which EC2 allows on no narrower resource than *'] : []),
      ...(a.tracing !== undefined && a.tracing !== lambda.Tracing.DISABLED ? ['X-Ray trace segments and telemetry are written with actions that take no resource but *'] : []),
    ];
    if (anyResource.length) ack(role, 'AwsSolutions-IAM5[Resource::*]', anyResource.join('; '));
    for (const prefix of new Set(a.sinkReadPrefixes ?? [])) {
      // The whole bucket ('') is the sink's own wildcard, acknowledged above.
      if (prefix !== '') ack(role, wildcard(a.sinkBucket.bucketArn, `/${prefix}*`), "Input objects appear at run time under the prefix of the sink bucket that the job's source reads; the wildcard stops at that prefix");
    }
  }
  for (const bucket of [a.stateBucket, a.sinkBucket]) {
    if (bucket instanceof s3.Bucket) {
      ack(bucket, 'AwsSolutions-S1', "Only the job's own functions use this bucket; CloudTrail data events are the account's audit trail, and server access logs would add log objects for every batch");
    }
  }
  if (a.streamWithOwnKey) {
    ack(a.streamWithOwnKey, 'AwsSolutions-KDS3', "The stream is encrypted with the customer-managed key given as streamProps.encryptionKey, as its owner asked; that key's cost per request is their choice");
  }
  ack(a.coordinator.fn, 'AwsSolutions-L1', 'nodejs22.x is the runtime the bundle targets and the project tests against; a newer one is adopted deliberately, not by default');
  ack(a.worker.fn, 'AwsSolutions-L1', 'nodejs22.x is the runtime the bundle targets and the project tests against; a newer one is adopted deliberately, not by default');
  // The scheduler's role is one per stack, made by the LambdaInvoke target: it may invoke the coordinator and its versions.
  ack(Stack.of(scope), wildcard(a.coordinator.fn.functionArn, ':*'), "The schedule's role may invoke the coordinator function and its versions, nothing else");
  // CDK's bucket auto-delete provider (removalPolicy DESTROY) needs nothing acknowledged: cdk-nag's rules
  // check CfnRole and CfnFunction, and the provider is made of plain CfnResources. (Acknowledging its
  // rules on the stack would also silence them for every other function and role in the stack.)
}

/** A CloudFormation value as cdk-nag prints it in a finding: `<LogicalId.Arn>`, `<AWS::Partition>`, literals as they are. */
function nagText(scope: Construct, value: string): string {
  const text = (v: unknown): string => {
    if (typeof v === 'string') return v;
    const o = v as Record<string, unknown>;
    if (typeof o?.Ref === 'string') return `<${o.Ref}>`;
    if (Array.isArray(o?.['Fn::GetAtt'])) return `<${(o['Fn::GetAtt'] as string[]).join('.')}>`;
    if (Array.isArray(o?.['Fn::Join'])) {
      const [sep, parts] = o['Fn::Join'] as [string, unknown[]];
      return parts.map(text).join(sep);
    }
    return JSON.stringify(v);
  };
  return text(Stack.of(scope).resolve(value));
}
