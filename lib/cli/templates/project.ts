// The files of a project made by `sluice init`. Kept as code, not as files to copy, so they ship in
// the package whatever it compiles or leaves out, and their variable parts are typed.

/** What `sluice init` asked for. */
export interface ProjectSpec {
  /** The package and job name. */
  readonly name: string;
  /** The job's batch interval, as written (`'1s'`, `'5m'`). */
  readonly batchInterval: string;
  /** Where the job reads lines: a generated source (runs anywhere), or a Kinesis stream. */
  readonly source: 'local' | 'kinesis';
  /** The `sluice` dependency to write (`^0.1.0`, a tarball, a folder). */
  readonly sluice: string;
  /** Versions of the other packages the project uses, as this release of sluice is tested with them. */
  readonly versions: Readonly<Record<'aws-cdk-lib' | 'constructs' | 'aws-cdk' | 'typescript' | 'vitest' | 'tsx' | '@types/node', string>>;
  /** `cdk.json` feature flags: the ones aws-cdk-lib recommends for new projects. */
  readonly featureFlags: Readonly<Record<string, unknown>>;
}

const json = (v: unknown) => `${JSON.stringify(v, null, 2)}\n`;

function packageJson(p: ProjectSpec): string {
  const v = p.versions;
  return json({
    name: p.name,
    version: '0.1.0',
    private: true,
    type: 'module',
    scripts: {
      start: 'sluice run job.ts',
      test: 'vitest run',
      typecheck: 'tsc --noEmit -p .',
      synth: 'cdk synth',
      deploy: 'cdk deploy',
      ...(p.source === 'kinesis' ? { 'dev:aws': 'sluice dev-aws job.ts' } : {}),
    },
    dependencies: { sluice: p.sluice, 'aws-cdk-lib': v['aws-cdk-lib'], constructs: v.constructs },
    devDependencies: { '@types/node': v['@types/node'], 'aws-cdk': v['aws-cdk'], tsx: v.tsx, typescript: v.typescript, vitest: v.vitest },
  });
}

function job(p: ProjectSpec): string {
  const source =
    p.source === 'kinesis'
      ? `  // On AWS, SluiceJob creates the stream and names it in SLUICE_STREAM (\`npx sluice dev-aws job.ts\` does too).
  const lines = ctx.kinesisStream(process.env.SLUICE_STREAM ?? '${p.name}-input', { initialPosition: 'TRIM_HORIZON' });`
      : `  // A generated source of 100 lines a second; replace it with ctx.kinesisStream(...) to read a stream.
  const lines = ctx.generatorStream({ ratePerSec: 100, make: (i) => \`the quick brown fox \${i % 7}\` });`;
  return `import { type DStream, defineJob } from 'sluice';

/**
 * The job's logic, apart from its source, so that job.test.ts can feed it batches of its own:
 * words counted per batch, like Spark's \`flatMap(split).map((w, 1)).reduceByKey(+)\`.
 */
export function wordCounts(lines: DStream<string>): DStream<[string, number]> {
  return lines
    .flatMap((line) => line.split(/\\s+/).filter((w) => w !== ''))
    .map((word) => [word, 1] as [string, number])
    .reduceByKey((a, b) => a + b);
}

export default defineJob({ name: '${p.name}', batchInterval: '${p.batchInterval}' }, (ctx) => {
${source}
  wordCounts(lines).print();
});
`;
}

function jobTest(p: ProjectSpec): string {
  return `import { runBatches } from 'sluice/testing';
import { describe, expect, it } from 'vitest';
import { wordCounts } from './job.ts';

describe('${p.name}', () => {
  it('counts the words of each batch', async () => {
    // Prepare: two batches of lines, one batch interval apart (runBatches' clock is manual).
    const batches = [['a b', 'b'], ['c']];

    // Act
    const out = await runBatches({ batchInterval: '${p.batchInterval}', batches: 2 }, (ctx) => wordCounts(ctx.queueStream(batches)));

    // Assess: each batch's counts, in any order.
    expect(out.map((b) => Object.fromEntries(b.data))).toEqual([{ a: 1, b: 2 }, { c: 1 }]);
  });
});
`;
}

function cdkApp(p: ProjectSpec): string {
  return `// The CDK app: one stack with the job, its Kinesis stream, buckets, table, schedule and alarms.
//   npx cdk synth
//   npx cdk deploy
import { App, Stack } from 'aws-cdk-lib';
import { SluiceJob } from 'sluice/cdk';

const app = new App();
const stack = new Stack(app, '${p.name}', {
  env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
});
new SluiceJob(stack, 'Job', { entry: 'job.ts', batchInterval: '${p.batchInterval}' });
app.synth();
`;
}

function cdkJson(p: ProjectSpec): string {
  return json({
    app: 'npx tsx cdk/app.ts',
    watch: { include: ['**'], exclude: ['README.md', 'cdk*.json', '**/*.d.ts', '**/*.js', 'tsconfig.json', 'package*.json', 'node_modules', '*.test.ts'] },
    context: { ...p.featureFlags },
  });
}

const TSCONFIG = json({
  compilerOptions: {
    target: 'ES2022',
    module: 'NodeNext',
    moduleResolution: 'NodeNext',
    lib: ['ES2023'],
    types: ['node'],
    strict: true,
    allowImportingTsExtensions: true,
    noEmit: true,
    verbatimModuleSyntax: true,
    skipLibCheck: true,
  },
  include: ['*.ts', 'cdk'],
});

const GITIGNORE = `node_modules/
cdk.out/
.sluice/
out/
`;

function readme(p: ProjectSpec): string {
  const local =
    p.source === 'kinesis'
      ? `npx sluice dev-aws job.ts     # the job on the AWS path locally: emulators, a producer, the real handlers
                              # (needs: npm install --save-dev dynalite kinesalite s3rver)`
      : 'npx sluice run job.ts         # runs the job here: a word count block every batch; Ctrl-C to stop';
  return `# ${p.name}

A [Sluice](https://www.npmjs.com/package/sluice) streaming job: micro-batches of ${p.batchInterval}, words counted per batch.

\`\`\`sh
npm install
${local}
npm test                      # job.test.ts: the job's logic on batches of your own, with a manual clock
npx cdk synth                 # the CloudFormation template of cdk/app.ts
npx cdk deploy                # deploys it (AWS credentials needed)
\`\`\`

- \`job.ts\`: the job. \`wordCounts\` is its logic; the default export reads the source and prints.
- \`job.test.ts\`: runs \`wordCounts\` with \`runBatches\` from \`sluice/testing\`.
- \`cdk/app.ts\`: the stack, with the \`SluiceJob\` construct from \`sluice/cdk\`.
- \`cdk.json\`: how the CDK CLI runs the app, and the feature flags recommended for new projects.

\`npx sluice help\` lists the commands; \`npx sluice help run\` the options of a local run.
`;
}

/** The files of a new project, by path relative to its folder. */
export function projectFiles(p: ProjectSpec): Record<string, string> {
  return {
    'package.json': packageJson(p),
    'job.ts': job(p),
    'job.test.ts': jobTest(p),
    'cdk/app.ts': cdkApp(p),
    'cdk.json': cdkJson(p),
    'tsconfig.json': TSCONFIG,
    '.gitignore': GITIGNORE,
    'README.md': readme(p),
  };
}
