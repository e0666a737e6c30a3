/** The human-readable report of a bench run (plain text, fixed-width table). */
import { cpus } from 'node:os';
import type { AwsPathResult, EmptyBatches } from './aws.ts';
import type { BundleImport, BundlesResult } from './bundles.ts';
import { formatCost } from './costReport.ts';
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

const SERVICES: readonly (readonly [string, string])[] = [
  ['dynamodb', 'DynamoDB'],
  ['s3', 'S3'],
  ['lambda', 'Lambda'],
  ['kinesis', 'Kinesis'],
];

/** `DynamoDB 9 (UpdateItem 5, GetItem 1, …) · S3 8 (PUT 5, LIST 3) · …`, largest counts first. */
export function formatRequests(requests: ReadonlyMap<string, number>): string {
  const parts: string[] = [];
  const services = [...SERVICES, ...[...new Set([...requests.keys()].map((k) => k.split(':')[0]))].filter((s) => !SERVICES.some(([id]) => id === s)).map((s) => [s, s] as const)];
  for (const [id, label] of services) {
    const ops = [...requests].filter(([k]) => k.startsWith(`${id}:`)).map(([k, n]) => [k.slice(id.length + 1), n] as const);
    if (!ops.length) continue;
    ops.sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
    const total = ops.reduce((a, [, n]) => a + n, 0);
    parts.push(`${label} ${int.format(total)} (${ops.map(([op, n]) => `${op} ${int.format(n)}`).join(', ')})`);
  }
  return parts.length ? parts.join(' · ') : 'none';
}

const sameRequests = (a: ReadonlyMap<string, number>, b: ReadonlyMap<string, number>) => a.size === b.size && [...a].every(([k, n]) => b.get(k) === n);

function emptyRow(label: string, e: EmptyBatches): string[] {
  return [label, String(e.batches), ms(e.medianMs), `${ms(e.minMs)}–${ms(e.maxMs)}`, ms(e.processingMedianMs), e.percentOfInterval.toFixed(0), `${int.format(e.lateMs.first)} → ${int.format(e.lateMs.last)}`];
}

