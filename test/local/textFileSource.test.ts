import { appendFile, mkdir, mkdtemp, rename, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SluiceError } from '../../lib/core/errors.ts';
import { MemoryBlobStore } from '../../lib/local/memoryBlobStore.ts';
import { localSources } from '../../lib/local/sourceFactory.ts';
import { textLines } from '../../lib/engine/newFiles.ts';
import { TextFileSource, type TextFileSourceOptions } from '../../lib/local/textFileSource.ts';
import type { InputSplit, JsonValue, SourceSpec } from '../../lib/ports/index.ts';
import { runBatches } from '../../lib/testing/index.ts';

let root: string;
let watched: string;
let staging: string;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'sluice-textfile-'));
  watched = join(root, 'in');
  staging = join(root, 'staging');
  await mkdir(watched);
  await mkdir(staging);
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

function spec(directory: string, includeExisting = false): SourceSpec {
  return { nodeId: 'textFile-1', kind: 'textFile', params: { directory, includeExisting } };
}

function newSource(options: { includeExisting?: boolean; directory?: string } & TextFileSourceOptions = {}): TextFileSource {
  return new TextFileSource(spec(options.directory ?? watched, options.includeExisting), { blobs: new MemoryBlobStore(), job: 'test' }, options);
}

/** Writes a file next to the watched directory and renames it in, as a producer should. */
async function moveIn(name: string, text: string): Promise<string> {
  await writeFile(join(staging, name), text);
  await rename(join(staging, name), join(watched, name));
  return join(watched, name);
}

async function readAll(source: TextFileSource, splits: InputSplit[]): Promise<unknown[][]> {
  const out: unknown[][] = [];
  for (const s of splits) out.push((await source.read(s)).records);
  return out;
}

function seenNames(state: JsonValue): string[] {
  return Object.keys((state as { seen: Record<string, number> }).seen);
}

