import type { InputSplit } from '../ports/index.ts';

/**
 * Which open splits of a batch a stage is reading right now. Two stages reading one open split
 * at once (a stream joined with itself) would consume different ranges, so a stage waits until
 * no other stage reads any open split it reads, marks the ones still open as its own, and lets
 * go of them once it has sealed what it consumed: the next stage reads the sealed range.
 *
 * @example
 * ```ts
 * const release = await openReads.claim(stageSourceReads(stage.root, stage.root), splits);
 * try { await runTasks(); await seal(); } finally { release(); }
 * ```
 */
export class OpenSplitReads {
  /** `<nodeId>/<partition>` of an open split being read, to the promise its reader settles after the seal. */
  private readonly reading = new Map<string, Promise<void>>();

  /**
   * Waits for the open splits among `reads` to be free, then claims those still open in
   * `splits` (read again after the wait: the previous reader sealed some). Returns the release.
   */
  async claim(reads: ReadonlyMap<string, readonly [string, number]>, splits: Record<string, InputSplit[]>): Promise<() => void> {
    for (;;) {
      const busy = [...reads.keys()].map((k) => this.reading.get(k)).filter((x): x is Promise<void> => x !== undefined);
      if (!busy.length) break;
      await Promise.all(busy);
    }
    const mine = [...reads].filter(([, [nodeId, q]]) => splits[nodeId]?.[q]?.open === true).map(([k]) => k);
    if (!mine.length) return () => {};
    let release!: () => void;
    const done = new Promise<void>((r) => {
      release = r;
    });
    for (const k of mine) this.reading.set(k, done);
    return () => {
      for (const k of mine) this.reading.delete(k);
      release();
    };
  }
}