/** The "AWS path" section: what was measured, its tables, and the check. */
export function formatAwsPath(a: AwsPathResult): string[] {
  const c = a.config;
  const e2e = a.endToEnd;
  const out: string[] = [];
  out.push(
    `AWS path — kinesisStream → flatMap → map → reduceByKey (${c.reducePartitions} partitions) → saveAsTextFiles(s3://), run by createCoordinatorHandler + awsCoordinatorRuntime, ` +
      'tasks sent over the Lambda Invoke API to createWorkerHandler + awsWorkerRuntime',
  );
  out.push(
    `stack: kinesalite, dynalite, s3rver and a Lambda Invoke endpoint, fresh for this section, on 127.0.0.1 in this process (up with resources in ${(a.setup.stackMs / 1000).toFixed(1)} s, stopped at the end); ` +
      'every request they receive is counted',
  );
  out.push(
    `input: ${int.format(c.lines)} lines of ${c.lineBytes} B (${(a.input.bytes / 1e6).toFixed(1)} MB), ${int.format(a.input.words)} words (${int.format(a.input.distinctWords)} distinct), seed ${c.seed}; ` +
      `one ${c.shards}-shard stream (${a.input.perShard.map((n) => int.format(n)).join(' / ')} records per shard), filled before anything reads it in ${(a.setup.fillMs / 1000).toFixed(1)} s (PutRecords of 500)`,
  );
  out.push(
    `method: raw read = GetShardIterator(TRIM_HORIZON) + GetRecords (default limit) on each shard in turn until an empty page (${a.raw.calls} calls); ` +
      `end to end = a fresh job (own table and buckets, same stream) run by one coordinator invocation, batch interval ${c.batchIntervalMs} ms, ` +
      `maxRecordsPerBatch ${int.format(c.maxRecordsPerBatch)} (per shard), timed with ctx.addListener + performance.now() from the first batch's onBatchSubmitted ` +
      'to the onBatchCompleted (after commit and cleanup) of the batch that consumed the last record; ' +
      `median of ${c.reps} round(s) of one raw read then one end-to-end run, after 1 untimed raw read` +
      `${c.warmupLines > 0 ? ` and an untimed warm-up job of ${int.format(c.warmupLines)} lines on another stream` : ''}`,
  );
  out.push('');
  const rows: string[][] = [['AWS path', 'median ms', 'min–max ms', 'records/s', 'MB/s', 'ratio']];
  rows.push(['raw read: GetShardIterator + GetRecords loop', ms(a.raw.medianMs), `${ms(a.raw.minMs)}–${ms(a.raw.maxMs)}`, int.format(a.raw.recordsPerSec), a.raw.mbPerSec.toFixed(2), '']);
  rows.push(['Sluice end to end: word count to S3', ms(e2e.medianMs), `${ms(e2e.minMs)}–${ms(e2e.maxMs)}`, int.format(e2e.recordsPerSec), e2e.mbPerSec.toFixed(2), e2e.ratio.toFixed(3)]);
  out.push(table(rows));
  out.push(`ratio = end-to-end records/s ÷ raw-read records/s = ${e2e.ratio.toFixed(3)} (at the medians)`);
  e2e.runs.forEach((run, i) => {
    out.push(
      `end-to-end run ${i + 1}: ${ms(run.ms)} ms, ${run.batches.length} batches of ${run.batches.map((b) => int.format(b.numRecords)).join(' / ')} records in ${run.batches.map((b) => ms(b.wallMs)).join(' / ')} ms ` +
        `(busy ${ms(run.busyMs)} ms; submitted ${run.batches.map((b) => int.format(b.lateMs)).join(' / ')} ms after their batch times)`,
    );
  });
  const lastRun = e2e.runs[e2e.runs.length - 1];
  if (lastRun) out.push(`requests of run ${e2e.runs.length}'s batches together: ${formatRequests(lastRun.requests)}`);
  out.push('');
  const erows: string[][] = [['empty batches', 'batches', 'median ms', 'min–max ms', 'after cut ms', `% of ${c.batchIntervalMs} ms`, 'late ms (first → last)']];
  erows.push(emptyRow('after the drain (same job, back to back)', a.emptyAfterDrain));
  erows.push(emptyRow('on schedule (fresh job, empty stream)', a.emptyOnSchedule));
  out.push(table(erows));
  out.push(
    'ms = wall ms per batch, onBatchSubmitted → onBatchCompleted (lease renewal, cut, seal, stages, outputs, commit, cleanup); after cut = onBatchStarted → onBatchCompleted; ' +
      'late = how long after its batch time a batch was submitted',
  );
  if (sameRequests(a.emptyAfterDrain.requests, a.emptyOnSchedule.requests)) {
    out.push(`an empty batch makes (median per batch, both rows): ${formatRequests(a.emptyAfterDrain.requests)}`);
  } else {
    out.push(`an empty batch after the drain makes (median per batch): ${formatRequests(a.emptyAfterDrain.requests)}`);
    out.push(`an empty batch on schedule makes (median per batch): ${formatRequests(a.emptyOnSchedule.requests)}`);
  }
  const late = a.emptyAfterDrain.lateMs.first;
  if (late > c.batchIntervalMs) {
    out.push(
      `(info) the drain ran ${int.format(late)} ms past its batch times, so the empty batches after it run back to back; the Kinesis source paces GetRecords to one call ` +
        'per shard every 200 ms (Kinesis allows 5 reads/s per shard), so then each batch\'s reads wait out what is left of the 200 ms since the previous batch\'s',
    );
  } else {
    out.push('(info) the drain ended within its batch times, so the empty batches after it ran on schedule too');
  }
  out.push(
    `(info) AWS path took ${(a.elapsedMs / 1000).toFixed(1)} s; emulators, coordinator and workers share this process's ${cpus().length} CPU(s), so these are costs of Sluice's calls plus the emulators' work, not AWS latencies`,
  );
  out.push(
    `check AWS path word counts: ${
      a.mismatch === undefined
        ? `ok (each of ${a.outputs.length} run(s): the counts saved to S3, summed over its ${a.outputs.map((o) => o.batches).join(' / ')} batches, equal a direct count of the ${int.format(c.lines)} lines ` +
          `(${int.format(a.input.words)} words, ${int.format(a.input.distinctWords)} distinct); records consumed ${e2e.runs.map((r) => int.format(r.records)).join(' / ')}, raw read ${int.format(a.raw.records)})`
        : `MISMATCH: ${a.mismatch}`
    }`,
  );
  return out;
}

