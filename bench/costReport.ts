/**
 * The cost section's report lines, and the JSON the chart script reads (bench/results/cost.json,
 * written by a full `npm run bench`; `node bin/run-ts.mjs scripts/costChart.ts` draws the
 * README's chart from it).
 */
import { cpus, loadavg } from 'node:os';
import { type CostBreakdown, HOURS_PER_MONTH, PRICES } from './cost.ts';
import { COST_TARGETS, type CostResult, ISSUE_TODAY } from './costRun.ts';

const usd = (x: number) => (x >= 1 ? x.toFixed(2) : x >= 0.01 ? x.toFixed(4) : x.toPrecision(2));
const num = (x: number) => (Number.isInteger(x) ? String(x) : x.toFixed(2));

/** Pads columns: the first left-aligned, the rest right-aligned. */
function table(rows: readonly (readonly string[])[]): string[] {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows.map((r) =>
    r
      .map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c])))
      .join('  ')
      .trimEnd(),
  );
}

const COMPONENTS = [
  ['coordinator (whole month: 256 MB defaults, 512 MB today)', 'coordinator'],
  ['workers (GB-seconds)', 'workers'],
  ['Lambda invocations', 'invocations'],
  ['DynamoDB requests', 'dynamodb'],
  ['S3 requests', 's3'],
  ['Kinesis (PUT units)', 'kinesis'],
  ['total', 'total'],
] as const;

function byComponent(columns: readonly CostBreakdown[]): string[][] {
  return COMPONENTS.map(([label, key]) => [label, ...columns.map((c) => usd(c[key]))]);
}

/** The section's lines, the issue's four among them. */
export function formatCost(r: CostResult, workerImportMs?: number): string[] {
  const c = r.config;
  const out: string[] = [];
  const interval = `${c.batchIntervalMs / 1000} s`;
  out.push(
    `cost — the AWS path's word count (kinesisStream → flatMap → map → reduceByKey → saveAsTextFiles(s3://)), ${c.shards} shards, ${c.reducePartitions} reduce partitions, ` +
      `${interval} batches, on the emulators; coordinator ${r.memory.coordinatorGb * 1024} MB, worker ${r.memory.workerGb * 1024} MB (the construct's defaults); prices of bench/cost.ts (the README's)`,
  );
  out.push(
    `method: every request reaching the emulators counted by service:operation; worker invocations timed around the handler (rounded up to a ms, as billed); ` +
      `idle: ${c.idleBatches} batches per stretch on an empty stream after 1 left out, per batch = mean; loaded: ${c.loadedLines.toLocaleString('en-US')} lines put first, ` +
      `then the job until it consumed them (${r.loaded.batches} batches); a month = ${HOURS_PER_MONTH} h`,
  );
  out.push('');
  const ops = [...new Set([...r.idle.perBatch.requests.keys(), ...r.idleToday.perBatch.requests.keys()])].sort();
  const reqRows: string[][] = [['idle, per batch (mean)', 'defaults', "today's path"]];
  for (const op of ops) reqRows.push([op, num(r.idle.perBatch.requests.get(op) ?? 0), num(r.idleToday.perBatch.requests.get(op) ?? 0)]);
  reqRows.push(['worker ms billed', num(r.idle.perBatch.workerMs), num(r.idleToday.perBatch.workerMs)]);
  reqRows.push(['coordinator busy ms (median)', r.idle.coordinatorBusyMs.toFixed(1), r.idleToday.coordinatorBusyMs.toFixed(1)]);
  const invocationOps = [...new Set([...(r.idle.perBatch.perInvocation?.keys() ?? []), ...(r.idleToday.perBatch.perInvocation?.keys() ?? [])])].sort();
  reqRows.push(['idle, per coordinator invocation (a minute), outside its batches', '', '']);
  for (const op of invocationOps) reqRows.push([op, num(r.idle.perBatch.perInvocation?.get(op) ?? 0), num(r.idleToday.perBatch.perInvocation?.get(op) ?? 0)]);
  out.push(...table(reqRows));
  out.push("(today's path: coordinatorBatchRecords: 0 and writeEmptyBatches: true, the path before this issue, measured in the same run)");
  out.push('');
  out.push(...table([[`idle $/month at ${interval}, excluding shard-hours`, 'defaults', "today's path"], ...byComponent([r.idle.perMonth, r.idleToday.perMonth])]));
  out.push('');
  const idleMet = r.idle.perMonth.total <= COST_TARGETS.idlePerMonth;
  out.push(
    `idle $/month at 1 s batches, excluding shard-hours: ${usd(r.idle.perMonth.total)} ` +
      `(today's path, same run: ${usd(r.idleToday.perMonth.total)}; target ≤ ${COST_TARGETS.idlePerMonth}: ${idleMet ? 'yes' : 'NO'})`,
  );
  const m = r.idleMode;
  const modeMet = m.perMonth.total <= COST_TARGETS.idleModePerMonth;
  out.push(
    `idle $/month in idle mode, excluding shard-hours: ${usd(m.perMonth.total)} ` +
      `(idleAfter ${m.idleAfter} ms: idle after ${m.batchesToIdle} batches; then a look a minute, ${m.perLook.ms.toFixed(0)} ms median, ` +
      `${[...m.perLook.requests].map(([op, n]) => `${op} ${num(n)}`).join(', ') || 'no request'}; target ≤ ${COST_TARGETS.idleModePerMonth}: ${modeMet ? 'yes' : 'NO'})`,
  );
  const coord = r.idle.perMonth.coordinator;
  out.push(
    `note: the coordinator alone is $${usd(coord)} of the ${usd(r.idle.perMonth.total)} (${((coord / r.idle.perMonth.total) * 100).toFixed(0)}%): ` +
      `it is billed for every second it sleeps between batches (${r.memory.coordinatorGb} GB × 60 s a minute), whatever the batches do. ` +
      `Idle mode stops it between looks; a smaller coordinator lowers it in proportion to its memory.`,
  );
  out.push('');
  const l = r.loaded;
  const perM = 1e6 / Math.max(1, l.records);
  const loadRows: string[][] = [['loaded, per million records', 'requests', '$']];
  for (const [op, n] of l.usage.requests) loadRows.push([op, Math.round(n * perM).toLocaleString('en-US'), '']);
  loadRows.push(['worker ms billed', Math.round(l.usage.workerMs * perM).toLocaleString('en-US'), '']);
  loadRows.push(['Kinesis PUT payload units (the producer, aggregating as the KPL does)', Math.round(l.usage.putRecords * perM).toLocaleString('en-US'), '']);
  for (const [label, key] of COMPONENTS.slice(1)) loadRows.push([`$ ${label}`, '', usd(l.perMillion[key])]);
  out.push(...table(loadRows));
  const sluiceShare = l.perMillion.total - l.perMillion.kinesis;
  const loadMet = l.perMillion.total <= COST_TARGETS.perMillionRecords;
  const singly = sluiceShare + l.putUnitsSingly * perM * PRICES.kinesisPutUnit;
  out.push(
    `$ per million records (100-byte lines, word count): ${usd(l.perMillion.total)} ` +
      `(with the producer's records put singly, one PUT unit each: ${usd(singly)}; today, from the issue's text: ≈ ${ISSUE_TODAY.perMillionRecords}; target ≤ ${COST_TARGETS.perMillionRecords}: ${loadMet ? 'yes' : 'NO'})`,
  );
  out.push(
    `note: Sluice's own share (workers, invocations, DynamoDB, S3) is $${usd(sluiceShare)}; the rest, $${usd(l.perMillion.kinesis)}, is the producer's Kinesis PUT units ` +
      `as the KPL puts records by default, aggregated into one 25 KB unit (the source de-aggregates them; this stretch put them singly, which only costs Sluice's side more). ` +
      `Put singly, π = $${(PRICES.kinesisPutUnit * 1e6).toFixed(3)} per million records. ` +
      `The coordinator is not in it: it is billed the same with or without records (the idle figure). ` +
      `${l.records.toLocaleString('en-US')} records in ${l.batches} batches of up to ${(c.shards * 10_000).toLocaleString('en-US')} (a backlog: the per-batch requests are spread over full batches)`,
  );
  out.push(
    `shards: ${c.shards} provisioned × ${HOURS_PER_MONTH} h × $${PRICES.shardHour} = $${usd(r.shardsPerMonth)} per month on top of the idle figures (on-demand streams are priced per stream-hour and GB instead)`,
  );
  out.push(
    workerImportMs === undefined
      ? '(worker bundle import ms: printed by the bundles section, not run with --cost-only)'
      : `(worker bundle import ms: ${workerImportMs.toFixed(1)}, in the bundles section above; today, from the issue's text: ≈ ${ISSUE_TODAY.workerImportMs}; target ≤ ${COST_TARGETS.workerImportMs})`,
  );
  out.push(`check cost: ${r.mismatch === undefined ? `ok (every stretch ran its batches; the loaded job consumed all ${c.loadedLines.toLocaleString('en-US')} records)` : `MISMATCH: ${r.mismatch}`}`);
  return out;
}

