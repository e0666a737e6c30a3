import { GetObjectCommand, type GetObjectCommandOutput, ListObjectsV2Command, type ListObjectsV2CommandOutput, type S3Client } from '@aws-sdk/client-s3';
import { SluiceError } from '../core/errors.ts';
import { parseS3Directory, refusalOf } from '../core/sources.ts';
import { errorCode, httpStatus } from './sdkErrors.ts';
import { boundedSeenState, ignoredInputName, parseSeenNames, textLines } from '../engine/newFiles.ts';
import type { InputSplit, JsonValue, RecordSource, SourceIO, SourceSpec } from '../ports/index.ts';

/** What {@link S3TextFileSource} is built from (the defaults are what jobs get; tests shrink them). */
export interface S3TextFileSourceOptions {
  /** The S3 client (see `s3Client` in `./clients.ts`). */
  readonly client: S3Client;
  /** How long the name of an object that is gone is still remembered (ms). @default 600000 (10 minutes) */
  readonly forgetAfterMs?: number;
  /** Most object names remembered; beyond that the oldest are replaced by a time watermark. @default 10000 */
  readonly maxRemembered?: number;
  /** Keys per ListObjectsV2 page (S3 sends at most 1000). @default 1000 */
  readonly pageSize?: number;
}

/** One object listed directly under the prefix. */
interface Listed {
  readonly name: string;
  readonly key: string;
  readonly size: number;
  readonly etag: string;
  readonly modified: number;
}

const decoder = new TextDecoder('utf-8');

