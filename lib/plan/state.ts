/*
 * Stateful operators and their durable state, the one module to import them from: the format of
 * the state (state/format.ts), the dataset of a stateful node and the operator contract
 * (state/stateful.ts), and the operators, one per file: updateStateByKey, mapWithState, window.
 */
export * from './state/format.ts';
export * from './state/stateful.ts';
export * from './state/updateStateByKey.ts';
export * from './state/mapWithState.ts';
export * from './state/window.ts';
