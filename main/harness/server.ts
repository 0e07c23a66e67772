// The UI harness: the real main-process services (AppController: store, keyring, engine, relay) in plain
// Node, with the built settings window served to any browser on 127.0.0.1. The IPC contract is carried
// over a WebSocket on the same origin (protocol.ts), through the same dispatcher Electron uses.
//
// Only the page that was given the URL can drive it: every request (files, the socket, /notifications)
// needs the random token from the printed URL, the Host must be the harness's own address (no DNS
// rebinding) and the socket's Origin must be the harness's own origin (no other local page).
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, realpath } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { extname, join, normalize, sep } from 'node:path';
import { WebSocketServer, type WebSocket } from 'ws';
import type { EventName } from '../../shared/portable/ipc-contract.ts';
import { AppController } from '../app/app-controller.ts';
import { createDispatcher } from '../app/ipc-dispatch.ts';
import { MAX_MESSAGE_BYTES, parseRequest, malformed, type Push, type Response } from './protocol.ts';
import { RENDERER_DIST } from './renderer-build.ts';

export interface HarnessOptions {
  /** The device home (as --home). */
  readonly home: string;
  /** 'os' or 'file' (as --keyring); else MOTEBIT_KEYRING in env; else the OS keyring. */
  readonly keyring?: string | undefined;
  readonly env?: NodeJS.ProcessEnv;
  /** The OS keyring service name (tests use their own). */
  readonly keyringService?: string;
  /** Always loopback: the harness is never reachable from another machine. */
  readonly host?: '127.0.0.1';
  /** 0 (default) picks a free port. */
  readonly port?: number;
  /** The built renderer (default dist/renderer). */
  readonly rendererDir?: string;
  /** Where notifications and internal errors are logged as JSON lines (default stderr). */
  readonly log?: (line: string) => void;
  /** What starts this app again (npm start …): the no-keyring command ends with it. */
  readonly restartCommand?: string;
}

export interface HarnessNotification {
  readonly title: string;
  readonly body: string;
  readonly at: number;
}

export interface RunningHarness {
  /** http://127.0.0.1:PORT/?token=… — open it in any browser. */
  readonly url: string;
  readonly origin: string;
  readonly token: string;
  /** Every notification main asked for, in order (also logged, and served at /notifications?token=…). */
  readonly notifications: readonly HarnessNotification[];
  /** Start at login as the window last set it (kept in memory). */
  readonly startAtLogin: () => boolean;
  /** The running controller (for tests that also write to this device). */
  readonly controller: AppController;
  close(): Promise<void>;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json; charset=utf-8',
  '.woff2': 'font/woff2',
};

/** The window's own policy, repeated as a header (frame-ancestors only works there). */
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self' ws://127.0.0.1:*; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

