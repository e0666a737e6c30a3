import { CreateTableCommand, DynamoDBClient, ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { CreateStreamCommand, ListStreamsCommand } from '@aws-sdk/client-kinesis';
import { CreateBucketCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dynamoClient, kinesisClient, s3Client } from '../lib/aws/clients.ts';
import { type Emulator, startDynalite, startKinesalite, startKinesisLocal, startS3rver } from './helpers/emulators.ts';

describe('the npm emulators answer the AWS SDK on 127.0.0.1', () => {
  let s3: Emulator;
  let ddb: Emulator;
  let kin: Emulator;
  beforeAll(async () => {
    [s3, ddb, kin] = await Promise.all([startS3rver(), startDynalite(), startKinesalite()]);
  });
  afterAll(async () => {
    await Promise.all([s3?.stop(), ddb?.stop(), kin?.stop()]);
  });

  it('s3rver: bucket, put, get, paged list', async () => {
    const c = s3Client({ endpoint: s3.endpoint });
    await c.send(new CreateBucketCommand({ Bucket: 'sluice-test' }));
    for (let i = 0; i < 3; i++) await c.send(new PutObjectCommand({ Bucket: 'sluice-test', Key: `k/${i}`, Body: `v${i}` }));
    const got = await c.send(new GetObjectCommand({ Bucket: 'sluice-test', Key: 'k/1' }));
    expect(await got.Body!.transformToString()).toBe('v1');
    const page = await c.send(new ListObjectsV2Command({ Bucket: 'sluice-test', Prefix: 'k/', MaxKeys: 2 }));
    expect(page.Contents!.map((o) => o.Key)).toEqual(['k/0', 'k/1']);
    const next = await c.send(new ListObjectsV2Command({ Bucket: 'sluice-test', Prefix: 'k/', ContinuationToken: page.NextContinuationToken }));
    expect(next.Contents!.map((o) => o.Key)).toEqual(['k/2']);
  });

  it('dynalite: create and list a table', async () => {
    const c: DynamoDBClient = dynamoClient({ endpoint: ddb.endpoint });
    await c.send(
      new CreateTableCommand({
        TableName: 'sluice-test',
        KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
        AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
        BillingMode: 'PAY_PER_REQUEST',
      }),
    );
    expect((await c.send(new ListTablesCommand({}))).TableNames).toEqual(['sluice-test']);
  });

  it('kinesalite: create and list a stream over HTTP/1.1', async () => {
    const c = kinesisClient({ endpoint: kin.endpoint });
    await c.send(new CreateStreamCommand({ StreamName: 's', ShardCount: 2 }));
    expect((await c.send(new ListStreamsCommand({}))).StreamNames).toEqual(['s']);
  });

  it('kinesis-local: a child process on 127.0.0.1 only, stopped with the test', async () => {
    const local = await startKinesisLocal();
    try {
      expect(new URL(local.endpoint).hostname).toBe('127.0.0.1');
      const c = kinesisClient({ endpoint: local.endpoint });
      await c.send(new CreateStreamCommand({ StreamName: 's', ShardCount: 2 }));
      expect((await c.send(new ListStreamsCommand({}))).StreamNames).toEqual(['s']);
      c.destroy();
    } finally {
      await local.stop();
    }
    await expect(fetch(local.endpoint)).rejects.toThrow();
  });
});
