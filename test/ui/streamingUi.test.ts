import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BatchInfo } from '../../lib/core/listener.ts';
import { buildGraph } from '../../lib/api/job.ts';
import { planStages } from '../../lib/plan/describePlan.ts';
import { loadJob } from '../../lib/node/loadJob.ts';
import { ROOT, runSluice, serveSluice } from '../helpers/cli.ts';

// The Streaming UI in a real browser (Debian's chromium, driven by playwright-core; `.ci/run`
// installs it): `sluice run --ui` on a job with a shuffle, a window and dead letters, then the
// page's timelines against the job's own listener, a batch page, a stage, the job graph, and
// `sluice ui` over the same state once the job has stopped. Screenshots go to out/screenshots/
// (SLUICE_SCREENSHOTS names another folder: `npm run screenshots` writes the README's).

const JOB = join(ROOT, 'test/fixtures/ui-job.ts');
const SHOTS = process.env.SLUICE_SCREENSHOTS ?? join(ROOT, 'out/screenshots');
const INTERVAL_S = 0.25;

let dir: string;
let browser: Browser;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sluice-ui-'));
  await mkdir(SHOTS, { recursive: true });
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-sync'],
  });
});

afterAll(async () => {
  await browser?.close();
  await rm(dir, { recursive: true, force: true });
});

/** The BatchInfo lines the job's listener wrote so far. */
async function listened(file: string): Promise<BatchInfo[]> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter((l) => l.endsWith('}'))
    .map((l) => JSON.parse(l) as BatchInfo);
}

/** What the page's four timelines show, by chart: the batch times and values. */
type Charts = Record<'inputRate' | 'schedulingDelay' | 'processingDelay' | 'totalDelay', { times: number[]; values: number[] }>;
const charts = (page: Page) => page.evaluate(() => (globalThis as unknown as { sluiceCharts: Charts }).sluiceCharts);

async function newPage(): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1360, height: 1000 } });
  page.on('pageerror', (e) => {
    throw e;
  });
  return page;
}

