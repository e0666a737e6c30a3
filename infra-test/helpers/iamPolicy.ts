import type { ProxiedRequest, ThrottledService } from './throttlingProxy.ts';

// Just enough of IAM to check a synthesized template against the calls a run made: which action
// and resource each request needs (the service authorization reference's mapping of API calls to
// actions and resource ARNs), and whether a role's identity policies allow it.

/** The region and account the test pretends to deploy in. */
export const REGION = 'us-east-1';
export const ACCOUNT = '000000000000';

/** One authorization question: may the caller do `action` on `resource` (with condition keys `context`)? */
export interface AccessRequest {
  readonly action: string;
  readonly resource: string;
  readonly context?: Readonly<Record<string, string>>;
}

/** An identity policy statement with every intrinsic resolved. */
export interface Statement {
  readonly Sid?: string;
  readonly Effect: 'Allow' | 'Deny';
  readonly Action: readonly string[];
  readonly Resource: readonly string[];
  readonly Condition?: Readonly<Record<string, Readonly<Record<string, string | readonly string[]>>>>;
}

type Cfn = Record<string, { Type: string; Properties?: Record<string, unknown> }>;

const ARN_OF: Record<string, (name: string) => string> = {
  'AWS::Kinesis::Stream': (n) => `arn:aws:kinesis:${REGION}:${ACCOUNT}:stream/${n}`,
  'AWS::S3::Bucket': (n) => `arn:aws:s3:::${n}`,
  'AWS::DynamoDB::Table': (n) => `arn:aws:dynamodb:${REGION}:${ACCOUNT}:table/${n}`,
  'AWS::Lambda::Function': (n) => `arn:aws:lambda:${REGION}:${ACCOUNT}:function:${n}`,
  'AWS::Logs::LogGroup': (n) => `arn:aws:logs:${REGION}:${ACCOUNT}:log-group:${n}:*`,
};
const PSEUDO: Record<string, string> = { 'AWS::Partition': 'aws', 'AWS::Region': REGION, 'AWS::AccountId': ACCOUNT, 'AWS::URLSuffix': 'amazonaws.com' };

/**
 * Resolves CloudFormation values to what they would be after deployment, given the physical name of
 * each resource (`names`, by logical id): `Ref`, `Fn::GetAtt …Arn`, `Fn::Join` and pseudo parameters.
 * Anything else throws, so an unexpected intrinsic is never silently read as a match.
 */
export function resolver(resources: Cfn, names: Readonly<Record<string, string>>): (value: unknown) => string {
  const nameOf = (id: string) => {
    const n = names[id];
    if (n === undefined) throw new Error(`no physical name for ${id} (${resources[id]?.Type ?? 'not in the template'})`);
    return n;
  };
  const resolve = (v: unknown): string => {
    if (typeof v === 'string') return v;
    const o = v as Record<string, unknown>;
    if (typeof o?.Ref === 'string') return PSEUDO[o.Ref] ?? nameOf(o.Ref);
    if (Array.isArray(o?.['Fn::GetAtt'])) {
      const [id, attr] = o['Fn::GetAtt'] as [string, string];
      const arn = ARN_OF[resources[id]?.Type];
      if (attr !== 'Arn' || !arn) throw new Error(`cannot resolve Fn::GetAtt ${id}.${attr}`);
      return arn(nameOf(id));
    }
    if (Array.isArray(o?.['Fn::Join'])) {
      const [sep, parts] = o['Fn::Join'] as [string, unknown[]];
      return parts.map(resolve).join(sep);
    }
    throw new Error(`cannot resolve ${JSON.stringify(v)}`);
  };
  return resolve;
}

const list = <T>(v: T | readonly T[] | undefined): readonly T[] => (v === undefined ? [] : Array.isArray(v) ? v : [v as T]);

/** Every identity-policy statement of the role with logical id `roleId`: its inline policies and every `AWS::IAM::Policy` attached to it. */
export function roleStatements(resources: Cfn, roleId: string, resolve: (v: unknown) => string): Statement[] {
  const role = resources[roleId];
  if (role?.Type !== 'AWS::IAM::Role') throw new Error(`${roleId} is not a role`);
  if (list(role.Properties?.ManagedPolicyArns).length) throw new Error(`${roleId} has managed policies, which this check cannot read`);
  const docs: unknown[] = list(role.Properties?.Policies as { PolicyDocument: unknown }[]).map((p) => p.PolicyDocument);
  for (const r of Object.values(resources)) {
    if (r.Type === 'AWS::IAM::Policy' && list(r.Properties?.Roles as { Ref?: string }[]).some((x) => x.Ref === roleId)) docs.push(r.Properties!.PolicyDocument);
  }
  return docs.flatMap((d) =>
    list((d as { Statement: unknown }).Statement).map((s) => {
      const st = s as { Sid?: string; Effect: 'Allow' | 'Deny'; Action?: unknown; NotAction?: unknown; Resource?: unknown; NotResource?: unknown; Condition?: Statement['Condition'] };
      if (st.NotAction !== undefined || st.NotResource !== undefined) throw new Error(`statement ${st.Sid ?? ''} uses NotAction/NotResource, which this check cannot read`);
      return { Sid: st.Sid, Effect: st.Effect, Action: list(st.Action as string | string[]), Resource: list(st.Resource).map(resolve), Condition: st.Condition };
    }),
  );
}