/** An ETag without its quotes or weak marker, for comparing (S3 quotes them, some servers do not). */
function bareEtag(etag: string): string {
  return etag.replace(/^W\//, '').replace(/^"(.*)"$/, '$1');
}

/**
 * `ctx.textFileStream('s3://bucket/prefix/')` on the AWS runtime (Spark's `textFileStream` over
 * S3): at each batch cut, the objects that appeared directly under the prefix since the previous
 * cut form the batch, one input partition per object. The same rules as the local
 * `TextFileSource`: the first cut skips the objects already there unless `includeExisting`; names
 * starting with `.` or `_` and names ending in `._COPYING_` are ignored; "subdirectories" (keys
 * with a further `/`) are ignored; a name taken once is not taken again, even if the object is
 * overwritten later (write each batch of input under a new name).
 *
 * Each split is sealed: `{ bucket, key, size, etag }`. A read is a GetObject with `IfMatch: etag`
 * and `Range: bytes=0-(size-1)`, and the ETag of the answer is checked too (for servers that
 * ignore `If-Match`), so a recomputation reads the very bytes the batch was cut with, or fails
 * with a {@link SluiceError} naming the object if it was replaced or removed meanwhile.
 *
 * The state remembers the names seen with their LastModified, bounded like the local source's:
 * names of objects that are gone are forgotten after `forgetAfterMs`, and past `maxRemembered`
 * names the oldest are replaced by a LastModified watermark (an object with a LastModified at or
 * before it is skipped; S3 times have one-second precision, so in a prefix that large an object
 * uploaded in the same second as the newest forgotten one is skipped too).
 *
 * @example
 * ```ts
 * const source = new S3TextFileSource({ nodeId: 'textFile-1', kind: 'textFile', params: { directory: 's3://my-bucket/in/', includeExisting: false } }, io, { client: s3Client() });
 * let { splits, state } = await source.cut(1000, undefined); // first cut: existing objects are skipped
 * // ... aws s3 cp a.txt s3://my-bucket/in/a.txt
 * ({ splits, state } = await source.cut(2000, state));     // [{ bucket: 'my-bucket', key: 'in/a.txt', size: 42, etag: '"…"' }]
 * const { records } = await source.read(splits[0]);        // the lines of a.txt
 * ```
 */
export class S3TextFileSource implements RecordSource {
  /** The bucket watched. */
  readonly bucket: string;
  /** The key prefix watched: `''` (the whole bucket) or a prefix ending with `/`. */
  readonly prefix: string;
  private readonly client: S3Client;
  private readonly includeExisting: boolean;
  private readonly forgetAfterMs: number;
  private readonly maxRemembered: number;
  private readonly pageSize: number | undefined;

  constructor(
    private readonly spec: SourceSpec,
    _io: SourceIO,
    options: S3TextFileSourceOptions,
  ) {
    const dir = spec.params.directory;
    if (typeof dir !== 'string' || dir === '') {
      throw new SluiceError(`${spec.nodeId}: textFileStream needs a directory, got ${JSON.stringify(dir)}`, { nodeId: spec.nodeId });
    }
    // The catalogue's reasons: not an s3:// location, no bucket, a name no bucket can have.
    const refused = refusalOf({ ...spec, kind: 'textFile' }, 'aws');
    if (refused) throw new SluiceError(refused, { nodeId: spec.nodeId });
    ({ bucket: this.bucket, prefix: this.prefix } = parseS3Directory(dir) as { bucket: string; prefix: string });
    this.client = options.client;
    this.includeExisting = spec.params.includeExisting === true;
    this.forgetAfterMs = options.forgetAfterMs ?? 10 * 60_000;
    this.maxRemembered = options.maxRemembered ?? 10_000;
    this.pageSize = options.pageSize;
  }

  /** `s3://bucket/prefix/`, for messages. */
  private get location(): string {
    return `s3://${this.bucket}/${this.prefix}`;
  }

  private noBucket(cause: unknown, batchTime?: number): SluiceError {
    return new SluiceError(`${this.spec.nodeId}: the textFileStream bucket ${JSON.stringify(this.bucket)} does not exist (watching ${this.location})`, {
      nodeId: this.spec.nodeId,
      cause,
      ...(batchTime === undefined ? {} : { batchTime }),
    });
  }

  /** Every object directly under the prefix (ListObjectsV2 with `Delimiter: '/'`, every page), sorted by name. */
  private async list(time: number): Promise<Listed[]> {
    const out: Listed[] = [];
    let token: string | undefined;
    do {
      let page: ListObjectsV2CommandOutput;
      try {
        page = await this.client.send(
          new ListObjectsV2Command({
            Bucket: this.bucket,
            Prefix: this.prefix,
            Delimiter: '/',
            ...(this.pageSize === undefined ? {} : { MaxKeys: this.pageSize }),
            ...(token === undefined ? {} : { ContinuationToken: token }),
          }),
        );
      } catch (error) {
        if (errorCode(error) === 'NoSuchBucket') throw this.noBucket(error, time);
        const message = error instanceof Error ? error.message : String(error);
        throw new SluiceError(`${this.spec.nodeId}: cannot list the textFileStream prefix ${this.location}: ${message}`, { nodeId: this.spec.nodeId, batchTime: time, cause: error });
      }
      for (const object of page.Contents ?? []) {
        const key = object.Key;
        if (key === undefined || !key.startsWith(this.prefix)) continue;
        const name = key.slice(this.prefix.length);
        // '' is the "folder" marker object of the prefix itself; a '/' means a deeper key (a server
        // that ignored the delimiter).
        if (name === '' || name.includes('/') || ignoredInputName(name)) continue;
        if (object.Size === undefined || object.ETag === undefined || object.LastModified === undefined) continue;
        out.push({ name, key, size: object.Size, etag: object.ETag, modified: object.LastModified.getTime() });
      }
      if (page.IsTruncated && !page.NextContinuationToken) {
        throw new SluiceError(`${this.spec.nodeId}: listing ${this.location} was cut short without a continuation token`, { nodeId: this.spec.nodeId, batchTime: time });
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
    // Sorted by UTF-16 code units, as the local source sorts its names (S3 orders by UTF-8 bytes).
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async cut(time: number, state: JsonValue | undefined): Promise<{ splits: InputSplit[]; state: JsonValue }> {
    const first = state === undefined;
    const prev = parseSeenNames(state, this.spec.nodeId);
    const seen = new Map(prev.seen);
    const objects = await this.list(time);

    const present = new Set<string>();
    const splits: InputSplit[] = [];
    for (const o of objects) {
      present.add(o.name);
      if (seen.has(o.name)) continue;
      // Forgotten by the size cap below: old enough to have been seen already.
      if (o.modified <= prev.ignoreBefore) continue;
      seen.set(o.name, o.modified);
      // The very first cut skips what was there before the job started (unless asked not to).
      if (first && !this.includeExisting) continue;
      splits.push({ bucket: this.bucket, key: o.key, size: o.size, etag: o.etag });
    }

    return { splits, state: boundedSeenState({ ignoreBefore: prev.ignoreBefore, seen }, present, time, this.forgetAfterMs, this.maxRemembered) };
  }

  async read(split: InputSplit): Promise<{ records: unknown[] }> {
    const { bucket, key, size, etag } = split;
    if (typeof bucket !== 'string' || typeof key !== 'string' || typeof etag !== 'string' || typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
      throw new SluiceError(`${this.spec.nodeId}: malformed input split ${JSON.stringify(split)}`, { nodeId: this.spec.nodeId });
    }
    const url = `s3://${bucket}/${key}`;
    const nodeId = this.spec.nodeId;
    const replaced = (now?: string, cause?: unknown) =>
      new SluiceError(
        `${nodeId}: the input object ${url} was replaced since its batch was cut (ETag ${etag}${now === undefined ? '' : `, now ${now}`}); the batch cannot be read again`,
        cause === undefined ? { nodeId } : { nodeId, cause },
      );

    let response: GetObjectCommandOutput;
    try {
      // An empty range cannot be written as an HTTP range: an empty object is read whole.
      response = await this.client.send(new GetObjectCommand({ Bucket: bucket, Key: key, IfMatch: etag, ...(size > 0 ? { Range: `bytes=0-${size - 1}` } : {}) }));
    } catch (error) {
      const code = errorCode(error);
      if (code === 'NoSuchBucket') throw new SluiceError(`${nodeId}: cannot read the input object ${url}: the bucket ${JSON.stringify(bucket)} does not exist`, { nodeId, cause: error });
      if (code === 'NoSuchKey' || code === 'NotFound' || httpStatus(error) === 404) {
        throw new SluiceError(`${nodeId}: the input object ${url} was removed before its batch was processed; the batch cannot be read again`, { nodeId, cause: error });
      }
      if (code === 'PreconditionFailed' || httpStatus(error) === 412) throw replaced(undefined, error);
      if (code === 'InvalidRange' || httpStatus(error) === 416) {
        throw new SluiceError(`${nodeId}: the input object ${url} is shorter than the ${size} bytes it had when its batch was cut; the batch cannot be read again`, { nodeId, cause: error });
      }
      const message = error instanceof Error ? error.message : String(error);
      throw new SluiceError(`${nodeId}: cannot read the input object ${url}: ${message}`, { nodeId, cause: error });
    }
    // S3 enforces If-Match; an emulator may not, so the ETag of the answer is checked as well.
    if (response.ETag !== undefined && bareEtag(response.ETag) !== bareEtag(etag)) {
      (response.Body as { destroy?: () => void } | undefined)?.destroy?.();
      throw replaced(response.ETag);
    }
    let bytes: Uint8Array;
    try {
      bytes = response.Body === undefined ? new Uint8Array(0) : await response.Body.transformToByteArray();
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      throw new SluiceError(`${nodeId}: cannot read the input object ${url}: ${message}`, { nodeId, cause: error });
    }
    if (bytes.length < size) {
      throw new SluiceError(`${nodeId}: the input object ${url} has ${bytes.length} bytes, fewer than the ${size} it had when its batch was cut; the batch cannot be read again`, { nodeId });
    }
    // A server that ignored the range (or sent more than asked) is cut down to the sealed size.
    return { records: textLines(decoder.decode(bytes.length > size ? bytes.subarray(0, size) : bytes)) };
  }
}
