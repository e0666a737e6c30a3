import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  type S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SluiceError } from '../lib/core/errors.ts';
import { s3Client } from '../lib/aws/clients.ts';
import { S3BlobStore } from '../lib/aws/s3BlobStore.ts';
import { s3Sinks } from '../lib/aws/s3Sinks.ts';
import { localSinks } from '../lib/local/sinks.ts';
import { type BlobStoreFixture, describeBlobStoreContract } from '../test/contracts/blobStoreContract.ts';
import { type Emulator, startS3rver } from './helpers/emulators.ts';

const text = (bytes: Uint8Array | undefined) => (bytes === undefined ? undefined : new TextDecoder().decode(bytes));

/** A client that counts the commands sent through it (one per `send`, retries not counted). */
function countingClient(endpoint: string): { client: S3Client; counts: Map<string, number> } {
  const client = s3Client({ endpoint });
  const counts = new Map<string, number>();
  client.middlewareStack.add(
    (next, context) => async (args) => {
      counts.set(context.commandName!, (counts.get(context.commandName!) ?? 0) + 1);
      return next(args);
    },
    { step: 'initialize', name: 'sluiceCountCommands' },
  );
  return { client, counts };
}

describe('S3BlobStore against s3rver', () => {
  let s3: Emulator;
  let client: S3Client;
  let buckets = 0;

  /** A new, empty bucket. */
  async function freshBucket(stem = 'sluice-test'): Promise<string> {
    const bucket = `${stem}-${++buckets}`;
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
    return bucket;
  }

  async function objectKeys(bucket: string, prefix?: string): Promise<string[]> {
    const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, ...(prefix === undefined ? {} : { Prefix: prefix }) }));
    return (page.Contents ?? []).map((o) => o.Key!);
  }

  /**
   * What a multipart upload of `key` that died halfway leaves: the upload, holding the part sent
   * before it died, never completed. S3 keeps such an upload (until it is aborted or a lifecycle
   * rule sweeps it) but never lists it as an object.
   */
  async function uploadLeftHalfway(bucket: string, key: string): Promise<{ uploadId: string; etag: string }> {
    const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
    const part = await client.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId, PartNumber: 1, Body: 'the first part of an object never completed' }));
    if (!UploadId || !part.ETag) throw new Error(`s3rver did not store the first part of ${key}`);
    return { uploadId: UploadId, etag: part.ETag };
  }

  beforeAll(async () => {
    s3 = await startS3rver();
    client = s3Client({ endpoint: s3.endpoint });
  });

  afterAll(async () => {
    client?.destroy();
    await s3?.stop();
  });

  /** Each contract test gets a bucket of its own, used whole or under a key prefix. */
  const s3Fixture = (name: string, prefix: string): BlobStoreFixture => ({
    name,
    create: async () => {
      const bucket = await freshBucket('contract');
      const store = new S3BlobStore({ client, bucket, prefix });
      return {
        store,
        // A PutObject that dies halfway leaves nothing on S3 (s3rver, unlike S3, would list the bytes
        // it received of a PUT cut off mid-body); a multipart upload that dies halfway leaves its parts.
        leaveHalfWrittenObject: async (dirKey) => void (await uploadLeftHalfway(bucket, `${store.prefix}${dirKey}/half-written`)),
        // S3 has no directories: bare means the bucket holds no object at all, under the prefix or not.
        isBare: async () => (await objectKeys(bucket)).length === 0,
        // The bucket goes with s3rver's temporary directory when the emulator stops.
        dispose: async () => {},
      };
    },
  });

  describeBlobStoreContract([s3Fixture('S3BlobStore (whole bucket)', ''), s3Fixture('S3BlobStore (key prefix)', 'jobs/wordcount')]);

  describe('S3-specific behaviour', () => {
    it('isolates two stores in one bucket by their key prefixes', async () => {
      // Prepare
      const bucket = await freshBucket();
      const a = new S3BlobStore({ client, bucket, prefix: 'jobs/a' });
      const ab = new S3BlobStore({ client, bucket, prefix: 'jobs/ab/' });
      const whole = new S3BlobStore({ client, bucket });

      // Act
      await a.put('k/1', 'from a');
      await ab.put('k/1', 'from ab');
      await ab.put('k/2', 'only ab');

      // Assess
      expect([a.prefix, ab.prefix, whole.prefix]).toEqual(['jobs/a/', 'jobs/ab/', '']);
      expect(text(await a.get('k/1'))).toBe('from a');
      expect(text(await ab.get('k/1'))).toBe('from ab');
      expect(await a.exists('k/2')).toBe(false);
      expect(await a.list('')).toEqual(['k/1']);
      expect(await ab.list('k/')).toEqual(['k/1', 'k/2']);
      expect(await whole.list('')).toEqual(['jobs/a/k/1', 'jobs/ab/k/1', 'jobs/ab/k/2']);
      expect(await objectKeys(bucket, 'jobs/a/')).toEqual(['jobs/a/k/1']);

      // Act
      await a.delete(['k/1', 'k/2']);

      // Assess
      expect(await a.list('')).toEqual([]);
      expect(await ab.list('')).toEqual(['k/1', 'k/2']);
    });

    it('lists an upload left halfway (the contract’s half-written object) only once it is completed', async () => {
      // Prepare: what the contract fixture leaves is a real upload of the key, holding its first part.
      const bucket = await freshBucket();
      const store = new S3BlobStore({ client, bucket, prefix: 'jobs/a' });
      const { uploadId, etag } = await uploadLeftHalfway(bucket, 'jobs/a/dir/half-written');
      expect(await store.list('')).toEqual([]);

      // Act
      await client.send(
        new CompleteMultipartUploadCommand({ Bucket: bucket, Key: 'jobs/a/dir/half-written', UploadId: uploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: etag }] } }),
      );

      // Assess (not the bytes: s3rver answers a CompleteMultipartUpload before the object's file is flushed)
      expect(await store.list('')).toEqual(['dir/half-written']);
    });

    it('refuses a key prefix that is not a relative path', () => {
      for (const prefix of ['/abs', '../up', 'a//b', 'a\\b']) {
        expect(() => new S3BlobStore({ client, bucket: 'any-bucket', prefix })).toThrow(SluiceError);
      }
    });

    it('lists and deletes more than 1000 keys, page by page and batch by batch', async () => {
      // Prepare
      const bucket = await freshBucket();
      const counting = countingClient(s3.endpoint);
      const store = new S3BlobStore({ client: counting.client, bucket, prefix: 'many' });
      const keys = Array.from({ length: 1005 }, (_, i) => `k/${String(i).padStart(4, '0')}`);
      for (let i = 0; i < keys.length; i += 100) await Promise.all(keys.slice(i, i + 100).map((k) => store.put(k, k)));
      await store.put('other', 'x');

      // Act
      const listed = await store.list('k/');

      // Assess
      expect(listed).toEqual(keys);
      expect(counting.counts.get('ListObjectsV2Command')).toBe(2); // s3rver pages at 1000 keys, like S3

      // Act
      await store.delete([...keys].reverse());

      // Assess
      expect(counting.counts.get('DeleteObjectsCommand')).toBe(2);
      expect(await store.list('')).toEqual(['other']);
      counting.client.destroy();
    });

    it('names a missing bucket instead of failing with the SDK’s NoSuchBucket', async () => {
      // Prepare
      const store = new S3BlobStore({ client, bucket: 'no-such-bucket', prefix: 'p' });
      const clear = /bucket "no-such-bucket" does not exist/;

      // Act / Assess
      for (const attempt of [
        () => store.put('k', 'x'),
        () => store.get('k'),
        () => store.getRange('k', 0, 4),
        () => store.exists('k'),
        () => store.delete(['k']),
        () => store.list(''),
      ]) {
        await expect(attempt()).rejects.toThrow(SluiceError);
        await expect(attempt()).rejects.toThrow(clear);
      }
      await expect(store.delete([])).resolves.toBeUndefined(); // nothing to do: no request
    });

    it('returns no bytes for ranges that start at or beyond the end, and clips those that run past it', async () => {
      // Prepare
      const bucket = await freshBucket();
      const counting = countingClient(s3.endpoint);
      const store = new S3BlobStore({ client: counting.client, bucket });
      await store.put('blob', '0123456789');

      // Act / Assess
      expect(await store.getRange('blob', 10, 11)).toEqual(new Uint8Array(0)); // S3: 416 InvalidRange
      expect(await store.getRange('blob', 1000, 2000)).toEqual(new Uint8Array(0));
      expect(await store.getRange('blob', 11, Number.POSITIVE_INFINITY)).toEqual(new Uint8Array(0));
      expect(text(await store.getRange('blob', 8, 1_000_000))).toBe('89');
      expect(await store.getRange('missing', 1000, 2000)).toBeUndefined();
      expect(counting.counts.get('GetObjectCommand')).toBe(5);
      counting.client.destroy();
    });

    it('reports the keys S3 could not delete, with S3’s reasons', async () => {
      // Prepare: S3 answers DeleteObjects with per-key errors (s3rver never does, so a stub stands in)
      const sent: unknown[] = [];
      const stub = {
        send: async (command: { input: unknown }) => {
          sent.push(command.input);
          return { Errors: [{ Key: 'p/locked', Code: 'AccessDenied', Message: 'Access Denied' }, { Key: 'p/gone', Code: 'NoSuchKey' }] };
        },
      } as unknown as S3Client;
      const store = new S3BlobStore({ client: stub, bucket: 'b-1', prefix: 'p' });

      // Act / Assess
      const failure = store.delete(['locked', 'fine', 'gone']);
      await expect(failure).rejects.toThrow(SluiceError);
      await expect(failure).rejects.toThrow(/could not delete 1 object\(s\).*"locked": AccessDenied \(Access Denied\)/);
      expect(sent).toEqual([{ Bucket: 'b-1', Delete: { Objects: [{ Key: 'p/locked' }, { Key: 'p/fine' }, { Key: 'p/gone' }], Quiet: true } }]);
    });
  });

  describe('s3Sinks', () => {
    it('resolves s3://bucket/prefix to a store on the bucket and the key within it, one store per bucket', async () => {
      // Prepare
      const bucket = await freshBucket('sink');
      const sinks = s3Sinks(client);

      // Act
      const first = sinks(`s3://${bucket}/out/wordcount-1000`);
      const second = sinks(`s3://${bucket}/out/wordcount-2000`);
      const other = sinks('s3://another.bucket-1/x');
      await first.store.put(`${first.key}/part-00000`, 'a 1\n');

      // Assess
      expect(first.key).toBe('out/wordcount-1000');
      expect(second.key).toBe('out/wordcount-2000');
      expect(first.store).toBeInstanceOf(S3BlobStore);
      expect(first.store).toBe(second.store);
      expect(other.store).not.toBe(first.store);
      expect([(first.store as S3BlobStore).bucket, (first.store as S3BlobStore).prefix]).toEqual([bucket, '']);
      const raw = await client.send(new GetObjectCommand({ Bucket: bucket, Key: 'out/wordcount-1000/part-00000' }));
      expect(await raw.Body!.transformToString()).toBe('a 1\n');
    });

    it('serves the s3:// locations of localSinks', async () => {
      // Prepare
      const bucket = await freshBucket('sink');
      const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-sinks-'));
      try {
        const sinks = localSinks(dir, s3Sinks(client));

        // Act
        const remote = sinks(`s3://${bucket}/counts-1000`);
        const local = sinks('out/counts-1000');

        // Assess
        expect(remote.store).toBeInstanceOf(S3BlobStore);
        expect(remote.key).toBe('counts-1000');
        expect(local.store).not.toBeInstanceOf(S3BlobStore);
      } finally {
        await fs.rm(dir, { recursive: true, force: true });
      }
    });

    it.each([
      ['s3://', /names no bucket/],
      ['s3:///out/x', /names no bucket/],
      ['s3://my-bucket', /names no key prefix within bucket "my-bucket"/],
      ['s3://my-bucket/', /names no key prefix/],
      ['s3://my-bucket/out//x', /"out\/\/x" is not a valid key prefix/],
      ['s3://my-bucket/../x', /is not a valid key prefix/],
      ['s3://My_Bucket/out', /"My_Bucket" is not a valid S3 bucket name/],
      ['s3://ab/out', /"ab" is not a valid S3 bucket name: it has 2 characters/],
      [`s3://${'b'.repeat(64)}/out`, /not a valid S3 bucket name: it has 64 characters/],
      ['s3://-bucket/out', /must start and end with a letter or digit/],
      ['s3://my..bucket/out', /two dots in a row/],
      ['s3://192.168.1.1/out', /formatted as an IP address/],
      ['https://my-bucket/out', /not an s3:\/\/ location/],
    ])('refuses %s with a clear error', (location, why) => {
      const sinks = s3Sinks(client);
      expect(() => sinks(location)).toThrow(SluiceError);
      expect(() => sinks(location)).toThrow(why);
      expect(() => sinks(location)).toThrow(JSON.stringify(location));
    });
  });
});
