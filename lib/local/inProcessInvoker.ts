import type { Worker } from '../engine/worker.ts';
import type { Invoker } from '../ports/index.ts';

/**
 * Runs tasks in this process, on the same worker code a worker thread or Lambda runs
 * (Spark's `local[1]`). Tasks still go through the task payload; nothing is shared but the job's code.
 *
 * @example
 * ```ts
 * const invoker = new InProcessInvoker(new Worker(graph, runtime));
 * ```
 */
export class InProcessInvoker implements Invoker {
  readonly parallelism: number;
  constructor(
    private readonly worker: Worker,
    parallelism = 1,
  ) {
    this.parallelism = parallelism;
  }
  invoke(task: unknown): Promise<unknown> {
    return this.worker.run(task);
  }
  async close(): Promise<void> {}
}
