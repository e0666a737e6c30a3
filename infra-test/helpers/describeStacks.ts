import { createServer } from 'node:http';
import { requestBody } from '../../lib/aws/dev/lambdaEndpoint.ts';
import type { AddressInfo } from 'node:net';

/**
 * A deployed stack as CloudFormation would describe it: the `Outputs` of a synthesised template,
 * and the physical name CloudFormation gave each of its logical resources (here: the emulators'
 * resources the test created).
 */
export interface DeployedStack {
  readonly template: { readonly Outputs?: Record<string, { readonly Value: unknown; readonly Description?: string }> };
  /** Logical id → physical name (what `Ref` of the resource gives: a stream's, bucket's, table's or function's name). */
  readonly physical: Record<string, string>;
}

/** A running DescribeStacks endpoint: point `SLUICE_CLOUDFORMATION_ENDPOINT` at `endpoint`. */
export interface DescribeStacksEndpoint {
  readonly endpoint: string;
  /** The actions it was asked for, in order (`DescribeStacks`). */
  readonly calls: string[];
  stop(): Promise<void>;
}


const xml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** An output's value as CloudFormation resolves it: a literal, or `Ref` of a resource the stack has a physical name for. */
function resolveValue(value: unknown, physical: Record<string, string>, key: string): string {
  if (typeof value === 'string') return value;
  const ref = (value as { Ref?: unknown } | null)?.Ref;
  if (typeof ref === 'string' && physical[ref] !== undefined) return physical[ref];
  // Only what SluiceJob's outputs use is resolved; anything else is a test that needs more than this endpoint.
  throw new Error(`describeStacks: output ${key} is ${JSON.stringify(value)}, which this endpoint cannot resolve (a Ref of a resource it knows, or a literal)`);
}

/**
 * A minimal CloudFormation on 127.0.0.1 for the operations commands' `--stack`: it answers
 * `DescribeStacks` for the stacks given — their template's outputs resolved to the physical names
 * given, keys and descriptions as synthesised — in the AWS Query protocol the SDK speaks, and a
 * missing stack with CloudFormation's own `ValidationError`. Any other action is refused. There is
 * no CloudFormation emulator among the npm ones the tests run (moto is not on CI machines), and
 * DescribeStacks is the only call the commands make.
 *
 * @example
 * ```ts
 * const cfn = await startDescribeStacks({ 'sluice-operate': { template, physical: { JobStream1A2B: 'operate' } } });
 * // SLUICE_CLOUDFORMATION_ENDPOINT=cfn.endpoint sluice status --stack sluice-operate
 * await cfn.stop();
 * ```
 */
export async function startDescribeStacks(stacks: Record<string, DeployedStack>): Promise<DescribeStacksEndpoint> {
  const calls: string[] = [];
  const server = createServer((req, res) => {
    void requestBody(req).then((text) => {
      const form = new URLSearchParams(text);
      const action = form.get('Action') ?? '';
      calls.push(action);
      const requestId = `req-${calls.length}`;
      const fail = (status: number, code: string, message: string) => {
        res.writeHead(status, { 'content-type': 'text/xml' });
        res.end(
          `<ErrorResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/"><Error><Type>Sender</Type><Code>${code}</Code><Message>${xml(message)}</Message></Error><RequestId>${requestId}</RequestId></ErrorResponse>`,
        );
      };
      if (action !== 'DescribeStacks') return fail(400, 'InvalidAction', `${action} is not answered here (DescribeStacks only)`);
      const name = form.get('StackName') ?? '';
      const stack = stacks[name];
      if (!stack) return fail(400, 'ValidationError', `Stack with id ${name} does not exist`);
      let outputs: string;
      try {
        outputs = Object.entries(stack.template.Outputs ?? {})
          .map(
            ([key, o]) =>
              `<member><OutputKey>${xml(key)}</OutputKey><OutputValue>${xml(resolveValue(o.Value, stack.physical, key))}</OutputValue>${o.Description === undefined ? '' : `<Description>${xml(o.Description)}</Description>`}</member>`,
          )
          .join('');
      } catch (e) {
        return fail(500, 'InternalFailure', (e as Error).message);
      }
      res.writeHead(200, { 'content-type': 'text/xml' });
      res.end(
        `<DescribeStacksResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/"><DescribeStacksResult><Stacks><member>` +
          `<StackName>${xml(name)}</StackName><StackId>arn:aws:cloudformation:us-east-1:123456789012:stack/${xml(name)}/00000000-0000-0000-0000-000000000000</StackId>` +
          `<CreationTime>2026-01-01T00:00:00.000Z</CreationTime><StackStatus>CREATE_COMPLETE</StackStatus><Outputs>${outputs}</Outputs>` +
          `</member></Stacks></DescribeStacksResult><ResponseMetadata><RequestId>${requestId}</RequestId></ResponseMetadata></DescribeStacksResponse>`,
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    calls,
    stop: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
