import { describe, expect, expectTypeOf, it } from 'vitest';
import { buildGraph, defineJob } from '../../lib/api/job.ts';
import { JobDefinitionError, SluiceError } from '../../lib/core/errors.ts';
import {
  awsAccessOf,
  type KindOn,
  parseS3Directory,
  refusalOf,
  resourceName,
  type Runtime,
  sourceCatalogue,
  type SourceKind,
  type SourceParams,
} from '../../lib/core/sources.ts';
import { inMemorySources, type SourceFactories, sourcesOn } from '../../lib/engine/sources.ts';
import { MemoryBlobStore } from '../../lib/local/memoryBlobStore.ts';
import { localSources } from '../../lib/local/sourceFactory.ts';
import type { RecordSource, SourceSpec } from '../../lib/ports/index.ts';

// The source catalogue (lib/core/sources.ts): each kind's checks of its operator's arguments, the
// runtimes that run it and what it needs on AWS; and the runtimes' registries that read it. The
// CDK grants that read it: infra-test/cdk.test.ts ("grants come from the source catalogue").

const receiver = { start: () => {}, stop: () => {} };

/** Arguments each kind's operator accepts, and the node they make: the kind's own example. */
const valid: { readonly [K in SourceKind]: { readonly args: readonly unknown[]; readonly params: SourceParams } } = {
  queue: { args: [[['a']], { numPartitions: 2 }], params: { numPartitions: 2, oneAtATime: true, hasDefault: false } },
  generator: { args: [{ ratePerSec: 10, make: String }], params: { ratePerSec: 10, numPartitions: 1 } },
  receiver: { args: [receiver], params: {} },
  socket: { args: ['localhost', 9999], params: { host: 'localhost', port: 9999 } },
  textFile: { args: ['incoming/'], params: { directory: 'incoming/', includeExisting: false } },
  kinesis: { args: ['clicks', { initialPosition: { timestamp: new Date(5000) } }], params: { stream: 'clicks', initialPosition: { timestamp: 5000 }, maxRecordsPerBatch: 10_000 } },
};

const kinds = Object.keys(sourceCatalogue) as SourceKind[];
const define = (kind: SourceKind, ...args: unknown[]) => (sourceCatalogue[kind].define as (...a: unknown[]) => { params: SourceParams; local?: unknown })(...args);
const node = (kind: string, params: SourceParams, nodeId = `${kind}-1`) => ({ nodeId, kind, params });

describe('source catalogue: one entry per kind of source', () => {
  it.each(kinds)('%s: its operator makes a node of that kind, with the parameters the entry checked', (kind) => {
    // Prepare
    const entry = sourceCatalogue[kind];
    const job = defineJob({ name: 'catalogue', batchInterval: 1000 }, (ctx) => {
      ((ctx as unknown as Record<string, (...a: unknown[]) => { print(): void }>)[entry.operator](...valid[kind].args)).print();
    });

    // Act
    const [spec] = buildGraph(job).sources;

    // Assess: the same parameters, in the same order (they are part of the plan's fingerprint).
    expect(spec.kind).toBe(kind);
    expect(JSON.stringify(spec.params)).toBe(JSON.stringify(valid[kind].params));
    expect(define(kind, ...valid[kind].args).params).toEqual(valid[kind].params);
  });

  it.each([
    ['queue', ['not arrays'], "queueStream: expected an array of arrays (one per batch), got the string \"not arrays\""],
    ['queue', [[['a']], { numPartitions: 0 }], 'queueStream: numPartitions must be a whole number >= 1, got the number 0'],
    ['queue', [[['a']], { default: 'x' }], 'queueStream: default must be an array, got the string "x"'],
    ['generator', [{ ratePerSec: -1, make: String }], 'generatorStream: ratePerSec must be a number >= 0, got the number -1'],
    ['generator', [undefined], 'generatorStream: ratePerSec must be a number >= 0, got undefined'],
    ['generator', [{ ratePerSec: 1, make: 'x' }], 'generatorStream: make must be a function, got the string "x"'],
    ['generator', [{ ratePerSec: 1, make: String, numPartitions: 1.5 }], 'generatorStream: numPartitions must be a whole number >= 1, got the number 1.5'],
    ['receiver', [{ start: () => {} }], 'receiverStream: a receiver is an object with start(store) and stop() methods'],
    ['socket', ['', 9999], 'socketTextStream: host must be a non-empty string, got the string ""'],
    ['socket', ['localhost', 70000], 'socketTextStream: port must be a whole number from 1 to 65535, got the number 70000'],
    ['textFile', [''], 'textFileStream: directory must be a non-empty path or s3:// prefix, got the string ""'],
    ['kinesis', ['no spaces'], "kinesisStream: a stream name is 1-128 letters, digits, '_', '.' or '-', got the string \"no spaces\""],
    ['kinesis', ['s', { initialPosition: 'EARLIEST' }], "kinesisStream: initialPosition must be 'TRIM_HORIZON', 'LATEST' or { timestamp }, got the string \"EARLIEST\""],
    ['kinesis', ['s', { maxRecordsPerBatch: 0 }], 'kinesisStream: maxRecordsPerBatch must be a whole number >= 1, got the number 0'],
  ] as const)('%s refuses %j when the job is built, saying what to change', (kind, args, message) => {
    // Act
    const build = () => defineJob({ name: 'catalogue', batchInterval: 1000 }, (ctx) => {
      (ctx as unknown as Record<string, (...a: unknown[]) => unknown>)[sourceCatalogue[kind].operator](...args);
    });

    // Assess: the entry itself and the context operator say the same.
    expect(() => define(kind, ...args)).toThrow(JobDefinitionError);
    expect(() => define(kind, ...args)).toThrow(message);
    expect(() => buildGraph(build())).toThrow(message);
  });
});

