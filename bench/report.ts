/** The human-readable report of a bench run (plain text, fixed-width table). */
import { cpus } from 'node:os';
import type { BenchResult, Comparison, DurableComparison, Throughput } from './index.ts';
import { BATCH_INTERVAL_MS } from './pipelines.ts';

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
  return out.join('\n');
}
