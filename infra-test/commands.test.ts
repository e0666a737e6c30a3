import { GetRecordsCommand, GetShardIteratorCommand, type KinesisClient } from '@aws-sdk/client-kinesis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kinesisClient } from '../lib/aws/clients.ts';
import { join } from 'node:path';
import { ROOT, runSluice } from '../test/helpers/cli.ts';
import { type Emulator, startKinesalite } from './helpers/emulators.ts';
import { createStream, shardsOf } from './helpers/kinesisStreams.ts';

/** Every record of every shard of `stream`, as text, in no particular order. */
async function everyRecord(client: KinesisClient, stream: string): Promise<string[]> {
  const out: string[] = [];
  for (const shard of await shardsOf(client, stream)) {
    const { ShardIterator } = await client.send(new GetShardIteratorCommand({ StreamName: stream, ShardId: shard.ShardId, ShardIteratorType: 'TRIM_HORIZON' }));
    const page = await client.send(new GetRecordsCommand({ ShardIterator }));
    for (const r of page.Records ?? []) out.push(new TextDecoder().decode(r.Data));
  }
  return out;
}

/** The command's own lines on stderr (on Node 20 the AWS SDK adds a warning that it will need Node 22). */
const ownLines = (stderr: string) => stderr.split('\n').filter((l) => /^(put |error: )/.test(l));

describe('sluice produce against kinesalite (SLUICE_AWS_ENDPOINT)', () => {
  let kinesis: Emulator;
  let client: KinesisClient;
  beforeAll(async () => {
    kinesis = await startKinesalite();
    client = kinesisClient({ endpoint: kinesis.endpoint });
  });
  afterAll(async () => {
    client?.destroy();
    await kinesis?.stop();
  });

  it('sluice produce --stream clicks --count 25 --lines "a b c": puts 25 records, the words in turn, over the shards', async () => {
    await createStream(client, 'clicks', 2);
    const r = await runSluice(['produce', '--stream', 'clicks', '--count', '25', '--rate', '1000', '--lines', 'a b c'], { env: { SLUICE_AWS_ENDPOINT: kinesis.endpoint } });
    expect(r.code, r.stderr).toBe(0);
    expect(ownLines(r.stderr)).toEqual([expect.stringMatching(/^put 25 records into clicks in \d+\.\d s$/)]);
    const expected = Array.from({ length: 25 }, (_, i) => 'abc'[i % 3]);
    expect((await everyRecord(client, 'clicks')).sort()).toEqual(expected.sort());
  });

  it('sluice produce --stream nowhere: a stream that does not exist is an error naming it', async () => {
    const r = await runSluice(['produce', '--stream', 'nowhere', '--count', '5'], { env: { SLUICE_AWS_ENDPOINT: kinesis.endpoint } });
    expect(r.code).toBe(1);
    expect(ownLines(r.stderr)).toEqual([expect.stringMatching(/^error: ResourceNotFoundException: .*nowhere/)]);
  });
});

describe('sluice dev-aws', () => {
  it('sluice dev-aws examples/kinesis-wordcount.ts --minute 2s: emulators, a producer and the real handlers print word counts until Ctrl-C', async () => {
    let invocations = 0;
    const r = await runSluice(['dev-aws', join(ROOT, 'examples/kinesis-wordcount.ts'), '--minute', '2s', '--rate', '50', '--stream', 'dev-test'], {
      // Ctrl-C once a coordinator invocation has committed a batch: the command stops after the invocation it is in.
      onStderr: (all, signal) => {
        const ran = [...all.matchAll(/^dev-aws: coordinator invocation ran (\d+) batch\(es\)/gm)].filter((m) => Number(m[1]) > 0).length;
        if (ran > 0 && invocations === 0) {
          invocations = ran;
          signal('SIGINT');
        }
      },
    });
    expect(invocations).toBeGreaterThan(0);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/^dev-aws: stream dev-test, table \S+, buckets \S+ and dev-test-out; job kinesis-wordcount; Ctrl-C to stop$/m);
    // The producer's lines ("I am a dummy source 7") counted per batch, printed Spark's way.
    const blocks = r.stdout.split(/^Time: \d+ ms$/m).slice(1);
    expect(blocks.length).toBeGreaterThan(0);
    expect(r.stdout).toMatch(/^\(dummy,\d+\)$/m);
  }, 60_000);
});
