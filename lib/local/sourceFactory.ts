import { SluiceError } from '../core/errors.ts';
import { coreSource } from '../engine/sources.ts';
import type { RecordSource, SourceFactory, SourceIO, SourceSpec } from '../ports/index.ts';
import { SocketTextSource } from './socketSource.ts';
import { TextFileSource } from './textFileSource.ts';

/** Options of {@link localSources}. */
export interface LocalSourcesOptions {
  /**
   * Where sources report trouble they recover from (a socket server that refuses or drops the
   * connection). @default a `warning:` line on stderr, as the local runtime's log writes them
   */
  readonly log?: (line: string) => void;
}

const stderrWarning = (line: string): void => {
  process.stderr.write(`warning: ${line}\n`);
};

/**
 * The sources of the local runtime: queues, generators and receivers from the engine, sockets
 * and watched directories from this folder, then whatever `extra` builds. `kinesisStream` and
 * `s3://` directories need the AWS runtime.
 *
 * @example
 * ```ts
 * const sources = localSources();
 * const source = sources(graph.source('queue-1'), { blobs, job: 'wordcount' });
 * ```
 */
export function localSources(extra?: (spec: SourceSpec, io: SourceIO) => RecordSource | undefined, options: LocalSourcesOptions = {}): SourceFactory {
  const log = options.log ?? stderrWarning;
  return (spec, io) => {
    const core = coreSource(spec, io);
    if (core) return core;
    if (spec.kind === 'socket') return new SocketTextSource(spec, io, { log });
    if (spec.kind === 'textFile') return new TextFileSource(spec, io);
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
