import { SluiceError } from '../core/errors.ts';

// Part of the BlobStore contract: the keys and byte ranges every store accepts, applied alike by
// the memory, file-system and S3 stores so that a job moved from one to another never breaks.

const utf8 = new TextEncoder();

/**
 * Throws a {@link SluiceError} naming `key` unless it is a key every blob store accepts.
 *
 * The rules are those of the filesystem store (a key is a relative path that must stay inside
 * its root), applied to the memory store too so that a job that runs against one store never
 * breaks when moved to the other. Empty and `.` segments are refused because the filesystem
 * would silently merge `a//b` and `a/./b` into `a/b`, and a key would not list as itself;
 * `.tmp-` names are reserved for writes in flight, which listings hide.
 */
export function checkBlobKey(key: string): void {
  const problem = blobKeyProblem(key);
  if (problem !== undefined) throw new SluiceError(`invalid blob key ${JSON.stringify(key)}: ${problem}`);
}

function blobKeyProblem(key: string): string | undefined {
  if (typeof key !== 'string' || key === '') return 'it is empty';
  if (key.startsWith('/')) return 'it is absolute (starts with "/")';
  if (key.includes('\\')) return 'it contains a backslash';
  if (key.includes('\0')) return 'it contains a NUL character';
  const segments = key.split('/');
  for (const segment of segments) {
    if (segment === '..') return 'it contains a ".." segment';
    if (segment === '.') return 'it contains a "." segment';
    if (segment === '') return 'it contains an empty segment';
  }
  if (segments[segments.length - 1].startsWith('.tmp-')) return 'names starting with ".tmp-" are reserved';
  return undefined;
}

/** Whether `key` passes {@link checkBlobKey}, without throwing. */
export function isValidBlobKey(key: string): boolean {
  return blobKeyProblem(key) === undefined;
}

/**
 * Throws unless `[start, end)` is a usable byte range. Negative offsets would mean "from the end"
 * to `Uint8Array.slice` but not to a file read, so both stores refuse them alike.
 * `end` may be `Infinity` to read to the end of the object.
 */
export function checkByteRange(key: string, start: number, end: number): void {
  const endOk = end === Number.POSITIVE_INFINITY || Number.isSafeInteger(end);
  if (!Number.isSafeInteger(start) || start < 0 || !endOk || end < start) {
    throw new SluiceError(`invalid byte range [${start}, ${end}) for blob ${JSON.stringify(key)}`);
  }
}

/** The bytes of a body, as a private copy the caller cannot mutate afterwards. */
export function bodyBytes(body: Uint8Array | string): Uint8Array {
  return typeof body === 'string' ? utf8.encode(body) : new Uint8Array(body);
}
