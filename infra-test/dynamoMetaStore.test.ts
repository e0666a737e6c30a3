import { CreateTableCommand, type DynamoDBClient, QueryCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { SluiceError } from '../lib/core/errors.ts';
import { dynamoClient } from '../lib/aws/clients.ts';
import { DynamoMetaStore, MAX_VALUE_BYTES, metaTableSchema } from '../lib/aws/dynamoMetaStore.ts';
import type { MetaStore } from '../lib/ports/index.ts';
import { describeMetaStoreContract } from '../test/contracts/metaStoreContract.ts';
import { type Emulator, startDynalite } from './helpers/emulators.ts';

const TABLE = 'sluice-meta';

let ddb: Emulator;
let client: DynamoDBClient;
/** Every client a test made, destroyed after the file. */
const clients: DynamoDBClient[] = [];
let jobs = 0;

/** A job name no other test uses: the items of one job are invisible to every other. */
function freshJob(name = 'job'): string {
  return `${name}-${++jobs}`;
}

function newClient(): DynamoDBClient {
  const c = dynamoClient({ endpoint: ddb.endpoint, region: 'us-east-1' });
  clients.push(c);
  return c;
}

beforeAll(async () => {
  ddb = await startDynalite();
  client = newClient();
  await client.send(new CreateTableCommand(metaTableSchema(TABLE)));
});

afterAll(async () => {
  for (const c of clients) c.destroy();
  await ddb?.stop();
});

describeMetaStoreContract([
  {
    name: 'DynamoMetaStore',
    create: async () => ({ store: new DynamoMetaStore({ client, table: TABLE, job: freshJob() }), dispose: async () => {} }),
  },
  {
    name: 'DynamoMetaStore listing in pages of 2',
    create: async () => ({ store: new DynamoMetaStore({ client, table: TABLE, job: freshJob(), pageSize: 2 }), dispose: async () => {} }),
  },
]);

/** Adds one to the counter at `key`, retrying on conflict as a coordinator would. */
async function increment(store: MetaStore, key: string): Promise<number> {
  for (let attempts = 1; ; attempts++) {
    const current = await store.get<number>(key);
    const written = await store.put(key, (current?.value ?? 0) + 1, { expectedVersion: current?.version ?? 0, epoch: 1 });
    if (written !== undefined) return attempts;
  }
}

describe('DynamoMetaStore', () => {
  it('keeps two jobs in one table apart, even when one name starts with the other', async () => {
    // Prepare
    const [a, b] = [freshJob('wc'), freshJob('wc')];
    const jobA = new DynamoMetaStore({ client, table: TABLE, job: a });
    const jobB = new DynamoMetaStore({ client, table: TABLE, job: b });
    const jobAPrefix = new DynamoMetaStore({ client, table: TABLE, job: a.slice(0, -1) });
    await jobA.put('checkpoint', 'a', { expectedVersion: 0, epoch: 5 });
    await jobA.put('batch/1000', 'a', { expectedVersion: 0, epoch: 5 });

    // Act: job B creates the same key at version 0, with a lower epoch, and deletes A's other key.
    const created = await jobB.put('checkpoint', 'b', { expectedVersion: 0, epoch: 1 });
    await jobB.delete('batch/1000', { epoch: 9 });

    // Assess
    expect(created).toBe(1);
    expect(await jobA.get('checkpoint')).toEqual({ key: 'checkpoint', version: 1, epoch: 5, value: 'a' });
    expect(await jobB.get('checkpoint')).toEqual({ key: 'checkpoint', version: 1, epoch: 1, value: 'b' });
    expect(await jobA.list('')).toEqual(['batch/1000', 'checkpoint']);
    expect(await jobB.list('')).toEqual(['checkpoint']);
    expect(await jobAPrefix.list('')).toEqual([]);
  });

  it('pages through a listing with LastEvaluatedKey', async () => {
    // Prepare: 25 batch records and a lease, written out of order.
    const job = freshJob();
    const writer = new DynamoMetaStore({ client, table: TABLE, job });
    const times = Array.from({ length: 25 }, (_, i) => ((i * 7) % 25) * 1000);
    const keys = times.map((t) => `batch/${String(t).padStart(15, '0')}`);
    await Promise.all([...keys, 'lease'].map((k) => writer.put(k, k, { expectedVersion: 0, epoch: 1 })));
    const paging = newClient();
    const send = vi.spyOn(paging, 'send');
    const reader = new DynamoMetaStore({ client: paging, table: TABLE, job, pageSize: 4 });

    // Act
    const listed = await reader.list('batch/');
    const all = await reader.list('');

    // Assess: every key once, in order, over ceil(25 / 4) = 7 pages (plus one empty page at most).
    expect(listed).toEqual([...keys].sort());
    expect(all).toEqual([...keys, 'lease'].sort());
    const queries = send.mock.calls.filter(([command]) => command instanceof QueryCommand).length;
    expect(queries).toBeGreaterThanOrEqual(7 + 7);
    expect(queries).toBeLessThanOrEqual(8 + 8);
    expect(await writer.list('batch/')).toEqual(listed);
  });

  it('lists in the port’s code-unit order where DynamoDB’s byte order differs', async () => {
    // Prepare: U+FF01 sorts before U+1F600 in UTF-8 bytes (EF… < F0…), after it in UTF-16 (FF01 > D83D).
    const store = new DynamoMetaStore({ client, table: TABLE, job: freshJob() });
    const keys = ['k/\uFF01', 'k/\u{1F600}', 'k/a', 'k/\u00E4'];
    for (const key of keys) await store.put(key, key, { expectedVersion: 0, epoch: 1 });

    // Act / Assess
    expect(await store.list('k/')).toEqual([...keys].sort());
    expect(await store.list('k/\u{1F600}')).toEqual(['k/\u{1F600}']);
  });

  it('loses no update when 20 conditional writers race on one key through separate clients', async () => {
    // Prepare
    const job = freshJob();
    const stores = [0, 1, 2, 3].map(() => new DynamoMetaStore({ client: newClient(), table: TABLE, job }));
    await stores[0].put('counter', 0, { expectedVersion: 0, epoch: 1 });

    // Act
    const attempts = await Promise.all(Array.from({ length: 20 }, (_, i) => increment(stores[i % stores.length], 'counter')));

    // Assess: exactly one write per increment won, and they did contend.
    expect(await stores[0].get('counter')).toEqual({ key: 'counter', version: 21, epoch: 1, value: 20 });
    expect(attempts.some((n) => n > 1)).toBe(true);
  });

  it("gives an 'any' write the next version atomically, even under contention", async () => {
    // Prepare
    const job = freshJob();
    const store = new DynamoMetaStore({ client, table: TABLE, job });

    // Act
    const versions = await Promise.all(Array.from({ length: 10 }, (_, i) => store.put('k', i, { expectedVersion: 'any', epoch: 1 })));

    // Assess: each write got its own version, 1 to 10.
    expect([...versions].sort((x, y) => x! - y!)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(await store.get('k')).toMatchObject({ version: 10 });
  });

  it('fences a coordinator whose epoch is lower than the one stored', async () => {
    // Prepare: coordinator 1 (epoch 1) wrote the checkpoint; coordinator 2 took over with epoch 2.
    const job = freshJob();
    const [old, next] = [0, 1].map(() => new DynamoMetaStore({ client: newClient(), table: TABLE, job }));
    await old.put('checkpoint', { t: 1000 }, { expectedVersion: 0, epoch: 1 });
    await old.put('batch/2000', 'running', { expectedVersion: 0, epoch: 1 });
    const seenByOld = (await old.get('checkpoint'))!;
    await next.put('checkpoint', { t: 1000, owner: 'c2' }, { expectedVersion: 1, epoch: 2 });
    await next.put('batch/2000', 'running again', { expectedVersion: 1, epoch: 2 });

    // Act: the zombie tries everything it can.
    const results = await Promise.all([
      old.put('checkpoint', { t: 2000 }, { expectedVersion: seenByOld.version, epoch: 1 }),
      old.put('checkpoint', { t: 2000 }, { expectedVersion: 2, epoch: 1 }),
      old.put('checkpoint', { t: 2000 }, { expectedVersion: 'any', epoch: 1 }),
      old.put('batch/2000', 'completed', { expectedVersion: 2, epoch: 1 }),
    ]);
    await old.delete('batch/2000', { epoch: 1 });

    // Assess
    expect(results).toEqual([undefined, undefined, undefined, undefined]);
    expect(await next.get('checkpoint')).toEqual({ key: 'checkpoint', version: 2, epoch: 2, value: { t: 1000, owner: 'c2' } });
    expect(await next.get('batch/2000')).toMatchObject({ version: 2, epoch: 2, value: 'running again' });
    expect(await next.put('checkpoint', { t: 2000 }, { expectedVersion: 2, epoch: 2 })).toBe(3);
  });

  it('names the table when it does not exist, on every operation', async () => {
    // Prepare
    const store = new DynamoMetaStore({ client, table: 'no-such-table', job: freshJob() });
    const operations = [
      () => store.get('k'),
      () => store.put('k', 1, { expectedVersion: 0, epoch: 1 }),
      () => store.delete('k', { epoch: 1 }),
      () => store.list(''),
    ];

    // Act / Assess
    for (const operation of operations) {
      const error = await operation().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(SluiceError);
      expect((error as Error).message).toMatch(/^DynamoDB table no-such-table does not exist; create it with metaTableSchema\('no-such-table'\)/);
      expect(((error as Error).cause as Error).name).toBe('ResourceNotFoundException');
    }
  });

  it('refuses a value over the size limit before DynamoDB does, and accepts one at the limit', async () => {
    // Prepare
    const store = new DynamoMetaStore({ client, table: TABLE, job: freshJob() });
    const atLimit = 'x'.repeat(MAX_VALUE_BYTES - 2); // the JSON text adds two quotes
    const over = { parts: 'ä'.repeat(200 * 1024) }; // 200 Ki characters, 400 KiB of UTF-8

    // Act
    const error = await store.put('batch/1000', over, { expectedVersion: 0, epoch: 1 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    const version = await store.put('batch/2000', atLimit, { expectedVersion: 0, epoch: 1 });

    // Assess
    expect(error).toBeInstanceOf(SluiceError);
    expect((error as Error).message).toContain('meta item batch/1000');
    expect((error as Error).message).toContain(`${200 * 1024 * 2 + '{"parts":""}'.length} bytes`);
    expect(await store.get('batch/1000')).toBeUndefined();
    expect(version).toBe(1);
    expect((await store.get<string>('batch/2000'))?.value).toHaveLength(MAX_VALUE_BYTES - 2);
  });

  it('refuses keys and job names DynamoDB cannot store, saying why', async () => {
    // Prepare
    const store = new DynamoMetaStore({ client, table: TABLE, job: freshJob() });

    // Act / Assess
    await expect(store.put('', 1, { expectedVersion: 0, epoch: 1 })).rejects.toThrow(/must be 1 to 1024 bytes long, got 0/);
    await expect(store.get('k'.repeat(1025))).rejects.toThrow(SluiceError);
    expect(() => new DynamoMetaStore({ client, table: TABLE, job: '' })).toThrow(/job name must be 1 to 2048 bytes/);
    expect(() => new DynamoMetaStore({ client, table: TABLE, job: 'j', pageSize: 0 })).toThrow(/pageSize/);
  });
});
