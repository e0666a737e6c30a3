import { inMemorySources, type SourceFactories, sourcesOn } from '../engine/sources.ts';
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
 * The sources of the local runtime: queues, generators and receivers from the engine, sockets and
 * watched directories from this folder, then whatever `extra` builds. What the source catalogue
 * says runs on AWS only (`kinesisStream`, `s3://` directories) is refused in its words.
 *
 * @example
 * ```ts
 * const sources = localSources();
 * const source = sources(graph.source('queue-1'), { blobs, job: 'wordcount' });
 * ```
 */
export function localSources(extra?: (spec: SourceSpec, io: SourceIO) => RecordSource | undefined, options: LocalSourcesOptions = {}): SourceFactory {
  const log = options.log ?? stderrWarning;
  const factories: SourceFactories<'local'> = {
    ...inMemorySources,
    socket: (spec, io) => new SocketTextSource(spec, io, { log }),
    textFile: (spec, io) => new TextFileSource(spec, io),
  };
  return sourcesOn('local', factories, extra);
}
