import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { UiSource } from './sources.ts';

/**
 * The Streaming UI's web server: the page (plain HTML, CSS and JavaScript, with uPlot for the
 * charts) and a small JSON API over a {@link UiSource}. It listens on 127.0.0.1 only: the page
 * shows a job's data and has no login.
 *
 * API: `GET /api/job` (name, batch interval, the plan's stages), `GET /api/batches?since=N`
 * (the batch table's rows; `since` the `seq` of an earlier answer, for only what is new),
 * `GET /api/batch/<time>` (one batch with its stages, tasks and input), `GET
 * /api/batch/<time>/dead-letters`.
 */

const here = dirname(fileURLToPath(import.meta.url));
const uplotDir = dirname(createRequire(import.meta.url).resolve('uplot'));

/** The files the page is made of, by path, and where each is. */
const STATIC: Record<string, { file: string; type: string }> = {
  '/': { file: join(here, 'static', 'index.html'), type: 'text/html; charset=utf-8' },
  '/app.js': { file: join(here, 'static', 'app.js'), type: 'text/javascript; charset=utf-8' },
  '/graph.js': { file: join(here, 'static', 'graph.js'), type: 'text/javascript; charset=utf-8' },
  '/app.css': { file: join(here, 'static', 'app.css'), type: 'text/css; charset=utf-8' },
  '/uplot.js': { file: join(uplotDir, 'uPlot.iife.min.js'), type: 'text/javascript; charset=utf-8' },
  '/uplot.css': { file: join(uplotDir, 'uPlot.min.css'), type: 'text/css; charset=utf-8' },
};

/** A running Streaming UI. */
export interface UiServer {
  /** `http://127.0.0.1:<port>/` */
  readonly url: string;
  close(): Promise<void>;
}

/**
 * Serves the Streaming UI for `source` on 127.0.0.1 (`port` 0 picks a free one).
 *
 * @example
 * ```ts
 * const ui = await startUi(liveSource(coordinator, graph), 4040);
 * console.log(`Streaming UI at ${ui.url}`);
 * await ui.close();
 * ```
 */
export async function startUi(source: UiSource, port = 0): Promise<UiServer> {
  const server = createServer((req, res) => {
    handle(source, req, res).catch((e: unknown) => send(res, 500, { error: e instanceof Error ? e.message : String(e) }));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(e.code === 'EADDRINUSE' ? new Error(`port ${port} is in use: give --ui another port, or 0 for any free one`) : e),
    );
    server.listen(port, '127.0.0.1', resolve);
  });
  const { port: bound } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${bound}/`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function handle(source: UiSource, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://127.0.0.1');
  const path = url.pathname;
  if (req.method !== 'GET') return send(res, 405, { error: 'only GET' });
  const asset = STATIC[path];
  if (asset) {
    res.writeHead(200, { 'content-type': asset.type, 'cache-control': 'no-cache' });
    res.end(await readFile(asset.file));
    return;
  }
  if (path === '/api/job') return send(res, 200, await source.job());
  if (path === '/api/batches') {
    const since = Number(url.searchParams.get('since') ?? '0');
    return send(res, 200, await source.batches(Number.isFinite(since) ? since : 0));
  }
  const batch = /^\/api\/batch\/(\d+)(\/dead-letters)?$/.exec(path);
  if (batch) {
    const time = Number(batch[1]);
    if (batch[2]) return send(res, 200, await source.deadLetters(time));
    const b = await source.batch(time);
    return b ? send(res, 200, b) : send(res, 404, { error: `no batch ${time} in the history` });
  }
  send(res, 404, { error: `no such page: ${path}` });
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}
