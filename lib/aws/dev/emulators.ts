import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SluiceError } from '../../core/errors.ts';

/** A running emulator: its endpoint URL and how to stop it. */
export interface Emulator {
  readonly endpoint: string;
  stop(): Promise<void>;
}

interface Listening {
  listen(port: number, host: string, cb: (err?: Error) => void): unknown;
  close(cb?: (err?: Error) => void): unknown;
  address(): AddressInfo | string | null;
}

/** The npm emulators `sluice dev-aws` runs, with the versions this release is tested with. */
export const EMULATOR_PACKAGES = { dynalite: '4.0.0', kinesalite: '3.3.3', s3rver: '3.7.1' } as const;

/**
 * Imports an emulator package by name. They are needed by `sluice dev-aws` only, so an installed
 * sluice does not depend on them: a project that wants dev-aws installs them beside it, and is
 * told which when one is missing.
 */
async function emulatorPackage(name: keyof typeof EMULATOR_PACKAGES): Promise<unknown> {
  try {
    return ((await import(name)) as { default: unknown }).default;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ERR_MODULE_NOT_FOUND') throw e;
    const all = Object.entries(EMULATOR_PACKAGES).map(([n, v]) => `${n}@${v}`).join(' ');
    throw new SluiceError(`the emulator package ${name} is not installed; sluice dev-aws needs: npm install --save-dev ${all}`, { cause: e });
  }
}

async function listen(server: Listening): Promise<Emulator> {
  await new Promise<void>((resolve, reject) => server.listen(0, '127.0.0.1', (e) => (e ? reject(e) : resolve())));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** kinesalite on a free 127.0.0.1 port, in memory; streams become ACTIVE at once. */
export async function startKinesalite(): Promise<Emulator> {
  const kinesalite = (await emulatorPackage('kinesalite')) as (options: Record<string, unknown>) => Listening;
  return listen(kinesalite({ createStreamMs: 0, deleteStreamMs: 0, updateStreamMs: 0, shardLimit: 100 }));
}

/** dynalite on a free 127.0.0.1 port, in memory; tables become ACTIVE at once. */
export async function startDynalite(): Promise<Emulator> {
  const dynalite = (await emulatorPackage('dynalite')) as (options: Record<string, unknown>) => Listening;
  return listen(dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 }));
}

/** s3rver on a free 127.0.0.1 port, storing objects in a temporary directory removed on stop. */
export async function startS3rver(): Promise<Emulator> {
  const S3rver = (await emulatorPackage('s3rver')) as new (options: Record<string, unknown>) => { run(): Promise<unknown>; close(): Promise<void> };
  const directory = await mkdtemp(join(tmpdir(), 'sluice-s3rver-'));
  const server = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory });
  const { port } = (await server.run()) as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    stop: async () => {
      await server.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
}
