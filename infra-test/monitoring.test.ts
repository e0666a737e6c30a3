import { App, Duration, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as kinesis from 'aws-cdk-lib/aws-kinesis';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { describe, expect, it } from 'vitest';
import { jobMonitoring } from '../cdk/parts/monitoring.ts';
import { deploymentDimension, metricCatalogue, metricDimension, metricNamespace } from '../lib/core/metrics.ts';

// The dashboard and alarms of cdk/parts/monitoring.ts against the metric catalogue
// (lib/core/metrics.ts): they may watch only what the catalogue says Sluice emits, and every
// metric it emits is on the dashboard. Built on a bare stack (no job file, no bundle), so it is fast.

const JOB = 'catalogue-job';
const DEPLOYMENT = 'S';

/** A stack with the job's alarms and dashboard over a stream and two inline functions. */
function monitoredStack(): Template {
  const stack = new Stack(new App(), 'S');
  const fn = (id: string) => new lambda.Function(stack, id, { runtime: lambda.Runtime.NODEJS_20_X, handler: 'index.handler', code: lambda.Code.fromInline('exports.handler = async () => {}') });
  jobMonitoring(stack, {
    jobName: JOB,
    deployment: DEPLOYMENT,
    highResolution: false,
    batchInterval: 1000,
    stream: new kinesis.Stream(stack, 'Stream'),
    coordinator: fn('Coordinator'),
    worker: fn('Worker'),
    maxInputLag: Duration.minutes(5),
  });
  return Template.fromStack(stack);
}

/** A metric as `<namespace>/<name> <dimension>=<value>,…`. */
type Watched = string;

/** The dashboard's metrics: its body is a Fn::Join whose tokens (region, function names) are not ours to read. */
function dashboardMetrics(template: Template): Watched[] {
  const [dashboard] = Object.values(template.findResources('AWS::CloudWatch::Dashboard')) as { Properties: { DashboardBody: { 'Fn::Join': [string, unknown[]] } } }[];
  const body = dashboard.Properties.DashboardBody['Fn::Join'][1].map((part) => (typeof part === 'string' ? part : 'token')).join('');
  const widgets = (JSON.parse(body) as { widgets: { properties: { metrics?: unknown[][] } }[] }).widgets;
  // A graphed metric is [namespace, name, dimension, value, dimension, value, …, { options }].
  const dimensions = (m: unknown[]) => {
    const pairs = m.slice(2).filter((x) => typeof x === 'string');
    return pairs.flatMap((x, i) => (i % 2 === 0 ? [`${x}=${pairs[i + 1]}`] : [])).join();
  };
  return widgets.flatMap((w) => w.properties.metrics ?? []).map((m) => `${String(m[0])}/${String(m[1])} ${dimensions(m)}`);
}

/** The alarms' metrics, whether an alarm names its metric directly or through a labelled `Metrics` list. */
function alarmMetrics(template: Template): Watched[] {
  interface Metric {
    readonly Namespace: string;
    readonly MetricName: string;
    readonly Dimensions?: { readonly Name: string; readonly Value: unknown }[];
  }
  const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm')) as { Properties: Metric & { Metrics?: { MetricStat: { Metric: Metric } }[] } }[];
  const metrics = alarms.flatMap(({ Properties: p }) => (p.Metrics ? p.Metrics.map((m) => m.MetricStat.Metric) : [p]));
  return metrics.map((m) => `${m.Namespace}/${m.MetricName} ${(m.Dimensions ?? []).map((d) => `${d.Name}=${typeof d.Value === 'string' ? d.Value : 'token'}`).join()}`);
}

/** What watching a catalogue metric of this job looks like. */
const catalogued = (name: string): Watched => `${metricNamespace}/${name} ${metricDimension}=${JOB},${deploymentDimension}=${DEPLOYMENT}`;

describe('the dashboard and alarms read the metric catalogue', () => {
  const template = monitoredStack();
  const sluiceMetrics = [...dashboardMetrics(template), ...alarmMetrics(template)].filter((m) => m.startsWith(`${metricNamespace}/`));

  it('watch only metrics of the catalogue, in its namespace and dimensions (the job and the deployment)', () => {
    // The guard watches something: the alarms and the dashboard both read Sluice metrics.
    expect(alarmMetrics(template).filter((m) => m.startsWith(`${metricNamespace}/`)).length).toBeGreaterThan(0);
    expect(dashboardMetrics(template).filter((m) => m.startsWith(`${metricNamespace}/`)).length).toBeGreaterThan(0);

    const allowed = new Set(Object.keys(metricCatalogue).map(catalogued));
    for (const m of sluiceMetrics) expect(allowed, `${m} is not a catalogue metric`).toContain(m);
  });

  it('graph every metric of the catalogue on the dashboard', () => {
    const graphed = new Set(dashboardMetrics(template));

    for (const name of Object.keys(metricCatalogue)) expect(graphed, `${name} is in the catalogue but not on the dashboard`).toContain(catalogued(name));
  });
});