describe('source catalogue: which runtime runs what', () => {
  it.each([
    ['queue', {}, undefined, undefined],
    ['generator', {}, undefined, undefined],
    ['receiver', {}, undefined, undefined],
    ['socket', { host: 'h', port: 1 }, undefined, 'socket-1: socketTextStream runs locally only'],
    ['textFile', { directory: 'incoming/' }, undefined, 'textFile-1: textFileStream("incoming/"): the AWS runtime watches s3:// prefixes only (a Lambda has no durable directory); use textFileStream(\'s3://bucket/prefix/\')'],
    ['textFile', { directory: 's3://b/in/' }, "textFile-1: textFileStream('s3://b/in/'): s3:// directories need the AWS runtime; the local runtime reads local directories only", undefined],
    ['textFile', { directory: 's3:///in/' }, "textFile-1: textFileStream('s3:///in/'): s3:// directories need the AWS runtime; the local runtime reads local directories only", 'textFile-1: textFileStream("s3:///in/"): it names no bucket (expected s3://<bucket>/<prefix>/, e.g. s3://my-bucket/incoming/)'],
    ['kinesis', { stream: 'clicks' }, "kinesis-1: kinesisStream('clicks') needs the AWS runtime: deploy the job, or run it against local emulators with npm run dev:aws", undefined],
  ] as const)('%s %j: locally %s; on AWS %s', (kind, params, local, aws) => {
    expect(refusalOf(node(kind, params), 'local')).toBe(local);
    expect(refusalOf(node(kind, params), 'aws')).toBe(aws);
  });

  it.each(kinds)('%s is refused by every runtime it does not list, and runs its own example on one it lists', (kind) => {
    const entry = sourceCatalogue[kind];
    const example = node(kind, valid[kind].params);
    for (const runtime of ['local', 'aws'] as const satisfies readonly Runtime[]) {
      if (!(entry.runtimes as readonly Runtime[]).includes(runtime)) expect(refusalOf(example, runtime)).toMatch(new RegExp(`^${kind}-1: `));
    }
    expect(entry.runtimes.some((r) => refusalOf(example, r) === undefined)).toBe(true);
  });

  it('a kind the catalogue does not know is neither refused nor granted by it (a custom factory may build it)', () => {
    expect(refusalOf(node('custom', {}), 'aws')).toBeUndefined();
    expect(awsAccessOf(node('custom', {}))).toBeUndefined();
  });

  it('the kinds each runtime must build are the ones the catalogue lists for it', () => {
    expectTypeOf<KindOn<'local'>>().toEqualTypeOf<'queue' | 'generator' | 'receiver' | 'socket' | 'textFile'>();
    expectTypeOf<KindOn<'aws'>>().toEqualTypeOf<'queue' | 'generator' | 'receiver' | 'textFile' | 'kinesis'>();
  });
});

