import { FencedError, LeaseHeldError } from '../core/errors.ts';
import type { Clock, JsonValue, MetaItem, MetaStore } from '../ports/index.ts';
import { type BatchRecord, type Checkpoint, keys, type Lease, type QuietRun } from './protocol.ts';

/**
 * The commit log: every conditional write of the batch protocol (docs/design.md §4), in the order a
 * batch makes them. The exactly-once argument can be checked in this file alone (step 7 names the
 * one step outside it).
 *
 * The fault model: any write may come from an attempt that was already superseded (a frozen or
 * slow coordinator whose lease expired, a timed-out Lambda still running, an SDK retry), and a
 * conditional write may apply while its response is lost. The argument:
 *
 * 1. **Lease.** Taking the lease raises the epoch by one (a conditional write on the lease's
 *    version). Every later write of this coordinator carries that epoch, and the store refuses a
 *    write to an item whose epoch is greater: a superseded coordinator can no longer change
 *    anything that a newer one has touched.
 * 2. **Checkpoint take-over.** The new coordinator rewrites the checkpoint with its epoch before
 *    anything else, so the old one's commit fails from then on.
 * 3. **Cut or claim.** The batch record of the next batch is either written fresh (the cut) or,
 *    when an earlier coordinator left one, rewritten unchanged with the new epoch (the claim):
 *    from then on the old coordinator can neither seal more of its input nor mark it complete.
 *    Whatever it sealed before the claim is read back here, so both compute the same input. An
 *    older coordinator's record that lands between our read and our cut is claimed the same way.
 *    Creating an item is not fenced (an absent item has no epoch), so a superseded coordinator
 *    could re-create the record of a batch that was committed and forgotten since: the lease is
 *    renewed right after the cut, and its renewal fails before it writes any output.
 * 4. **Seal.** The ranges that tasks consumed from open splits are written into the record
 *    before anything is derived from them that lands at a deterministic name (output parts,
 *    state, dead letters); an attempt whose range is not the sealed one only ever wrote scratch
 *    blobs under names of its own.
 * 5. **Commit.** One write of the checkpoint moves the job past the batch: its outputs all exist
 *    by then, so a crash after it loses nothing and a crash before it re-runs the batch from its
 *    record, writing the same bytes to the same names.
 * 6. **Completion and forgetting.** Marking the record complete and deleting old records are
 *    fenced too, so a late coordinator cannot delete what a newer one still needs.
 * 7. **Acknowledgement** (not a write of this log: commitNotices.ts). A source that deletes what
 *    it consumed (`RecordSource.committed`) is told only after step 5 succeeded for its batch, so
 *    only committed input is ever acknowledged; a superseded coordinator's commit fails at step 5
 *    and it tells nothing.
 *
 * Quiet batches (no input, nothing that changes; coordinator.ts) write nothing here. The last of a
 * run is recorded with the lease's release ({@link QuietRun}), valid only while the checkpoint is
 * at the version it names; a cut after quiet batches first commits them (an ordinary checkpoint
 * write), so a lineage record is only ever written right after the checkpoint's `lastCompleted`.
 * A coordinator that takes a cleanly released lease need not rewrite the checkpoint (step 2): the
 * one that released it writes nothing more, and every older one was fenced by whoever took the
 * lease from it without a release.
 *
 * A failed condition is not always a rival: when a write applied and its response was lost, the
 * SDK's retry finds the condition failed. {@link CommitLog.write} reads the item back and takes
 * it as its own when it holds exactly what was written, with this epoch, one version on.
 *
 * @example
 * ```ts
 * const log = new CommitLog(meta, { job: 'wordcount', owner: 'host:42', clock, leaseMs: 30_000 });
 * await log.acquireLease();
 * const version = await log.writeBatch(1000, record, 0); // the cut; throws FencedError when superseded
 * ```
 */
export class CommitLog {
  /** This coordinator's epoch, once it holds the lease. */
  epoch = 0;
  private leaseVersion = 0;
  private leaseExpires = 0;
  /** Whether the lease was given up by its last holder (not taken from one that went away). */
  releasedCleanly = false;
  /** The quiet run the lease carried when taken. */
  quietLeft: QuietRun | undefined;

  constructor(
    private readonly meta: MetaStore,
    private readonly options: {
      readonly job: string;
      readonly owner: string;
      readonly clock: Clock;
      readonly leaseMs: number;
      /** True when a lease holder is known to be gone (a dead local process), so the lease is taken at once. */
      readonly ownerGone?: (owner: string) => boolean;
    },
  ) {}

  // ------------------------------------------------------------------------------ 1. the lease

