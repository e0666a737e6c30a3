// The DStream API in one module: the DStream class (dstream/base.ts) and every operator family,
// each in dstream/<family>.ts, which adds its methods to the class by module augmentation.
// Import DStream from here, never from dstream/base.ts: loading this module is what sets the
// operators on the class, and its `export *` lines are what keep every family's declarations in
// the package's .d.ts files (tsc leaves a bare `import './x'` out of them).

export { DStream } from './dstream/base.ts';
export { type BatchLike, rememberFor, transformed, unionStreams } from './dstream/stateless.ts';
export * from './dstream/pair.ts';
export * from './dstream/joins.ts';
export * from './dstream/windows.ts';
export { MapWithStateDStream, StateSpec } from './dstream/state.ts';
export * from './dstream/outputs.ts';
