import { CloudFormationClient } from '@aws-sdk/client-cloudformation';
import { DynamoDBClient, type DynamoDBClientConfig } from '@aws-sdk/client-dynamodb';
import { KinesisClient } from '@aws-sdk/client-kinesis';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { S3Client } from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';

// The Kinesis client's type, for the commands that put into a stream without importing the SDK themselves.
export type { KinesisClient };

/** The services Sluice calls: the functions' four, and CloudFormation for the operations commands (`sluice status --stack`). */
export type AwsService = 's3' | 'dynamodb' | 'kinesis' | 'lambda' | 'cloudformation';

/** An endpoint per service (the npm emulators each listen on their own port); a service left out goes to AWS. */
export type ServiceEndpoints = { readonly [S in AwsService]?: string };

/** Where and how to reach AWS, or an emulator / LocalStack standing in for it. */
export interface AwsConfig {
  /** Region. @default process.env.AWS_REGION, else 'us-east-1' */
  readonly region?: string;
  /**
   * One endpoint for every service (LocalStack: `http://localhost:4566`), or one per service
   * (the npm emulators each listen on their own port). @default process.env.SLUICE_AWS_ENDPOINT
   */
  readonly endpoint?: string | ServiceEndpoints;
  /** Static credentials (emulators accept anything); on AWS the default provider chain is used. */
  readonly credentials?: { readonly accessKeyId: string; readonly secretAccessKey: string };
  /**
   * Wait this long (ms) before each retry, instead of the standard backoff: the SDK's for S3 (a
   * random wait of up to 50 ms × 2^n, or up to 1 s × 2^n after a throttling error), and the
   * adapters' own for the DynamoDB, Kinesis and Lambda calls they retry. The attempts stay the
   * same. For tests against emulators and throttling proxies, which need not wait for a real
   * service to recover.
   * @default the standard backoff
   */
  readonly retryDelayMs?: number;
}

/**
 * SDK attempts of one request, the first included. One layer retries each call: S3 requests are
 * retried by the SDK (its default of 3, written out so tests can count on it); the DynamoDB, Kinesis
 * and Lambda calls are retried by the adapters that make them (`withRetries` in `sdkErrors.ts`: the
 * meta store's writes, the Kinesis reads, `Invoke`), so their clients make one attempt each and a
 * throttle costs one request per retry, not the SDK's attempts times the adapter's.
 */
const SDK_ATTEMPTS = { s3: 3, dynamodb: 1, kinesis: 1, lambda: 1, cloudformation: 3 } as const;

/** The SDK's retry strategy interface, named through a client's config (its package is not a dependency of ours). */
type RetryStrategyV2 = Extract<NonNullable<DynamoDBClientConfig['retryStrategy']>, { acquireInitialRetryToken: unknown }>;

/**
 * The SDK's standard retry decisions with a fixed wait: a throttling or transient error is retried
 * until `maxAttempts` attempts are made; any other error is not. (The standard strategy also
 * keeps a retry quota per client, which only matters for long outages; tests do not need it.)
 */
function fixedDelayRetries(delayMs: number, maxAttempts: number): RetryStrategyV2 {
  const token = (count: number) => ({ getRetryCount: () => count, getRetryDelay: () => delayMs });
  return {
    acquireInitialRetryToken: async () => token(0),
    refreshRetryTokenForRetry: async (previous, error) => {
      const count = previous.getRetryCount() + 1;
      if ((error.errorType !== 'THROTTLING' && error.errorType !== 'TRANSIENT') || count >= maxAttempts) throw new Error('no retry left');
      return token(count);
    },
    recordSuccess: () => undefined,
  };
}

/** The fixed retry waits of the clients made with `retryDelayMs` whose calls Sluice's adapters retry. */
const fixedRetryDelays = new WeakMap<object, number>();

/**
 * The fixed wait between retries a client was made with (`AwsConfig.retryDelayMs`), for the
 * adapter that retries the client's calls itself; `undefined`: back off as usual.
 */
export function fixedRetryDelayOf(client: object): number | undefined {
  return fixedRetryDelays.get(client);
}

/** Remembers `retryDelayMs` for a client whose calls the adapters retry (its SDK makes one attempt). */
function retriedByAdapters<C extends object>(client: C, config: AwsConfig): C {
  if (config.retryDelayMs !== undefined) fixedRetryDelays.set(client, config.retryDelayMs);
  return client;
}

