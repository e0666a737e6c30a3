import { CreateTableCommand, type DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { CreateBucketCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SluiceError } from '../lib/core/errors.ts';
import { dynamoClient, s3Client } from '../lib/aws/clients.ts';
import { DynamoMetaStore, MAX_VALUE_BYTES, metaTableSchema } from '../lib/aws/dynamoMetaStore.ts';
import { S3BlobStore } from '../lib/aws/s3BlobStore.ts';
import { SpillingMetaStore } from '../lib/engine/spillingMetaStore.ts';
import type { JsonValue } from '../lib/ports/index.ts';
import { describeMetaStoreContract } from '../test/contracts/metaStoreContract.ts';
import { batchRecordWith, checkpointWith, jsonBytes, kinesisShapes, textFileShapes } from '../test/helpers/metaShapes.ts';
import { type Emulator, startDynalite, startS3rver } from './helpers/emulators.ts';

/**
 * Issue 10, item 5: metadata past DynamoDB's item limit stopped a job for ever. The values below
 * are shaped as the engine writes them (test/helpers/metaShapes.ts); their JSON sizes, as of this
 * writing (the test names print them from the values themselves):
 *
 * | value                                                           | checkpoint | batch record |
 * | Kinesis, 2,000 shards (1,000 read, 1,000 idle since LATEST)     | 434 KiB    | 1,010 KiB    |
 * | textFileStream, 20,000 names seen, 500 of them new in the batch | 1,153 KiB  | 1,222 KiB    |
 *
 * A batch record passes DynamoMetaStore's 350 KiB (MAX_VALUE_BYTES) at 471 shards that are all idle
 * since LATEST (762 bytes each: split with resume iterator, start and iterator in the state), at
 * 1,317 shards that are all read (272 bytes each), at 6,072 seen names when no file is new (59 bytes
 * a name of 42 characters), or at 1,774 files when all are new in the batch (202 bytes each).
 */

const TABLE = 'sluice-meta';
const BUCKET = 'sluice-state';

const KINESIS = kinesisShapes(2000, 1000);
const FILES = textFileShapes(20_000, 500);

const values: { label: string; key: string; value: JsonValue }[] = [
  { label: 'Kinesis checkpoint, 2,000 shards', key: 'checkpoint', value: checkpointWith('kinesis-0', KINESIS.state) },
  { label: 'Kinesis batch record, 2,000 shards', key: 'batch/001767225600000', value: batchRecordWith('kinesis-0', KINESIS) },
  { label: 'textFileStream checkpoint, 20,000 files', key: 'checkpoint', value: checkpointWith('textFile-0', FILES.state) },
  { label: 'textFileStream batch record, 20,000 files (500 new)', key: 'batch/001767225600000', value: batchRecordWith('textFile-0', FILES) },
];

const kib = (bytes: number) => `${Math.round(bytes / 1024).toLocaleString('en-US')} KiB`;

let ddb: Emulator;
let s3: Emulator;
let dynamo: DynamoDBClient;
let s3c: S3Client;
let jobs = 0;

/** A job of its own: the DynamoDB store, the S3 store under the job's prefix, and both wrapped. */
function stores() {
  const job = `spill-${++jobs}`;
  const meta = new DynamoMetaStore({ client: dynamo, table: TABLE, job });
  const blobs = new S3BlobStore({ client: s3c, bucket: BUCKET, prefix: job });
  return { job, meta, blobs, spilling: new SpillingMetaStore(meta, blobs) };
}

async function objectKeys(prefix: string): Promise<string[]> {
  const page = await s3c.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix }));
  return (page.Contents ?? []).map((o) => o.Key!).sort();
}

beforeAll(async () => {
  [ddb, s3] = await Promise.all([startDynalite(), startS3rver()]);
  dynamo = dynamoClient({ endpoint: ddb.endpoint, region: 'us-east-1' });
  s3c = s3Client({ endpoint: s3.endpoint });
  await dynamo.send(new CreateTableCommand(metaTableSchema(TABLE)));
  await s3c.send(new CreateBucketCommand({ Bucket: BUCKET }));
});

afterAll(async () => {
  dynamo?.destroy();
  s3c?.destroy();
  await Promise.all([ddb?.stop(), s3?.stop()]);
});

// The port's contract with every value in a blob: the conditions behave as DynamoDB's own.
describeMetaStoreContract([
  {
    name: 'SpillingMetaStore on DynamoMetaStore and S3BlobStore, every value in a blob',
    create: async () => {
      const { meta, blobs } = stores();
      return { store: new SpillingMetaStore(meta, blobs, { thresholdBytes: 0 }), dispose: async () => {} };
    },
  },
]);

