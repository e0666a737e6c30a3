import { CreateBucketCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll } from 'vitest';
import { s3Client } from '../lib/aws/clients.ts';
import { s3Sinks } from '../lib/aws/s3Sinks.ts';
import { describeEmptyBatches, type SinkFixture } from '../test/contracts/emptyBatchesContract.ts';
import { type Emulator, startS3rver } from './helpers/emulators.ts';

// The empty-batch tests of test/engine/emptyBatches.test.ts, with the sink on S3 (s3rver): what a
// batch writes there, request by request, as the AWS runtime's sinks send them.

let s3: Emulator;
let client: S3Client;
/** Every PutObject the client sent, as `<bucket>/<key>`. */
const puts: string[] = [];
let buckets = 0;

beforeAll(async () => {
  s3 = await startS3rver();
  client = s3Client({ endpoint: s3.endpoint });
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const input = args.input as { Bucket?: string; Key?: string };
      if (context.commandName === 'PutObjectCommand') puts.push(`${input.Bucket}/${input.Key}`);
      return next(args);
    },
    { step: 'initialize', name: 'sluiceNotePuts' },
  );
});

afterAll(async () => {
  client?.destroy();
  await s3?.stop();
});

const onS3: SinkFixture = {
  name: 'S3 (s3rver)',
  create: async () => {
    const bucket = `empty-batches-${++buckets}`;
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
    const sinks = s3Sinks(client);
    return {
      sinks,
      location: (name) => `s3://${bucket}/out/${name}`,
      putsUnder: (location) => {
        const dir = `${location.slice('s3://'.length)}/`;
        return puts.filter((p) => p.startsWith(dir) && !p.slice(dir.length).includes('/')).map((p) => p.slice(dir.length));
      },
      // The bucket goes with s3rver's temporary directory when the emulator stops.
      dispose: async () => {},
    };
  },
};

describeEmptyBatches([onS3]);
