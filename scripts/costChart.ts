/**
 * Draws the README's cost chart — idle dollars per month against the batch interval — from the
 * figures a full `npm run bench` wrote to bench/results/cost.json, priced with bench/cost.ts (the
 * prices the bench and the README use), and prints the README's table rows from the same figures.
 *
 *   npm run cost-chart                       # writes docs/cost-per-month.svg
 *   npm run cost-chart -- --in other.json --out chart.svg
 *
 * The SVG is plain markup (no dependency), which GitHub renders as an image. Each curve prices the
 * measured per-batch requests and worker time at every interval: an idle batch asks the same of
 * every service whatever the interval, so a month of batches costs (month ÷ interval) × one batch,
 * on top of the coordinator, which is billed for the whole month at any interval.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { type CostBreakdown, idlePerMonth, type IdleBatch, TODAY_MEMORY } from '../bench/cost.ts';

interface StretchJson {
  readonly perBatch: { readonly requests: Record<string, number>; readonly workerMs: number; readonly perInvocation?: Record<string, number> };
}

/** The parts of bench/results/cost.json the chart needs (see bench/costReport.ts, `costJson`). */
interface CostJson {
  readonly measured: string;
  readonly machine: string;
  readonly config: { readonly shards: number; readonly reducePartitions: number; readonly idleBatches: number; readonly loadedLines: number };
  readonly idle: StretchJson;
  readonly idleToday: StretchJson;
  /** Idle mode's month: a look a minute (absent in figures of earlier releases). */
  readonly idleMode?: { readonly perMonth: CostBreakdown };
  readonly loaded: { readonly perMillion: CostBreakdown };
  readonly shardsPerMonth: number;
}

