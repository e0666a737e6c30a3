/**
 * Durable state for the bench's "durable" variants: the file-system stores `sluice run` uses
 * (`FsBlobStore` and `FsMetaStore`), in a fresh temporary directory per run, so that every
 * checkpoint, lineage record, shuffle segment and received block really goes to disk.
 *
 * A fresh directory per run matters for correctness too: given an existing checkpoint, the
 * coordinator would resume after its last batch instead of starting at the first.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FsBlobStore } from '../lib/local/fsBlobStore.ts';
import { FsMetaStore } from '../lib/local/fsMetaStore.ts';
import type { JsonValue } from '../lib/ports/index.ts';

/** What went through the stores during one run. */
export interface StateTraffic {
  /** Blob writes, and their bytes. */
  blobPuts: number;
  blobBytes: number;
  /** Of those, received input blocks (`batch/<time>/input/…`), and their bytes. */
  inputBlocks: number;
  inputBytes: number;
  /** Input blocks read back from their files (the rest came from the in-process decoded-block cache). */
  inputBlockReads: number;
  /** Meta-store writes (lease, checkpoint, lineage), conditional ones that failed included. */
  metaPuts: number;
}

function noTraffic(): StateTraffic {
  return { blobPuts: 0, blobBytes: 0, inputBlocks: 0, inputBytes: 0, inputBlockReads: 0, metaPuts: 0 };
}

const isInputBlock = (key: string) => /^batch\/\d+\/input\//.test(key);

/** An {@link FsBlobStore} that counts what is written and which input blocks are read back. */
class CountingFsBlobStore extends FsBlobStore {
  constructor(
    rootDir: string,
    private readonly traffic: StateTraffic,
  ) {
    super(rootDir);
  }

  override async put(key: string, body: Uint8Array | string): Promise<void> {
    await super.put(key, body);
    const bytes = typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength;
    this.traffic.blobPuts++;
    this.traffic.blobBytes += bytes;
    if (isInputBlock(key)) {
      this.traffic.inputBlocks++;
      this.traffic.inputBytes += bytes;
    }
  }

  override async get(key: string): Promise<Uint8Array | undefined> {
    const out = await super.get(key);
    if (out && isInputBlock(key)) this.traffic.inputBlockReads++;
    return out;
  }
}

/** An {@link FsMetaStore} that counts writes. */
class CountingFsMetaStore extends FsMetaStore {
  constructor(
    rootDir: string,
    private readonly traffic: StateTraffic,
  ) {
    super(rootDir);
  }

  override put(key: string, value: JsonValue, condition: Parameters<FsMetaStore['put']>[2]): Promise<number | undefined> {
    this.traffic.metaPuts++;
    return super.put(key, value, condition);
  }
}

/**
 * A state directory made fresh for each run: {@link create} before the run and {@link remove}
 * after it (both untimed, see the contestant's `before`/`after`), {@link stores} in between.
 */
export class TempState {
  private dir: string | undefined;
  private current: { blobs: FsBlobStore; meta: FsMetaStore } | undefined;
  /** What went through the stores in the last run. */
  traffic: StateTraffic = noTraffic();

  async create(): Promise<void> {
    await this.remove();
    this.dir = await mkdtemp(join(tmpdir(), 'sluice-bench-'));
    this.traffic = noTraffic();
    this.current = {
      blobs: new CountingFsBlobStore(join(this.dir, 'blobs'), this.traffic),
      meta: new CountingFsMetaStore(join(this.dir, 'meta'), this.traffic),
    };
  }

  /** The stores of the current run, as `runBatches` takes them. */
  get stores(): { blobs: FsBlobStore; meta: FsMetaStore } {
    if (!this.current) throw new Error('TempState: create() the state directory before the run');
    return this.current;
  }

  async remove(): Promise<void> {
    const dir = this.dir;
    this.dir = undefined;
    this.current = undefined;
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  }
}
