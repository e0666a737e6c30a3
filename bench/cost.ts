/**
 * What Sluice costs on AWS: the prices of the README's "What it costs" section, written once, and
 * the pricing of measured request counts and function time with them. The bench's cost section
 * (./costRun.ts) and the chart script (scripts/costChart.ts) both price with this module, so the
 * README's table, its chart and the bench's lines cannot disagree on a price.
 *
 * Requests are named as the bench's counting emulators name them (`service:operation`, see
 * ./awsStack.ts). What each costs:
 *  - `dynamodb:*`: one write unit each (δ), reads included — an upper bound, as in the README
 *    (items here are under 1 KB; a read unit costs a fifth of a write unit);
 *  - `s3:PUT`, `s3:POST`, `s3:LIST` and other PUT/LIST-class calls: σ each; `s3:GET`/`s3:HEAD`:
 *    the GET-class price γ; `s3:DELETE`: free, as on S3;
 *  - `kinesis:*` reads (GetRecords, GetShardIterator, ListShards, DescribeStream…): free, included
 *    in the shard-hour; `kinesis:PutRecord(s)` are the producer's and priced per record (π), not
 *    per call, by the callers that know the records;
 *  - `lambda:Invoke`: ρ each, the invoked function's time priced separately (GB-seconds × λ).
 */

/** Prices (us-east-1, on-demand, arm64, before free tiers), in dollars, as the README lists them. */
export const PRICES = {
  /** λ: Lambda, per GB-second (arm64). */
  lambdaGbSecond: 0.0000133334,
  /** ρ: Lambda, per invocation ($0.20 per million). */
  lambdaInvocation: 0.2 / 1e6,
  /** δ: DynamoDB on-demand, per write request unit ($0.625 per million). */
  dynamoWrite: 0.625 / 1e6,
  /** σ: S3 Standard, per PUT/COPY/POST/LIST request ($0.005 per 1,000). */
  s3Put: 0.005 / 1000,
  /** γ: S3 Standard, per GET/HEAD request ($0.0004 per 1,000). */
  s3Get: 0.0004 / 1000,
  /** κ: Kinesis provisioned, per shard-hour. */
  shardHour: 0.015,
  /** π: Kinesis, per PUT payload unit (a record up to 25 KB; $0.014 per million). */
  kinesisPutUnit: 0.014 / 1e6,
} as const;

/** Hours in the month the figures use (AWS's pricing pages use 730). */
export const HOURS_PER_MONTH = 730;
export const SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600;

/** Dollars by component; `total` is their sum. */
export interface CostBreakdown {
  readonly coordinator: number;
  readonly workers: number;
  readonly invocations: number;
  readonly dynamodb: number;
  readonly s3: number;
  readonly kinesis: number;
  readonly total: number;
}

/** What one stretch of a job used: requests by `service:operation`, worker time, coordinator time. */
export interface Usage {
  readonly requests: ReadonlyMap<string, number>;
  /** Worker invocations' billed time, ms (each invocation rounded up to a whole ms). */
  readonly workerMs: number;
  /** Coordinator billed time, ms (its whole wall time: it sleeps between batches, billed). */
  readonly coordinatorMs: number;
  /** Records put into the stream by the producer (one PUT payload unit each), 0 when not priced here. */
  readonly putRecords: number;
}

/** Function memory, GB, as deployed. */
export interface Memory {
  readonly coordinatorGb: number;
  readonly workerGb: number;
}

/** The construct's defaults (cdk/parts/functions.ts): coordinator 256 MB, worker 1024 MB. */
export const DEPLOYED_MEMORY: Memory = { coordinatorGb: 0.25, workerGb: 1 };

/** The construct's defaults before issue 14 (coordinator 512 MB): what "today's path" is priced with. */
export const TODAY_MEMORY: Memory = { coordinatorGb: 0.5, workerGb: 1 };

/** The price of one request, by the rules in this module's comment; a name it does not know throws. */
export function requestPrice(op: string): { component: 'dynamodb' | 's3' | 'kinesis' | 'invocations'; dollars: number } {
  const colon = op.indexOf(':');
  const service = colon < 0 ? '' : op.slice(0, colon);
  const name = op.slice(colon + 1);
  switch (service) {
    case 'dynamodb':
      return { component: 'dynamodb', dollars: PRICES.dynamoWrite };
    case 's3':
      if (name.startsWith('DELETE')) return { component: 's3', dollars: 0 };
      if (name.startsWith('GET') || name.startsWith('HEAD')) return { component: 's3', dollars: PRICES.s3Get };
      return { component: 's3', dollars: PRICES.s3Put };
    case 'kinesis':
      return { component: 'kinesis', dollars: 0 };
    case 'lambda':
      if (name === 'Invoke') return { component: 'invocations', dollars: PRICES.lambdaInvocation };
  }
  throw new Error(`no price for request ${JSON.stringify(op)}: name it service:operation with service dynamodb, s3, kinesis or lambda (lambda:Invoke)`);
}

/**
 * Prices a usage: requests by {@link requestPrice}, the functions' time as GB-seconds, the
 * producer's records as Kinesis PUT payload units.
 * @example
 * ```ts
 * price({ requests: new Map([['dynamodb:PutItem', 7]]), workerMs: 0, coordinatorMs: 60_000, putRecords: 0 }).total;
 * // 7 × 0.625e-6 + 60 s × 0.5 GB × 0.0000133334 ≈ 0.0004044
 * ```
 */
