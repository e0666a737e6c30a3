import {
  type AttributeValue,
  type CreateTableCommandInput,
  DeleteItemCommand,
  type DynamoDBClient,
  GetItemCommand,
  QueryCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import { SluiceError } from '../core/errors.ts';
import type { JsonValue, MetaItem, MetaStore } from '../ports/index.ts';
import { fixedRetryDelayOf } from './clients.ts';
import { errorCode, isThrottling, withRetries } from './sdkErrors.ts';

/**
 * The largest JSON text (UTF-8 bytes) a value may have. DynamoDB refuses items over 400 KB
 * (attribute names and values together); this leaves room for the key and the other attributes,
 * and turns an oversize value into an error that says which key it was.
 */
export const MAX_VALUE_BYTES = 350 * 1024;

/** DynamoDB's limit on a sort key value (UTF-8 bytes). */
const MAX_SORT_KEY_BYTES = 1024;
/** DynamoDB's limit on a partition key value (UTF-8 bytes). */
const MAX_PARTITION_KEY_BYTES = 2048;

/** Options of {@link DynamoMetaStore}. */
export interface DynamoMetaStoreOptions {
  readonly client: DynamoDBClient;
  /** The table, created with the schema of {@link metaTableSchema}. */
  readonly table: string;
  /** The job whose items this store sees: the partition key `pk`. */
  readonly job: string;
  /**
   * Retries of a throttled or transient request (about 6 s of backoff in all). They are the only ones:
   * the client from `dynamoClient` makes one HTTP attempt per request. @default 6
   */
  readonly throttleRetries?: number;
  /**
   * Items per page of a `list` query (DynamoDB's `Limit`). Only tests need to set it, to exercise
   * pagination with few items. @default DynamoDB's own page size (1 MB)
   */
  readonly pageSize?: number;
}

/**
 * The table a {@link DynamoMetaStore} needs, as a `CreateTable` request (on-demand billing).
 * Used by the tests and by the CDK construct, so that both create the table the store expects.
 *
 * - `pk` (S, partition key): the job name, so one table holds the items of several jobs;
 * - `sk` (S, sort key): the item key (`lease`, `checkpoint`, `batch/<t>`, …);
 * - `version` (N), `epoch` (N), `value` (S, the item's JSON text): plain attributes.
 *
 * @example
 * ```ts
 * await client.send(new CreateTableCommand(metaTableSchema('sluice-meta')));
 * ```
 */
export function metaTableSchema(tableName: string): CreateTableCommandInput {
  return {
    TableName: tableName,
    KeySchema: [
      { AttributeName: 'pk', KeyType: 'HASH' },
      { AttributeName: 'sk', KeyType: 'RANGE' },
    ],
    AttributeDefinitions: [
      { AttributeName: 'pk', AttributeType: 'S' },
      { AttributeName: 'sk', AttributeType: 'S' },
    ],
    BillingMode: 'PAY_PER_REQUEST',
  };
}

/** Attribute names, always through placeholders (`value` is a DynamoDB reserved word). */
const NAMES = { '#pk': 'pk', '#sk': 'sk', '#v': 'version', '#e': 'epoch', '#val': 'value' } as const;

/** Whether the error is DynamoDB's answer to a failed `ConditionExpression`. */
function conditionFailed(e: unknown): boolean {
  return (e as Error | undefined)?.name === 'ConditionalCheckFailedException';
}

function utf8Bytes(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}

/**
 * A {@link MetaStore} on one DynamoDB table, shared by jobs (see {@link metaTableSchema} for the
 * schema): the job name is the partition key, the item key the sort key.
 *
 * Every write is one conditional `UpdateItem` — no transactions, as docs/design.md §4 requires:
 * - the version part of the condition is `attribute_not_exists(sk)` for `expectedVersion: 0`,
 *   `version = :expected` for a number, and nothing for `'any'`;
 * - the epoch part is `attribute_not_exists(epoch) OR epoch <= :epoch` (an absent item has no
 *   epoch to fence with, so any writer may create it);
 * - the update sets `value` and `epoch` and adds one to `version` (`ADD` counts from 0 when the
 *   item is new), returning the new version atomically — which is how an `'any'` write learns
 *   its version without a read.
 *
 * A failed condition is `undefined` from `put` and nothing at all from `delete`; every other
 * error is thrown. Reads are strongly consistent. `list` is a paginated `Query` on
 * `begins_with(sk, :prefix)`; DynamoDB orders sort keys by their UTF-8 bytes, which equals the
 * port's code-unit order for every key below U+E000 (all keys the engine writes are ASCII), and
 * the result is sorted once more so that it matches the port exactly for any key.
 *
 * Values are stored as JSON text; one whose text exceeds {@link MAX_VALUE_BYTES} is refused with
 * a {@link SluiceError} before it reaches DynamoDB (large lineage parts belong in the blob store).
 *
 * @example
 * ```ts
 * const meta = new DynamoMetaStore({ client: dynamoClient(), table: 'sluice-meta', job: 'wordcount' });
 * const cur = await meta.get('checkpoint');
 * await meta.put('checkpoint', { t: 2000 }, { expectedVersion: cur?.version ?? 0, epoch: 3 });
 * ```
 */
export class DynamoMetaStore implements MetaStore {
  readonly #client: DynamoDBClient;
  readonly #table: string;
  readonly #job: string;
  readonly #pageSize: number | undefined;
  readonly #throttleRetries: number;

  constructor(options: DynamoMetaStoreOptions) {
    if (options.table === '') throw new SluiceError('DynamoMetaStore: the table name is empty');
    if (options.job === '' || utf8Bytes(options.job) > MAX_PARTITION_KEY_BYTES) {
      throw new SluiceError(`DynamoMetaStore: the job name must be 1 to ${MAX_PARTITION_KEY_BYTES} bytes long, got ${utf8Bytes(options.job)}`);
    }
    const page = options.pageSize;
    if (page !== undefined && (!Number.isInteger(page) || page < 1)) {
      throw new SluiceError(`DynamoMetaStore: pageSize must be a whole number >= 1, got ${String(page)}`);
    }
    this.#client = options.client;
    this.#table = options.table;
    this.#job = options.job;
    this.#pageSize = page;
    this.#throttleRetries = options.throttleRetries ?? 6;
  }

  async get<T extends JsonValue = JsonValue>(key: string): Promise<MetaItem<T> | undefined> {
    const out = await this.#send(() =>
      this.#client.send(new GetItemCommand({ TableName: this.#table, Key: this.#key(key), ConsistentRead: true })),
      `GetItem of ${key}`,
    );
    const item = out.Item;
    if (item === undefined) return undefined;
    return {
      key,
      version: Number(item.version?.N),
      epoch: Number(item.epoch?.N),
      value: JSON.parse(item.value?.S ?? 'null') as T,
    };
  }

  async put(key: string, value: JsonValue, condition: { expectedVersion: number | 'any'; epoch: number }): Promise<number | undefined> {
    const Key = this.#key(key);
    const text = JSON.stringify(value);
    const size = utf8Bytes(text);
    if (size > MAX_VALUE_BYTES) {
      throw new SluiceError(
        `meta item ${key} of job ${this.#job}: its value is ${size} bytes of JSON, over the ${MAX_VALUE_BYTES}-byte limit of a DynamoDB item (400 KB); keep large parts in the blob store`,
      );
    }
    const { expectedVersion, epoch } = condition;
    // No stored version is negative or fractional: such a condition cannot hold (as in memory).
    if (expectedVersion !== 'any' && !(Number.isSafeInteger(expectedVersion) && expectedVersion >= 0)) return undefined;
    const values: Record<string, AttributeValue> = { ':val': { S: text }, ':epoch': { N: String(epoch) }, ':one': { N: '1' } };
    // DynamoDB refuses placeholders an expression does not use, so each part adds its own.
    const names: Record<string, string> = { '#e': NAMES['#e'], '#v': NAMES['#v'], '#val': NAMES['#val'] };
    const fence = '(attribute_not_exists(#e) OR #e <= :epoch)';
    let versionCheck: string | undefined; // 'any': no version condition at all
    if (expectedVersion === 0) {
      versionCheck = 'attribute_not_exists(#sk)';
      names['#sk'] = NAMES['#sk'];
    } else if (expectedVersion !== 'any') {
      versionCheck = '#v = :expected';
      values[':expected'] = { N: String(expectedVersion) };
    }
    try {
      const out = await this.#send(() =>
        this.#client.send(
          new UpdateItemCommand({
            TableName: this.#table,
            Key,
            UpdateExpression: 'SET #val = :val, #e = :epoch ADD #v :one',
            ConditionExpression: versionCheck === undefined ? fence : `(${versionCheck}) AND ${fence}`,
            ExpressionAttributeNames: names,
            ExpressionAttributeValues: values,
            ReturnValues: 'UPDATED_NEW',
          }),
        ),
        `UpdateItem of ${key}`,
      );
      return Number(out.Attributes?.version?.N);
    } catch (e) {
      if (conditionFailed(e)) return undefined;
      throw e;
    }
  }

  async delete(key: string, condition: { epoch: number }): Promise<void> {
    try {
      await this.#send(() =>
        this.#client.send(
          new DeleteItemCommand({
            TableName: this.#table,
            Key: this.#key(key),
            ConditionExpression: 'attribute_not_exists(#e) OR #e <= :epoch',
            ExpressionAttributeNames: { '#e': NAMES['#e'] },
            ExpressionAttributeValues: { ':epoch': { N: String(condition.epoch) } },
          }),
        ),
        `DeleteItem of ${key}`,
      );
    } catch (e) {
      // A newer coordinator owns the item: leave it, as the memory store does.
      if (!conditionFailed(e)) throw e;
    }
  }

  async list(prefix: string): Promise<string[]> {
    const keys: string[] = [];
    // DynamoDB refuses an empty string as a key condition value: the empty prefix lists the job.
    const byPrefix = prefix !== '';
    let start: Record<string, AttributeValue> | undefined;
    do {
      const out = await this.#send(() =>
        this.#client.send(
          new QueryCommand({
            TableName: this.#table,
            KeyConditionExpression: byPrefix ? '#pk = :pk AND begins_with(#sk, :prefix)' : '#pk = :pk',
            ExpressionAttributeNames: { '#pk': NAMES['#pk'], '#sk': NAMES['#sk'] },
            ExpressionAttributeValues: byPrefix ? { ':pk': { S: this.#job }, ':prefix': { S: prefix } } : { ':pk': { S: this.#job } },
            ProjectionExpression: '#sk',
            ConsistentRead: true,
            ...(this.#pageSize === undefined ? {} : { Limit: this.#pageSize }),
            ...(start === undefined ? {} : { ExclusiveStartKey: start }),
          }),
        ),
        `Query of ${prefix}*`,
      );
      for (const item of out.Items ?? []) if (item.sk?.S !== undefined) keys.push(item.sk.S);
      start = out.LastEvaluatedKey;
    } while (start !== undefined);
    // Byte order and code-unit order differ only above U+E000; sort to match the port exactly.
    return keys.sort();
  }

  /** The DynamoDB key of an item, after checking that DynamoDB will accept it. */
  #key(key: string): Record<string, AttributeValue> {
    const bytes = utf8Bytes(key);
    if (bytes === 0 || bytes > MAX_SORT_KEY_BYTES) {
      throw new SluiceError(`meta item key ${JSON.stringify(key.slice(0, 64))} of job ${this.#job}: a key must be 1 to ${MAX_SORT_KEY_BYTES} bytes long, got ${bytes}`);
    }
    return { pk: { S: this.#job }, sk: { S: key } };
  }

  /**
   * Sends a request; a throttled or transient failure is sent again (up to `throttleRetries` times,
   * backing off from 100 ms to 2 s). A throttled request was not applied, so even a conditional write
   * is safe to repeat. The coordinator's every step goes through here: three throttles in a row must
   * not end its minute. A missing table becomes an error that says what to do.
   */
  async #send<R>(request: () => Promise<R>, what: string): Promise<R> {
    try {
      return await withRetries(request, {
        attempts: this.#throttleRetries + 1,
        baseDelayMs: 100,
        maxDelayMs: 2000,
        fixedDelayMs: fixedRetryDelayOf(this.#client),
        exhausted: (e, retries) =>
          new SluiceError(
            `DynamoDB ${what} in table ${this.#table} is still ${isThrottling(e) ? 'throttled' : 'failing'} (${errorCode(e)}) after ${retries} retries: ${(e as Error).message}`,
            { cause: e },
          ),
      });
    } catch (e) {
      if ((e as Error | undefined)?.name === 'ResourceNotFoundException') {
        throw new SluiceError(
          `DynamoDB table ${this.#table} does not exist; create it with metaTableSchema('${this.#table}') (partition key pk and sort key sk, both strings), or deploy the Sluice stack that creates it`,
          { cause: e },
        );
      }
      throw e;
    }
  }
}
