import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, type Stack, Validations } from 'aws-cdk-lib';
import type { Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { afterAll, expect, vi } from 'vitest';
import { projectContext } from './cdkContext.ts';

// Reading synthesized templates in the CDK tests (infra-test/cdk.test.ts, cdkConventions.test.ts):
// apps with the project's feature flags, CloudFormation values as text, identity policies as the
// account reads them, and cdk-nag's report.

/**
 * A maker of apps with the project's feature flags whose cloud assemblies go to a directory removed
 * after the test file's tests; with `nag`, checked by cdk-nag's AwsSolutions pack on synth.
 */
export function testApps(): (nag?: boolean) => App {
  const outdirs = mkdtempSync(join(tmpdir(), 'sluice-cdk-test-'));
  let apps = 0;
  afterAll(() => rmSync(outdirs, { recursive: true, force: true }));
  return (nag = false) => {
    const app = new App({ outdir: join(outdirs, `app-${++apps}`), context: projectContext() });
    if (nag) Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
    return app;
  };
}

/** A CloudFormation value as text: `<LogicalId.Arn>` for Fn::GetAtt, `<LogicalId>` for Ref, Fn::Join joined, literals as they are. */
export function text(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  const o = value as Record<string, unknown> | null;
  if (typeof o?.Ref === 'string') return `<${o.Ref}>`;
  if (Array.isArray(o?.['Fn::GetAtt'])) return `<${(o['Fn::GetAtt'] as string[]).join('.')}>`;
  if (Array.isArray(o?.['Fn::Join'])) {
    const [separator, parts] = o['Fn::Join'] as [string, unknown[]];
    return parts.map(text).join(separator);
  }
  return JSON.stringify(value);
}

/** A construct attribute (a token) as the template text it becomes. */
export const cfn = (stack: Stack, token: string) => text(stack.resolve(token));

export const asList = <T,>(v: T | T[] | undefined): T[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

export interface Resource {
  readonly Type: string;
  readonly Properties?: Record<string, any>;
  readonly DeletionPolicy?: string;
}

/** How many resources of each type a template has. */
export function inventory(template: Template): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of Object.values(template.toJSON().Resources as Record<string, Resource>)) counts[r.Type] = (counts[r.Type] ?? 0) + 1;
  return counts;
}

/** The one resource of a type in a template. */
export function only(template: Template, type: string): Resource {
  const found = Object.values(template.findResources(type)) as Resource[];
  expect(found, type).toHaveLength(1);
  return found[0];
}

export interface DashboardBody {
  readonly widgets: { readonly properties: { readonly title: string; readonly metrics: unknown[][] } }[];
}

/** The dashboard's body: a Fn::Join around the region, which joined is the dashboard's JSON. */
export function dashboardBody(template: Template): DashboardBody {
  return JSON.parse(text(only(template, 'AWS::CloudWatch::Dashboard').Properties!.DashboardBody)) as DashboardBody;
}

export interface Statement {
  readonly Effect?: string;
  readonly Action?: string | string[];
  readonly NotAction?: unknown;
  readonly Resource?: unknown;
  readonly NotResource?: unknown;
  readonly Condition?: unknown;
}

/**
 * Every statement of the template's identity policies (AWS::IAM::Policy and ::ManagedPolicy, and
 * the inline policies of AWS::IAM::Role), with the role it applies to as `<RoleLogicalId>`.
 */
export function identityStatements(template: Template): { role: string; statement: Statement }[] {
  const out: { role: string; statement: Statement }[] = [];
  for (const type of ['AWS::IAM::Policy', 'AWS::IAM::ManagedPolicy']) {
    for (const [id, policy] of Object.entries(template.findResources(type) as Record<string, Resource>)) {
      const roles = asList<unknown>(policy.Properties!.Roles).map(text);
      for (const statement of asList<Statement>(policy.Properties!.PolicyDocument.Statement)) {
        for (const role of roles.length ? roles : [`<${id}>`]) out.push({ role, statement });
      }
    }
  }
  for (const [id, role] of Object.entries(template.findResources('AWS::IAM::Role') as Record<string, Resource>)) {
    for (const policy of asList<{ PolicyDocument: { Statement: Statement | Statement[] } }>(role.Properties!.Policies)) {
      for (const statement of asList(policy.PolicyDocument.Statement)) out.push({ role: `<${id}>`, statement });
    }
  }
  return out;
}

