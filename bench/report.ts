/** The human-readable report of a bench run (plain text, fixed-width table). */
import { cpus } from 'node:os';
import type { BenchResult, Comparison, DurableComparison, Throughput } from './index.ts';
import { BATCH_INTERVAL_MS } from './pipelines.ts';
import { WINDOW_FULL, type WindowedCountsResult, type WindowRun } from './window.ts';

const int = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const ms = (x: number) => x.toFixed(1);
const pct = (x: number) => (x >= 0.1 ? x.toFixed(2) : x.toPrecision(2));
const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;

/** Pads columns: the first left-aligned, the rest right-aligned. */
function table(rows: readonly (readonly string[])[]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows
    .map((r) =>
      r
        .map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c])))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

function side(label: string, t: Throughput): string[] {
  return [label, ms(t.medianMs), `${ms(t.minMs)}–${ms(t.maxMs)}`, int.format(t.recordsPerSec), t.mbPerSec.toFixed(1)];
}

function verdict(c: Comparison): string[] {
  const target = c.target === undefined ? '(info)' : `>= ${c.target}`;
  const met = c.met === undefined ? '' : c.met ? 'yes' : 'NO';
  return [c.ratio.toFixed(3), target, met];
}

/** What the informational durable rows measured, and how often. */
function durableNotes(r: BenchResult): string[] {
  const { config: cfg } = r;
  const d: DurableComparison = r.wordCountDurable;
  const v: DurableComparison = r.wordCountReceived;
  const fewer = cfg.infoReps < cfg.reps ? `, fewer than the other rows to keep the run short` : '';
  return [
    `(info) rows "durable state" and "received input": no target; median of ${cfg.infoReps} run(s)${fewer}, in the same interleaved rounds as the hand loop above;`,
    '(info)   1 partition, FsBlobStore + FsMetaStore (as `sluice run`) in a fresh temp directory per run, created before and removed after the timed call.',
    `(info)   durable state: queueStream input (never serialised); per run ${d.traffic.metaPuts} meta writes, ${d.traffic.blobPuts} blob writes (${mb(d.traffic.blobBytes)}).`,
    `(info)   received input: generatorStream input, each batch's lines written as a block file at the cut; per run ${v.traffic.inputBlocks} input blocks (${mb(v.traffic.inputBytes)}), ` +
      `${v.traffic.metaPuts} meta writes, ${v.traffic.blobPuts} blob writes (${mb(v.traffic.blobBytes)}) in all; ` +
      `${v.traffic.inputBlockReads} input blocks read back from file, the others served by the in-process cache of blocks cut (as in \`sluice run\` with 1 lane).`,
  ];
}

function windowRow(label: string, v: WindowRun): string[] {
  return [label, `${v.windowBatches} s`, String(v.runs), ms(v.medianMs), `${ms(v.minMs)}–${ms(v.maxMs)}`, ms(v.cpu.medianMs), (v.totalMs / 1000).toFixed(1)];
}

