import {
  DeleteObjectsCommand,
  GetObjectCommand,
  type GetObjectCommandOutput,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { SluiceError } from '../core/errors.ts';
import { errorCode, httpStatus } from './sdkErrors.ts';
import { checkBlobKey, checkByteRange, isValidBlobKey } from '../ports/blobKeys.ts';
import type { BlobStore } from '../ports/index.ts';

/** The most keys one DeleteObjects request may name (an S3 limit). */
const DELETE_BATCH = 1000;

/** What {@link S3BlobStore} is built from. */
export interface S3BlobStoreOptions {
  /** The S3 client (see `s3Client` in `./clients.ts`). */
  readonly client: S3Client;
  /** The bucket; it must exist (the store never creates it). */
  readonly bucket: string;
  /**
   * Where in the bucket the store's keys live: key `k` is the object `<prefix>/k`. A trailing `/`
   * is added unless the prefix is empty (the whole bucket). @default ''
   */
  readonly prefix?: string;
}

/** A plain `Uint8Array` over the same bytes (the SDK may hand out a Node `Buffer`). */
function plain(bytes: Uint8Array): Uint8Array {
  return bytes.constructor === Uint8Array ? bytes : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * A {@link BlobStore} on an S3 bucket: key `a/b` is the object `<prefix>a/b` of the bucket.
 *
 * S3 writes are atomic (a reader sees the old object or the new one, never a part), so a put is
 * a single PutObject. Keys follow the same rules as the local stores (`checkBlobKey`), so a job that
 * runs locally never meets a key S3 mode refuses; `list` likewise only returns keys those rules
 * accept (a console-made `folder/` marker, say, is not listed). A bucket that does not exist is
 * reported as such, with the bucket's name, rather than as the SDK's bare `NoSuchBucket`.
 *
 * Bytes are sent as given: the caller must not change an array while its `put` is in flight
 * (once `put` resolves, the stored object no longer depends on it).
 *
 * @example
 * ```ts
 * const blobs = new S3BlobStore({ client: s3Client(), bucket: 'my-job-data', prefix: 'wordcount' });
 * await blobs.put('shuffle/1000/m0', bytes); // s3://my-job-data/wordcount/shuffle/1000/m0
 * await blobs.list('shuffle/1000/'); // ['shuffle/1000/m0']
 * ```
 */
export class S3BlobStore implements BlobStore {
  /** The bucket. */
  readonly bucket: string;
  /** The key prefix within the bucket: `''`, or a string that ends with `/`. */
  readonly prefix: string;
  readonly #client: S3Client;
  /** Set once a request succeeded on the bucket: a 404 from HeadObject then means "no such key". */
  #bucketSeen = false;

  constructor({ client, bucket, prefix = '' }: S3BlobStoreOptions) {
    if (typeof bucket !== 'string' || bucket === '' || (bucket.includes('/') && !bucket.startsWith('arn:'))) {
      throw new SluiceError(`S3BlobStore: invalid bucket name ${JSON.stringify(bucket)}`);
    }
    const bare = prefix.endsWith('/') ? prefix.slice(0, -1) : prefix;
    if (bare !== '' && !isValidBlobKey(bare)) {
      throw new SluiceError(`S3BlobStore: invalid key prefix ${JSON.stringify(prefix)} (it must be a relative path such as "jobs/wordcount")`);
    }
    this.#client = client;
    this.bucket = bucket;
    this.prefix = bare === '' ? '' : `${bare}/`;
  }

  /** `s3://bucket/<object key>` of a store key, for messages. */
  #url(key: string): string {
    return `s3://${this.bucket}/${this.prefix}${key}`;
  }

  /**
   * The error to throw for a failed request: the clear "no such bucket" one, or the SDK's error
   * wrapped in a {@link SluiceError} that says what was being done to which object.
   */
  #failure(error: unknown, doing: string): SluiceError {
    if (errorCode(error) === 'NoSuchBucket') return this.#noBucket(doing, error);
    const message = error instanceof Error ? error.message : String(error);
    return new SluiceError(`S3: cannot ${doing}: ${message}`, { cause: error });
  }

  #noBucket(doing: string, cause?: unknown): SluiceError {
    return new SluiceError(`S3 bucket ${JSON.stringify(this.bucket)} does not exist (while trying to ${doing})`, cause === undefined ? {} : { cause });
  }

  /**
   * After a bodiless 404 (HeadObject cannot say whether the key or the bucket is missing): throws
   * the "no such bucket" error if the bucket is missing. Asked once; a bucket seen stays seen.
   */
  async #checkBucket(doing: string): Promise<void> {
    if (this.#bucketSeen) return;
    try {
      await this.#client.send(new HeadBucketCommand({ Bucket: this.bucket }));
    } catch (error) {
      const code = errorCode(error);
      if (code === 'NotFound' || code === 'NoSuchBucket' || httpStatus(error) === 404) throw this.#noBucket(doing, error);
      // Not allowed to ask (HeadBucket needs s3:ListBucket): the HeadObject's 404 stands as it is.
      if (httpStatus(error) === 403) return;
      throw this.#failure(error, doing);
    }
    this.#bucketSeen = true;
  }

  async put(key: string, body: Uint8Array | string): Promise<void> {
    checkBlobKey(key);
    try {
      // An explicit length: the SDK cannot size an empty body by itself, and warns about it.
      const bytes = typeof body === 'string' ? new TextEncoder().encode(body) : body;
      await this.#client.send(new PutObjectCommand({ Bucket: this.bucket, Key: this.prefix + key, Body: bytes, ContentLength: bytes.byteLength }));
    } catch (error) {
      throw this.#failure(error, `put ${this.#url(key)}`);
    }
    this.#bucketSeen = true;
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    checkBlobKey(key);
    let response: GetObjectCommandOutput;
    try {
      response = await this.#client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.prefix + key }));
    } catch (error) {
      if (errorCode(error) === 'NoSuchKey') return undefined;
      throw this.#failure(error, `get ${this.#url(key)}`);
    }
    this.#bucketSeen = true;
    return this.#bytes(response, key);
  }

  async #bytes(response: GetObjectCommandOutput, key: string): Promise<Uint8Array> {
    if (response.Body === undefined) return new Uint8Array(0);
    try {
      return plain(await response.Body.transformToByteArray());
    } catch (error) {
      throw this.#failure(error, `read ${this.#url(key)}`);
    }
  }

  /**
   * Bytes `[start, end)` through a ranged GetObject (`Range: bytes=start-(end-1)`, or `bytes=start-`
   * when `end` is `Infinity`). A range that starts at or past the end of the object is empty (S3
   * answers it with 416 InvalidRange). An empty range (`start === end`) cannot be written as an
   * HTTP range, so it costs a HeadObject instead, which still tells a missing key (`undefined`)
   * from an existing one (empty bytes).
   */
  async getRange(key: string, start: number, end: number): Promise<Uint8Array | undefined> {
    checkBlobKey(key);
    checkByteRange(key, start, end);
    if (start === end) return (await this.exists(key)) ? new Uint8Array(0) : undefined;
    const range = end === Number.POSITIVE_INFINITY ? `bytes=${start}-` : `bytes=${start}-${end - 1}`;
    let response: GetObjectCommandOutput;
    try {
      response = await this.#client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.prefix + key, Range: range }));
    } catch (error) {
      const code = errorCode(error);
      if (code === 'NoSuchKey') return undefined;
      // The object exists, but the range starts at or past its end (or the object is empty).
      if (code === 'InvalidRange' || httpStatus(error) === 416) {
        this.#bucketSeen = true;
        return new Uint8Array(0);
      }
      throw this.#failure(error, `get bytes [${start}, ${end}) of ${this.#url(key)}`);
    }
    this.#bucketSeen = true;
    // s3rver answers a range of an empty object with 206 "bytes 0-0/0" and a Content-Length of 1
    // but sends no byte, so reading the body would fail (S3 itself answers 416): the total size in
    // Content-Range already says the range holds nothing.
    const total = /^bytes \d+-\d+\/(\d+)$/.exec(response.ContentRange ?? '')?.[1];
    if (total !== undefined && start >= Number(total)) {
      (response.Body as { destroy?: () => void } | undefined)?.destroy?.();
      return new Uint8Array(0);
    }
    const bytes = await this.#bytes(response, key);
    // A server that ignored the Range header (200: the whole object) or sent more than was asked
    // (s3rver reads `bytes=0-0` as `bytes=0-`) is cut down to the range here.
    const whole = response.$metadata.httpStatusCode === 200 && response.ContentRange === undefined;
    const from = whole ? Math.min(start, bytes.length) : 0;
    const length = end === Number.POSITIVE_INFINITY ? bytes.length : end - start;
    return from === 0 && bytes.length <= length ? bytes : bytes.slice(from, from + length);
  }

  async exists(key: string): Promise<boolean> {
    checkBlobKey(key);
    try {
      await this.#client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.prefix + key }));
    } catch (error) {
      const code = errorCode(error);
      if (code === 'NotFound' || code === 'NoSuchKey' || httpStatus(error) === 404) {
        await this.#checkBucket(`look for ${this.#url(key)}`);
        return false;
      }
      throw this.#failure(error, `look for ${this.#url(key)}`);
    }
    this.#bucketSeen = true;
    return true;
  }

  /**
   * Deletes through DeleteObjects, up to 1000 keys per request. Missing keys are not an error
   * (S3 reports them as deleted); any key S3 could not delete makes it throw a
   * {@link SluiceError} listing every such key with S3's reason, after all batches were tried.
   */
  async delete(keys: readonly string[]): Promise<void> {
    for (const key of keys) checkBlobKey(key);
    const unique = [...new Set(keys)];
    const failed: string[] = [];
    for (let i = 0; i < unique.length; i += DELETE_BATCH) {
      const batch = unique.slice(i, i + DELETE_BATCH);
      let errors: { Key?: string; Code?: string; Message?: string }[] | undefined;
      try {
        const response = await this.#client.send(
          new DeleteObjectsCommand({
            Bucket: this.bucket,
            Delete: { Objects: batch.map((key) => ({ Key: this.prefix + key })), Quiet: true },
          }),
        );
        errors = response.Errors;
      } catch (error) {
        throw this.#failure(error, `delete ${batch.length} object(s) under s3://${this.bucket}/${this.prefix}`);
      }
      this.#bucketSeen = true;
      for (const e of errors ?? []) {
        if (e.Code === 'NoSuchKey') continue;
        const key = e.Key !== undefined && e.Key.startsWith(this.prefix) ? e.Key.slice(this.prefix.length) : e.Key;
        failed.push(`${JSON.stringify(key)}: ${e.Code ?? 'error'}${e.Message ? ` (${e.Message})` : ''}`);
      }
    }
    if (failed.length > 0) {
      throw new SluiceError(`S3: could not delete ${failed.length} object(s) in s3://${this.bucket}/${this.prefix}: ${failed.join('; ')}`);
    }
  }

  /**
   * ListObjectsV2 of `<prefix><the given prefix>`, every page (following `ContinuationToken`),
   * with the store's prefix taken off and sorted by UTF-16 code units as the local stores do
   * (S3 orders by UTF-8 bytes, which differs for characters past U+FFFF).
   */
  async list(prefix: string): Promise<string[]> {
    const keys: string[] = [];
    let token: string | undefined;
    do {
      let page;
      try {
        page = await this.#client.send(
          new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.prefix + prefix, ...(token === undefined ? {} : { ContinuationToken: token }) }),
        );
      } catch (error) {
        throw this.#failure(error, `list s3://${this.bucket}/${this.prefix}${prefix}`);
      }
      this.#bucketSeen = true;
      for (const object of page.Contents ?? []) {
        if (object.Key === undefined || !object.Key.startsWith(this.prefix)) continue;
        const key = object.Key.slice(this.prefix.length);
        if (isValidBlobKey(key)) keys.push(key);
      }
      if (page.IsTruncated && !page.NextContinuationToken) {
        throw new SluiceError(`S3: listing s3://${this.bucket}/${this.prefix}${prefix} was cut short without a continuation token`);
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
    return keys.sort();
  }
}
