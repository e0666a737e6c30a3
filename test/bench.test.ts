import { describe, expect, it } from 'vitest';
import { type BenchResult, runBench } from '../bench/index.ts';
import { formatReport } from '../bench/report.ts';

// Runs the benchmark suite on a small input. Timings depend on the machine, so this only checks
// that the suite works: both sides computed the same thing and the ratios are real numbers.
describe('bench', () => {
  // One quick run, shared by the tests below.
  let quick: Promise<BenchResult> | undefined;
  const quickRun = () => (quick ??= runBench({ quick: true }));

  it('quick run: Sluice agrees with the hand-written loops and every ratio is a positive number', async () => {
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

  it('quick run: windowed counts agree with a recount and every per-batch time and ratio is a positive number', async () => {
    const r = await quickRun();
    const w = r.windowedCounts;
    expect(w.mismatch).toBeUndefined();
    expect(w.checkedKeys).toBe(w.config.keys);
    expect(w.config.longWindow).toBeGreaterThan(w.config.shortWindow);
    expect(w.config.fillBatches).toBeGreaterThanOrEqual(w.config.longWindow);
    for (const c of [w.inverse, w.plain]) {
      expect(c.short.windowBatches).toBe(w.config.shortWindow);
      expect(c.long.windowBatches).toBe(w.config.longWindow);
      for (const v of [c.short, c.long]) {
        expect(v.samplesMs).toHaveLength(v.runs * w.config.timedBatches);
        expect(v.cpu.samplesMs).toHaveLength(v.samplesMs.length);
        expect(v.medianMs).toBeGreaterThan(0);
      }
      expect(Number.isFinite(c.ratio)).toBe(true);
      expect(c.ratio).toBeGreaterThan(0);
    }
    expect(w.inverse.target).toBe(1.3);
    expect(typeof w.inverse.met).toBe('boolean');
    expect(w.plain.target).toBeUndefined();
    const report = formatReport(r);
    expect(report).toContain('windowed counts');
    expect(report).toMatch(/inverse: \d+\/\d+ per-batch time ratio ≤ 1\.3: (yes|NO)/);
    expect(report).toContain('check windowed counts: ok');
  });
});