/** Reads and checks the figures; a file that is not the bench's says what to run. */
export function readCostJson(text: string, file: string): CostJson {
  const bad = (what: string) => new Error(`${file}: ${what}; write it with a full \`npm run bench\` (or \`npm run bench -- --cost-only\`)`);
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw bad(`not JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  const d = data as Partial<CostJson>;
  for (const key of ['idle', 'idleToday'] as const) {
    const s = d[key];
    if (!s || typeof s.perBatch?.workerMs !== 'number' || typeof s.perBatch.requests !== 'object') throw bad(`no per-batch figures under "${key}"`);
  }
  if (typeof d.shardsPerMonth !== 'number' || !d.config || typeof d.loaded?.perMillion?.total !== 'number') throw bad('no config, shardsPerMonth or loaded.perMillion');
  return d as CostJson;
}

const batchOf = (s: StretchJson): IdleBatch => ({
  requests: new Map(Object.entries(s.perBatch.requests)),
  workerMs: s.perBatch.workerMs,
  perInvocation: new Map(Object.entries(s.perBatch.perInvocation ?? {})),
});

interface Series {
  readonly label: string;
  readonly color: string;
  readonly dash?: string;
  readonly at: (intervalSeconds: number) => number;
}

/** The chart's SVG markup. */
export function chartSvg(cost: CostJson): string {
  const now = batchOf(cost.idle);
  const today = batchOf(cost.idleToday);
  const shards = cost.config.shards;
  const series: Series[] = [
    { label: 'before (fan-out, empty parts)', color: '#b0413e', dash: '6 4', at: (b) => idlePerMonth(today, b, TODAY_MEMORY).total },
    { label: `defaults + ${shards} shards' hours`, color: '#6a51a3', at: (b) => idlePerMonth(now, b).total + cost.shardsPerMonth },
    { label: 'defaults, excl. shard-hours', color: '#2171b5', at: (b) => idlePerMonth(now, b).total },
    { label: 'coordinator alone (256 MB)', color: '#555555', dash: '2 3', at: (b) => idlePerMonth({ requests: new Map(), workerMs: 0 }, b).total },
  ];
  const idleMode = cost.idleMode?.perMonth.total;
  if (idleMode !== undefined) series.push({ label: 'idle mode, excl. shard-hours', color: '#238b45', at: () => idleMode });
  const W = 760;
  const H = 400;
  const m = { left: 60, right: 260, top: 40, bottom: 50 };
  const pw = W - m.left - m.right;
  const ph = H - m.top - m.bottom;
  const xMin = 1;
  const xMax = 60;
  const x = (b: number) => m.left + (Math.log(b / xMin) / Math.log(xMax / xMin)) * pw;
  const top = Math.max(...series.map((s) => s.at(1)));
  const step = top > 100 ? 20 : 10;
  const yMax = Math.ceil(top / step) * step;
  const y = (v: number) => m.top + ph - (v / yMax) * ph;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`);
  out.push(`<text x="${m.left}" y="22" font-size="14" font-weight="bold">Idle cost per month against batch interval (${shards} shards, ${cost.config.reducePartitions} reduce partitions)</text>`);
  for (let v = 0; v <= yMax; v += step) {
    out.push(`<line x1="${m.left}" x2="${m.left + pw}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${m.left - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end">$${v}</text>`);
  }
  for (const b of [1, 2, 5, 10, 20, 30, 60]) {
    out.push(`<line x1="${x(b).toFixed(1)}" x2="${x(b).toFixed(1)}" y1="${m.top}" y2="${m.top + ph}" stroke="#f0f0f0"/>`);
    out.push(`<text x="${x(b).toFixed(1)}" y="${m.top + ph + 16}" text-anchor="middle">${b} s</text>`);
  }
  out.push(`<line x1="${m.left}" x2="${m.left + pw}" y1="${m.top + ph}" y2="${m.top + ph}" stroke="#333"/>`);
  out.push(`<line x1="${m.left}" x2="${m.left}" y1="${m.top}" y2="${m.top + ph}" stroke="#333"/>`);
  out.push(`<text x="${m.left + pw / 2}" y="${H - 12}" text-anchor="middle">batch interval (log scale)</text>`);
  out.push(`<text transform="translate(16 ${m.top + ph / 2}) rotate(-90)" text-anchor="middle">$ per month (730 h)</text>`);
  // The issue's target for an idle month without shards.
  out.push(`<line x1="${m.left}" x2="${m.left + pw}" y1="${y(10).toFixed(1)}" y2="${y(10).toFixed(1)}" stroke="#2ca02c" stroke-dasharray="1 3" stroke-width="1.5"/>`);
  out.push(`<text x="${m.left + pw - 4}" y="${(y(10) - 4).toFixed(1)}" text-anchor="end" fill="#2ca02c">target ≤ $10 excluding shard-hours</text>`);
  const samples = Array.from({ length: 61 }, (_, i) => xMin * (xMax / xMin) ** (i / 60));
  series.forEach((s, i) => {
    const d = samples.map((b, k) => `${k === 0 ? 'M' : 'L'}${x(b).toFixed(1)},${y(s.at(b)).toFixed(1)}`).join(' ');
    out.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''}/>`);
    for (const b of [1, 10, 60]) out.push(`<circle cx="${x(b).toFixed(1)}" cy="${y(s.at(b)).toFixed(1)}" r="3" fill="${s.color}"/>`);
    const ly = m.top + 10 + i * 34;
    out.push(`<line x1="${m.left + pw + 14}" x2="${m.left + pw + 34}" y1="${ly}" y2="${ly}" stroke="${s.color}" stroke-width="2"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''}/>`);
    out.push(`<text x="${m.left + pw + 40}" y="${ly + 4}">${s.label.replace(/&/g, '&amp;')}</text>`);
    out.push(`<text x="${m.left + pw + 40}" y="${ly + 18}" fill="#555">$${s.at(1).toFixed(2)} at 1 s, $${s.at(60).toFixed(2)} at 60 s</text>`);
  });
  out.push(
    `<text x="${m.left + pw + 14}" y="${m.top + ph - 4}" fill="#555" font-size="11">measured ${cost.measured}, npm run bench</text>`,
    `<text x="${m.left + pw + 14}" y="${m.top + ph + 12}" fill="#555" font-size="11">per million records: $${cost.loaded.perMillion.total.toFixed(4)}</text>`,
  );
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

/** The README table's rows: idle per month at some intervals, by component. */
export function tableRows(cost: CostJson): string[] {
  const now = batchOf(cost.idle);
  const today = batchOf(cost.idleToday);
  const usd = (v: number) => `$${v.toFixed(2)}`;
  return [1, 10, 60].map((b) => {
    const c = idlePerMonth(now, b);
    const t = idlePerMonth(today, b, TODAY_MEMORY);
    return `| ${b} s | ${usd(c.total)} (coordinator ${usd(c.coordinator)}, DynamoDB ${usd(c.dynamodb)}, S3 ${usd(c.s3)}, Lambda invocations and worker time ${usd(c.workers + c.invocations)}) | ${usd(c.total + cost.shardsPerMonth)} | ${usd(t.total)} |`;
  });
}

function main(): void {
  const { values } = parseArgs({ options: { in: { type: 'string', default: 'bench/results/cost.json' }, out: { type: 'string', default: 'docs/cost-per-month.svg' } } });
  const cost = readCostJson(readFileSync(values.in, 'utf8'), values.in);
  writeFileSync(values.out, chartSvg(cost));
  process.stdout.write(`${values.out} written from ${values.in} (measured ${cost.measured} on ${cost.machine})\n`);
  process.stdout.write(`README rows (interval | idle excl. shards | idle with ${cost.config.shards} shards | today's path excl. shards):\n${tableRows(cost).join('\n')}\n`);
}

if (process.argv[1]?.endsWith('costChart.ts')) main();
