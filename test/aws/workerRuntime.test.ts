import { S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { buildGraph, defineJob } from '../../lib/api/job.ts';
import { KinesisSource } from '../../lib/aws/kinesisSource.ts';
import { type AwsRuntimeConfig, awsWorkerRuntime, type WorkerClients, workerClients } from '../../lib/aws/runtime.ts';
import { MemoryBlobStore } from '../../lib/local/memoryBlobStore.ts';

// The worker's clients are made when something first needs them: a cold start pays for creating
// a client only if the job uses its service, and one S3 client serves the blob store, the sinks and
// the S3 file source. No request is sent here: making a client or a source calls nothing.

const config: AwsRuntimeConfig = { stateBucket: 'state', table: 'meta', aws: { endpoint: 'http://127.0.0.1:9', region: 'us-east-1' } };

/** `workerClients` that records which client each caller asked for. */
function recorded(): { clients: WorkerClients; asked: string[] } {
  const real = workerClients(config.aws);
  const asked: string[] = [];
  return {
    asked,
    clients: {
      s3: () => (asked.push('s3'), real.s3()),
      kinesis: () => (asked.push('kinesis'), real.kinesis()),
    },
  };
}

describe('the worker runtime’s AWS clients', () => {
  it('workerClients makes each client once, on first use', () => {
    const clients = workerClients(config.aws);
    const s3 = clients.s3();
    expect(s3).toBeInstanceOf(S3Client);
    expect(clients.s3()).toBe(s3);
    expect(clients.kinesis()).toBe(clients.kinesis());
    // Another worker runtime has clients of its own.
    expect(workerClients(config.aws).s3()).not.toBe(s3);
  });

  it('a job reading a queue into S3 asks for the S3 client only; its blob store and sinks share it', () => {
    const { clients, asked } = recorded();
    const graph = buildGraph(defineJob({ name: 'queued', batchInterval: '1s' }, (ctx) => ctx.queueStream([['a']]).saveAsTextFiles('s3://out/queued')));
    const rt = awsWorkerRuntime(graph, config, clients);
    rt.sources!(graph.sources[0], { blobs: new MemoryBlobStore(), job: 'queued' });
    rt.sinks!('s3://out/queued-1000');
    expect(asked).not.toContain('kinesis');
    expect(new Set(asked)).toEqual(new Set(['s3']));
  });

  it('a Kinesis source asks for the Kinesis client when it is made, not before', () => {
    const { clients, asked } = recorded();
    const graph = buildGraph(defineJob({ name: 'streamed', batchInterval: '1s' }, (ctx) => ctx.kinesisStream('clicks').print()));
    const rt = awsWorkerRuntime(graph, config, clients);
    expect(asked).not.toContain('kinesis');
    const source = rt.sources!(graph.sources[0], { blobs: new MemoryBlobStore(), job: 'streamed' });
    expect(source).toBeInstanceOf(KinesisSource);
    expect(asked.filter((a) => a === 'kinesis')).toHaveLength(1);
  });
});
