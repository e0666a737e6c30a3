import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import dynalite from 'dynalite';
import kinesalite from 'kinesalite';
import S3rver from 's3rver';

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

async function listen(server: Listening): Promise<Emulator> {
  await new Promise<void>((resolve, reject) => server.listen(0, '127.0.0.1', (e) => (e ? reject(e) : resolve())));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** kinesalite on a free 127.0.0.1 port, in memory; streams become ACTIVE at once. */
export function startKinesalite(): Promise<Emulator> {
  return listen(kinesalite({ createStreamMs: 0, deleteStreamMs: 0, updateStreamMs: 0, shardLimit: 100 }) as unknown as Listening);
}

/** dynalite on a free 127.0.0.1 port, in memory; tables become ACTIVE at once. */
export function startDynalite(): Promise<Emulator> {
  return listen(dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 }) as unknown as Listening);
}

/** s3rver on a free 127.0.0.1 port, storing objects in a temporary directory removed on stop. */
export async function startS3rver(): Promise<Emulator> {
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
