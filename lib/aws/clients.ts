import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { KinesisClient } from '@aws-sdk/client-kinesis';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { S3Client } from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';

/** Where and how to reach AWS, or an emulator / LocalStack standing in for it. */
export interface AwsConfig {
  /** Region. @default process.env.AWS_REGION, else 'us-east-1' */
  readonly region?: string;
  /**
   * One endpoint for every service (LocalStack: `http://localhost:4566`), or one per service
   * (the npm emulators each listen on their own port). @default process.env.SLUICE_AWS_ENDPOINT
   */
  readonly endpoint?: string | { readonly s3?: string; readonly dynamodb?: string; readonly kinesis?: string; readonly lambda?: string };
  /** Static credentials (emulators accept anything); on AWS the default provider chain is used. */
  readonly credentials?: { readonly accessKeyId: string; readonly secretAccessKey: string };
}

function endpointFor(config: AwsConfig, service: 's3' | 'dynamodb' | 'kinesis' | 'lambda'): string | undefined {
  const e = config.endpoint ?? process.env.SLUICE_AWS_ENDPOINT;
  if (e === undefined || e === '') return undefined;
  return typeof e === 'string' ? e : e[service];
}

function common(config: AwsConfig, service: 's3' | 'dynamodb' | 'kinesis' | 'lambda') {
  const endpoint = endpointFor(config, service);
  return {
    region: config.region ?? process.env.AWS_REGION ?? 'us-east-1',
    ...(endpoint ? { endpoint } : {}),
    // Emulators and LocalStack accept any key except s3rver, which wants its own; real AWS uses the default provider chain.
    ...(config.credentials ? { credentials: config.credentials } : endpoint ? { credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } } : {}),
    maxAttempts: 3,
  };
}

/**
 * S3 client. Against an endpoint (emulator, LocalStack) it uses path-style addressing, and it
 * computes checksums only when an operation requires them (s3rver does not know the newer ones).
 *
 * @example
 * ```ts
 * const s3 = s3Client({ endpoint: 'http://127.0.0.1:4569' });
 * ```
 */
export function s3Client(config: AwsConfig = {}): S3Client {
  const c = common(config, 's3');
  return new S3Client({
    ...c,
    ...(c.endpoint ? { forcePathStyle: true } : {}),
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

/**
 * DynamoDB client.
 *
 * @example
 * ```ts
 * const ddb = dynamoClient({ region: 'eu-west-1' });
 * ```
 */
export function dynamoClient(config: AwsConfig = {}): DynamoDBClient {
  return new DynamoDBClient(common(config, 'dynamodb'));
}

/**
 * Kinesis client. Uses the HTTP/1.1 handler: the SDK's default for Kinesis speaks HTTP/2, which
 * kinesalite and kinesis-local do not.
 *
 * @example
 * ```ts
 * const kinesis = kinesisClient({ endpoint: 'http://127.0.0.1:4567' });
 * ```
 */
export function kinesisClient(config: AwsConfig = {}): KinesisClient {
  return new KinesisClient({ ...common(config, 'kinesis'), requestHandler: new NodeHttpHandler() });
}

/**
 * Lambda client.
 *
 * @example
 * ```ts
 * const lambda = lambdaClient();
 * ```
 */
export function lambdaClient(config: AwsConfig = {}): LambdaClient {
  return new LambdaClient(common(config, 'lambda'));
}