function endpointFor(config: AwsConfig, service: AwsService): string | undefined {
  const e = config.endpoint ?? process.env.SLUICE_AWS_ENDPOINT;
  if (e === undefined || e === '') return undefined;
  return typeof e === 'string' ? e : e[service];
}

function common(config: AwsConfig, service: AwsService) {
  const endpoint = endpointFor(config, service);
  return {
    region: config.region ?? process.env.AWS_REGION ?? 'us-east-1',
    ...(endpoint ? { endpoint } : {}),
    // Emulators and LocalStack accept any key except s3rver, which wants its own; real AWS uses the default provider chain.
    ...(config.credentials ? { credentials: config.credentials } : endpoint ? { credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } } : {}),
    maxAttempts: SDK_ATTEMPTS[service],
    ...(config.retryDelayMs === undefined ? {} : { retryStrategy: fixedDelayRetries(config.retryDelayMs, SDK_ATTEMPTS[service]) }),
  };
}

/**
 * The endpoint of each service from the environment: `SLUICE_S3_ENDPOINT`, `SLUICE_DYNAMODB_ENDPOINT`,
 * `SLUICE_KINESIS_ENDPOINT`, `SLUICE_LAMBDA_ENDPOINT` and `SLUICE_CLOUDFORMATION_ENDPOINT`, each
 * else `SLUICE_AWS_ENDPOINT` (LocalStack: every service on one port), else `AWS_ENDPOINT_URL` (which
 * LocalStack sets in the functions it runs); a service with none goes to AWS.
 *
 * @example
 * ```ts
 * endpointsFromEnv({ SLUICE_AWS_ENDPOINT: 'http://localhost:4566', SLUICE_S3_ENDPOINT: 'http://127.0.0.1:4569' });
 * // { s3: 'http://127.0.0.1:4569', dynamodb: 'http://localhost:4566', kinesis: …, lambda: …, cloudformation: … }
 * ```
 */
export function endpointsFromEnv(env: NodeJS.ProcessEnv = process.env): ServiceEndpoints {
  const one = env.SLUICE_AWS_ENDPOINT || env.AWS_ENDPOINT_URL || undefined;
  return {
    s3: env.SLUICE_S3_ENDPOINT ?? one,
    dynamodb: env.SLUICE_DYNAMODB_ENDPOINT ?? one,
    kinesis: env.SLUICE_KINESIS_ENDPOINT ?? one,
    lambda: env.SLUICE_LAMBDA_ENDPOINT ?? one,
    cloudformation: env.SLUICE_CLOUDFORMATION_ENDPOINT ?? one,
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
 * DynamoDB client. It makes one attempt per request: the meta store retries its own (see {@link SDK_ATTEMPTS}).
 *
 * @example
 * ```ts
 * const ddb = dynamoClient({ region: 'eu-west-1' });
 * ```
 */
export function dynamoClient(config: AwsConfig = {}): DynamoDBClient {
  return retriedByAdapters(new DynamoDBClient(common(config, 'dynamodb')), config);
}

/**
 * Kinesis client. Uses the HTTP/1.1 handler: the SDK's default for Kinesis speaks HTTP/2, which
 * kinesalite and kinesis-local do not. It makes one attempt per request: the Kinesis source retries its own.
 *
 * @example
 * ```ts
 * const kinesis = kinesisClient({ endpoint: 'http://127.0.0.1:4567' });
 * ```
 */
export function kinesisClient(config: AwsConfig = {}): KinesisClient {
  return retriedByAdapters(new KinesisClient({ ...common(config, 'kinesis'), requestHandler: new NodeHttpHandler() }), config);
}

/**
 * Lambda client. It makes one attempt per request: the invoker retries its own `Invoke`s.
 *
 * @example
 * ```ts
 * const lambda = lambdaClient();
 * ```
 */
export function lambdaClient(config: AwsConfig = {}): LambdaClient {
  return retriedByAdapters(new LambdaClient(common(config, 'lambda')), config);
}

/**
 * CloudFormation client, for the operations commands that find a deployed job by its stack
 * (`sluice status --stack`); the functions never call CloudFormation. The SDK retries its requests.
 *
 * @example
 * ```ts
 * const cfn = cloudFormationClient({ region: 'eu-west-1' });
 * ```
 */
export function cloudFormationClient(config: AwsConfig = {}): CloudFormationClient {
  return new CloudFormationClient(common(config, 'cloudformation'));
}