describe('SpillingMetaStore on DynamoDB (dynalite) and S3 (s3rver)', () => {
  for (const { label, key, value } of values) {
    it(`${label}: ${kib(jsonBytes(value))} of JSON, refused by DynamoMetaStore alone, stored and read back through SpillingMetaStore`, async () => {
      // Prepare
      const { job, meta, spilling } = stores();

      // Act: the bug, then the fix.
      const refused = await meta.put(key, value, { expectedVersion: 0, epoch: 1 }).then(
        () => undefined,
        (e: unknown) => e,
      );
      const version = await spilling.put(key, value, { expectedVersion: 0, epoch: 1 });
      // Read back by a store that shares nothing with the writer but DynamoDB and S3 (the next coordinator).
      const read = await new SpillingMetaStore(meta, new S3BlobStore({ client: s3c, bucket: BUCKET, prefix: job })).get(key);

      // Assess
      expect(jsonBytes(value)).toBeGreaterThan(MAX_VALUE_BYTES);
      expect(refused).toBeInstanceOf(SluiceError);
      expect((refused as Error).message).toContain(`meta item ${key} of job ${job}: its value is ${jsonBytes(value)} bytes of JSON, over the ${MAX_VALUE_BYTES}-byte limit`);
      expect(version).toBe(1);
      expect(read).toEqual({ key, version: 1, epoch: 1, value });
      const raw = await dynamo.send(new GetItemCommand({ TableName: TABLE, Key: { pk: { S: job }, sk: { S: key } }, ConsistentRead: true }));
      expect(raw.Item?.value?.S?.length).toBeLessThan(256);
      expect(await objectKeys(`${job}/`)).toEqual([expect.stringMatching(new RegExp(`^${job}/meta/${key}/e1-[0-9a-f]{64}\\.json$`))]);
    });
  }

  it('replaces a spilled checkpoint batch after batch, keeping the blobs of the last two versions, and deletes a batch record with its blobs', async () => {
    // Prepare: the checkpoint as a coordinator moves it: read, then commit after commit.
    const { job, spilling } = stores();
    const checkpoint = checkpointWith('kinesis-0', KINESIS.state);
    let version = await spilling.put('checkpoint', checkpoint, { expectedVersion: 0, epoch: 1 });
    await spilling.put('batch/001767225600000', batchRecordWith('kinesis-0', KINESIS), { expectedVersion: 0, epoch: 1 });

    // Act
    for (let i = 1; i <= 3; i++) {
      version = await spilling.put('checkpoint', { ...checkpoint, lastCompleted: checkpoint.lastCompleted + i * 1000 }, { expectedVersion: version!, epoch: 1 });
    }
    await spilling.delete('batch/001767225600000', { epoch: 1 });

    // Assess
    expect(version).toBe(4);
    expect(await objectKeys(`${job}/meta/checkpoint/`)).toHaveLength(2);
    expect(await objectKeys(`${job}/meta/batch/`)).toEqual([]);
    expect(await spilling.list('')).toEqual(['checkpoint']);
    expect((await stores().spilling.get('checkpoint'))?.value).toBeUndefined(); // another job sees nothing
    expect((await spilling.get<typeof checkpoint>('checkpoint'))?.value.lastCompleted).toBe(checkpoint.lastCompleted + 3000);
  });

  it('places the batch-record thresholds where the header says', () => {
    // A binary search over the shapes: the first count whose batch record passes the limit.
    const firstOver = (size: (n: number) => number) => {
      let [lo, hi] = [0, 10_000];
      while (lo < hi) {
        const mid = Math.floor((lo + hi) / 2);
        if (size(mid) > MAX_VALUE_BYTES) hi = mid;
        else lo = mid + 1;
      }
      return lo;
    };
    const batch = (shapes: ReturnType<typeof kinesisShapes>, node: string) => jsonBytes(batchRecordWith(node, shapes));

    expect(firstOver((n) => batch(kinesisShapes(n, 0), 'kinesis-0'))).toBe(471);
    expect(firstOver((n) => batch(kinesisShapes(n, n), 'kinesis-0'))).toBe(1317);
    expect(firstOver((n) => batch(textFileShapes(n, 0), 'textFile-0'))).toBe(6072);
    expect(firstOver((n) => batch(textFileShapes(n, n), 'textFile-0'))).toBe(1774);
  });
});
