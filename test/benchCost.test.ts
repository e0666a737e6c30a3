import { describe, expect, it } from 'vitest';
import { chartSvg, readCostJson, tableRows } from '../scripts/costChart.ts';
import { DEPLOYED_MEMORY, HOURS_PER_MONTH, idleModePerMonth, idlePerMonth, perMillionRecords, price, PRICES, requestPrice, SECONDS_PER_MONTH, shardsPerMonth, TODAY_MEMORY } from '../bench/cost.ts';

// The pricing of the bench's cost section, checked against figures worked out by hand from the
// README's prices (us-east-1, arm64): λ $0.0000133334 per GB-s, ρ $0.20 per million invocations,
// δ $0.625 per million writes, σ $0.005 per 1,000 PUT/LIST, γ $0.0004 per 1,000 GET, κ $0.015 per
// shard-hour, π $0.014 per million PUT units; a month of 730 h = 2,628,000 s.

describe('bench cost pricing', () => {
  it('holds the README prices and a 730-hour month', () => {
    expect(PRICES.lambdaGbSecond).toBe(0.0000133334);
    expect(PRICES.lambdaInvocation * 1e6).toBeCloseTo(0.2, 12);
    expect(PRICES.dynamoWrite * 1e6).toBeCloseTo(0.625, 12);
    expect(PRICES.s3Put * 1000).toBeCloseTo(0.005, 12);
    expect(PRICES.shardHour).toBe(0.015);
    expect(PRICES.kinesisPutUnit * 1e6).toBeCloseTo(0.014, 12);
    expect(HOURS_PER_MONTH).toBe(730);
    expect(SECONDS_PER_MONTH).toBe(2_628_000);
    expect(DEPLOYED_MEMORY).toEqual({ coordinatorGb: 0.25, workerGb: 1 });
    expect(TODAY_MEMORY).toEqual({ coordinatorGb: 0.5, workerGb: 1 });
  });

  it('prices each kind of request as the README counts it', () => {
    expect(requestPrice('dynamodb:UpdateItem').component).toBe('dynamodb');
    expect(requestPrice('dynamodb:UpdateItem').dollars).toBeCloseTo(0.625e-6, 15);
    expect(requestPrice('dynamodb:GetItem').dollars).toBeCloseTo(0.625e-6, 15); // a read counted as a write: an upper bound
    expect(requestPrice('s3:PUT').dollars).toBeCloseTo(5e-6, 15);
    expect(requestPrice('s3:LIST').dollars).toBeCloseTo(5e-6, 15);
    expect(requestPrice('s3:GET').dollars).toBeCloseTo(4e-7, 15);
    expect(requestPrice('s3:DELETE (multi)').dollars).toBe(0);
    expect(requestPrice('kinesis:GetRecords')).toEqual({ component: 'kinesis', dollars: 0 });
    expect(requestPrice('lambda:Invoke').component).toBe('invocations');
    expect(requestPrice('lambda:Invoke').dollars).toBeCloseTo(0.2e-6, 15);
  });

  it('refuses a request it has no price for, and counts that are not counts', () => {
    expect(() => requestPrice('sqs:SendMessage')).toThrow(/no price for request "sqs:SendMessage": name it service:operation/);
    expect(() => requestPrice('lambda:ListFunctions')).toThrow(/no price for request/);
    expect(() => price({ requests: new Map([['s3:PUT', -1]]), workerMs: 0, coordinatorMs: 0, putRecords: 0 })).toThrow('request count of s3:PUT must be a number >= 0, got -1');
    expect(() => price({ requests: new Map(), workerMs: Number.NaN, coordinatorMs: 0, putRecords: 0 })).toThrow('workerMs must be a number >= 0, got NaN');
    expect(() => idlePerMonth({ requests: new Map(), workerMs: 0 }, 0)).toThrow('the batch interval must be a number of seconds > 0, got 0');
    expect(() => perMillionRecords({ requests: new Map(), workerMs: 0, coordinatorMs: 0, putRecords: 0 }, 0)).toThrow('records must be a number > 0, got 0');
    expect(() => shardsPerMonth(1.5)).toThrow('shards must be a whole number >= 0, got 1.5');
  });

  it('prices a usage by component', () => {
    // 8 invokes, 7 DynamoDB, 5 S3 PUTs, 2 S3 GETs, 9 Kinesis reads, 400 ms of 1 GB worker, 60 s of 0.5 GB coordinator, 1000 records put.
    const requests = new Map([
      ['lambda:Invoke', 8],
      ['dynamodb:UpdateItem', 7],
      ['s3:PUT', 5],
      ['s3:GET', 2],
      ['kinesis:GetRecords', 9],
    ]);
    const p = price({ requests, workerMs: 400, coordinatorMs: 60_000, putRecords: 1000 });
    expect(p.invocations).toBeCloseTo(8 * 0.2e-6, 15); // 0.0000016
    expect(p.dynamodb).toBeCloseTo(7 * 0.625e-6, 15); // 0.000004375
    expect(p.s3).toBeCloseTo(5 * 5e-6 + 2 * 4e-7, 15); // 0.0000258
    expect(p.workers).toBeCloseTo(0.4 * 1 * 0.0000133334, 15); // 0.00000533336
    expect(p.coordinator).toBeCloseTo(60 * 0.25 * 0.0000133334, 15); // 0.000200001
    expect(p.kinesis).toBeCloseTo(1000 * 0.014e-6, 15); // 0.000014
    expect(p.total).toBeCloseTo(0.0000016 + 0.000004375 + 0.0000258 + 0.00000533336 + 0.000200001 + 0.000014, 14);
  });

  it('an idle month: the coordinator all month plus a month of measured batches', () => {
    // 1 s batches of 7 DynamoDB requests and nothing else, a 512 MB coordinator (the path before):
    // coordinator 2,628,000 s × 0.5 GB × λ = $17.5201 + 43,800 invocations × ρ = $0.00876;
    // DynamoDB 2,628,000 × 7 × δ = $11.4975.
    const m = idlePerMonth({ requests: new Map([['dynamodb:UpdateItem', 7]]), workerMs: 0 }, 1, TODAY_MEMORY);
    expect(m.coordinator).toBeCloseTo(17.5201, 3);
    expect(m.invocations).toBeCloseTo(0.00876, 6);
    expect(m.dynamodb).toBeCloseTo(11.4975, 4);
    expect(m.total).toBeCloseTo(29.0264, 3);
    // Today's path at 1 s: + 8 invokes ($4.2048), 5 S3 PUTs ($65.70) and 50 ms of workers ($1.7520).
    const today = idlePerMonth({ requests: new Map([['dynamodb:UpdateItem', 7], ['lambda:Invoke', 8], ['s3:PUT', 5]]), workerMs: 50 }, 1, TODAY_MEMORY);
    expect(today.s3).toBeCloseTo(65.7, 4);
    expect(today.invocations).toBeCloseTo(4.2048 + 0.00876, 4);
    expect(today.workers).toBeCloseTo(1.75201, 4);
    // At 60 s the batches cost a sixtieth; the coordinator the same.
    const slow = idlePerMonth({ requests: new Map([['dynamodb:UpdateItem', 7]]), workerMs: 0 }, 60, TODAY_MEMORY);
    expect(slow.dynamodb).toBeCloseTo(11.4975 / 60, 6);
    expect(slow.coordinator).toBe(m.coordinator);
  });

  it('an idle month with quiet batches: a 256 MB coordinator, the lease twice a minute, nothing per batch', () => {
    // Coordinator 2,628,000 s × 0.25 GB × λ = $8.76005; 43,800 invocations × (ρ + 2 writes + 2 reads, all as δ) = $0.00876 + $0.1095.
    const m = idlePerMonth({ requests: new Map([['kinesis:GetRecords', 4]]), workerMs: 0, perInvocation: new Map([['dynamodb:UpdateItem', 2], ['dynamodb:GetItem', 2]]) }, 1);
    expect(m.coordinator).toBeCloseTo(8.76005, 4);
    expect(m.dynamodb).toBeCloseTo(0.1095, 6);
    expect(m.total).toBeCloseTo(8.76005 + 0.00876 + 0.1095, 4);
    // Idle mode: a 26 ms look a minute with 2 reads: 43,800 × (ρ + 26 ms × 0.25 GB × λ + 2 δ) = $0.00876 + $0.003796 + $0.05475.
    const look = idleModePerMonth({ requests: new Map([['dynamodb:GetItem', 2], ['kinesis:GetRecords', 4]]), ms: 25.4 });
    expect(look.invocations).toBeCloseTo(0.00876, 6);
    expect(look.coordinator).toBeCloseTo(43_800 * 0.026 * 0.25 * 0.0000133334, 6);
    expect(look.dynamodb).toBeCloseTo(0.05475, 6);
    expect(() => idleModePerMonth({ requests: new Map(), ms: -1 })).toThrow("the look's ms must be a number >= 0, got -1");
  });

  it('per million records leaves the coordinator out and scales the stretch', () => {
    // 200k records: 40 invokes, 50 DynamoDB, 25 S3 PUTs, 20 s of workers, 200k PUT units.
    const requests = new Map([['lambda:Invoke', 40], ['dynamodb:PutItem', 50], ['s3:PUT', 25]]);
    const p = perMillionRecords({ requests, workerMs: 20_000, coordinatorMs: 999_999, putRecords: 200_000 }, 200_000);
    expect(p.coordinator).toBe(0);
    expect(p.invocations).toBeCloseTo(200 * 0.2e-6, 12); // 0.00004
    expect(p.dynamodb).toBeCloseTo(250 * 0.625e-6, 12); // 0.00015625
    expect(p.s3).toBeCloseTo(125 * 5e-6, 12); // 0.000625
    expect(p.workers).toBeCloseTo(100 * 0.0000133334, 12); // 0.00133334
    expect(p.kinesis).toBeCloseTo(0.014, 12);
    expect(p.total).toBeCloseTo(0.00004 + 0.00015625 + 0.000625 + 0.00133334 + 0.014, 12);
    expect(shardsPerMonth(4)).toBeCloseTo(43.8, 10);
  });

  describe('the chart script', () => {
    const figures = {
      measured: '2026-01-01',
      machine: 'test',
      config: { shards: 4, reducePartitions: 4, idleBatches: 60, loadedLines: 200_000 },
      idle: { perBatch: { requests: { 'dynamodb:UpdateItem': 7 }, workerMs: 0 } },
      idleToday: { perBatch: { requests: { 'dynamodb:UpdateItem': 7, 'lambda:Invoke': 8, 's3:PUT': 5 }, workerMs: 50 } },
      loaded: { perMillion: { coordinator: 0, workers: 0, invocations: 0, dynamodb: 0, s3: 0, kinesis: 0.014, total: 0.014 } },
      shardsPerMonth: 43.8,
    };

    it('draws every curve from the figures, priced by the pricing module', () => {
      const svg = chartSvg(readCostJson(JSON.stringify(figures), 'cost.json'));
      expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
      expect(svg.match(/<path /g)).toHaveLength(4);
      // Hand-computed above, the defaults with a 256 MB coordinator: $8.76 + $0.01 + $11.50 = $20.27 idle at 1 s;
      // + $43.80 of shards = $64.07; today's path (512 MB) $29.03 + 4.20 + 65.70 + 1.75 = $100.68.
      expect(svg).toContain('$20.27 at 1 s');
      expect(svg).toContain('$64.07 at 1 s');
      expect(svg).toContain('$100.68 at 1 s');
      expect(svg).toContain('$8.77 at 1 s, $8.77 at 60 s'); // the coordinator alone, whatever the interval
      expect(tableRows(readCostJson(JSON.stringify(figures), 'cost.json'))[0]).toMatch(/^\| 1 s \| \$20\.27 \(coordinator \$8\.76, DynamoDB \$11\.50, S3 \$0\.00, .*\| \$64\.07 \| \$100\.68 \|$/);
      // With idle mode's month in the figures, its line too.
      const withIdleMode = chartSvg(readCostJson(JSON.stringify({ ...figures, idleMode: { perMonth: { coordinator: 0, workers: 0, invocations: 0, dynamodb: 0, s3: 0, kinesis: 0, total: 0.07 } } }), 'cost.json'));
      expect(withIdleMode.match(/<path /g)).toHaveLength(5);
      expect(withIdleMode).toContain('$0.07 at 1 s, $0.07 at 60 s');
    });

    it('refuses a file that is not the bench\'s figures, saying how to write one', () => {
      expect(() => readCostJson('{', 'x.json')).toThrow(/^x\.json: not JSON .*; write it with a full `npm run bench`/);
      expect(() => readCostJson('{}', 'x.json')).toThrow('x.json: no per-batch figures under "idle"; write it with a full `npm run bench`');
      expect(() => readCostJson(JSON.stringify({ ...figures, shardsPerMonth: undefined }), 'x.json')).toThrow('x.json: no config, shardsPerMonth or loaded.perMillion');
    });
  });
});