describe('TextFileSource', () => {
  it('skips the files already there at the first cut, then takes each new file once, as its own split', async () => {
    // Prepare
    await writeFile(join(watched, 'old.txt'), 'old\n');
    const source = newSource();

    // Act
    const first = await source.cut(1000, undefined);
    const a = await moveIn('a.txt', 'a1\na2\n');
    const b = await moveIn('b.txt', 'b1\r\nb2');
    const second = await source.cut(2000, first.state);
    const third = await source.cut(3000, second.state);

    // Assess
    expect(first.splits).toEqual([]);
    expect(seenNames(first.state)).toEqual(['old.txt']);
    expect(second.splits).toEqual([
      { path: a, size: 6 },
      { path: b, size: 6 },
    ]);
    expect(await readAll(source, second.splits)).toEqual([
      ['a1', 'a2'],
      ['b1', 'b2'],
    ]);
    expect(third.splits).toEqual([]);
    expect(seenNames(third.state)).toEqual(['a.txt', 'b.txt', 'old.txt']);
  });

  it('takes the existing files at the first cut with includeExisting', async () => {
    // Prepare
    const old = join(watched, 'old.txt');
    await writeFile(old, 'x\ny\n');
    const source = newSource({ includeExisting: true });

    // Act
    const first = await source.cut(1000, undefined);
    const second = await source.cut(2000, first.state);

    // Assess
    expect(first.splits).toEqual([{ path: old, size: 4 }]);
    expect(await readAll(source, first.splits)).toEqual([['x', 'y']]);
    expect(second.splits).toEqual([]);
  });

  it('ignores hidden files, files in progress and directories', async () => {
    // Prepare
    const source = newSource();
    const first = await source.cut(1000, undefined);

    // Act
    await writeFile(join(watched, '.hidden.txt'), 'no\n');
    await writeFile(join(watched, '_COPYING_'), 'no\n');
    await writeFile(join(watched, '_temporary'), 'no\n');
    await writeFile(join(watched, 'big.csv._COPYING_'), 'no\n');
    await mkdir(join(watched, 'sub'));
    await writeFile(join(watched, 'sub', 'inner.txt'), 'no\n');
    await symlink(join(watched, 'sub'), join(watched, 'dirlink'));
    const yes = await moveIn('yes.txt', 'yes\n');
    const second = await source.cut(2000, first.state);

    // Assess
    expect(second.splits).toEqual([{ path: yes, size: 4 }]);
    expect(seenNames(second.state)).toEqual(['yes.txt']);
  });

  it('reads a symlinked file as a file', async () => {
    // Prepare
    const source = newSource();
    const first = await source.cut(1000, undefined);
    await writeFile(join(staging, 'target.txt'), 't\n');

    // Act
    await symlink(join(staging, 'target.txt'), join(watched, 'link.txt'));
    const second = await source.cut(2000, first.state);

    // Assess
    expect(await readAll(source, second.splits)).toEqual([['t']]);
  });

  it('takes a file whose in-progress name is renamed to its final name at the next cut', async () => {
    // Prepare: a producer copying in place under a '_COPYING_' name
    const source = newSource();
    const first = await source.cut(1000, undefined);
    await writeFile(join(watched, 'data.txt._COPYING_'), 'half');
    const during = await source.cut(2000, first.state);

    // Act
    await appendFile(join(watched, 'data.txt._COPYING_'), ' and the rest\n');
    await rename(join(watched, 'data.txt._COPYING_'), join(watched, 'data.txt'));
    const after = await source.cut(3000, during.state);

    // Assess
    expect(during.splits).toEqual([]);
    expect(await readAll(source, after.splits)).toEqual([['half and the rest']]);
  });

  it('reads exactly the bytes sealed at the cut, even after an append', async () => {
    // Prepare
    const source = newSource();
    const first = await source.cut(1000, undefined);
    const path = await moveIn('grows.txt', 'one\ntwo\n');
    const second = await source.cut(2000, first.state);

    // Act
    await appendFile(path, 'three\n');
    const records = await readAll(source, second.splits);
    const third = await source.cut(3000, second.state);

    // Assess
    expect(records).toEqual([['one', 'two']]);
    expect(third.splits).toEqual([]);
  });

  it('reads an empty file as no lines and keeps empty lines in between', async () => {
    // Prepare
    const source = newSource();
    const first = await source.cut(1000, undefined);
    await moveIn('empty.txt', '');
    await moveIn('gaps.txt', 'a\n\n\nb\n\n');

    // Act
    const second = await source.cut(2000, first.state);

    // Assess
    expect(await readAll(source, second.splits)).toEqual([[], ['a', '', '', 'b', '']]);
  });

  it('fails the read of a file removed before its batch ran, naming the file', async () => {
    // Prepare
    const source = newSource();
    const first = await source.cut(1000, undefined);
    const path = await moveIn('gone.txt', 'x\n');
    const second = await source.cut(2000, first.state);

    // Act
    await rm(path);
    const error = await source.read(second.splits[0]).catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(SluiceError);
    expect((error as SluiceError).message).toBe(`textFile-1: the input file ${path} was removed before its batch was processed`);
    expect((error as SluiceError).nodeId).toBe('textFile-1');
  });

  it('fails the read of a file that shrank since its cut', async () => {
    // Prepare
    const source = newSource();
    const first = await source.cut(1000, undefined);
    const path = await moveIn('shrinks.txt', 'long line\n');
    const second = await source.cut(2000, first.state);

    // Act
    await writeFile(path, 'x\n');
    const error = await source.read(second.splits[0]).catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(SluiceError);
    expect((error as SluiceError).message).toContain(path);
  });

  it('fails a cut when the directory does not exist, naming it', async () => {
    // Prepare
    const missing = join(root, 'nope');
    const source = newSource({ directory: missing });

    // Act
    const error = await source.cut(1000, undefined).catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(SluiceError);
    expect((error as SluiceError).message).toBe(`textFile-1: the textFileStream directory ${missing} does not exist`);
    expect((error as SluiceError).nodeId).toBe('textFile-1');
    expect((error as SluiceError).batchTime).toBe(1000);
  });

  it('fails a cut when the directory is a file', async () => {
    // Prepare
    const file = join(root, 'plain');
    await writeFile(file, '');
    const source = newSource({ directory: file });

    // Act / Assess
    await expect(source.cut(1000, undefined)).rejects.toThrow(`textFile-1: the textFileStream directory ${file} is not a directory`);
  });

  it('refuses s3:// directories: they need the AWS runtime', () => {
    // Act / Assess
    expect(() => newSource({ directory: 's3://bucket/incoming/' })).toThrow(SluiceError);
    expect(() => newSource({ directory: 's3://bucket/incoming/' })).toThrow(/s3:\/\/ directories need the AWS runtime/);
  });

  it('forgets the names of removed files once they are older than the grace period', async () => {
    // Prepare
    const source = newSource({ forgetAfterMs: 60_000 });
    const first = await source.cut(1000, undefined);
    const path = await moveIn('done.txt', 'x\n');
    await moveIn('kept.txt', 'y\n');
    const mtime = (await stat(path)).mtimeMs;
    const taken = await source.cut(mtime + 1, first.state);

    // Act
    await rm(path);
    const soon = await source.cut(mtime + 30_000, taken.state);
    const later = await source.cut(mtime + 61_000, soon.state);

    // Assess
    expect(taken.splits).toHaveLength(2);
    expect(seenNames(soon.state)).toEqual(['done.txt', 'kept.txt']);
    expect(seenNames(later.state)).toEqual(['kept.txt']); // kept.txt is still there: never forgotten
    expect(later.splits).toEqual([]);
  });

  it('caps the names it remembers with a watermark, so old files are still not taken again', async () => {
    // Prepare: three files with distinct mtimes
    const source = newSource({ maxRemembered: 2, includeExisting: true });
    const names = ['f1.txt', 'f2.txt', 'f3.txt'];
    for (let i = 0; i < names.length; i++) {
      const path = join(watched, names[i]);
      await writeFile(path, `${i}\n`);
      await utimes(path, 1_000 + i, 1_000 + i); // seconds
    }

    // Act
    const first = await source.cut(5000, undefined);
    const second = await source.cut(6000, first.state);
    const late = await moveIn('f4.txt', 'new\n');
    const third = await source.cut(7000, second.state);

    // Assess
    expect(first.splits).toHaveLength(3);
    expect(first.state).toEqual({ ignoreBefore: 1_000_000, seen: { 'f2.txt': 1_001_000, 'f3.txt': 1_002_000 } });
    expect(second.splits).toEqual([]); // f1.txt is below the watermark
    expect(third.splits).toEqual([{ path: late, size: 4 }]);
    expect(seenNames(third.state)).toEqual(['f3.txt', 'f4.txt']);
  });

  it('refuses a state it cannot read', async () => {
    // Act / Assess
    await expect(newSource().cut(1000, { seen: [] })).rejects.toThrow(SluiceError);
  });
});

