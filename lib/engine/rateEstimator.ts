/**
 * The PID controller behind backpressure, with Spark Streaming's definition and defaults
 * (`PIDRateEstimator`: proportional 1, integral 0.2, derivative 0, minimum 100 records/s). After
 * each completed batch it compares the rate it last allowed with the rate the batch was processed
 * at (records ÷ processing time); the scheduling delay stands for the records that piled up
 * (delay × processing rate ÷ batch interval, the integral term). The first batch only calibrates.
 *
 * @example
 * ```ts
 * const pid = new RateEstimator(1000);
 * pid.update(2000, 5000, 5000, 0);        // undefined: the first batch calibrates (1,000 records/s)
 * pid.update(8000, 1000, 1000, 5000);     // 1000 − 0 − 0.2 × (5000 × 1000 ÷ 1000) = 0: the minimum, 100
 * ```
 */
export class RateEstimator {
  private latestTime = -1;
  private latestRate = -1;
  private latestError = -1;
  private calibrated = false;

  constructor(
    private readonly batchIntervalMs: number,
    private readonly gains: { readonly proportional: number; readonly integral: number; readonly derivative: number } = { proportional: 1, integral: 0.2, derivative: 0 },
    private readonly minRate = 100,
  ) {
    if (!(batchIntervalMs > 0)) throw new RangeError(`batch interval must be > 0, got ${batchIntervalMs}`);
    if (!(minRate > 0)) throw new RangeError(`minimum rate must be > 0, got ${minRate}`);
  }

  /**
   * Feeds one completed batch: `time` when it completed (ms), its records, processing and scheduling
   * delay (ms). Returns the new rate in records per second, or undefined when there is none yet (the
   * first batch, an empty batch, a batch that took no time, or one older than the last).
   */
  update(time: number, records: number, processingDelayMs: number, schedulingDelayMs: number): number | undefined {
    if (!(time > this.latestTime && records > 0 && processingDelayMs > 0)) return undefined;
    const sinceUpdate = (time - this.latestTime) / 1000;
    const processingRate = (records / processingDelayMs) * 1000;
    const error = this.latestRate - processingRate;
    const historicalError = (schedulingDelayMs * processingRate) / this.batchIntervalMs;
    const dError = (error - this.latestError) / sinceUpdate;
    const { proportional, integral, derivative } = this.gains;
    const rate = Math.max(this.latestRate - proportional * error - integral * historicalError - derivative * dError, this.minRate);
    this.latestTime = time;
    if (!this.calibrated) {
      this.calibrated = true;
      this.latestRate = processingRate;
      this.latestError = 0;
      return undefined;
    }
    this.latestRate = rate;
    this.latestError = error;
    return rate;
  }

  /** Its memory, as plain data (kept in the checkpoint, so a new coordinator goes on from it). */
  snapshot(): { latestTime: number; latestRate: number; latestError: number; calibrated: boolean } {
    return { latestTime: this.latestTime, latestRate: this.latestRate, latestError: this.latestError, calibrated: this.calibrated };
  }

  /** Goes on from a {@link RateEstimator.snapshot}; anything that is not one is ignored (a fresh start). */
  restore(s: unknown): this {
    const v = s as Partial<ReturnType<RateEstimator['snapshot']>> | null;
    if (v && typeof v.latestTime === 'number' && typeof v.latestRate === 'number' && typeof v.latestError === 'number' && typeof v.calibrated === 'boolean') {
      this.latestTime = v.latestTime;
      this.latestRate = v.latestRate;
      this.latestError = v.latestError;
      this.calibrated = v.calibrated;
    }
    return this;
  }
}
