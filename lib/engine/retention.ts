import type { JobGraph } from '../plan/graph.ts';
import { parseStateKey, pointerBlobs, type StatePointer, stateKey } from '../plan/state/format.ts';
import type { BlobStore } from '../ports/index.ts';
import type { CommitLog } from './commitLog.ts';
import { type Checkpoint, keys } from './protocol.ts';

/**
 * What the coordinator deletes, and when: a committed batch's scratch blobs at once, its received
 * blocks and lineage record once `remember` no longer reaches them, and state blobs a newer full
 * checkpoint or the window made obsolete. Deletes go by name wherever the names are known, so a
 * batch's cleanup lists nothing; a coordinator lists once, when it starts, to find what earlier
 * coordinators (or a crash) left.
 *
 * Scratch names carry their writer's epoch and a nonce, so an attempt that lands after the cleanup
 * (a timed-out task still running) leaves a blob no listing of this coordinator knows of; the next
 * coordinator's start sweeps it, and on AWS the bucket's lifecycle rule expires `batch/` anyway.
 *
 * @example
 * ```ts
 * const retention = new Retention(graph, blobs, log, interval);
 * await retention.sweep(checkpoint);                        // once, at start
 * await retention.afterCommit(t, stateBefore, checkpoint, { scratch, inputBlocks }); // each batch
 * ```
 */
export class Retention {
  /**
   * What committed batches left in the stores for later batches, by batch time: the blobs under
   * `batch/<t>/` (received blocks) — or `'list'` when a failed attempt may have left more there —
   * and whether its batch record exists. Deleted by name once `remember` no longer reaches them.
   */
  private readonly retained = new Map<number, { blobs: readonly string[] | 'list'; record: boolean }>();

  constructor(
    private readonly graph: JobGraph,
    private readonly blobs: BlobStore,
    private readonly log: CommitLog,
    private readonly interval: number,
  ) {}

  /** How far back a batch's input and record stay readable (`remember`, at least one interval). */
  get rememberedMs(): number {
    return Math.max(this.graph.rememberMs, this.interval);
  }

  /** Batch `time` has a record (and maybe blobs) from now on. */
  opened(time: number): void {
    this.retained.set(time, { blobs: 'list', record: true });
  }

  /**
   * After the commit of batch `t`: deletes its scratch blobs (by name when every attempt's writes
   * are known, else by listing its prefix), what batches older than `remember` kept, and the state
   * blobs the commit made obsolete.
   */
  async afterCommit(t: number, before: Checkpoint['state'], after: Checkpoint['state'], written: { scratch: string[] | undefined; inputBlocks: string[] }): Promise<void> {
    const prefix = keys.batchBlobs(t);
    const scratch = written.scratch ?? [...(await this.blobs.list(`${prefix}shuffle/`)), ...(await this.blobs.list(`${prefix}cache/`)), ...(await this.blobs.list(`${prefix}payloads/`))];
    if (scratch.length) await this.blobs.delete(scratch);
    this.retained.set(t, { blobs: written.scratch ? written.inputBlocks : 'list', record: true });
    await this.forgetUpTo(t - this.rememberedMs);
    await this.deleteObsoleteState(t, before, after);
  }

  /** Deletes the blobs and records of the retained batches at or before `keepFrom`. */
  private async forgetUpTo(keepFrom: number): Promise<void> {
    const old = [...this.retained].filter(([time]) => time <= keepFrom);
    if (!old.length) return;
    const gone: string[] = [];
    for (const [time, { blobs }] of old) {
      if (blobs === 'list') gone.push(...(await this.blobs.list(keys.batchBlobs(time))));
      else gone.push(...blobs);
    }
    if (gone.length) await this.blobs.delete(gone);
    for (const [time, { record }] of old) {
      if (record) await this.log.deleteBatch(keys.batch(time));
      this.retained.delete(time);
    }
  }

  /**
   * Once, when a coordinator starts: lists what earlier coordinators left under `batch/` (blobs and
   * records) and `state/`, deletes what `remember` no longer reaches, the scratch blobs of committed
   * batches and obsolete state, and retains the rest for deletion by name later.
   */
  async sweep(checkpoint: Checkpoint): Promise<void> {
    await this.sweepState(checkpoint);
    const last = checkpoint.lastCompleted;
    const keepFrom = last - this.rememberedMs;
    const timeOf = (k: string) => Number(k.slice(6, 21));
    const gone: string[] = [];
    const kept = new Map<number, string[]>();
    for (const k of await this.blobs.list('batch/')) {
      const time = timeOf(k);
      if (time <= keepFrom || (time <= last && /^batch\/\d{15}\/(shuffle|cache|payloads)\//.test(k))) gone.push(k);
      else kept.set(time, [...(kept.get(time) ?? []), k]);
    }
    if (gone.length) await this.blobs.delete(gone);
    for (const [time, blobs] of kept) this.retained.set(time, { blobs: time <= last ? blobs : 'list', record: false });
    for (const k of await this.log.listBatches()) {
      const time = timeOf(k);
      if (time <= keepFrom) await this.log.deleteBatch(k);
      else this.retained.set(time, { blobs: this.retained.get(time)?.blobs ?? [], record: true });
    }
  }

  /**
   * Deletes the state blobs batch `t` made obsolete, by name (no listing, so the cost does not grow
   * with the window): the previous full blob and its deltas once a new full one is committed, and
   * the one slice per partition that just left every window (if it was written: batches between
   * windows shorter than their slide write none).
   */
  private async deleteObsoleteState(t: number, before: Checkpoint['state'], after: Checkpoint['state']): Promise<void> {
    const gone: string[] = [];
    for (const { node, op } of this.graph.stateful) {
      const cur = after[node.id] as StatePointer | undefined;
      const prev = before[node.id] as StatePointer | undefined;
      if (!cur) continue;
      for (let p = 0; p < cur.partitions; p++) {
        if (prev && prev.fullTime !== cur.fullTime) for (const b of pointerBlobs(prev, this.interval)) gone.push(stateKey(node.id, p, b.kind, b.time));
        const slice = t - op.keepSlicesMs;
        if (op.keepSlicesMs > 0 && slice >= cur.firstTime && (op.keepsSlice?.(slice) ?? true)) gone.push(stateKey(node.id, p, 'slice', slice));
      }
    }
    if (gone.length) await this.blobs.delete(gone);
  }

  /** Deletes state blobs that a crash between a commit and its cleanup left behind, and those of nodes the job no longer has. */
  private async sweepState(checkpoint: Checkpoint): Promise<void> {
    const gone: string[] = [];
    const ops = new Map(this.graph.stateful.map((s) => [s.node.id, s.op]));
    for (const k of await this.blobs.list('state/')) {
      const blob = parseStateKey(k);
      if (!blob) continue;
      const op = ops.get(blob.nodeId);
      const pointer = checkpoint.state[blob.nodeId] as StatePointer | undefined;
      if (!op || !pointer) {
        if (!op) gone.push(k);
        continue;
      }
      if (blob.kind === 'slice' ? blob.time <= pointer.lastTime - op.keepSlicesMs : blob.time < pointer.fullTime) gone.push(k);
    }
    if (gone.length) await this.blobs.delete(gone);
  }
}
