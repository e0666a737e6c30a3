import { describe, expect, it } from 'vitest';
import { emfMetrics } from '../../lib/aws/emfMetrics.ts';
import type { BatchInfo } from '../../lib/core/listener.ts';
import {
  completedBatchMetricNames,
  completedBatchMetrics,
  type CompletedBatchValues,
  deploymentDimension,
  failedBatchMetricNames,
  failedBatchMetrics,
  metricDimension,
  metricNamespace,
  portFields,
  progressLineParts,
} from '../../lib/core/metrics.ts';
import { progressMetrics } from '../../lib/local/log.ts';
import type { BatchMetrics } from '../../lib/ports/index.ts';
import { interceptInvoker, testCoordinator } from '../helpers/engine.ts';

// The metric catalogue (lib/core/metrics.ts) and what reads it: EMF lines, the progress line, and
// the coordinator's BatchInfo and Metrics port. The CDK dashboard and alarms: infra-test/monitoring.test.ts.

/** A distinct value per metric (1, 2, 3, …), so a value under the wrong name shows. */
const distinctValues = (): CompletedBatchValues =>
  Object.fromEntries(completedBatchMetricNames.map((name, i) => [name, i + 1])) as unknown as CompletedBatchValues;

interface EmfLine {
  readonly _aws: { readonly CloudWatchMetrics: { readonly Namespace: string; readonly Dimensions: string[][]; readonly Metrics: { Name: string; Unit: string }[] }[] };
  readonly [field: string]: unknown;
}

/** What a Metrics adapter writes, parsed. */
function emfLines(act: (metrics: ReturnType<typeof emfMetrics>) => void, options?: Parameters<typeof emfMetrics>[1]): EmfLine[] {
  const lines: string[] = [];
  act(emfMetrics((l) => lines.push(l), options));
  return lines.map((l) => JSON.parse(l) as EmfLine);
}

describe('EMF lines carry exactly the catalogue metrics', () => {
  it("a completed batch's line declares every completed-batch metric with its catalogue unit, and its value", () => {
    // Prepare
    const values = distinctValues();

    // Act
    const [line] = emfLines((m) => m.batch({ job: 'j', batchTime: 60_000, ...portFields(values) }));

    // Assess
    expect(line._aws.CloudWatchMetrics).toEqual([
      { Namespace: metricNamespace, Dimensions: [[metricDimension]], Metrics: completedBatchMetricNames.map((name) => ({ Name: name, Unit: completedBatchMetrics[name].unit })) },
    ]);
    expect(line[metricDimension]).toBe('j');
    for (const name of completedBatchMetricNames) expect(line[name], name).toBe(values[name]);
  });

  it('a metric left out when zero (dead letters) is still written, as 0', () => {
    const absentWhenZero = completedBatchMetricNames.filter((name) => 'absentWhenZero' in completedBatchMetrics[name]);
    const fields: Record<string, number> = { ...portFields(distinctValues()) };
    for (const name of absentWhenZero) delete fields[completedBatchMetrics[name].portField];

    const [line] = emfLines((m) => m.batch({ job: 'j', batchTime: 60_000, ...fields } as BatchMetrics));

    expect(absentWhenZero.length).toBeGreaterThan(0);
    for (const name of absentWhenZero) expect(line[name], name).toBe(0);
  });

  it("a failed batch's line declares every failed-batch metric with its catalogue unit, counting one", () => {
    const [line] = emfLines((m) => m.batchFailed!({ job: 'j', batchTime: 61_000 }));

    expect(line._aws.CloudWatchMetrics).toEqual([
      { Namespace: metricNamespace, Dimensions: [[metricDimension]], Metrics: failedBatchMetricNames.map((name) => ({ Name: name, Unit: failedBatchMetrics[name].unit })) },
    ]);
    for (const name of failedBatchMetricNames) expect(line[name], name).toBe(1);
  });
});

