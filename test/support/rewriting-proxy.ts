// An HTTP reverse proxy on 127.0.0.1 that a test can turn into a lying relay: it forwards every request
// to the real relay unchanged and lets the test rewrite chosen JSON answers (a pull page, the frontier)
// before the device sees them. WebSocket upgrades are refused, so devices behind it sync over HTTP. Real
// sockets and the real relay; only the answers the test names are altered.
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Answer {
  readonly method: string;
  /** The path without the query. */
  readonly path: string;
  readonly query: URLSearchParams;
  readonly status: number;
  readonly body: unknown;
  /** Who signed the request's token (a device id, or "identity"), or null when unsigned. */
  readonly signer: string | null;
}

/** An answer sent with another status than the relay's (e.g. a route it has, answered as missing). */
export class WithStatus {
  readonly status: number;
  readonly body: unknown;
  constructor(status: number, body: unknown) {
    this.status = status;
    this.body = body;
  }
}

/** Returns the body to send instead (a WithStatus to change the status too), or undefined to pass the answer on as it is. */
export type Rewrite = (answer: Answer) => unknown;

export interface RewritingProxy {
  readonly url: string;
  /** Rewrites from now on (replacing any earlier rewrite); null makes the proxy honest again. */
  rewrite(fn: Rewrite | null): void;
  /** Answers rewritten so far. */
  readonly rewritten: number;
  close(): Promise<void>;
}

export async function startRewritingProxy(target: () => string, port = 0): Promise<RewritingProxy> {
  let rewrite: Rewrite | null = null;
  let rewritten = 0;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const to = new URL(target());
      const upstream = httpRequest(
        { host: to.hostname, port: Number(to.port), method: req.method, path: req.url, headers: { ...req.headers, host: to.host } },
        (answer) => {
          const parts: Buffer[] = [];
          answer.on('data', (chunk: Buffer) => parts.push(chunk));
          answer.on('end', () => {
            let text = Buffer.concat(parts);
            let status = answer.statusCode ?? 502;
            const url = new URL(req.url ?? '/', 'http://proxy.invalid');
            if (rewrite && (answer.headers['content-type'] ?? '').startsWith('application/json')) {
              const replaced = rewrite({ method: req.method ?? '', path: url.pathname, query: url.searchParams, status: answer.statusCode ?? 0, body: JSON.parse(text.toString('utf8')) as unknown, signer: signerOf(req.headers.authorization) });
              if (replaced !== undefined) {
                rewritten++;
                if (replaced instanceof WithStatus) status = replaced.status;
                text = Buffer.from(JSON.stringify(replaced instanceof WithStatus ? replaced.body : replaced));
              }
            }
            const headers = { ...answer.headers, 'content-length': String(text.byteLength) };
            res.writeHead(status, headers);
            res.end(text);
          });
        },
      );
      upstream.on('error', () => {
        res.writeHead(502, { 'content-type': 'text/plain' });
        res.end('relay unreachable');
      });
      upstream.end(Buffer.concat(chunks));
    });
  });
  server.on('upgrade', (_req, socket) => socket.end('HTTP/1.1 403 Forbidden\r\nconnection: close\r\ncontent-length: 0\r\n\r\n'));
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const address = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${address.port}`,
    rewrite: (fn) => void (rewrite = fn),
    get rewritten() {
      return rewritten;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The signer claim of a Motebit token (claims are base64url JSON before the dot); null if there is none. */
function signerOf(authorization: string | undefined): string | null {
  const token = authorization?.startsWith('Motebit ') ? authorization.slice(8) : undefined;
  if (!token) return null;
  try {
    const claims = JSON.parse(Buffer.from(token.split('.')[0] ?? '', 'base64url').toString('utf8')) as { signer?: unknown };
    return typeof claims.signer === 'string' ? claims.signer : null;
  } catch {
    return null;
  }
}
