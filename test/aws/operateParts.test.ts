import { PassThrough } from 'node:stream';
import type { KinesisClient, PutRecordsCommand } from '@aws-sdk/client-kinesis';
import { describe, expect, it } from 'vitest';
import { chunksOf, putAllRecords, type StreamRecord } from '../../lib/aws/putRecords.ts';
import { sluiceJobsOf } from '../../lib/aws/stackJobs.ts';
import { confirmed } from '../../lib/cli/operate.ts';

// The parts of the operations commands that need no emulator: a stack's outputs read as jobs, the
// redrive's PutRecords chunks and retries, the confirmation on a terminal.

const rec = (bytes: number, key = 'k'): StreamRecord => ({ data: new Uint8Array(bytes), partitionKey: key });

describe('sluiceJobsOf: the jobs among a stack\'s outputs', () => {
  it('groups the outputs of each SluiceJob by its construct, with the job name from the state bucket output', () => {
    const out = (key: string, value: string, description?: string) => ({ OutputKey: key, OutputValue: value, ...(description ? { Description: description } : {}) });
    expect(
      sluiceJobsOf([
        out('JobStreamName', 's1'),
        out('JobStateBucketName', 'b1', 'Lineage, shuffle and state blobs, under wordcount/'),
        out('JobTableName', 't1'),
        out('ClicksTableName', 't2'),
        out('ClicksStateBucketName', 'b2'),
        out('WebsiteURL', 'https://example.com'),
        out('OnlyStreamName', 's3'),
      ]),
    ).toEqual([
      { construct: 'Clicks', stateBucket: 'b2', table: 't2' },
      { construct: 'Job', jobName: 'wordcount', stream: 's1', stateBucket: 'b1', table: 't1' },
    ]);
  });
});

describe('putAllRecords: PutRecords in chunks, refused entries sent again', () => {
  it('chunks at 500 records or 5 MiB, whichever comes first, keeping the order', () => {
    expect(chunksOf(Array.from({ length: 1201 }, () => rec(10))).map((c) => c.length)).toEqual([500, 500, 201]);
    expect(chunksOf(Array.from({ length: 12 }, () => rec(1024 * 1024 - 1))).map((c) => c.length)).toEqual([5, 5, 2]);
  });

  it('sends again only the entries a request refused, until all are in', async () => {
    const sent: string[][] = [];
    let round = 0;
    const client = {
      send: async (command: PutRecordsCommand) => {
        const keys = command.input.Records!.map((r) => r.PartitionKey!);
        sent.push(keys);
        round++;
        // The first answer refuses every other entry (a shard over its throughput), as Kinesis does entry by entry.
        return { FailedRecordCount: round === 1 ? 2 : 0, Records: keys.map((_, i) => (round === 1 && i % 2 === 1 ? { ErrorCode: 'ProvisionedThroughputExceededException' } : { SequenceNumber: '1', ShardId: 's' })) };
      },
    } as unknown as KinesisClient;
    const put = await putAllRecords(client, 'clicks', [rec(1, 'a'), rec(1, 'b'), rec(1, 'c'), rec(1, 'd')]);
    expect(put).toBe(4);
    expect(sent).toEqual([['a', 'b', 'c', 'd'], ['b', 'd']]);
  });

  it('gives up after its rounds, saying how many went in; a record over 1 MiB is refused before anything is sent', async () => {
    const client = { send: async (c: PutRecordsCommand) => ({ FailedRecordCount: 1, Records: c.input.Records!.map((_, i) => (i === 0 ? { ErrorCode: 'InternalFailure' } : { SequenceNumber: '1' })) }) } as unknown as KinesisClient;
    await expect(putAllRecords(client, 'clicks', [rec(1), rec(1)], { rounds: 2 })).rejects.toThrow('1 record(s) still refused by stream clicks after 2 tries (InternalFailure); 1 of 2 were put');
    await expect(putAllRecords(client, 'clicks', [rec(1024 * 1024)])).rejects.toThrow(/record 1 is 1048577 bytes with its partition key, over the 1 MiB/);
  });
});

describe('confirmed: the job name typed on a terminal', () => {
  const terminal = (answer: string) => {
    const input = Object.assign(new PassThrough(), { isTTY: true });
    setTimeout(() => input.write(`${answer}\n`), 5);
    return { input, output: new PassThrough() };
  };
  const job = { jobName: 'clicks', where: 'table t and s3://b/clicks/' };

  it('goes on when the name is typed, not otherwise; --yes asks nothing', async () => {
    expect(await confirmed('reset', job, undefined, terminal('clicks'))).toBe(true);
    expect(await confirmed('reset', job, undefined, terminal('yes'))).toBe(false);
    expect(await confirmed('reset', job, true, { input: new PassThrough(), output: new PassThrough() })).toBe(true);
  });

  it('refuses without a terminal, saying to add --yes', async () => {
    await expect(confirmed('pause', job, undefined, { input: new PassThrough(), output: new PassThrough() })).rejects.toThrow(
      "sluice pause asks you to type the job's name, and its input is not a terminal: add --yes to pause job clicks without the question",
    );
  });
});
