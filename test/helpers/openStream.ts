import type { InputSplit, JsonValue, RecordSource, SourceFactory, SourceSpec } from '../../lib/ports/index.ts';
import { localSources } from '../../lib/local/sourceFactory.ts';

/**
 * A stream whose splits are open, like a Kinesis shard's: a read consumes what has been appended
 * so far (after the last sealed position), so two reads of one open split see different ranges
 * when records are appended in between. Shards are given as a count; records are strings.
 */
export class OpenStream {
  readonly shards: string[][];
  /** Reads of open splits so far, by shard. */
  readonly openReads: number[];

  constructor(shards = 1) {
    this.shards = Array.from({ length: shards }, () => []);
    this.openReads = Array.from({ length: shards }, () => 0);
  }

  append(shard: number, ...records: string[]): void {
    this.shards[shard].push(...records);
  }

  /** A source factory that reads `kinesisStream` nodes from this stream and everything else as the local runtime does. */
  sources(): SourceFactory {
    const local = localSources();
    return (spec, io) => (spec.kind === 'kinesis' ? new OpenStreamSource(spec, this) : local(spec, io));
  }
}

class OpenStreamSource implements RecordSource {
  constructor(
    readonly spec: SourceSpec,
    private readonly stream: OpenStream,
  ) {}

  async cut(_time: number, state: JsonValue | undefined, limit?: number): Promise<{ splits: InputSplit[]; state: JsonValue }> {
    const pos = (state ?? this.stream.shards.map(() => 0)) as number[];
    // A limit is shared by the shards as KinesisSource shares it: each split's `max`.
    const max = limit === undefined ? undefined : Math.max(1, Math.ceil(limit / pos.length));
    return { splits: pos.map((from, shard) => ({ open: true, shard, from, ...(max === undefined ? {} : { max }) })), state: pos };
  }

  async read(split: InputSplit): Promise<{ records: unknown[]; sealedSplit?: InputSplit }> {
    const shard = split.shard as number;
    const from = split.from as number;
    if (split.open !== true) return { records: this.stream.shards[shard].slice(from, split.to as number) };
    this.stream.openReads[shard]++;
    const all = this.stream.shards[shard].length;
    const to = typeof split.max === 'number' ? Math.min(all, from + split.max) : all;
    return { records: this.stream.shards[shard].slice(from, to), sealedSplit: { shard, from, to, count: to - from } };
  }

  advance(state: JsonValue, sealed: readonly InputSplit[]): JsonValue {
    const pos = [...(state as number[])];
    for (const s of sealed) if (s.open !== true) pos[s.shard as number] = s.to as number;
    return pos;
  }
}
