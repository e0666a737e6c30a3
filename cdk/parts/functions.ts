import { Duration, type RemovalPolicy } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';
import { COORDINATOR_TIMEOUT_MS } from '../../lib/aws/lambda.ts';
import { bundleJob } from '../bundle.ts';
import type { SluiceJobProps } from '../sluiceJob.ts';
import { functionRole, grantVpcAccess } from './grants.ts';

// The job's two Lambda functions, each with its own bundle: the coordinator the schedule starts and
// the worker it invokes per task. Each has its own log group and a role that may only log so far.

/** One function with its role and log group (the grants and the cdk-nag acknowledgements need them). */
export interface JobFunction {
  readonly fn: lambda.Function;
  readonly role: iam.Role;
  readonly logGroup: logs.LogGroup;
}

/** What the functions are given: where the data is and what the job file was loaded with. */
export interface FunctionInputs {
  readonly jobName: string;
  /** The environment the job file was loaded with (stream, sink, batch interval, the user's own). */
  readonly env: Record<string, string>;
  readonly stateBucket: s3.IBucket;
  readonly table: dynamodb.ITable;
  readonly removalPolicy: RemovalPolicy;
  /** The deployment: the metrics' `Stack` dimension (`SLUICE_DEPLOYMENT`). */
  readonly deployment: string;
}

/** The props the functions are made with. */
export type FunctionProps = Pick<
  SluiceJobProps,
  | 'entry'
  | 'maxConcurrency'
  | 'workerMemoryMB'
  | 'workerTimeout'
  | 'coordinatorMemoryMB'
  | 'sourceMaps'
  | 'highResolutionMetrics'
  | 'vpc'
  | 'vpcSubnets'
  | 'securityGroups'
  | 'workerReservedConcurrency'
  | 'coordinatorReservedConcurrency'
  | 'tracing'
  | 'logRetention'
  | 'loggingFormat'
  | 'applicationLogLevel'
  | 'systemLogLevel'
  | 'bundling'
>;

/** The worker and then the coordinator (which needs the worker's name), bundled from the job file. */
export function jobFunctions(
  scope: Construct,
  props: FunctionProps,
  inputs: FunctionInputs,
): { worker: JobFunction; coordinator: JobFunction } {
  const { jobName, removalPolicy } = inputs;
  const bundles = bundleJob(props.entry, props.bundling);
  const loggingFormat = props.loggingFormat ?? lambda.LoggingFormat.JSON;
  const json = loggingFormat === lambda.LoggingFormat.JSON;
  const common = {
    runtime: lambda.Runtime.NODEJS_22_X,
    architecture: lambda.Architecture.ARM_64,
    environment: {
      ...inputs.env,
      SLUICE_STATE_BUCKET: inputs.stateBucket.bucketName,
      SLUICE_TABLE: inputs.table.tableName,
      SLUICE_DEPLOYMENT: inputs.deployment,
      ...(props.maxConcurrency !== undefined ? { SLUICE_CONCURRENCY: String(props.maxConcurrency) } : {}),
      ...(props.highResolutionMetrics ? { SLUICE_HIGH_RESOLUTION_METRICS: 'true' } : {}),
      // Reading the maps costs every cold start; the bundles ship them either way.
      ...(props.sourceMaps ? { NODE_OPTIONS: '--enable-source-maps' } : {}),
    },
    vpc: props.vpc,
    vpcSubnets: props.vpcSubnets,
    securityGroups: props.securityGroups,
    tracing: props.tracing,
    loggingFormat,
    // Lambda filters only JSON lines by level: the levels are set with JSON, and left out with text.
    ...(json ? { applicationLogLevelV2: props.applicationLogLevel ?? lambda.ApplicationLogLevel.INFO, systemLogLevelV2: props.systemLogLevel ?? lambda.SystemLogLevel.INFO } : {}),
  };
  const retention = props.logRetention ?? logs.RetentionDays.ONE_MONTH;
  /** A function's role: its own log group, and its network interfaces when it runs in a VPC. */
  const roleOf = (id: string, group: logs.LogGroup) => {
    const role = functionRole(scope, id, group);
    if (props.vpc) grantVpcAccess(role);
    return role;
  };

  const workerLogs = new logs.LogGroup(scope, 'WorkerLogs', { retention, removalPolicy });
  const workerRole = roleOf('WorkerRole', workerLogs);
  const worker = new lambda.Function(scope, 'Worker', {
    ...common,
    code: lambda.Code.fromAsset(bundles.worker.dir),
    handler: bundles.worker.handler,
    description: `Sluice job ${jobName}: runs one task per invocation`,
    memorySize: props.workerMemoryMB ?? 1024,
    timeout: props.workerTimeout ?? Duration.minutes(5),
    role: workerRole,
    logGroup: workerLogs,
    reservedConcurrentExecutions: props.workerReservedConcurrency,
  });

  const coordinatorLogs = new logs.LogGroup(scope, 'CoordinatorLogs', { retention, removalPolicy });
  const coordinatorRole = roleOf('CoordinatorRole', coordinatorLogs);
  const coordinator = new lambda.Function(scope, 'Coordinator', {
    ...common,
    environment: { ...common.environment, SLUICE_WORKER_FUNCTION: worker.functionName },
    code: lambda.Code.fromAsset(bundles.coordinator.dir),
    handler: bundles.coordinator.handler,
    description: `Sluice job ${jobName}: runs a minute of batches per invocation`,
    memorySize: props.coordinatorMemoryMB ?? 256,
    timeout: Duration.millis(COORDINATOR_TIMEOUT_MS),
    role: coordinatorRole,
    logGroup: coordinatorLogs,
    reservedConcurrentExecutions: props.coordinatorReservedConcurrency,
    // A failed or late run is not retried by Lambda: the next minute's run resumes the batch from its lineage.
    retryAttempts: 0,
    maxEventAge: Duration.minutes(1),
  });

  return {
    worker: { fn: worker, role: workerRole, logGroup: workerLogs },
    coordinator: { fn: coordinator, role: coordinatorRole, logGroup: coordinatorLogs },
  };
}
