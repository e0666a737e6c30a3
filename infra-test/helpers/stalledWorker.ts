import type { JobDefinition } from '../../lib/api/job.ts';
import { kinesisClient, s3Client } from '../../lib/aws/clients.ts';
import { createWorkerHandler } from '../../lib/aws/handlers.ts';
import { KinesisSource } from '../../lib/aws/kinesisSource.ts';
import { type AwsRuntimeConfig, awsSources } from '../../lib/aws/runtime.ts';
import { S3BlobStore } from '../../lib/aws/s3BlobStore.ts';
import { s3Sinks } from '../../lib/aws/s3Sinks.ts';

/**
 * The worker handler of a Lambda container of its own, for a second run of a task that is already
 * running (Lambda ran the invocation twice): it starts at once — plans the batch, opens its shard
 * iterators, reads shuffle and cached input — but its Kinesis `GetRecords` and S3 `PutObject`
 * calls wait until `gate` resolves. A straggler stalled mid-run, whose reads and writes land
 * when the test says.
 *
 * @example
 * ```ts
 * const late = stalledWorker(definition, config, released)(event); // runs beside the original
 * // ... the original answers, the coordinator moves on ...
 * release();
 * await late;
 * ```
 */
export function stalledWorker(definition: JobDefinition, config: AwsRuntimeConfig, gate: Promise<void>): (event: unknown) => Promise<unknown> {
  return createWorkerHandler(
    async () => definition,
    (graph) => {
      const kinesis = holdAt(kinesisClient(config.aws), 'GetRecordsCommand', gate);
      const s3 = holdAt(s3Client(config.aws), 'PutObjectCommand', gate);
      const others = awsSources(config);
      return {
        blobs: new S3BlobStore({ client: s3, bucket: config.stateBucket, prefix: config.statePrefix ?? `${graph.name}/` }),
        sources: (spec, io) => (spec.kind === 'kinesis' ? new KinesisSource(spec, io, { client: kinesis }) : others(spec, io)),
        sinks: s3Sinks(s3),
      };
    },
  );
}

/** Makes `client` hold every `command` until `gate` opens (an SDK middleware at the initialize step). */
function holdAt<C extends { middlewareStack: { add: (...args: any[]) => void } }>(client: C, command: string, gate: Promise<void>): C {
  client.middlewareStack.add(
    (next: (args: unknown) => Promise<unknown>, context: { commandName?: string }) => async (args: unknown) => {
      if (context.commandName === command) await gate;
      return next(args);
    },
    { step: 'initialize', name: `stalled${command}` },
  );
  return client;
}