/** An IAM wildcard pattern (`*`, `?`) as a regular expression. */
function glob(pattern: string, flags = ''): RegExp {
  return new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, flags);
}

function conditionHolds(condition: Statement['Condition'], context: AccessRequest['context'] = {}): boolean {
  for (const [operator, keys] of Object.entries(condition ?? {})) {
    for (const [key, wanted] of Object.entries(keys)) {
      const value = context[key];
      const match =
        operator === 'StringEquals' ? (w: string) => value === w : operator === 'StringLike' ? (w: string) => value !== undefined && glob(w).test(value) : undefined;
      if (!match) throw new Error(`condition operator ${operator} is not supported by this check`);
      if (!list(wanted).some(match)) return false;
    }
  }
  return true;
}

const applies = (s: Statement, r: AccessRequest) =>
  s.Action.some((a) => glob(a, 'i').test(r.action)) && s.Resource.some((p) => glob(p).test(r.resource)) && conditionHolds(s.Condition, r.context);

/** IAM's rule for one principal's identity policies: allowed if some Allow statement applies and no Deny does. */
export function allows(statements: readonly Statement[], request: AccessRequest): boolean {
  return statements.some((s) => s.Effect === 'Allow' && applies(s, request)) && !statements.some((s) => s.Effect === 'Deny' && applies(s, request));
}

function jsonBody(r: ProxiedRequest): Record<string, unknown> {
  try {
    return JSON.parse(r.body || '{}') as Record<string, unknown>;
  } catch {
    throw new Error(`${r.operation}: body is not JSON`);
  }
}

/**
 * What IAM checks for one request the SDK sent (path-style S3 addressing, as against emulators),
 * given the answer it got: a 404 for an S3 object is only what AWS answers a caller that also has
 * `s3:ListBucket` (see the GetObject reference's Permissions section).
 * Kinesis `GetRecords` names only a shard iterator, which IAM checks against the stream it was
 * issued for: requests that name no stream are checked against `stream`.
 */
export function accessOf(service: ThrottledService, r: ProxiedRequest, stream: string): AccessRequest[] {
  if (service === 's3') {
    const url = new URL(r.url, 'http://s3');
    const [bucket, ...rest] = url.pathname.slice(1).split('/');
    const key = decodeURIComponent(rest.join('/'));
    const object = `arn:aws:s3:::${bucket}/${key}`;
    if (rest.length && key !== '') {
      if (r.method === 'GET' || r.method === 'HEAD') {
        // S3 answers 404 for a missing key only to a caller that may list the bucket; to anyone
        // else it answers 403 AccessDenied, which the engine could not tell from a real denial.
        const missing = r.status === 404 ? [{ action: 's3:ListBucket', resource: `arn:aws:s3:::${bucket}` }] : [];
        return [{ action: 's3:GetObject', resource: object }, ...missing];
      }
      if (r.method === 'PUT') return [{ action: 's3:PutObject', resource: object }];
      if (r.method === 'DELETE') return [{ action: 's3:DeleteObject', resource: object }];
    } else {
      if (r.method === 'POST' && url.searchParams.has('delete')) {
        return [...r.body.matchAll(/<Key>([^<]*)<\/Key>/g)].map((m) => ({ action: 's3:DeleteObject', resource: `arn:aws:s3:::${bucket}/${m[1]}` }));
      }
      if (r.method === 'GET' && url.searchParams.has('location')) return [{ action: 's3:GetBucketLocation', resource: `arn:aws:s3:::${bucket}` }];
      if (r.method === 'GET' || r.method === 'HEAD') return [{ action: 's3:ListBucket', resource: `arn:aws:s3:::${bucket}`, context: { 's3:prefix': url.searchParams.get('prefix') ?? '' } }];
    }
    throw new Error(`no IAM mapping for S3 ${r.method} ${r.url}`);
  }
  if (service === 'lambda') {
    const m = /^\/2015-03-31\/functions\/([^/]+)\/invocations/.exec(r.url);
    if (!m) throw new Error(`no IAM mapping for Lambda ${r.method} ${r.url}`);
    const fn = decodeURIComponent(m[1]);
    return [{ action: 'lambda:InvokeFunction', resource: fn.startsWith('arn:') ? fn : ARN_OF['AWS::Lambda::Function'](fn) }];
  }
  const input = jsonBody(r);
  if (service === 'dynamodb') {
    const tables = typeof input.TableName === 'string' ? [input.TableName] : Object.keys((input.RequestItems as object) ?? {});
    if (!tables.length) throw new Error(`DynamoDB ${r.operation} names no table`);
    return tables.map((t) => ({ action: `dynamodb:${r.operation}`, resource: ARN_OF['AWS::DynamoDB::Table'](t) }));
  }
  const arn = typeof input.StreamARN === 'string' ? input.StreamARN : ARN_OF['AWS::Kinesis::Stream'](typeof input.StreamName === 'string' ? input.StreamName : stream);
  return [{ action: `kinesis:${r.operation}`, resource: arn }];
}