export function price(usage: Usage, memory: Memory = DEPLOYED_MEMORY): CostBreakdown {
  const c = { coordinator: 0, workers: 0, invocations: 0, dynamodb: 0, s3: 0, kinesis: 0 };
  for (const [op, n] of usage.requests) {
    if (!Number.isFinite(n) || n < 0) throw new Error(`request count of ${op} must be a number >= 0, got ${n}`);
    const p = requestPrice(op);
    c[p.component] += n * p.dollars;
  }
  for (const [what, v] of [['workerMs', usage.workerMs], ['coordinatorMs', usage.coordinatorMs], ['putRecords', usage.putRecords]] as const) {
    if (!Number.isFinite(v) || v < 0) throw new Error(`${what} must be a number >= 0, got ${v}`);
  }
  c.workers = (usage.workerMs / 1000) * memory.workerGb * PRICES.lambdaGbSecond;
  c.coordinator = (usage.coordinatorMs / 1000) * memory.coordinatorGb * PRICES.lambdaGbSecond;
  c.kinesis += usage.putRecords * PRICES.kinesisPutUnit;
  return { ...c, total: c.coordinator + c.workers + c.invocations + c.dynamodb + c.s3 + c.kinesis };
}

/** Sum of breakdowns, each scaled by its factor. */
function scaled(parts: readonly [CostBreakdown, number][]): CostBreakdown {
  const keys = ['coordinator', 'workers', 'invocations', 'dynamodb', 's3', 'kinesis', 'total'] as const;
  const out = Object.fromEntries(keys.map((k) => [k, parts.reduce((a, [b, f]) => a + b[k] * f, 0)]));
  return out as unknown as CostBreakdown;
}

/** What an idle job's one batch used, per batch (means over the batches measured). */
export interface IdleBatch {
  readonly requests: ReadonlyMap<string, number>;
  readonly workerMs: number;
  /** Requests each coordinator invocation (one a minute) makes outside its batches: the lease taken and released, the checkpoint read. */
  readonly perInvocation?: ReadonlyMap<string, number>;
}

/**
 * Idle dollars per month at batch interval `intervalSeconds`, shard-hours excluded: the coordinator
 * billed for every second of the month and invoked once a minute, plus the month's batches each
 * costing what `batch` measured (an idle batch's requests do not depend on the interval).
 * @example
 * ```ts
 * idlePerMonth({ requests: new Map([['dynamodb:PutItem', 7]]), workerMs: 0 }, 1).total; // ≈ 29.0
 * ```
 */
export function idlePerMonth(batch: IdleBatch, intervalSeconds: number, memory: Memory = DEPLOYED_MEMORY): CostBreakdown {
  if (!Number.isFinite(intervalSeconds) || intervalSeconds <= 0) throw new Error(`the batch interval must be a number of seconds > 0, got ${intervalSeconds}`);
  const coordinator = price({ requests: new Map([['lambda:Invoke', SECONDS_PER_MONTH / 60]]), workerMs: 0, coordinatorMs: SECONDS_PER_MONTH * 1000, putRecords: 0 }, memory);
  const invocation = price({ requests: batch.perInvocation ?? new Map(), workerMs: 0, coordinatorMs: 0, putRecords: 0 }, memory);
  const perBatch = price({ requests: batch.requests, workerMs: batch.workerMs, coordinatorMs: 0, putRecords: 0 }, memory);
  return scaled([
    [coordinator, 1],
    [invocation, SECONDS_PER_MONTH / 60],
    [perBatch, SECONDS_PER_MONTH / intervalSeconds],
  ]);
}

/**
 * Idle dollars per month in idle mode, shard-hours excluded: a coordinator invocation a minute that
 * only looks for input — its `Invoke`, its requests and its billed time, measured.
 * @example
 * ```ts
 * idleModePerMonth({ requests: new Map([['dynamodb:GetItem', 2]]), ms: 50 }).total; // ≈ 0.05
 * ```
 */
export function idleModePerMonth(look: { readonly requests: ReadonlyMap<string, number>; readonly ms: number }, memory: Memory = DEPLOYED_MEMORY): CostBreakdown {
  if (!Number.isFinite(look.ms) || look.ms < 0) throw new Error(`the look's ms must be a number >= 0, got ${look.ms}`);
  const requests = new Map(look.requests);
  requests.set('lambda:Invoke', (requests.get('lambda:Invoke') ?? 0) + 1);
  const one = price({ requests, workerMs: 0, coordinatorMs: Math.ceil(look.ms), putRecords: 0 }, memory);
  return scaled([[one, SECONDS_PER_MONTH / 60]]);
}

/** Shard-hours of `shards` provisioned shards for a month. */
export function shardsPerMonth(shards: number): number {
  if (!Number.isInteger(shards) || shards < 0) throw new Error(`shards must be a whole number >= 0, got ${shards}`);
  return shards * HOURS_PER_MONTH * PRICES.shardHour;
}

/**
 * Dollars per million records of a loaded stretch: what its batches used (requests, worker time,
 * the producer's PUT units) scaled to a million records. The coordinator is left out: it runs,
 * and is billed, whether records flow or not (its month is in {@link idlePerMonth}).
 * @example
 * ```ts
 * perMillionRecords({ requests: new Map(), workerMs: 0, coordinatorMs: 0, putRecords: 1000 }, 1000).total; // 0.014
 * ```
 */
export function perMillionRecords(usage: Usage, records: number, memory: Memory = DEPLOYED_MEMORY): CostBreakdown {
  if (!Number.isFinite(records) || records <= 0) throw new Error(`records must be a number > 0, got ${records}`);
  const p = price({ ...usage, coordinatorMs: 0 }, memory);
  return scaled([[p, 1e6 / records]]);
}
