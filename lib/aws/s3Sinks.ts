import type { S3Client } from '@aws-sdk/client-s3';
import { SluiceError } from '../core/errors.ts';
import { isValidBlobKey } from '../ports/blobKeys.ts';
import type { SinkResolver } from '../ports/index.ts';
import { S3BlobStore } from './s3BlobStore.ts';

const SCHEME = 's3://';
const USAGE = 'expected s3://<bucket>/<key prefix>, e.g. s3://my-bucket/out/wordcount';

/**
 * Why `name` is not a valid S3 bucket name, or `undefined` if it is: 3 to 63 characters, lowercase
 * letters, digits, dots and hyphens, starting and ending with a letter or digit, no two dots in a
 * row, and not an IP address. (AWS reserves a few more prefixes and suffixes for new buckets; they
 * are not refused here, because access point aliases such as `...-s3alias` are valid where a
 * bucket name is expected.)
 */
function bucketNameProblem(name: string): string | undefined {
  if (name.length < 3 || name.length > 63) return `it has ${name.length} characters (3 to 63 are allowed)`;
  if (!/^[a-z0-9.-]+$/.test(name)) return 'only lowercase letters, digits, dots and hyphens are allowed';
  if (!/^[a-z0-9]/.test(name) || !/[a-z0-9]$/.test(name)) return 'it must start and end with a letter or digit';
  if (name.includes('..')) return 'it contains two dots in a row';
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(name)) return 'it is formatted as an IP address';
  return undefined;
}

/**
 * Output locations on S3: `s3://bucket/some/prefix-1000` is the key `some/prefix-1000` of an
 * {@link S3BlobStore} on the whole of `bucket` (one store per bucket, reused). A location without
 * a bucket, with an invalid bucket name, or without a usable key prefix is refused with a
 * {@link SluiceError} that says what is wrong. Plug it into `localSinks` to let local runs write
 * `s3://` outputs.
 *
 * @example
 * ```ts
 * const sinks = s3Sinks(s3Client());
 * const { store, key } = sinks('s3://my-bucket/out/wordcount-1000'); // key: 'out/wordcount-1000'
 * await store.put(`${key}/part-00000`, text);
 * const both = localSinks(process.cwd(), sinks); // local paths and s3:// locations
 * ```
 */
export function s3Sinks(client: S3Client): SinkResolver {
  const stores = new Map<string, S3BlobStore>();
  return (location: string) => {
    const bad = (why: string) => new SluiceError(`output location ${JSON.stringify(location)}: ${why} (${USAGE})`);
    if (typeof location !== 'string' || !location.startsWith(SCHEME)) throw bad('not an s3:// location');
    const rest = location.slice(SCHEME.length);
    const slash = rest.indexOf('/');
    const bucket = slash < 0 ? rest : rest.slice(0, slash);
    const key = slash < 0 ? '' : rest.slice(slash + 1);
    if (bucket === '') throw bad('it names no bucket');
    const problem = bucketNameProblem(bucket);
    if (problem !== undefined) throw bad(`${JSON.stringify(bucket)} is not a valid S3 bucket name: ${problem}`);
    if (key === '') throw bad(`it names no key prefix within bucket ${JSON.stringify(bucket)}`);
    if (!isValidBlobKey(key)) throw bad(`${JSON.stringify(key)} is not a valid key prefix (a relative path without empty, "." or ".." segments)`);
    let store = stores.get(bucket);
    if (!store) {
      store = new S3BlobStore({ client, bucket, prefix: '' });
      stores.set(bucket, store);
    }
    return { store, key };
  };
}
