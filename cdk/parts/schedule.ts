import { Duration } from 'aws-cdk-lib';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as targets from 'aws-cdk-lib/aws-scheduler-targets';
import type { Construct } from 'constructs';

/**
 * The EventBridge Scheduler schedule that starts the coordinator every minute. Neither it nor Lambda
 * retries a failed or late run: the next minute's run resumes the batch from its lineage.
 */
export function coordinatorSchedule(scope: Construct, coordinator: lambda.IFunction, jobName: string, enabled: boolean): scheduler.Schedule {
  return new scheduler.Schedule(scope, 'Schedule', {
    description: `Runs the coordinator of Sluice job ${jobName} every minute`,
    schedule: scheduler.ScheduleExpression.rate(Duration.minutes(1)),
    target: new targets.LambdaInvoke(coordinator, { retryAttempts: 0, maxEventAge: Duration.minutes(1) }),
    enabled,
  });
}