describe('the Streaming UI', () => {
  it('sluice run --ui: timelines with one point per batch carrying the listener values, the batch table, a batch page with its stage graph and tasks, the job graph', { timeout: 120_000 }, async () => {
    const stateDir = join(dir, 'state');
    const listener = join(dir, 'listener.jsonl');
    const run = serveSluice(['run', JOB, '--ui', '0', '--state-dir', stateDir, '--quiet'], { env: { SLUICE_UI_LISTENER: listener } });
    try {
      const url = await run.url;
      await expect.poll(async () => (await listened(listener)).length, { timeout: 60_000, interval: 200 }).toBeGreaterThanOrEqual(8);

      const page = await newPage();
      await page.goto(url);
      await page.waitForSelector('body[data-ready="#/"]');
      // The page polls every second: wait until it shows at least 8 batches.
      await page.waitForFunction(() => ((globalThis as unknown as { sluiceCharts: Charts }).sluiceCharts.totalDelay?.times.length ?? 0) >= 8);
      const shown = await charts(page);
      const heard = await listened(listener);
      const byTime = new Map(heard.map((b) => [b.batchTime, b]));
      const last = Math.max(...shown.totalDelay.times);
      // One point per batch the listener heard of, up to the newest the page has, and no other.
      expect(shown.totalDelay.times).toEqual(heard.filter((b) => b.batchTime <= last).map((b) => b.batchTime));
      for (const key of ['inputRate', 'schedulingDelay', 'processingDelay', 'totalDelay'] as const) {
        expect(shown[key].times).toEqual(shown.totalDelay.times);
        const expected = shown[key].times.map((t) => {
          const b = byTime.get(t)!;
          return key === 'inputRate' ? b.numRecords / INTERVAL_S : b[key];
        });
        expect(shown[key].values, key).toEqual(expected);
      }
      expect(shown.inputRate.values.some((v) => v > 0)).toBe(true);
      // Each chart is drawn: a timeline and a histogram canvas per metric.
      expect(await page.locator('.timeline canvas').count()).toBe(4);
      expect(await page.locator('.histogram canvas').count()).toBe(4);
      // The table: a row per batch, newest first, linking to the batch's page.
      const rows = page.locator('#batches tbody tr');
      expect(await rows.count()).toBeGreaterThanOrEqual(8);
      const first = Number(await rows.first().getAttribute('data-time'));
      expect(first).toBeGreaterThanOrEqual(last);
      await page.screenshot({ path: join(SHOTS, 'ui-streaming.png') });

      // A batch with records: its stages split at the shuffles, tasks with records in and out, sealed input, dead letters.
      const withInput = heard.find((b) => b.numRecords > 0 && b.batchTime <= last)!;
      await page.locator(`#batches tr[data-time="${withInput.batchTime}"] a`).click();
      await page.waitForSelector(`body[data-ready="#/batch/${withInput.batchTime}"]`);
      const stageBoxes = page.locator('#stageGraph svg .node');
      expect(await stageBoxes.count()).toBeGreaterThanOrEqual(3);
      expect(await page.locator('#stageGraph svg path.edge').count()).toBeGreaterThanOrEqual(2);
      const mapStage = page.locator('#stages h2', { hasText: 'map' }).first();
      expect(await mapStage.textContent()).toContain('shuffle for reduceByKey');
      // The map stage reads the generator's two partitions: its tasks' records in add up to the batch's input.
      const mapTasks = page.locator('#stages table.tasks').first().locator('tbody tr');
      expect(await mapTasks.count()).toBe(2);
      const recordsIn = await mapTasks.evaluateAll((trs) => trs.reduce((n, tr) => n + Number(tr.children[5].textContent!.replace(/,/g, '')), 0));
      expect(recordsIn).toBe(withInput.numRecords);
      expect(withInput.numDeadLetters).toBeGreaterThan(0);
      expect(await page.locator('#input table.input tbody tr').count()).toBe(2);
      expect(await page.locator('#input').textContent()).toContain('record(s)');
      expect(await page.locator('#letters').textContent()).toContain('is poison');
      await page.screenshot({ path: join(SHOTS, 'ui-batch.png'), fullPage: true });
      // A stage box links to its tasks.
      await stageBoxes.nth(1).click();
      await page.waitForURL(/#\/batch\/\d+\/stage\/2$/);
      await page.waitForSelector('body[data-ready$="/stage/2"]');
      await expect.poll(() => page.locator('#stage-2').isVisible()).toBe(true);

      // The job graph: one box per stage of the plan, as sluice plan prints them.
      await page.goto(`${url}#/graph`);
      await page.waitForSelector('body[data-ready="#/graph"]');
      const plan = planStages(buildGraph(await loadJob(JOB)));
      expect(await page.locator('#jobGraph svg .node').count()).toBe(plan.length);
      expect(await page.locator('#mermaid').textContent()).toContain('flowchart LR');
      await page.screenshot({ path: join(SHOTS, 'ui-graph.png') });
      await page.close();
    } finally {
      run.stop();
    }
    const ended = await run.ended;
    expect(ended.code, ended.stderr).toBe(0);

    // The same batches after the job stopped, from the history it wrote to its state directory.
    const ui = serveSluice(['ui', JOB, '--state-dir', stateDir, '--port', '0']);
    try {
      const uiUrl = await ui.url;
      const page = await newPage();
      await page.goto(uiUrl);
      await page.waitForSelector('body[data-ready="#/"]');
      const after = await charts(page);
      const heard = await listened(listener);
      // Every batch with input, as the listener heard it: quiet batches (none here) are not kept.
      expect(after.totalDelay.times).toEqual(heard.map((b) => b.batchTime));
      expect(after.totalDelay.values).toEqual(heard.map((b) => b.totalDelay));
      expect(await page.locator('#summary').textContent()).toContain('stopped');
      await page.close();
    } finally {
      ui.stop();
    }
    expect((await ui.ended).code).toBe(0);
  });

  it('refuses a port that is taken and a state directory without state, saying what to do', async () => {
    const missing = await runSluice(['ui', '--state-dir', join(dir, 'nothing-here'), '--port', '0']);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toContain('no job state in');
    const badPort = await runSluice(['run', JOB, '--ui', 'eighty', '--batches', '1']);
    expect(badPort.code).not.toBe(0);
    expect(badPort.stderr).toContain('--ui must be a port from 0 to 65535');
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    try {
      const port = (taken.address() as AddressInfo).port;
      const busy = await runSluice(['run', JOB, '--ui', String(port), '--batches', '1', '--state-dir', join(dir, 'busy')]);
      expect(busy.code).not.toBe(0);
      expect(busy.stderr).toContain(`port ${port} is in use: give --ui another port, or 0 for any free one`);
    } finally {
      await new Promise<void>((resolve) => taken.close(() => resolve()));
    }
  });
});
