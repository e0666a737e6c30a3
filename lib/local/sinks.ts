import { dirname, basename, resolve } from 'node:path';
import { SluiceError } from '../core/errors.ts';
import type { BlobStore, SinkResolver } from '../ports/index.ts';
import { FsBlobStore } from './fsBlobStore.ts';

/**
 * Output locations on the local file system: `out/wordcount-1000` is the directory
 * `<cwd>/out/wordcount-1000`. `s3://` locations need the AWS runtime.
 *
 * @example
 * ```ts
 * const sinks = localSinks(process.cwd());
 * const { store, key } = sinks('out/wordcount-1000');
 * ```
 */
export function localSinks(baseDir: string, s3?: SinkResolver): SinkResolver {
  const stores = new Map<string, BlobStore>();
  return (location: string) => {
    if (location.startsWith('s3://')) {
      if (s3) return s3(location);
      throw new SluiceError(`output ${location}: s3:// locations need the AWS runtime (deploy the job, or run it with npm run dev:aws)`);
    }
    const abs = resolve(baseDir, location);
    const dir = dirname(abs);
    let store = stores.get(dir);
    if (!store) {
      store = new FsBlobStore(dir);
      stores.set(dir, store);
    }
    return { store, key: basename(abs) };
  };
}
