import type { PartitionOptions } from '../../plan/batch.ts';
import type { Duration } from '../duration.ts';

// reduceByWindow and reduceByKeyAndWindow take an optional inverse function in second place, as
// in Spark: `(fn, window, slide?)` or `(fn, invFn, window, slide?)`. Their implementations take
// the arguments after `fn` as one of two tuples; the functions here tell which and name the parts.

/** @internal An associative, commutative reduce function, or its inverse. */
export type Reducer<V> = (a: V, b: V) => V;

/** @internal The options of reduceByKeyAndWindow with an inverse function. */
export type InverseWindowOptions<K, V> = PartitionOptions & { readonly filter?: (pair: [K, V]) => boolean };

type WindowOnly = [window: Duration, slide?: Duration];
type WindowWithInverse<V> = [invFn: Reducer<V>, window: Duration, slide?: Duration];
type KeyedWindowOnly = [window: Duration, slide?: Duration, options?: PartitionOptions];
type KeyedWindowWithInverse<K, V> = [invFn: Reducer<V>, window: Duration, slide?: Duration, options?: InverseWindowOptions<K, V>];

/** @internal The arguments after `fn` of `reduceByWindow`, with or without an inverse function. */
export type ReduceByWindowArgs<T> = WindowOnly | WindowWithInverse<T>;

/** @internal The arguments after `fn` of `reduceByKeyAndWindow`, with or without an inverse function. */
export type ReduceByKeyAndWindowArgs<K, V> = KeyedWindowOnly | KeyedWindowWithInverse<K, V>;

/** @internal The arguments of a window reduce, named: the inverse function is there or not. */
export interface WindowArgs<V> {
  readonly invFn: Reducer<V> | undefined;
  readonly window: Duration;
  readonly slide: Duration | undefined;
}

/** @internal The arguments of `reduceByKeyAndWindow`, named. */
export interface KeyedWindowArgs<K, V> extends WindowArgs<V> {
  readonly options: InverseWindowOptions<K, V>;
}

/** The second argument tells the forms apart: a function is the inverse; anything else is the window, which toMillis checks. */
function withInverse<Plain extends unknown[], Inverse extends unknown[]>(args: Plain | Inverse): args is Inverse {
  return typeof args[0] === 'function';
}

/** @internal `reduceByWindow`'s arguments after `fn`, named. */
export function reduceByWindowArgs<T>(args: ReduceByWindowArgs<T>): WindowArgs<T> {
  if (withInverse<WindowOnly, WindowWithInverse<T>>(args)) {
    const [invFn, window, slide] = args;
    return { invFn, window, slide };
  }
  const [window, slide] = args;
  return { invFn: undefined, window, slide };
}

/** @internal `reduceByKeyAndWindow`'s arguments after `fn`, named; options default to none. */
export function reduceByKeyAndWindowArgs<K, V>(args: ReduceByKeyAndWindowArgs<K, V>): KeyedWindowArgs<K, V> {
  if (withInverse<KeyedWindowOnly, KeyedWindowWithInverse<K, V>>(args)) {
    const [invFn, window, slide, options] = args;
    return { invFn, window, slide, options: options ?? {} };
  }
  const [window, slide, options] = args;
  return { invFn: undefined, window, slide, options: options ?? {} };
}
