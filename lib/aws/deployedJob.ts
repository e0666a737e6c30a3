import { type AttributeValue, DynamoDBClient, ScanCommand } from '@aws-sdk/client-dynamodb';
import { HeadBucketCommand, type S3Client } from '@aws-sdk/client-s3';
import { keys } from '../engine/protocol.ts';
import { type AwsConfig, endpointsFromEnv } from './clients.ts';
import { errorCode, httpStatus } from './sdkErrors.ts';

// What the operations commands (lib/cli/jobStores.ts) ask AWS before they read a deployed job:
// where to reach it from a command line, which jobs a table holds, whether a bucket exists. The
// answers are plain data; the command says them in its own words.

/**
 * The jobs whose lease, checkpoint or pause a Sluice table holds (one `Scan` of those items' keys),
 * sorted; undefined when there is no such table.
 *
 * @example
 * ```ts
 * await jobsInTable(dynamoClient(), 'sluice-meta'); // ['clicks', 'wordcount']
 * ```
 */
export async function jobsInTable(client: DynamoDBClient, table: string): Promise<string[] | undefined> {
  const names = new Set<string>();
  let start: Record<string, AttributeValue> | undefined;
  try {
    do {
      const out = await client.send(
        new ScanCommand({
          TableName: table,
          FilterExpression: '#sk IN (:lease, :checkpoint, :pause)',
          ProjectionExpression: '#pk',
          ExpressionAttributeNames: { '#pk': 'pk', '#sk': 'sk' },
          ExpressionAttributeValues: { ':lease': { S: keys.lease }, ':checkpoint': { S: keys.checkpoint }, ':pause': { S: keys.pause } },
          ...(start ? { ExclusiveStartKey: start } : {}),
        }),
      );
      for (const item of out.Items ?? []) if (item.pk?.S !== undefined) names.add(item.pk.S);
      start = out.LastEvaluatedKey;
    } while (start);
  } catch (e) {
    if (errorCode(e) === 'ResourceNotFoundException') return undefined;
    throw e;
  }
  return [...names].sort();
}

/**
 * Whether the bucket exists (`HeadBucket`); any answer but "not found" (a 403, say) is thrown.
 *
 * @example
 * ```ts
 * if (!(await bucketExists(s3Client(), 'my-state'))) console.error('no such bucket');
 * ```
 */
export async function bucketExists(client: S3Client, bucket: string): Promise<boolean> {
  try {
    await client.send(new HeadBucketCommand({ Bucket: bucket }));
    return true;
  } catch (e) {
    if (errorCode(e) === 'NotFound' || errorCode(e) === 'NoSuchBucket' || httpStatus(e) === 404) return false;
    throw e;
  }
}

/** Codes of requests AWS refused for the caller's credentials (not for what was asked). */
const REFUSED = new Set(['ExpiredToken', 'ExpiredTokenException', 'UnrecognizedClientException', 'InvalidClientTokenId', 'InvalidSignatureException', 'SignatureDoesNotMatch']);

/**
 * Whether AWS refused a request for its credentials (expired, unknown, badly signed), rather than
 * for what it asked.
 *
 * @example
 * ```ts
 * catch (e) { if (credentialsRefused(e)) console.error('sign in again'); }
 * ```
 */
export function credentialsRefused(e: unknown): boolean {
  const code = errorCode(e);
  return code !== undefined && REFUSED.has(code);
}

/** How a command line reaches AWS, or what it lacks. */
export type AwsAccess = { readonly config: AwsConfig & { readonly region: string } } | { readonly missing: 'region' } | { readonly missing: 'credentials'; readonly why: string };

/**
 * How a command line reaches AWS: the endpoints of `endpointsFromEnv`, the region of `region` (a
 * flag), `AWS_REGION`, `AWS_DEFAULT_REGION` or the profile, and the SDK's default credentials,
 * checked now (without a request) when a service goes to AWS rather than to an endpoint. Against
 * endpoints only (emulators, LocalStack) the region defaults to `us-east-1`.
 *
 * @example
 * ```ts
 * const access = await awsAccessFromEnv('eu-west-1');
 * if ('missing' in access) throw new Error(`no AWS ${access.missing}`);
 * ```
 */
export async function awsAccessFromEnv(region?: string, env: NodeJS.ProcessEnv = process.env): Promise<AwsAccess> {
  const endpoint = endpointsFromEnv(env);
  const someToAws = (['s3', 'dynamodb', 'kinesis', 'cloudformation'] as const).some((s) => !endpoint[s]);
  let resolved = region ?? (env.AWS_REGION || env.AWS_DEFAULT_REGION || undefined);
  const probe = new DynamoDBClient(resolved ? { region: resolved } : {});
  try {
    if (resolved === undefined) {
      try {
        resolved = await probe.config.region();
      } catch {
        // No region anywhere: an emulator does not care which; AWS does.
        if (!someToAws) resolved = 'us-east-1';
      }
    }
    if (resolved === undefined) return { missing: 'region' };
    if (someToAws) {
      try {
        await probe.config.credentials();
      } catch (e) {
        return { missing: 'credentials', why: (e as Error).message };
      }
    }
  } finally {
    probe.destroy();
  }
  return { config: { region: resolved, endpoint } };
}
