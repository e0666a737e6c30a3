// The import rules of lib/ (docs/design.md §1), checked by test/architecture.test.ts and by
// `npx depcruise lib`. Layers, lowest first: core (errors, shared types) < ports < plan < api and
// engine < node (what both runtimes share: clocks, loading a job file) < the adapters (local, aws)
// and the Streaming UI (ui) < testing and cli. A folder imports only from its own layer and
// the ones below it, and nothing in lib/ forms a cycle.

/** What each folder of lib/ must not import: everything above it. */
const above = {
  core: ['ports', 'plan', 'api', 'engine', 'node', 'local', 'aws', 'ui', 'testing', 'cli'],
  ports: ['plan', 'api', 'engine', 'node', 'local', 'aws', 'ui', 'testing', 'cli'],
  plan: ['api', 'engine', 'node', 'local', 'aws', 'ui', 'testing', 'cli'],
  api: ['engine', 'node', 'local', 'aws', 'ui', 'testing', 'cli'],
  engine: ['api', 'node', 'local', 'aws', 'ui', 'testing', 'cli'],
  node: ['local', 'aws', 'ui', 'testing', 'cli'],
  local: ['aws', 'ui', 'testing', 'cli'],
  aws: ['local', 'ui', 'testing', 'cli'],
  ui: ['local', 'aws', 'testing', 'cli'],
  testing: ['cli'],
};

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-cycles',
      comment: 'A cycle ties its modules into one: none may change or be understood alone.',
      severity: 'error',
      from: { path: '^lib/' },
      to: { circular: true },
    },
    ...Object.entries(above).map(([layer, higher]) => ({
      name: `${layer}-imports-no-higher-layer`,
      comment: `lib/${layer} sits below lib/{${higher.join(',')}}: it must not import them.`,
      severity: 'error',
      from: { path: `^lib/${layer}/` },
      to: { path: `^lib/(${higher.join('|')})/` },
    })),
    {
      name: 'lib-imports-no-tooling',
      comment: 'lib/ is what the package ships: never the CDK app, the functions, tests, the simulation or benchmarks.',
      severity: 'error',
      from: { path: '^lib/' },
      to: { path: '^(cdk|functions|test|infra-test|bench|sim|scripts)/' },
    },
    {
      name: 'lib-imports-no-dev-dependency',
      comment: 'An installed sluice has no devDependencies.',
      severity: 'error',
      from: { path: '^lib/' },
      to: { dependencyTypes: ['npm-dev'] },
    },
  ],
  options: {
    // Type-only imports are imports too: they tie modules as tightly for a reader.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    doNotFollow: { path: 'node_modules' },
    // The templates of `sluice init` are another project's source, held as text.
    exclude: { path: '^lib/cli/templates/' },
  },
};
