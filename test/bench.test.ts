import { describe, expect, it } from 'vitest';
import { runBench } from '../bench/index.ts';
import { formatReport } from '../bench/report.ts';

// Runs the benchmark suite on a small input. Timings depend on the machine, so this only checks
// that the suite works: both sides computed the same thing and the ratios are real numbers.
describe('bench', () => {
  it('quick run: Sluice agrees with the hand-written loops and every ratio is a positive number', async () => {
    const r = await runBench({ quick: true });
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
});
