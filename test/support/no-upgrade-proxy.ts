// A loopback HTTP proxy that forwards plain HTTP requests to a target but refuses WebSocket upgrades, like
// a corporate proxy that does not pass WebSockets. Real sockets on 127.0.0.1, port 0.
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';

export interface NoUpgradeProxy {
  /** http://127.0.0.1:PORT */
  url: string;
  /** Upgrade requests seen (and refused). */
  readonly upgradesRefused: number;
  close(): Promise<void>;
}

export interface NoUpgradeProxyOptions {
  /** 'status' answers upgrades with an HTTP error; 'hangup' drops the connection without an answer. */
  mode?: 'status' | 'hangup';
  /** The status for mode 'status' (default 403). */
  status?: number;
}

export async function startNoUpgradeProxy(target: string, options: NoUpgradeProxyOptions = {}): Promise<NoUpgradeProxy> {
  const to = new URL(target);
  const sockets = new Set<Socket | Duplex>();
  let upgradesRefused = 0;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const upstream = request(
      { host: to.hostname, port: to.port, method: req.method, path: req.url, headers: { ...req.headers, host: to.host } },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
      res.end('bad gateway');
    });
    req.pipe(upstream);
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  server.on('upgrade', (_req: IncomingMessage, socket: Duplex) => {
    upgradesRefused++;
    socket.on('error', () => socket.destroy());
    if (options.mode === 'hangup') {
      socket.destroy();
      return;
    }
    const status = options.status ?? 403;
    socket.end(`HTTP/1.1 ${status} Refused\r\ncontent-type: text/plain\r\ncontent-length: 23\r\nconnection: close\r\n\r\nwebsockets not allowed\n`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    get upgradesRefused() {
      return upgradesRefused;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