/** The "windowed counts" section: its table, the target line and the check. */
export function formatWindowedCounts(w: WindowedCountsResult): string[] {
  const c = w.config;
  const total = c.fillBatches + c.timedBatches + 1;
  const out: string[] = [];
  out.push(`windowed counts — queue → map(k => [k, 1]) → reduceByKeyAndWindow(+ [, −], W, 1 s) → foreachRDD (reads the output only at the check batch)`);
  out.push(
    `input: ${int.format(c.keys)} keys, ${int.format(c.recordsPerBatch)} records per batch (every key in every batch, the rest uniform over all keys), seed ${c.seed}; ` +
      `batch interval ${BATCH_INTERVAL_MS / 1000} s, ${w.partitions} state partitions, 1 in-process lane, in-memory stores`,
  );
  out.push(
    `method: each run ${total} batches — ${c.fillBatches} to fill the ${c.longWindow}-batch window, ${c.timedBatches} timed (batches ${c.fillBatches + 1}–${c.fillBatches + c.timedBatches}, the same for both windows), ` +
      `1 untimed check batch; wall ms per batch from onBatchStarted to onBatchCompleted (performance.now()), median of the timed batches; ` +
      `inverse: ${c.inverseRuns} run(s) per window${c.inverseRuns > 1 ? ', ordered short, long, long, short…, batches pooled' : ''}; ` +
      `CPU = process CPU ms per batch, all threads (less sensitive to other load)`,
  );
  if (c.keys === WINDOW_FULL.keys && c.recordsPerBatch === WINDOW_FULL.recordsPerBatch && c.longWindow === WINDOW_FULL.longWindow) {
    out.push(
      `sizes: ${int.format(c.keys)} keys × ${int.format(c.recordsPerBatch)} records per batch (not 2,000 × 20,000) to keep this part under ~60 s on 2 cores: ` +
        `the no-inverse ${c.longWindow}-batch run re-reads and re-reduces every slice in the window at every batch (~45,000 slice reads during its fill alone), ` +
        'a cost that grows with the keys per slice, not the records; at 2,000 keys that run alone took ~90 s (--window-keys / --window-records to change)',
    );
  }
  out.push('');
  const rows: string[][] = [['windowed counts', 'window', 'runs', 'median ms/batch', 'min–max ms', 'CPU ms/batch', 'run time s']];
  rows.push(windowRow('inverse (+, −): short window', w.inverse.short));
  rows.push(windowRow('inverse (+, −): long window', w.inverse.long));
  rows.push(windowRow('no inverse (+): short window', w.plain.short));
  rows.push(windowRow('no inverse (+): long window', w.plain.long));
  out.push(table(rows));
  const i = w.inverse;
  const p = w.plain;
  out.push(
    `inverse: ${c.longWindow}/${c.shortWindow} per-batch time ratio ≤ ${i.target}: ${i.met ? 'yes' : 'NO'} ` +
      `(${i.ratio.toFixed(3)} = ${ms(i.long.medianMs)} / ${ms(i.short.medianMs)} ms; CPU ratio ${i.cpuRatio.toFixed(3)})`,
  );
  out.push(
    `no inverse: ${c.longWindow}/${c.shortWindow} per-batch time ratio: ${p.ratio.toFixed(2)} (info, expected to grow with the window; ` +
      `${ms(p.long.medianMs)} / ${ms(p.short.medianMs)} ms; CPU ratio ${p.cpuRatio.toFixed(2)})`,
  );
  out.push(
    `(info) windowed counts took ${(w.elapsedMs / 1000).toFixed(1)} s; 1-minute load average ${w.loadBefore.toFixed(2)} before, ${w.loadAfter.toFixed(2)} after ` +
      `(other processes on the cores inflate wall times, not CPU times)`,
  );
  out.push(
    `check windowed counts: ${
      w.mismatch === undefined
        ? `ok (at the check batch, windows ${c.shortWindow} and ${c.longWindow}: same sorted [key, count] pairs with and without inverse, equal to a direct recount of the window's input, ${int.format(w.checkedKeys)} keys)`
        : `MISMATCH: ${w.mismatch}`
    }`,
  );
  return out;
}

export function formatReport(r: BenchResult): string {
  const { config: cfg, input } = r;
  const cpu = cpus();
  const out: string[] = [];
  out.push(`Sluice bench — node ${process.version} ${process.platform}/${process.arch}, ${cpu.length} CPU(s) (${cpu[0]?.model.trim() ?? 'unknown'})`);
  out.push(
    `input: ${cfg.batches} batches × ${int.format(cfg.linesPerBatch)} lines of 100 B = ${int.format(input.lines)} lines (${(input.bytes / 1e6).toFixed(1)} MB), ` +
      `${int.format(input.words)} words (${input.distinctWords} distinct), ${int.format(input.errorLines)} lines with ERROR; seed ${cfg.seed}`,
  );
  out.push(
    `method: median of ${cfg.reps} run(s) after ${cfg.warmups} warm-up, sides interleaved, ${cfg.gc ? 'full GC before each run' : 'no forced GC'}; ` +
      'records = input lines; ratio = Sluice records/s ÷ hand-loop records/s',
  );
  out.push('');
  const blank = ['', '', ''];
  const rows: string[][] = [['benchmark', 'median ms', 'min–max ms', 'records/s', 'MB/s', 'ratio', 'target', 'met']];
  rows.push([...side('word count: hand loop (split + Map)', r.wordCount.hand), ...blank]);
  rows.push([...side('word count: Sluice, 1 partition', r.wordCount.sluice), ...verdict(r.wordCount)]);
  rows.push([...side('word count: Sluice, 4 partitions (hash)', r.wordCount4.sluice), ...verdict(r.wordCount4)]);
  rows.push([...side('word count: Sluice, durable state (Fs stores)', r.wordCountDurable.sluice), ...verdict(r.wordCountDurable)]);
  rows.push([...side('word count: Sluice, received input (blocks)', r.wordCountReceived.sluice), ...verdict(r.wordCountReceived)]);
  rows.push([...side('grep: hand loop (includes)', r.grep.hand), ...blank]);
  rows.push([...side('grep: Sluice filter + collect', r.grep.sluice), ...verdict(r.grep)]);
  out.push(table(rows));
  out.push(...durableNotes(r));
  out.push('');
  const e = r.emptyBatch;
  out.push(
    `empty batch (queue → map → reduceByKey → collect, 1 lane): ${e.perBatchMs.toFixed(3)} ms/batch ` +
      `= ${pct(e.percentOfInterval)}% of a ${BATCH_INTERVAL_MS} ms batch interval ` +
      `= ${pct(e.percentOfWordCountBatch)}% of one ${int.format(cfg.linesPerBatch)}-line word-count batch ` +
      `(${e.batches} batches in ${ms(e.runMs.medianMs)} ms, minus ${ms(e.baselineMs.medianMs)} ms for a run of none)`,
  );
  const checks: [string, string | undefined, string][] = [
    ['word count (1 partition)', r.wordCount.mismatch, 'same counts as the hand loop'],
    ['word count (4 partitions)', r.wordCount4.mismatch, 'same counts as the hand loop'],
    ['word count (durable state)', r.wordCountDurable.mismatch, 'same counts as the hand loop'],
    [
      'word count (received input)',
      r.wordCountReceived.mismatch,
      `same counts as the hand loop, ${r.wordCountReceived.traffic.inputBlocks} input blocks written`,
    ],
    ['grep', r.grep.mismatch, 'same lines as the hand loop'],
    ['empty batches', e.mismatch, `${e.batches} empty outputs`],
  ];
  for (const [name, mismatch, good] of checks) out.push(`check ${name}: ${mismatch === undefined ? `ok (${good})` : `MISMATCH: ${mismatch}`}`);
  out.push('');
  out.push(...formatWindowedCounts(r.windowedCounts));
  out.push('');
  return out.join('\n');
}
