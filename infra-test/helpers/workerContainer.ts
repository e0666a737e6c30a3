import type { JobDefinition } from '../../lib/api/job.ts';
import { kinesisClient, s3Client } from '../../lib/aws/clients.ts';
import { createWorkerHandler } from '../../lib/aws/handlers.ts';
import { KinesisSource } from '../../lib/aws/kinesisSource.ts';
import { type AwsRuntimeConfig, awsSources } from '../../lib/aws/runtime.ts';
import { S3BlobStore } from '../../lib/aws/s3BlobStore.ts';
import { s3Sinks } from '../../lib/aws/s3Sinks.ts';

/**
 * Sits in front of every request a client sends: `send` sends it (after the SDK's own retries);
 * what it returns is what the caller gets. `command` is the SDK command's name (`PutObjectCommand`),
 * `input` what it was given (`Bucket`, `Key`, …).
 */
export type Interceptor = (command: string, input: Record<string, unknown>, send: () => Promise<unknown>) => Promise<unknown>;

/** `client`, with `intercept` in front of each of its commands (an SDK middleware at the initialize step). */
export function intercepted<C extends { middlewareStack: { add: (...args: any[]) => void } }>(client: C, intercept: Interceptor, name: string): C {
  client.middlewareStack.add(
    (next: (args: { input: Record<string, unknown> }) => Promise<unknown>, context: { commandName?: string }) => (args: { input: Record<string, unknown> }) =>
      intercept(context.commandName ?? '', args.input, () => next(args)),
    { step: 'initialize', name },
  );
  return client;
}

/**
 * The worker handler of a Lambda container of its own: its own S3 client (state blobs and sinks)
 * and Kinesis client (the shards it reads), each behind an interceptor, so a test decides what
 * this container's requests do (wait, or never come back).
 */
export function containerWorker(
  definition: JobDefinition,
  config: AwsRuntimeConfig,
  intercept: { readonly s3?: Interceptor; readonly kinesis?: Interceptor },
): (event: unknown) => Promise<unknown> {
  const pass: Interceptor = (_command, _input, send) => send();
  return createWorkerHandler(
    async () => definition,
    (graph) => {
      const kinesis = intercepted(kinesisClient(config.aws), intercept.kinesis ?? pass, 'containerKinesis');
      const s3 = intercepted(s3Client(config.aws), intercept.s3 ?? pass, 'containerS3');
      const others = awsSources(config);
      return {
        blobs: new S3BlobStore({ client: s3, bucket: config.stateBucket, prefix: config.statePrefix ?? `${graph.name}/` }),
        sources: (spec, io) => (spec.kind === 'kinesis' ? new KinesisSource(spec, io, { client: kinesis }) : others(spec, io)),
        sinks: s3Sinks(s3),
      };
    },
  );
}