function bundleRow(label: string, b: BundleImport): string[] {
  return [label, int.format(b.bytes), int.format(b.loadedBytes), int.format(b.mapBytes), ms(b.medianMs), `${ms(b.minMs)}–${ms(b.maxMs)}`, ms(b.wall.medianMs)];
}

const kb = (bytes: number) => `${(bytes / 1000).toFixed(0)} kB`;
const clientList = (clients: Readonly<Record<string, number>>) =>
  Object.entries(clients)
    .map(([name, bytes]) => `${name.replace('@aws-sdk/', '')} ${kb(bytes)}`)
    .join(', ');

/** The "bundles" section: the import time of each deployment bundle against the old combined one. */
export function formatBundles(b: BundlesResult): string[] {
  const out: string[] = [];
  out.push(
    `bundles — ${b.config.entry} bundled as \`cdk deploy\` bundles it (cdk/bundle.ts: one bundle per function), against the old combined bundle ` +
      '(both handlers, all four AWS SDK clients, the SDK\'s CommonJS builds) built the old way in this run (bench/oldBundle.ts)',
  );
  out.push(
    `method: each bundle imported in a fresh node (only PATH in its environment), \`await import(file)\` timed inside the child with performance.now(); ` +
      `median of ${b.config.runs} run(s) per bundle, in interleaved rounds after 1 untimed round; process ms = the whole child process (start, import, exit), for information`,
  );
  out.push('');
  const rows: string[][] = [['bundle', 'JS bytes', 'loaded at start', 'map bytes', 'import median ms', 'min–max ms', 'process ms']];
  rows.push(bundleRow('worker', b.worker));
  rows.push(bundleRow('coordinator', b.coordinator));
  rows.push(bundleRow('old combined (baseline)', b.old));
  rows.push(bundleRow('(info) worker, source maps on', b.workerWithSourceMaps));
  out.push(table(rows));
  out.push(`worker bundle import ms: ${ms(b.worker.medianMs)}`);
  out.push(`old combined bundle import ms: ${ms(b.old.medianMs)} (baseline, same run)`);
  out.push(`worker ÷ old combined import time: ${b.ratio.toFixed(3)}; target worker ≤ ${b.target} ms (development machine): ${b.met ? 'yes' : 'NO'}`);
  out.push(`coordinator bundle import ms: ${ms(b.coordinator.medianMs)} (${(b.coordinator.medianMs / b.old.medianMs).toFixed(3)} of the old)`);
  out.push(`AWS SDK clients — worker: ${clientList(b.clients.worker)}; coordinator: ${clientList(b.clients.coordinator)}`);
  out.push(
    `(info) source maps on (SluiceJob sourceMaps: true) add ${ms(b.workerWithSourceMaps.medianMs - b.worker.medianMs)} ms to the worker's import; ` +
      `building took ${(b.buildMs.new / 1000).toFixed(1)} s for both new bundles, ${(b.buildMs.old / 1000).toFixed(1)} s for the old one; the section took ${(b.elapsedMs / 1000).toFixed(1)} s; ` +
      `1-minute load average ${b.loadBefore.toFixed(2)} before, ${b.loadAfter.toFixed(2)} after (other processes on the cores lengthen imports; the ratio holds better than the ms)`,
  );
  out.push(
    `check bundles: ${
      b.mismatch === undefined ? 'ok (the worker bundle exports worker, the coordinator bundle coordinator, the old one both; the worker holds no DynamoDB or Lambda client)' : `MISMATCH: ${b.mismatch}`
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
  out.push(...formatBundles(r.bundles));
  out.push('');
  if (r.aws) out.push(...formatAwsPath(r.aws));
  else out.push('AWS path: skipped (--skip-aws)');
  out.push('');
  if (r.cost) out.push(...formatCost(r.cost, r.bundles.worker.medianMs), '');
  return out.join('\n');
}
