import type { JobGraph } from '../plan/graph.ts';
import type { CommittedInput, InputSplit, JsonValue, RecordSource } from '../ports/index.ts';
import type { CommitLog } from './commitLog.ts';
import type { Checkpoint } from './protocol.ts';

/** Notices of one source that wait to be made again; beyond this many the oldest are given up. */
export const MAX_PENDING_NOTICES = 100;

/**
 * Tells the sources that acknowledge what they consumed ({@link RecordSource.committed}) that a
 * batch is committed: after each commit of this coordinator, and, when it starts, for the last
 * committed batch, whose coordinator may have died between its commit and its notice. A notice
 * that throws never fails the batch, which is committed already: it waits, with the notices
 * after it, and is made again before the next cut (the input it concerns is committed, so it may
 * be acknowledged at any time after) and when the coordinator stops. A source that fails is not
 * called again in the same round: during an outage of its acknowledging service a batch waits for
 * one failed call per source, not for every notice that waits.
 *
 * @example
 * ```ts
 * const notices = new CommitNotices(graph, (id) => source(id), log, warn);
 * await notices.recover(checkpoint);                           // once, at start
 * await notices.committed(t, record.splits, checkpoint.sourceState); // after each commit
 * await notices.retry();                                       // before each cut, and at stop
 * ```
 */
export class CommitNotices {
  private readonly pending = new Map<string, CommittedInput[]>();

  constructor(
    private readonly graph: JobGraph,
    private readonly source: (nodeId: string) => RecordSource,
    private readonly log: CommitLog,
    private readonly warn: (line: string) => void,
  ) {}

  /** Whether an acknowledgement failed and waits to be made again. */
  get waiting(): boolean {
    for (const w of this.pending.values()) if (w.length) return true;
    return false;
  }

  /** The source nodes whose adapter has a `committed` step (most have none: then nothing is read or called). */
  private acknowledging(): string[] {
    return this.graph.sources.map((s) => s.nodeId).filter((id) => this.source(id).committed !== undefined);
  }

  /**
   * When a coordinator starts, after it took the checkpoint over: the last committed batch, from
   * its lineage record (kept until the next batch commits). Its own coordinator may have told the
   * sources already; they are told again.
   */
  async recover(checkpoint: Checkpoint): Promise<void> {
    const ids = this.acknowledging();
    if (!ids.length) return;
    const record = await this.log.readBatch(checkpoint.lastCompleted);
    // A new job has committed nothing; a source added since (a changed plan) consumed nothing in it.
    if (!record) return;
    for (const id of ids) {
      const splits = record.value.splits[id];
      if (splits) await this.tell(id, [{ time: checkpoint.lastCompleted, splits, state: checkpoint.sourceState[id] }]);
    }
  }

  /** After this coordinator's commit of batch `time`: what it sealed, and each source's position after it. */
  async committed(time: number, splits: { readonly [nodeId: string]: readonly InputSplit[] }, state: { readonly [nodeId: string]: JsonValue }): Promise<void> {
    for (const id of this.acknowledging()) {
      await this.tell(id, [...(this.pending.get(id) ?? []), { time, splits: splits[id] ?? [], state: state[id] }]);
    }
  }

  /** Makes again the notices that wait (before a cut, and when the coordinator stops). */
  async retry(): Promise<void> {
    for (const [id, inputs] of this.pending) if (inputs.length) await this.tell(id, inputs);
  }

  /** Calls `committed` for each input in order, up to the first that throws; that one and those after it wait. */
  private async tell(nodeId: string, inputs: readonly CommittedInput[]): Promise<void> {
    const source = this.source(nodeId);
    let told = 0;
    for (; told < inputs.length; told++) {
      try {
        await source.committed!(inputs[told]);
      } catch (e) {
        const waiting = inputs.length - told;
        this.warn(
          `${nodeId}: acknowledging the input of committed batch ${inputs[told].time} failed (${e instanceof Error ? e.message : String(e)}); ` +
            `the batch stays committed, and ${waiting === 1 ? 'it is' : `it and ${waiting - 1} later one(s) are`} told again before the next cut`,
        );
        break;
      }
    }
    const waiting = inputs.slice(told);
    const dropped = waiting.splice(0, Math.max(0, waiting.length - MAX_PENDING_NOTICES));
    if (dropped.length) this.warn(`${nodeId}: gave up acknowledging the input of committed batches ${dropped.map((d) => d.time).join(', ')}: ${MAX_PENDING_NOTICES} later notices wait too`);
    this.pending.set(nodeId, waiting);
  }
}
