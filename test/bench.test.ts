import { describe, expect, it } from 'vitest';
import { type BenchResult, runBench } from '../bench/index.ts';
import { formatReport } from '../bench/report.ts';
import { WORKER_IMPORT_TARGET_MS } from '../bench/bundles.ts';
import { WINDOW_INVERSE_TARGET } from '../bench/window.ts';
import { idleModePerMonth, idlePerMonth, perMillionRecords } from '../bench/cost.ts';
import { kplPutUnits } from '../bench/costRun.ts';

// Runs the benchmark suite on a small input. Timings depend on the machine, so this only checks
// that the suite works: both sides computed the same thing, and the figures reported follow from
// the samples taken. The quick run includes the AWS path section, on emulators it starts itself
// (vitest runs node with --openssl-legacy-provider, which s3rver needs).

/** The median of a non-empty list, computed here rather than with the bench's own helper. */
function medianOf(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

describe('kplPutUnits: the PUT payload units of a producer that aggregates as the KPL does', () => {
  it('packs 100-byte lines about 200 to a 25 KB unit, and a longer line starts the next unit', () => {
    expect(kplPutUnits([])).toBe(0);
    expect(kplPutUnits(Array.from({ length: 206 }, () => 'x'.repeat(100)))).toBe(1);
    expect(kplPutUnits(Array.from({ length: 207 }, () => 'x'.repeat(100)))).toBe(2);
    expect(kplPutUnits(['x'.repeat(20_000), 'y'.repeat(20_000)])).toBe(2);
  });
});

describe('bench', () => {
  // One quick run, shared by the tests below.
  let quick: Promise<BenchResult> | undefined;
  const quickRun = () => (quick ??= runBench({ quick: true }));

  it('quick run: Sluice agrees with the hand-written loops and every ratio is a positive number', { timeout: 90_000 }, async () => {
    const r = await quickRun();
    expect(r.wordCount.mismatch).toBeUndefined();
    expect(r.wordCount4.mismatch).toBeUndefined();
    expect(r.grep.mismatch).toBeUndefined();
    expect(r.emptyBatch.mismatch).toBeUndefined();
    expect(r.ok).toBe(true);
    for (const c of [r.wordCount, r.wordCount4, r.grep]) {
      expect(Number.isFinite(c.ratio)).toBe(true);
      expect(c.ratio).toBeGreaterThan(0);
      expect(c.hand.records).toBe(r.input.lines);
    }
    expect(r.input.words).toBeGreaterThan(r.input.lines);
    expect(r.input.errorLines).toBeGreaterThan(0);
    expect(Number.isFinite(r.emptyBatch.perBatchMs)).toBe(true);
    expect(r.emptyBatch.perBatchMs).toBeGreaterThanOrEqual(0);
    expect(formatReport(r)).toContain('word count: Sluice, 1 partition');
  });

  it('quick run: windowed counts agree with a recount, and each ratio and the inverse verdict follow from the timed samples', { timeout: 90_000 }, async () => {
    const r = await quickRun();
    const w = r.windowedCounts;
    expect(w.mismatch).toBeUndefined();
    expect(w.checkedKeys).toBe(w.config.keys);
    expect(w.config.longWindow).toBeGreaterThan(w.config.shortWindow);
    expect(w.config.fillBatches).toBeGreaterThanOrEqual(w.config.longWindow);
    // The ratio is recomputed from the samples, and the verdict from the ratio: a wrong median,
    // ratio or verdict fails here whatever the machine's speed.
    for (const c of [w.inverse, w.plain]) {
      expect(c.short.windowBatches).toBe(w.config.shortWindow);
      expect(c.long.windowBatches).toBe(w.config.longWindow);
      for (const v of [c.short, c.long]) {
        expect(v.samplesMs).toHaveLength(v.runs * w.config.timedBatches);
        expect(v.cpu.samplesMs).toHaveLength(v.samplesMs.length);
        expect(v.medianMs).toBe(medianOf(v.samplesMs));
        expect(v.medianMs).toBeGreaterThan(0);
      }
      expect(c.ratio).toBe(medianOf(c.long.samplesMs) / medianOf(c.short.samplesMs));
      expect(Number.isFinite(c.ratio)).toBe(true);
    }
    const met = w.inverse.ratio <= WINDOW_INVERSE_TARGET;
    expect(w.inverse.met).toBe(met);
    expect(w.plain.target).toBeUndefined();
    expect(w.plain.met).toBeUndefined();
    const report = formatReport(r);
    expect(report).toContain('windowed counts');
    expect(report).toContain(`inverse: ${w.config.longWindow}/${w.config.shortWindow} per-batch time ratio ≤ ${WINDOW_INVERSE_TARGET}: ${met ? 'yes' : 'NO'}`);
    expect(report).toContain('check windowed counts: ok');
  });

  it('quick run: each bundle is imported in fresh processes, its medians and the worker line follow from the samples, and the worker bundle is the smaller', { timeout: 90_000 }, async () => {
    const r = await quickRun();
    const b = r.bundles;
    expect(b.mismatch).toBeUndefined();
    expect(b.worker.exports).toEqual(['worker']);
    expect(b.coordinator.exports).toEqual(['coordinator']);
    expect(b.old.exports).toEqual(['coordinator', 'worker']);
    for (const x of [b.worker, b.coordinator, b.old, b.workerWithSourceMaps]) {
      expect(x.samplesMs).toHaveLength(b.config.runs);
      expect(x.medianMs).toBe(medianOf(x.samplesMs));
      expect(x.medianMs).toBeGreaterThan(0);
      expect(x.wall.samplesMs).toHaveLength(b.config.runs);
      // The process outlives the import it timed.
      expect(Math.min(...x.wall.samplesMs)).toBeGreaterThan(Math.min(...x.samplesMs));
      expect(x.loadedBytes).toBeLessThanOrEqual(x.bytes);
      expect(x.mapBytes).toBeGreaterThan(0);
    }
    expect(b.ratio).toBe(b.worker.medianMs / b.old.medianMs);
    expect(b.met).toBe(b.worker.medianMs <= WORKER_IMPORT_TARGET_MS);
    // Sizes, not times: the worker's bundle holds less than the coordinator's, which holds less than the old one.
    expect(b.worker.bytes).toBeLessThan(b.coordinator.bytes);
    expect(b.coordinator.bytes).toBeLessThan(b.old.bytes);
    expect(b.old.loadedBytes).toBe(b.old.bytes);
    expect(Object.keys(b.clients.worker).sort()).toEqual(['@aws-sdk/client-kinesis', '@aws-sdk/client-s3']);
    expect(Object.keys(b.clients.coordinator)).toHaveLength(4);
    const lines = formatReport(r).split('\n');
    expect(lines).toContain(`worker bundle import ms: ${b.worker.medianMs.toFixed(1)}`);
    expect(lines).toContain(`old combined bundle import ms: ${b.old.medianMs.toFixed(1)} (baseline, same run)`);
    expect(lines.some((l) => l.startsWith(`worker ÷ old combined import time: ${b.ratio.toFixed(3)}`))).toBe(true);
    expect(lines).toContain('check bundles: ok (the worker bundle exports worker, the coordinator bundle coordinator, the old one both; the worker holds no DynamoDB or Lambda client)');
  });

  it('quick run: the AWS path counts every record once, and reports read rates, a ratio and empty-batch costs', { timeout: 90_000 }, async () => {
    const r = await quickRun();
    const a = r.aws!;
    expect(a).toBeDefined();
    expect(a.mismatch).toBeUndefined();
    const c = a.config;
    expect(c.lines).toBeLessThan(5_000);
    // Raw read: every record of every shard.
    expect(a.raw.records).toBe(c.lines);
    expect(a.input.perShard).toHaveLength(c.shards);
    expect(a.input.perShard.reduce((x, y) => x + y, 0)).toBe(c.lines);
    expect(a.raw.samplesMs).toHaveLength(c.reps);
    expect(a.raw.calls).toBeGreaterThanOrEqual(2 * c.shards);
    // End to end: each run consumed every record, over more than one batch, and saved counts equal to a direct count.
    expect(a.endToEnd.runs).toHaveLength(c.reps);
    expect(a.outputs).toHaveLength(c.reps);
    for (const run of a.endToEnd.runs) {
      expect(run.records).toBe(c.lines);
      expect(run.batches.length).toBeGreaterThan(1);
      expect(run.batches.reduce((x, b) => x + b.numRecords, 0)).toBe(c.lines);
      expect(run.ms).toBeGreaterThan(0);
      expect(run.busyMs).toBeGreaterThan(0);
      expect(run.requests.get('lambda:Invoke')).toBeGreaterThan(0);
    }
    for (const o of a.outputs) {
      expect(o.words).toBe(a.input.words);
      expect(o.distinctWords).toBe(a.input.distinctWords);
      expect(o.batches).toBeGreaterThan(1);
    }
    for (const x of [a.raw.recordsPerSec, a.endToEnd.recordsPerSec, a.endToEnd.ratio]) {
      expect(Number.isFinite(x)).toBe(true);
      expect(x).toBeGreaterThan(0);
    }
    // Empty batches: after the drain, and on schedule in a fresh job; what each one asks of every service.
    for (const e of [a.emptyAfterDrain, a.emptyOnSchedule]) {
      expect(e.batches).toBe(c.emptyBatches);
      expect(e.samplesMs).toHaveLength(c.emptyBatches);
      expect(e.medianMs).toBeGreaterThan(0);
      expect(e.minMs).toBeLessThanOrEqual(e.maxMs);
      // A quiet batch: its shards read (Kinesis), no worker invoked, nothing written to DynamoDB.
      expect([...e.requests.keys()].some((k) => k.startsWith('kinesis:'))).toBe(true);
      expect([...e.requests.keys()].filter((k) => k.startsWith('lambda:') || /^dynamodb:(PutItem|UpdateItem|DeleteItem)/.test(k))).toEqual([]);
      // An empty batch writes no part and no _SUCCESS (writeEmptyBatches is off).
      expect([...e.requests.keys()].filter((k) => k.startsWith('s3:PUT'))).toEqual([]);
    }
    const report = formatReport(r);
    expect(report).toContain('AWS path');
    expect(report).toContain('raw read: GetShardIterator + GetRecords loop');
    expect(report).toContain('Sluice end to end: word count to S3');
    expect(report).toMatch(/ratio = end-to-end records\/s ÷ raw-read records\/s = \d+\.\d{3}/);
    expect(report).toContain('after the drain (same job, back to back)');
    expect(report).toContain('on schedule (fresh job, empty stream)');
    expect(report).toMatch(/an empty batch (after the drain )?makes/);
    expect(report).toContain('check AWS path word counts: ok');
  });

  it('quick run: the cost section counts each stretch, prices it with the pricing module, and prints the issue\'s four lines', { timeout: 90_000 }, async () => {
    const r = await quickRun();
    const c = r.cost!;
    expect(c).toBeDefined();
    expect(c.mismatch).toBeUndefined();
    expect(c.idle.batches).toBe(c.config.idleBatches);
    expect(c.idleToday.batches).toBe(c.config.idleBatches);
    // The defaults run an empty batch inside the coordinator and write nothing; today's path fans out and writes the empty parts.
    expect(c.idle.perBatch.requests.get('lambda:Invoke') ?? 0).toBe(0);
    expect(c.idle.perBatch.workerMs).toBe(0);
    expect(c.idleToday.perBatch.requests.get('lambda:Invoke')).toBeGreaterThan(0);
    expect(c.idleToday.perBatch.requests.get('s3:PUT')).toBe(c.config.reducePartitions + 1);
    expect(c.idleToday.perBatch.workerMs).toBeGreaterThan(0);
    // The figures are the pricing module's on the counted requests.
    expect(c.idle.perMonth).toEqual(idlePerMonth(c.idle.perBatch, c.config.batchIntervalMs / 1000));
    expect(c.idleToday.perMonth.total).toBeGreaterThan(c.idle.perMonth.total);
    expect(c.loaded.records).toBe(c.config.loadedLines);
    // The producer's PUT units as the KPL aggregates 100-byte lines: about 200 to a 25 KB unit.
    expect(c.loaded.putUnitsSingly).toBe(c.config.loadedLines);
    expect(c.loaded.usage.putRecords).toBeGreaterThan(0);
    expect(c.loaded.usage.putRecords).toBeLessThan(c.config.loadedLines / 100);
    expect(c.loaded.perMillion).toEqual(perMillionRecords(c.loaded.usage, c.loaded.records));
    const lines = formatReport(r).split('\n');
    const figure = (prefix: string) => {
      const line = lines.find((l) => l.startsWith(prefix));
      expect(line, prefix).toBeDefined();
      return Number(/^(\d+(\.\d+)?(e-?\d+)?)/.exec(line!.slice(prefix.length))?.[1]);
    };
    expect(figure('idle $/month at 1 s batches, excluding shard-hours: ')).toBeCloseTo(c.idle.perMonth.total, 2);
    expect(lines.find((l) => l.startsWith('idle $/month at 1 s batches'))).toContain(`(today's path, same run: ${c.idleToday.perMonth.total.toFixed(2)};`);
    // Idle mode: the job went idle, and each look after wrote nothing and invoked no worker.
    expect(c.idleMode.looks).toBeGreaterThan(0);
    expect([...c.idleMode.perLook.requests.keys()].filter((k) => k.startsWith('lambda:') || k.startsWith('s3:') || /^dynamodb:(PutItem|UpdateItem|DeleteItem)/.test(k))).toEqual([]);
    expect(c.idleMode.perMonth).toEqual(idleModePerMonth(c.idleMode.perLook));
    expect(figure('idle $/month in idle mode, excluding shard-hours: ')).toBeCloseTo(c.idleMode.perMonth.total, 2);
    expect(figure('$ per million records (100-byte lines, word count): ')).toBeCloseTo(c.loaded.perMillion.total, 3);
    expect(figure('worker bundle import ms: ')).toBe(Number(r.bundles.worker.medianMs.toFixed(1)));
    expect(lines.some((l) => l.startsWith('check cost: ok'))).toBe(true);
  });
});