export async function startHarness(options: HarnessOptions): Promise<RunningHarness> {
  const host = options.host ?? '127.0.0.1';
  if (host !== '127.0.0.1') throw new Error('the UI harness listens on 127.0.0.1 only');
  const rendererDir = await realpath(options.rendererDir ?? RENDERER_DIST).catch(() => options.rendererDir ?? RENDERER_DIST);
  if (!existsSync(join(rendererDir, 'index.html'))) {
    throw new Error(`the settings window is not built (no ${join(rendererDir, 'index.html')}): run npm run build:renderer`);
  }
  const log = options.log ?? ((line: string) => void process.stderr.write(`${line}\n`));
  const token = randomBytes(24).toString('base64url');
  const notifications: HarnessNotification[] = [];
  let startAtLogin = false;

  const controller = new AppController({
    home: options.home,
    keyring: options.keyring,
    env: options.env ?? process.env,
    ...(options.keyringService ? { keyringService: options.keyringService } : {}),
    ...(options.restartCommand ? { restartCommand: options.restartCommand } : {}),
    platform: {
      notify(title, body) {
        const notification = { title, body, at: Date.now() };
        notifications.push(notification);
        log(JSON.stringify({ notification }));
      },
      getStartAtLogin: () => startAtLogin,
      setStartAtLogin(enabled) {
        startAtLogin = enabled;
      },
    },
  });
  await controller.start();
  const dispatch = createDispatcher(controller.handlers(), (error, channel) => {
    log(JSON.stringify({ internalError: { channel, message: error instanceof Error ? error.message : String(error) } }));
  });

  let origin = '';
  let hostHeader = '';
  const tokenOk = (candidate: string | null): boolean => {
    if (candidate === null) return false;
    const a = Buffer.from(candidate);
    const b = Buffer.from(token);
    return a.length === b.length && timingSafeEqual(a, b);
  };
  const allowed = (request: IncomingMessage, url: URL): boolean => request.headers.host === hostHeader && tokenOk(url.searchParams.get('token'));

  const server = createServer((request, response) => {
    void handle(request, response).catch((error: unknown) => {
      log(JSON.stringify({ httpError: error instanceof Error ? error.message : String(error) }));
      if (!response.headersSent) refuse(response, 500, 'internal error');
      else response.destroy();
    });
  });

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', origin);
    if (!allowed(request, url)) return refuse(response, 403, 'Forbidden: open the URL the harness printed (it carries the token).');
    if (request.method !== 'GET' && request.method !== 'HEAD') return refuse(response, 405, 'Method not allowed');
    if (url.pathname === '/notifications') {
      return send(response, 200, 'application/json; charset=utf-8', Buffer.from(JSON.stringify({ notifications })), request.method);
    }
    let path: string;
    try {
      path = decodeURIComponent(url.pathname);
    } catch {
      return refuse(response, 400, 'Bad path');
    }
    if (path.endsWith('/')) path += 'index.html';
    const file = normalize(join(rendererDir, path));
    if (!file.startsWith(rendererDir + sep) || path.includes('\0')) return refuse(response, 404, 'Not found');
    let body: Buffer;
    try {
      body = await readFile(file);
    } catch {
      return refuse(response, 404, 'Not found');
    }
    if (extname(file) === '.html') body = Buffer.from(withToken(body.toString('utf8'), token));
    return send(response, 200, TYPES[extname(file)] ?? 'application/octet-stream', body, request.method);
  }

  // ---- the socket bridge ----
  const sockets = new Set<WebSocket>();
  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_MESSAGE_BYTES });
  server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = new URL(request.url ?? '/', origin);
    if (url.pathname !== '/bridge' || !allowed(request, url) || request.headers.origin !== origin) {
      socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    wss.handleUpgrade(request, socket, head, (ws) => {
      sockets.add(ws);
      ws.on('close', () => sockets.delete(ws));
      ws.on('error', () => ws.terminate());
      ws.on('message', (data, isBinary) => {
        if (isBinary) return reply(ws, malformed(null, 'messages are JSON text'));
        const parsed = parseRequest(data.toString());
        if (!parsed.ok) return reply(ws, parsed.response);
        const { id, channel, input } = parsed.request;
        void dispatch(channel, input).then((result) => reply(ws, { id, result }));
      });
    });
  });

  const push = (event: EventName, payload: unknown) => {
    const message = JSON.stringify({ event, payload } satisfies Push);
    for (const ws of sockets) if (ws.readyState === ws.OPEN) ws.send(message);
  };
  const stopStatus = controller.onStatus((status) => push('status.changed', status));
  const stopState = controller.onState((state) => push('app.changed', state));

  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port ?? 0, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (error) {
    await controller.close();
    throw error;
  }
  const { port } = server.address() as AddressInfo;
  hostHeader = `${host}:${port}`;
  origin = `http://${hostHeader}`;

  let closing: Promise<void> | null = null;
  return {
    url: `${origin}/?token=${token}`,
    origin,
    token,
    notifications,
    startAtLogin: () => startAtLogin,
    controller,
    close() {
      closing ??= (async () => {
        stopStatus();
        stopState();
        for (const ws of sockets) ws.close(1001, 'the harness is stopping');
        wss.close();
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
        await controller.close();
      })();
      return closing;
    },
  };
}

/** Every same-origin file the page loads carries the token too (the built index links ./assets/…). */
function withToken(html: string, token: string): string {
  return html.replace(/\b(src|href)="(\.\/[^"?#]*)"/g, (_match, attribute: string, path: string) => `${attribute}="${path}?token=${token}"`);
}

function reply(ws: WebSocket, response: Response): void {
  if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(response));
}

function refuse(response: ServerResponse, status: number, message: string): void {
  response.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff' });
  response.end(`${message}\n`);
}

function send(response: ServerResponse, status: number, type: string, body: Buffer, method: string | undefined): void {
  response.writeHead(status, {
    'Content-Type': type,
    'Content-Length': body.length,
    'Cache-Control': 'no-store',
    'Content-Security-Policy': CSP,
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
    'Cross-Origin-Resource-Policy': 'same-origin',
  });
  response.end(method === 'HEAD' ? undefined : body);
}
