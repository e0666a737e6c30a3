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
      const kinesis = kinesisClient(config.aws);
      kinesis.middlewareStack.add(
        (next, context) => async (args) => {
          if (context.commandName === 'GetRecordsCommand') await gate;
          return next(args);
        },
        { step: 'initialize', name: 'stalledGetRecords' },
      );
      const s3 = s3Client(config.aws);
      s3.middlewareStack.add(
        (next, context) => async (args) => {
          if (context.commandName === 'PutObjectCommand') await gate;
          return next(args);
        },
        { step: 'initialize', name: 'stalledPutObject' },
      );
      const others = awsSources(config);
      return {
        blobs: new S3BlobStore({ client: s3, bucket: config.stateBucket, prefix: config.statePrefix ?? `${graph.name}/` }),
        sources: (spec, io) => (spec.kind === 'kinesis' ? new KinesisSource(spec, io, { client: kinesis }) : others(spec, io)),
        sinks: s3Sinks(s3),
      };
    },
  );
}
