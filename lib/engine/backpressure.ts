import type { BatchInfo } from '../core/listener.ts';
import type { SourceSpec } from '../ports/index.ts';
import type { Checkpoint } from './protocol.ts';
import { RateEstimator } from './rateEstimator.ts';

/**
 * Backpressure (`backpressure: true`, Spark's `spark.streaming.backpressure.enabled`): a rate
 * estimator per source, fed after each batch, whose rate limits the next cuts. The estimates
 * travel in the checkpoint, so the next coordinator (the next minute's, on AWS) goes on from them.
 *
 * @example
 * ```ts
 * const bp = new Backpressure(sources, interval, checkpoint.rates);
 * const limit = bp.limit('kinesis-1');      // records the next cut may hand out, or undefined
 * bp.update(info, (id) => recordsOf(id));   // after a batch
 * ```
 */
export class Backpressure {
  /** A rate estimator per source, and the rate (records/s) it last allowed. */
  private readonly rates = new Map<string, { estimator: RateEstimator; rate?: number }>();

  constructor(
    private readonly sources: readonly SourceSpec[],
    private readonly interval: number,
    saved: Checkpoint['rates'] | undefined,
  ) {
    for (const spec of sources) {
      const s = saved?.[spec.nodeId] as { rate?: unknown } | undefined;
      this.rates.set(spec.nodeId, { estimator: new RateEstimator(interval).restore(s), rate: typeof s?.rate === 'number' ? s.rate : undefined });
    }
  }

  /** How many records the next cut of `nodeId` may hand out (undefined: no limit yet). */
  limit(nodeId: string): number | undefined {
    const rate = this.rates.get(nodeId)?.rate;
    return rate === undefined ? undefined : Math.max(1, Math.floor((rate * this.interval) / 1000));
  }

  /** Feeds each source's estimator with a completed batch. */
  update(info: BatchInfo, recordsOf: (nodeId: string) => number): void {
    for (const spec of this.sources) {
      const r = this.rates.get(spec.nodeId)!;
      const rate = r.estimator.update(info.processingEndTime!, recordsOf(spec.nodeId), info.processingDelay!, info.schedulingDelay!);
      if (rate !== undefined) r.rate = rate;
    }
  }

  /** The estimates, for the checkpoint. */
  snapshot(): Checkpoint['rates'] {
    return Object.fromEntries([...this.rates].map(([id, r]) => [id, { ...r.estimator.snapshot(), rate: r.rate ?? null }]));
  }
}