describe('EMF lines of a deployed job', () => {
  it('carry the deployment as a Stack dimension besides Job, declared and valued on the line, so two deployments of one job keep their metrics apart', () => {
    // Act
    const [staging] = emfLines((m) => m.batch({ job: 'j', batchTime: 60_000, ...portFields(distinctValues()) }), { deployment: 'clicks-staging' });
    const [production] = emfLines((m) => m.batchFailed!({ job: 'j', batchTime: 61_000 }), { deployment: 'clicks-production' });

    // Assess
    for (const [line, deployment] of [
      [staging, 'clicks-staging'],
      [production, 'clicks-production'],
    ] as const) {
      expect(line._aws.CloudWatchMetrics[0].Dimensions).toEqual([[metricDimension, deploymentDimension]]);
      expect(line[metricDimension]).toBe('j');
      expect(line[deploymentDimension]).toBe(deployment);
    }
  });

  it('without a deployment (locally, or deployed without SLUICE_DEPLOYMENT) declare Job alone, and write no Stack value: still valid EMF', () => {
    const [line] = emfLines((m) => m.batch({ job: 'j', batchTime: 60_000, ...portFields(distinctValues()) }));

    expect(line._aws.CloudWatchMetrics[0].Dimensions).toEqual([[metricDimension]]);
    expect(line).not.toHaveProperty(deploymentDimension);
  });

  it('high resolution: every metric declared with StorageResolution 1; per minute, none', () => {
    const [fast] = emfLines((m) => m.batch({ job: 'j', batchTime: 60_000, ...portFields(distinctValues()) }), { highResolution: true });
    const [failed] = emfLines((m) => m.batchFailed!({ job: 'j', batchTime: 61_000 }), { highResolution: true });
    const [slow] = emfLines((m) => m.batch({ job: 'j', batchTime: 60_000, ...portFields(distinctValues()) }));

    for (const line of [fast, failed]) expect(line._aws.CloudWatchMetrics[0].Metrics.every((m) => (m as { StorageResolution?: number }).StorageResolution === 1)).toBe(true);
    expect(slow._aws.CloudWatchMetrics[0].Metrics.some((m) => 'StorageResolution' in m)).toBe(false);
  });
});

describe('the progress line', () => {
  it("shows each of the catalogue's progress parts with its own metric's value", () => {
    const values = distinctValues();
    const lines: string[] = [];

    progressMetrics((l) => lines.push(l)).batch({ job: 'j', batchTime: 60_000, ...portFields(values) });

    expect(lines).toEqual([['batch 00:01:00.000 UTC', ...progressLineParts.map((p) => p.text(values[p.metric]))].join('  ')]);
  });
});

describe('the coordinator tells the listener and the Metrics port the same values', () => {
  it("each completed-batch metric: BatchInfo's field (absent is 0) equals the port's field", async () => {
    // Prepare: a job with input and a dead letter, started late and with tasks that take time, so
    // every metric has a value of its own and one told under another's name shows.
    const startedLateBy = 5;
    const taskTakes = 7;
    const infos: BatchInfo[] = [];
    const told: BatchMetrics[] = [];
    let advanceClock = (_ms: number): void => undefined;
    const { coordinator, clock } = testCoordinator(
      { batchInterval: 1000, onRecordError: 'dead-letter' },
      (ctx) => {
        ctx.addListener({ onBatchCompleted: (b) => infos.push(b) });
        ctx
          .queueStream([['1', 'x', '2']])
          .map((s) => {
            if (Number.isNaN(Number(s))) throw new Error(`not a number: ${s}`);
            return Number(s);
          })
          .count()
          .print();
      },
      { metrics: { batch: (m) => told.push(m) }, wrapInvoker: (inner) => interceptInvoker(inner, (_task, run) => (advanceClock(taskTakes), run())) },
    );
    advanceClock = (ms) => void clock.advance(ms);

    // Act
    await coordinator.start();
    clock.set(coordinator.nextBatchTime + startedLateBy);
    await coordinator.runNextBatch();

    // Assess: the values are distinct, then the same under both names.
    const [info] = infos;
    expect(told).toHaveLength(1);
    expect(new Set([info.numRecords, info.numDeadLetters, info.schedulingDelay, info.processingDelay, info.totalDelay]).size).toBe(5);
    expect(told[0].batchTime).toBe(info.batchTime);
    const read = (o: object, field: string) => (o as Record<string, number | undefined>)[field] ?? 0;
    for (const name of completedBatchMetricNames) {
      const { listenerField, portField } = completedBatchMetrics[name];
      expect(read(told[0], portField), name).toBe(read(info, listenerField));
    }
  });
});
