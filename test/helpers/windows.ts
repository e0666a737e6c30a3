import type { Batch } from 'sluice';
import type { BatchOutput } from 'sluice/testing';
import { sorted } from './semantics.ts';

/**
 * A tiny seeded PRNG (mulberry32): the same seed gives the same sequence in every run, so a
 * failing property case can be reproduced from its seed.
 */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A whole number in [lo, hi] from `rand`. */
export function randInt(rand: () => number, lo: number, hi: number): number {
  return lo + Math.floor(rand() * (hi - lo + 1));
}

/** The time of queue batch `i` (0-based): `(i + 1) × interval`. */
export function batchTime(i: number, interval: number): number {
  return (i + 1) * interval;
}

/** The times in `(0, batches × interval]` at which a stream with slide `slide` produces a batch. */
export function slideTimes(batches: number, interval: number, slide: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < batches; i++) {
    const t = batchTime(i, interval);
    if (t % slide === 0) out.push(t);
  }
  return out;
}

/** The raw records of the queue batches in the window `(t - window, t]`, oldest batch first. */
export function rawWindow<T>(batches: readonly (readonly T[])[], interval: number, t: number, window: number): T[] {
  const out: T[] = [];
  batches.forEach((b, i) => {
    const bt = batchTime(i, interval);
    if (bt > t - window && bt <= t) out.push(...b);
  });
  return out;
}

/** Sums the values of each key (a reference `reduceByKey(+)`), in canonical order. */
export function sumByKey<K>(pairs: readonly (readonly [K, number])[]): [K, number][] {
  const m = new Map<string, [K, number]>();
  for (const [k, v] of pairs) {
    const c = JSON.stringify(k);
    const e = m.get(c);
    if (e) e[1] += v;
    else m.set(c, [k, v]);
  }
  return sorted([...m.values()]);
}

/** Each batch's time and, for pair-of-list outputs (groupByKey…), the lists sorted too; records in canonical order. */
export function groupsByTime<K, V>(out: readonly BatchOutput<[K, V[]]>[]): { time: number; data: [K, V[]][] }[] {
  return out.map((b) => ({ time: b.time, data: sorted(b.data.map(([k, vs]) => [k, sorted(vs)] as [K, V[]])) }));
}

/** What a `foreachRDD` collector saw: each batch's time and its records in canonical order. */
export interface Collected<T> {
  time: number;
  data: T[];
}

/**
 * A `foreachRDD` function that collects every batch of a stream into `into` (for jobs with
 * several streams to check at once).
 */
export function collectInto<T>(into: Collected<T>[]): (batch: Batch<T>, time: number) => Promise<void> {
  return async (batch, time) => {
    into.push({ time, data: sorted(await batch.collect()) });
  };
}
