/**
 * A custom source (Spark's `Receiver`): Sluice calls `start` once on the coordinator with a
 * `store` function; call it whenever records arrive. Records stored before a batch's time are
 * in that batch. `stop` is called when the job stops.
 *
 * @example
 * ```ts
 * const ticks: Receiver<number> = {
 *   start(store) { this.timer = setInterval(() => store(Date.now()), 100); },
 *   stop() { clearInterval(this.timer); },
 * };
 * ctx.receiverStream(ticks).count().print();
 * ```
 */
export interface Receiver<T> {
  /** Begin receiving; hand each record, or an array of them, to `store`. Called once, when the job starts. */
  start(store: (records: T | readonly T[]) => void): void | Promise<void>;
  /** Stop receiving and release what `start` took (timers, sockets). Called once, when the job stops. */
  stop(): void | Promise<void>;
  [key: string]: unknown;
}