describe('source catalogue: what a source needs on AWS', () => {
  it('a Kinesis stream, by name: the coordinator also lists its shards', () => {
    expect(awsAccessOf(node('kinesis', { stream: 'clicks' }))).toEqual({
      resource: { type: 'kinesisStream', stream: 'clicks' },
      coordinator: ['kinesis:ListShards', 'kinesis:GetShardIterator', 'kinesis:GetRecords'],
      worker: ['kinesis:GetShardIterator', 'kinesis:GetRecords'],
    });
  });

  it('an s3:// directory: its bucket and key prefix (a directory without the last / is the same prefix); the coordinator also lists it', () => {
    const access = awsAccessOf(node('textFile', { directory: 's3://my-bucket/in', includeExisting: false }));

    expect(access).toEqual({ resource: { type: 's3Prefix', bucket: 'my-bucket', prefix: 'in/' }, coordinator: ['s3:ListBucket', 's3:GetObject'], worker: ['s3:GetObject'] });
    expect(resourceName(access!.resource)).toBe('s3://my-bucket/in/');
  });

  it.each([
    ['queue', {}],
    ['generator', {}],
    ['receiver', {}],
    ['socket', { host: 'h', port: 1 }],
    ['textFile', { directory: 'incoming/' }],
    ['textFile', { directory: 's3:///in/' }],
  ] as const)('%s %j needs nothing on AWS (it lives in memory, cannot run there, or names no bucket)', (kind, params) => {
    expect(awsAccessOf(node(kind, params))).toBeUndefined();
  });

  it.each([
    ['s3://b', { bucket: 'b', prefix: '' }],
    ['s3://b/', { bucket: 'b', prefix: '' }],
    ['s3://b/a/b/', { bucket: 'b', prefix: 'a/b/' }],
    ['incoming/', { error: 'not an s3:// location' }],
    ['s3:///x', { error: 'it names no bucket' }],
    ['s3://my bucket/x', { error: '"my bucket" is not a valid S3 bucket name' }],
  ])('parseS3Directory(%j) is %j', (location, parsed) => {
    expect(parseS3Directory(location)).toEqual(parsed);
  });
});

describe("the runtimes' source registries read the catalogue", () => {
  const io = { blobs: new MemoryBlobStore(), job: 'test' };
  const built = (name: string): RecordSource => ({ cut: async () => ({ splits: [], state: name }), read: async () => ({ records: [] }) });
  const registry = { ...inMemorySources, socket: () => built('socket'), textFile: () => built('textFile') };

  it('builds each kind the runtime runs with its factory', async () => {
    const sources = sourcesOn('local', registry);

    expect((await sources(node('socket', { host: 'h', port: 1 }), io).cut(0, undefined)).state).toBe('socket');
    expect((await sources(node('textFile', { directory: 'in/' }), io).cut(0, undefined)).state).toBe('textFile');
  });

  it("refuses what the catalogue says the runtime cannot run, in the catalogue's words, and a kind no one knows", () => {
    const sources = sourcesOn('local', registry);
    const aws = sourcesOn('aws', { ...inMemorySources, kinesis: () => built('kinesis'), textFile: () => built('s3') });

    expect(() => sources(node('kinesis', { stream: 's' }), io)).toThrow(SluiceError);
    expect(() => sources(node('kinesis', { stream: 's' }), io)).toThrow("kinesis-1: kinesisStream('s') needs the AWS runtime");
    expect(() => sources(node('textFile', { directory: 's3://b/in/' }), io)).toThrow("textFile-1: textFileStream('s3://b/in/'): s3:// directories need the AWS runtime");
    expect(() => aws(node('socket', { host: 'h', port: 1 }), io)).toThrow('socket-1: socketTextStream runs locally only');
    expect(() => aws(node('textFile', { directory: 'in/' }), io)).toThrow('textFile-1: textFileStream("in/"): the AWS runtime watches s3:// prefixes only');
    expect(() => sources(node('odd', {}), io)).toThrow('odd-1: the local runtime has no source of kind odd');
    expect(() => aws(node('odd', {}), io)).toThrow('odd-1: the AWS runtime has no source of kind odd');
  });

  it('asks the extra factory before it refuses: a test may stand in for a stream the runtime cannot read', () => {
    const stand = built('stand-in');
    const sources = localSources((spec: SourceSpec) => (spec.kind === 'kinesis' ? stand : undefined));

    expect(sources(node('kinesis', { stream: 's' }), io)).toBe(stand);
  });

  it('a registry that misses a kind its runtime runs, or builds one it does not, does not compile', () => {
    // @ts-expect-error socketTextStream runs locally: the local registry must build it
    const missing: SourceFactories<'local'> = { ...inMemorySources, textFile: () => built('t') };
    // @ts-expect-error kinesisStream does not run locally: the local registry has no place for it
    const extra: SourceFactories<'local'> = { ...registry, kinesis: () => built('k') };

    expect(Object.keys(missing)).not.toContain('socket');
    expect(Object.keys(extra)).toContain('kinesis');
  });
});
