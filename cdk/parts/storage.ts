import { Annotations, Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as kinesis from 'aws-cdk-lib/aws-kinesis';
import * as s3 from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';
import type { SluiceBucketProps, SluiceJobProps } from '../sluiceJob.ts';

// Where a SluiceJob's data lives: the stream it reads, the sink and state buckets and the table, each
// either given (`existing…`) or created here. The stream and the sink come first, because the job
// file is loaded with their names; the state bucket's lifecycle rules need the job's name it learns.

/** What becomes of the stream, buckets, table and logs when the stack is deleted. */
export const removalPolicyOf = (props: Pick<SluiceJobProps, 'removalPolicy'>): RemovalPolicy => props.removalPolicy ?? RemovalPolicy.RETAIN;

/** The given stream, or a new one as `streamProps` say, encrypted with their key or else the AWS managed key. */
export function jobStream(scope: Construct, props: Pick<SluiceJobProps, 'existingStream' | 'streamProps' | 'removalPolicy'>): kinesis.IStream {
  const sp = props.streamProps ?? {};
  return (
    props.existingStream ??
    new kinesis.Stream(scope, 'Stream', {
      streamName: sp.streamName,
      streamMode: sp.mode === 'on-demand' ? kinesis.StreamMode.ON_DEMAND : kinesis.StreamMode.PROVISIONED,
      shardCount: sp.mode === 'on-demand' ? undefined : (sp.shardCount ?? 1),
      retentionPeriod: sp.retentionPeriod ?? Duration.hours(24),
      ...(sp.encryptionKey ? { encryption: kinesis.StreamEncryption.KMS, encryptionKey: sp.encryptionKey } : { encryption: kinesis.StreamEncryption.MANAGED }),
      removalPolicy: removalPolicyOf(props),
    })
  );
}

/**
 * Both new buckets: encrypted (SSE-S3, or SSE-KMS with the given key and an S3 Bucket Key, which
 * spares a KMS request per object: a batch writes several), private, TLS only; emptied when
 * deleted with the stack.
 */
function bucketProps(props: Pick<SluiceJobProps, 'removalPolicy'>, own: SluiceBucketProps | undefined): s3.BucketProps {
  const removalPolicy = removalPolicyOf(props);
  return {
    ...(own?.encryptionKey ? { encryption: s3.BucketEncryption.KMS, encryptionKey: own.encryptionKey, bucketKeyEnabled: true } : { encryption: s3.BucketEncryption.S3_MANAGED }),
    blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
    enforceSSL: true,
    removalPolicy,
    autoDeleteObjects: removalPolicy === RemovalPolicy.DESTROY,
  };
}

/** The given sink bucket, or a new one. */
export function sinkBucket(scope: Construct, props: Pick<SluiceJobProps, 'existingSinkBucket' | 'sinkBucketProps' | 'removalPolicy'>): s3.IBucket {
  return props.existingSinkBucket ?? new s3.Bucket(scope, 'SinkBucket', bucketProps(props, props.sinkBucketProps));
}

/**
 * The given state bucket, or a new one whose batch blobs, dead letters and batch history expire. A given bucket
 * keeps its own lifecycle: the warnings say which prefixes then never expire.
 */
export function stateBucket(
  scope: Construct,
  props: Pick<SluiceJobProps, 'existingStateBucket' | 'stateBucketProps' | 'removalPolicy' | 'shuffleExpiration' | 'deadLetterRetention' | 'historyRetention'>,
  jobName: string,
): s3.IBucket {
  const bucket =
    props.existingStateBucket ??
    new s3.Bucket(scope, 'StateBucket', {
      ...bucketProps(props, props.stateBucketProps),
      lifecycleRules: [
        {
          id: 'expire-batch-data',
          prefix: `${jobName}/batch/`,
          expiration: props.shuffleExpiration ?? Duration.days(3),
          abortIncompleteMultipartUploadAfter: Duration.days(1),
        },
        { id: 'expire-dead-letters', prefix: `${jobName}/dead-letters/`, expiration: props.deadLetterRetention ?? Duration.days(14) },
        { id: 'expire-history', prefix: `${jobName}/history/`, expiration: props.historyRetention ?? Duration.days(30) },
      ],
    });

  if (props.existingStateBucket) {
    Annotations.of(scope).addWarningV2(
      'sluice:lifecycle',
      `existingStateBucket: batch blobs a crash leaves under ${jobName}/batch/ do not expire unless the bucket has its own lifecycle rule for that prefix (shuffleExpiration applies to a new bucket only)`,
    );
    // Its own id: a bucket may have a rule for one prefix and not the other, and each warning is acknowledged alone.
    Annotations.of(scope).addWarningV2(
      'sluice:dead-letter-lifecycle',
      `existingStateBucket: dead letters under ${jobName}/dead-letters/ do not expire unless the bucket has its own lifecycle rule for that prefix (deadLetterRetention applies to a new bucket only)`,
    );
    Annotations.of(scope).addWarningV2(
      'sluice:history-lifecycle',
      `existingStateBucket: the batch history under ${jobName}/history/ (the Streaming UI's, a file a minute) does not expire unless the bucket has its own lifecycle rule for that prefix (historyRetention applies to a new bucket only)`,
    );
  }
  return bucket;
}

/** The given table, or a new on-demand one with the `pk`/`sk` keys the meta store uses, encrypted with `tableProps.encryptionKey` if given. */
export function metaTable(scope: Construct, props: Pick<SluiceJobProps, 'existingTable' | 'tableProps' | 'removalPolicy'>): dynamodb.ITable {
  const key = props.tableProps?.encryptionKey;
  return (
    props.existingTable ??
    new dynamodb.Table(scope, 'Table', {
      partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'sk', type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      ...(key ? { encryption: dynamodb.TableEncryption.CUSTOMER_MANAGED, encryptionKey: key } : {}),
      removalPolicy: removalPolicyOf(props),
    })
  );
}