/**
 * What breaks least privilege in a template's identity policies: an action that is not one full
 * `service:Action` name (no `*` in it), a resource that is `*`, NotAction/NotResource, or any
 * effect but Allow. Empty when there is none.
 */
export function leastPrivilegeProblems(template: Template): string[] {
  const problems: string[] = [];
  for (const { role, statement } of identityStatements(template)) {
    if (statement.Effect !== 'Allow') problems.push(`${role}: effect ${statement.Effect}`);
    if (statement.NotAction !== undefined || statement.NotResource !== undefined) problems.push(`${role}: NotAction/NotResource`);
    for (const action of asList(statement.Action)) if (!/^[a-z0-9-]+:[A-Za-z0-9]+$/.test(action)) problems.push(`${role}: action ${action}`);
    for (const resource of asList(statement.Resource).map(text)) if (resource === '*') problems.push(`${role}: resource * for ${asList(statement.Action).join(', ')}`);
  }
  return problems;
}

/** Every resource pattern with a wildcard in it, as `<Role> pattern`, sorted. */
export function wildcardResources(template: Template): string[] {
  return identityStatements(template)
    .flatMap(({ role, statement }) => asList(statement.Resource).map((r) => `${role} ${text(r)}`))
    .filter((r) => r.includes('*'))
    .sort();
}

export type Grants = Record<string, string[]>;

/** What a role may do: each action, with the resources it applies to (and the condition, if any), sorted. */
export function grantsOf(template: Template, role: string): Grants {
  const grants: Grants = {};
  for (const { statement } of identityStatements(template).filter((s) => s.role === role)) {
    const when = statement.Condition === undefined ? '' : ` if ${JSON.stringify(statement.Condition)}`;
    for (const action of asList(statement.Action)) (grants[action] ??= []).push(...asList(statement.Resource).map((r) => `${text(r)}${when}`));
  }
  return sortedGrants(grants);
}

export function sortedGrants(grants: Grants): Grants {
  return Object.fromEntries(
    Object.keys(grants)
      .sort()
      .map((action) => [action, [...grants[action]].sort()]),
  );
}

// cdk-nag

export interface Violation {
  readonly ruleName: string;
  readonly violatingConstructs: { readonly constructPath: string }[];
}

export interface NagResult {
  /** Whether synth threw (it does when a finding is not acknowledged). */
  readonly failed: boolean;
  /** Findings no acknowledgment covers, as `rule at construct path`. */
  readonly findings: string[];
  /** Acknowledged findings: where the acknowledgment is, its id and its reason. */
  readonly acknowledged: { readonly acknowledgedAt: string; readonly acknowledgedId: string; readonly reason: string }[];
  /** The report as synth printed it or threw it. */
  readonly report: string;
}

/** Synthesizes a nag-checked app, and reads cdk-nag's part of the validation report it writes. */
export function nagSynth(app: App): NagResult {
  const printed: string[] = [];
  // Synth prints the report on stderr, or puts it in the error it throws: either way the test reads it.
  const consoleError = vi.spyOn(console, 'error').mockImplementation((...args: unknown[]) => void printed.push(args.join(' ')));
  let failed = false;
  try {
    app.synth();
  } catch (e) {
    printed.push((e as Error).message);
    failed = true;
  } finally {
    consoleError.mockRestore();
  }
  const report = JSON.parse(readFileSync(join(app.outdir, 'validation-report.json'), 'utf8')) as {
    pluginReports: { pluginName: string; violations: Violation[]; suppressedViolations?: (Violation & NagResult['acknowledged'][number])[] }[];
  };
  const nag = report.pluginReports.find((r) => r.pluginName === 'AwsSolutions');
  return {
    failed,
    findings: (nag?.violations ?? []).flatMap((v) => v.violatingConstructs.map((c) => `${v.ruleName} at ${c.constructPath}`)).sort(),
    acknowledged: nag?.suppressedViolations ?? [],
    report: printed.join('\n'),
  };
}

/** Every acknowledgment recorded on the constructs of a stack: where, which rule, and why. */
export function acknowledgments(stack: Stack): { path: string; id: string; reason: unknown }[] {
  return stack.node.findAll().flatMap((c) =>
    c.node.metadata
      .filter((m) => m.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
      .flatMap((m) => Object.entries(m.data as Record<string, unknown>).map(([id, reason]) => ({ path: c.node.path, id, reason }))),
  );
}