/** What bench/results/cost.json holds: the measured per-batch figures, enough to price any interval again. */
export function costJson(r: CostResult, workerImportMs: number | undefined, when: Date = new Date()): unknown {
  const cpu = cpus();
  const stretch = (s: CostResult['idle']) => ({
    variant: s.variant,
    batches: s.batches,
    perBatch: { requests: Object.fromEntries(s.perBatch.requests), workerMs: s.perBatch.workerMs, perInvocation: Object.fromEntries(s.perBatch.perInvocation ?? []) },
    coordinatorBusyMs: s.coordinatorBusyMs,
    perMonthAtInterval: s.perMonth,
  });
  return {
    measured: when.toISOString().slice(0, 10),
    machine: `${cpu.length} CPU(s) (${cpu[0]?.model.trim() ?? 'unknown'}), load average ${loadavg()[0].toFixed(1)} at the end, node ${process.version}`,
    config: r.config,
    memory: r.memory,
    idle: stretch(r.idle),
    idleToday: stretch(r.idleToday),
    idleMode: { idleAfter: r.idleMode.idleAfter, batchesToIdle: r.idleMode.batchesToIdle, looks: r.idleMode.looks, perLook: { requests: Object.fromEntries(r.idleMode.perLook.requests), ms: r.idleMode.perLook.ms }, perMonth: r.idleMode.perMonth },
    loaded: {
      records: r.loaded.records,
      batches: r.loaded.batches,
      requests: Object.fromEntries(r.loaded.usage.requests),
      workerMs: r.loaded.usage.workerMs,
      putUnits: r.loaded.usage.putRecords,
      putUnitsSingly: r.loaded.putUnitsSingly,
      perMillion: r.loaded.perMillion,
    },
    shardsPerMonth: r.shardsPerMonth,
    workerImportMs: workerImportMs ?? null,
  };
}
