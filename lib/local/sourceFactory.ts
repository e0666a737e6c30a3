import { SluiceError } from '../api/errors.ts';
import { coreSource } from '../engine/sources.ts';
import type { SourceFactory } from '../ports/index.ts';

/**
 * The sources of the local runtime: queues, generators and receivers from the engine, sockets
 * and watched directories from this folder. `kinesisStream` and `s3://` directories need the AWS
 * runtime.
 *
 * @example
 * ```ts
 * const sources = localSources();
 * const source = sources(graph.source('queue-1'), { blobs, job: 'wordcount' });
 * ```
 */
export function localSources(extra?: SourceFactory): SourceFactory {
  return (spec, io) => {
    const core = coreSource(spec, io);
    if (core) return core;
    const fromExtra = extra?.(spec, io);
    if (fromExtra) return fromExtra;
    if (spec.kind === 'kinesis') {
      throw new SluiceError(
        `${spec.nodeId}: kinesisStream('${String(spec.params.stream)}') needs the AWS runtime: deploy the job, or run it against local emulators with npm run dev:aws`,
        { nodeId: spec.nodeId },
      );
    }
    throw new SluiceError(`${spec.nodeId}: the local runtime has no source of kind ${spec.kind}`, { nodeId: spec.nodeId });
  };
}