describe('textLines', () => {
  it('splits on \\n and \\r\\n and drops the empty part after a final newline', () => {
    expect(textLines('')).toEqual([]);
    expect(textLines('\n')).toEqual(['']);
    expect(textLines('a')).toEqual(['a']);
    expect(textLines('a\r\nb\n')).toEqual(['a', 'b']);
    expect(textLines('a\n\nb')).toEqual(['a', '', 'b']);
  });
});

describe('localSources', () => {
  it('builds a TextFileSource for textFile nodes and refuses s3:// directories', () => {
    // Prepare
    const io = { blobs: new MemoryBlobStore(), job: 'test' };
    const sources = localSources();

    // Act / Assess
    expect(sources(spec(watched), io)).toBeInstanceOf(TextFileSource);
    expect(() => sources(spec('s3://bucket/in/'), io)).toThrow(/textFile-1: .*s3:\/\/ directories need the AWS runtime/);
  });
});

describe('textFileStream end to end', () => {
  it('reads the existing files in the first batch with includeExisting, and nothing after', async () => {
    // Prepare
    await writeFile(join(watched, 'one.txt'), 'to be or\nnot to be\n');
    await writeFile(join(watched, 'two.txt'), 'be quick\n');
    await writeFile(join(watched, '.skip.txt'), 'skip me\n');

    // Act
    const out = await runBatches({ batchInterval: 1000, batches: 2 }, (ctx) =>
      ctx
        .textFileStream(watched, { includeExisting: true })
        .flatMap((l) => l.split(' '))
        .countByValue(),
    );

    // Assess
    expect(out.map((b) => b.time)).toEqual([1000, 2000]);
    expect(out[0].data.sort()).toEqual([
      ['be', 3],
      ['not', 1],
      ['or', 1],
      ['quick', 1],
      ['to', 2],
    ]);
    expect(out[0].partitions).toHaveLength(2); // a shuffle has as many partitions as there were files
    expect(out[1].data).toEqual([]);
  });

  it('skips the existing files without includeExisting', async () => {
    // Prepare
    await writeFile(join(watched, 'one.txt'), 'old line\n');

    // Act
    const out = await runBatches({ batchInterval: 1000, batches: 1 }, (ctx) => ctx.textFileStream(watched));

    // Assess
    expect(out).toEqual([{ time: 1000, data: [], partitions: [] }]);
  });
});