  /** Takes the lease with a new epoch, or throws {@link LeaseHeldError} while another holder's lease runs. */
  async acquireLease(): Promise<void> {
    const { job, owner, clock } = this.options;
    const cur = await this.meta.get<Lease>(keys.lease);
    const now = clock.now();
    if (cur && cur.value.owner !== owner && cur.value.owner !== '' && cur.value.expiresAt > now && !this.options.ownerGone?.(cur.value.owner)) {
      throw new LeaseHeldError(
        `job ${job} is already running: coordinator ${cur.value.owner} holds the lease until ${new Date(cur.value.expiresAt).toISOString()}`,
        cur.value.owner,
      );
    }
    const epoch = (cur?.epoch ?? 0) + 1;
    const quiet = cur?.value.quiet as QuietRun | undefined;
    const v = await this.write(keys.lease, this.lease(owner, now + this.options.leaseMs, quiet), cur?.version ?? 0, epoch);
    if (v === undefined) {
      const holder = (await this.meta.get<Lease>(keys.lease))?.value.owner ?? 'another coordinator';
      throw new LeaseHeldError(`job ${job} is already running: ${holder} took the lease at the same moment`, holder);
    }
    this.epoch = epoch;
    this.leaseVersion = v;
    this.leaseExpires = now + this.options.leaseMs;
    this.releasedCleanly = cur !== undefined && cur.value.owner === '';
    this.quietLeft = quiet;
  }

  private lease(owner: string, expiresAt: number, quiet: QuietRun | undefined): Lease {
    return quiet ? { owner, expiresAt, quiet } : { owner, expiresAt };
  }

  /** Extends the lease; before every batch that writes. */
  async renewLease(): Promise<void> {
    const expiresAt = this.options.clock.now() + this.options.leaseMs;
    const v = await this.write(keys.lease, this.lease(this.options.owner, expiresAt, this.quietLeft), this.leaseVersion);
    if (v === undefined) throw this.fenced('renew the lease');
    this.leaseVersion = v;
    this.leaseExpires = expiresAt;
  }

  /**
   * Extends the lease when little of it is left (under half, and under `soonMs`); before a quiet
   * batch, which writes nothing the lease must fence. A lease taken for a whole invocation (the AWS
   * handler's) is then never renewed within it.
   */
  async renewLeaseIfDue(soonMs: number): Promise<void> {
    if (this.leaseExpires - this.options.clock.now() < Math.min(this.options.leaseMs / 2, soonMs)) await this.renewLease();
  }

  /** Gives the lease up, so the next coordinator need not wait for it to expire, with the quiet run since the checkpoint, if any. */
  async releaseLease(quiet?: QuietRun): Promise<void> {
    const v = await this.write(keys.lease, this.lease('', 0, quiet), this.leaseVersion);
    if (v !== undefined) this.leaseVersion = v;
  }

  // ------------------------------------------------------------------ 2. the checkpoint take-over

  /**
   * Takes the checkpoint over with this epoch: `make` turns what is stored (undefined for a new
   * job) into what to write. A superseded coordinator may still commit between our read and our
   * write — its batch is complete, so we read again and take over what it left.
   */
  async takeOverCheckpoint(make: (stored: MetaItem<Checkpoint> | undefined) => Checkpoint): Promise<{ value: Checkpoint; version: number; stored: MetaItem<Checkpoint> | undefined }> {
    const taken = await this.takeOver<Checkpoint>(keys.checkpoint, make, 'take over the checkpoint');
    if (!taken) throw this.fenced('take over the checkpoint');
    this.quietLeft = undefined;
    return taken;
  }

  /**
   * The checkpoint as stored, when `fit` leaves it as it is and the lease was released cleanly:
   * then it need not be taken over (see the class comment). Undefined otherwise.
   */
  async keepCheckpoint(fit: (stored: MetaItem<Checkpoint>) => Checkpoint): Promise<{ value: Checkpoint; version: number; stored: MetaItem<Checkpoint> } | undefined> {
    if (!this.releasedCleanly) return undefined;
    const stored = await this.meta.get<Checkpoint>(keys.checkpoint);
    if (!stored || stored.epoch > this.epoch) return undefined;
    const value = fit(stored);
    return JSON.stringify(value) === JSON.stringify(stored.value) ? { value, version: stored.version, stored } : undefined;
  }

  /** The lease and the checkpoint as stored, without taking anything: idle mode's look (reads only). */
  async peek(): Promise<{ lease: MetaItem<Lease> | undefined; checkpoint: MetaItem<Checkpoint> | undefined }> {
    return { lease: await this.meta.get<Lease>(keys.lease), checkpoint: await this.meta.get<Checkpoint>(keys.checkpoint) };
  }

  /** Writes the checkpoint (a commit); returns its new version. */
  async writeCheckpoint(value: Checkpoint, expectedVersion: number, what: string): Promise<number> {
    const v = await this.write(keys.checkpoint, value, expectedVersion);
    if (v === undefined) throw this.fenced(what);
    // The quiet run the lease carried is about the checkpoint before this one: later renewals drop it.
    this.quietLeft = undefined;
    return v;
  }

  // ------------------------------------------------------------------------- 3. cut or claim

  /** The lineage record of batch `time`, if one was written. */
  readBatch(time: number): Promise<MetaItem<BatchRecord> | undefined> {
    return this.meta.get<BatchRecord>(keys.batch(time));
  }

  /**
   * The claim: rewrites the lineage record an earlier coordinator left, unchanged, with this
   * epoch; from then on that coordinator can neither seal more of its input nor complete it.
   * What it sealed before the claim stands (a seal that lands between our read and our write is
   * read again). Undefined when there is no record (any more).
   */
  async claimBatch(time: number): Promise<{ value: BatchRecord; version: number } | undefined> {
    return this.takeOver<BatchRecord>(keys.batch(time), (stored) => stored!.value, `claim batch ${time}`, true);
  }

  /**
   * The cut: writes the lineage record of a batch that had none (or one of another plan, at
   * `expectedVersion`). An older coordinator, still running, may have written its own record of
   * the batch between our read and our write; its input is as good as ours, so that record is
   * claimed and returned instead (`ours: false`), and the caller abandons its cut.
   */
  async cutBatch(time: number, record: BatchRecord, expectedVersion: number): Promise<{ value: BatchRecord; version: number; ours: boolean }> {
    const version = await this.write(keys.batch(time), record, expectedVersion);
    if (version !== undefined) return { value: record, version, ours: true };
    const claimed = await this.claimBatch(time);
    if (!claimed || claimed.value.fingerprint !== record.fingerprint) throw this.fenced(`write the lineage record of batch ${time}`);
    return { ...claimed, ours: false };
  }

  /**
   * Writes the lineage record of batch `time` over the version this coordinator wrote or claimed:
   * a seal, or its completion. Returns the new version; throws {@link FencedError} when superseded.
   */
  async writeBatch(time: number, record: BatchRecord, expectedVersion: number, what = `write the lineage record of batch ${time}`): Promise<number> {
    const v = await this.write(keys.batch(time), record, expectedVersion);
    if (v === undefined) throw this.fenced(what);
    return v;
  }

  // ------------------------------------------------------------------------------ 6. forgetting

  /** Deletes the record of a batch that `remember` no longer reaches (fenced: a late coordinator deletes nothing newer). */
  deleteBatch(key: string): Promise<void> {
    return this.meta.delete(key, { epoch: this.epoch });
  }

  /** Record keys under `batch/`. */
  listBatches(): Promise<string[]> {
    return this.meta.list('batch/');
  }

  // ---------------------------------------------------------------------------------- helpers

  /**
   * Rewrites an item with this epoch, from what is stored: read, write on that version, and read
   * again when an older coordinator's write came in between. Throws when a newer coordinator
   * wrote it; undefined when `onlyIfStored` and there is no item.
   */
  private async takeOver<T extends JsonValue>(
    key: string,
    make: (stored: MetaItem<T> | undefined) => T,
    what: string,
    onlyIfStored = false,
  ): Promise<{ value: T; version: number; stored: MetaItem<T> | undefined } | undefined> {
    for (let tries = 0; tries < 10; tries++) {
      const stored = await this.meta.get<T>(key);
      if (!stored && onlyIfStored) return undefined;
      if (stored && stored.epoch > this.epoch) throw this.fenced(what);
      const value = make(stored);
      const version = await this.write(key, value, stored?.version ?? 0);
      if (version !== undefined) return { value, version, stored };
    }
    throw this.fenced(what);
  }

  /**
   * A conditional write with this coordinator's epoch. When the condition fails, the item is read
   * back: if it holds exactly `value`, written with this epoch one version after `expectedVersion`,
   * the write was ours and only its response was lost (the SDK retried it). Otherwise undefined.
   */
  private async write(key: string, value: JsonValue, expectedVersion: number, epoch = this.epoch): Promise<number | undefined> {
    const v = await this.meta.put(key, value, { expectedVersion, epoch });
    if (v !== undefined) return v;
    const now = await this.meta.get(key);
    if (now && now.epoch === epoch && now.version === expectedVersion + 1 && JSON.stringify(now.value) === JSON.stringify(value)) return now.version;
    return undefined;
  }

  fenced(what: string): FencedError {
    return new FencedError(`job ${this.options.job}: could not ${what}: another coordinator has taken over (this one's epoch ${this.epoch} is fenced)`);
  }
}
