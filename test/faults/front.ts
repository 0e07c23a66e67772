// The front: a loopback proxy at the one URL every device knows (and the relay's --audience), so the relay
// behind it can be killed, replaced or restored without any device noticing a new address. Honest by
// default (bytes passed as they are); a fault switches the mode for NEW connections:
//   cut        TCP: some connections are cut at a random byte offset, up or down
//   delay      TCP: every chunk is held back a random time (order kept)
//   blackhole  TCP: connections are accepted and never answered (the device must time out)
//   http       HTTP level (node:http): refuses WebSocket upgrades (or tunnels them untouched), and may
//              replay each POST, lose the answer of a POST the relay did process, or tamper with ONE pull
//              page, then be honest again
// It also counts bytes so that a fault can strike "mid push" (bytes up) or "mid pull/fan-out" (bytes down).
import { createServer as createHttpServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Prng } from './prng.ts';
import { signerOf, tamperPage, type TamperVariant } from './tamper.ts';

export type FrontMode =
  | { readonly kind: 'pass' }
  | { readonly kind: 'cut'; readonly probability: number; readonly maxUp: number; readonly maxDown: number }
  | { readonly kind: 'delay'; readonly maxMs: number }
  | { readonly kind: 'blackhole' }
  | {
      readonly kind: 'http';
      /** WebSocket upgrades: refused with 403, hung up on, or tunnelled to the relay untouched. */
      readonly upgrade: 'refuse' | 'hangup' | 'tunnel';
      /** Each POST is sent to the relay twice; the device gets the first answer. */
      readonly replayPosts?: boolean;
      /** Probability that the answer to a POST the relay processed is lost (the connection is dropped). */
      readonly loseAnswers?: number;
    };

export interface ByteTrigger {
  readonly direction: 'up' | 'down';
  readonly atLeast: number;
  /** Count only WebSocket connections, and only while at least this many are open (fan-out). */
  readonly minWebSockets?: number;
}

export interface TamperRecord {
  readonly at: number;
  readonly variant: TamperVariant;
  readonly detail: string;
}

interface Armed extends ByteTrigger {
  seen: number;
  fire: () => void;
}

interface Conn {
  readonly client: Socket;
  upstream: Socket | null;
  ws: boolean;
}

export class Front {
  readonly prng: Prng;
  url = '';
  #server: Server;
  #http = createHttpServer();
  #target = 0;
  #mode: FrontMode = { kind: 'pass' };
  #tamper: { variant: TamperVariant; upgrade: 'refuse' | 'tunnel'; resolve: (record: TamperRecord | null) => void } | null = null;
  #triggers = new Set<Armed>();
  #conns = new Set<Conn>();
  #httpSockets = new Set<Socket | Duplex>();
  #wsOpen = 0;
  readonly stats = { accepted: 0, cut: 0, blackholed: 0, upgradesRefused: 0, replayed: 0, answersLost: 0, tampered: [] as TamperRecord[] };

  constructor(prng: Prng) {
    this.prng = prng;
    this.#server = createServer((client) => this.#accept(client));
    this.#http.on('request', (req: IncomingMessage, res: ServerResponse) => void this.#proxyRequest(req, res));
    this.#http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.#upgrade(req, socket, head));
    this.#http.keepAliveTimeout = 5_000;
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    const { port } = this.#server.address() as AddressInfo;
    this.url = `http://127.0.0.1:${port}`;
    return this.url;
  }

  /** The relay's port (it may change when the relay is restarted). */
  setTarget(port: number): void {
    this.#target = port;
  }

  get mode(): FrontMode {
    return this.#mode;
  }

  setMode(mode: FrontMode): void {
    this.#mode = mode;
  }

  /** Resolves when the trigger's bytes have passed (counted from now), or when cancelled (false). */
  onBytes(trigger: ByteTrigger, timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      const armed: Armed = {
        ...trigger,
        seen: 0,
        fire: () => {
          clearTimeout(timer);
          this.#triggers.delete(armed);
          resolve(true);
        },
      };
      const timer = setTimeout(() => {
        this.#triggers.delete(armed);
        resolve(false);
      }, timeoutMs);
      this.#triggers.add(armed);
    });
  }

  /**
   * HTTP mode with one tampered pull page: resolves with what was done once a page big enough has passed
   * (the front is honest again from then on), or null after timeoutMs with nothing tampered.
   */
  tamperOnce(variant: TamperVariant, upgrade: 'refuse' | 'tunnel', timeoutMs: number): Promise<TamperRecord | null> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#tamper = null;
        resolve(null);
      }, timeoutMs);
      this.#tamper = {
        variant,
        upgrade,
        resolve: (record) => {
          clearTimeout(timer);
          this.#tamper = null;
          resolve(record);
        },
      };
    });
  }

  async close(): Promise<void> {
    for (const conn of this.#conns) {
      conn.client.destroy();
      conn.upstream?.destroy();
    }
    for (const socket of this.#httpSockets) socket.destroy();
    this.#triggers.clear();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  // ---- TCP -----------------------------------------------------------------------------------------

  #accept(client: Socket): void {
    this.stats.accepted++;
    client.on('error', () => client.destroy());
    const mode: FrontMode = this.#tamper ? { kind: 'http', upgrade: this.#tamper.upgrade } : this.#mode;
    if (mode.kind === 'http') {
      this.#httpSockets.add(client);
      client.on('close', () => this.#httpSockets.delete(client));
      this.#http.emit('connection', client);
      return;
    }
    const conn: Conn = { client, upstream: null, ws: false };
    this.#conns.add(conn);
    if (mode.kind === 'blackhole') {
      this.stats.blackholed++;
      client.on('data', () => {}); // read and never answer
      client.on('close', () => this.#conns.delete(conn));
      return;
    }
    const upstream = connect({ host: '127.0.0.1', port: this.#target });
    conn.upstream = upstream;
    upstream.on('error', () => upstream.destroy());
    const cut =
      mode.kind === 'cut' && this.prng.chance(mode.probability)
        ? this.prng.chance(0.5)
          ? { direction: 'up' as const, offset: this.prng.int(0, mode.maxUp) }
          : { direction: 'down' as const, offset: this.prng.int(0, mode.maxDown) }
        : null;
    const delay = mode.kind === 'delay' ? mode.maxMs : 0;
    const sent = { up: 0, down: 0 };
    const queues = { up: Promise.resolve(), down: Promise.resolve() };
    let sniffed = false;
    let closed = false;
    const forget = (): void => {
      if (closed) return;
      closed = true;
      if (conn.ws) this.#wsOpen--;
      this.#conns.delete(conn);
    };
    /** A cut: both sides dropped at once, whatever is still buffered. */
    const closeBoth = (): void => {
      forget();
      client.destroy();
      upstream.destroy();
    };
    /** A side that is gone: the other gets what was queued for it, then an end (and no more than 5 s). */
    const finish = (side: Socket): void => {
      forget();
      side.end();
      setTimeout(() => side.destroy(), 5_000).unref();
    };
    const forward = (direction: 'up' | 'down', chunk: Buffer | null): void => {
      const [from, to] = direction === 'up' ? [client, upstream] : [upstream, client];
      const write = (): void => {
        if (to.destroyed) return;
        if (chunk === null) {
          to.end();
          return;
        }
        if (cut && cut.direction === direction && sent[direction] + chunk.length > cut.offset) {
          this.stats.cut++;
          const part = chunk.subarray(0, cut.offset - sent[direction]);
          sent[direction] += part.length;
          to.write(part, () => closeBoth());
          setTimeout(closeBoth, 50);
          return;
        }
        sent[direction] += chunk.length;
        this.#count(direction, conn, chunk.length);
        if (!to.write(chunk) && delay === 0) {
          from.pause();
          to.once('drain', () => from.resume());
        }
      };
      if (delay > 0) {
        const wait = this.prng.int(0, delay);
        queues[direction] = queues[direction].then(() => new Promise((resolve) => setTimeout(resolve, wait))).then(write);
      } else write();
    };
    client.on('data', (chunk: Buffer) => {
      if (!sniffed) {
        sniffed = true;
        if (/^upgrade:\s*websocket/im.test(chunk.toString('latin1', 0, Math.min(chunk.length, 8192)))) {
          conn.ws = true;
          this.#wsOpen++;
        }
      }
      forward('up', chunk);
    });
    upstream.on('data', (chunk: Buffer) => forward('down', chunk));
    client.on('end', () => forward('up', null));
    upstream.on('end', () => forward('down', null));
    client.on('close', () => void queues.up.then(() => finish(upstream)));
    upstream.on('close', () => void queues.down.then(() => finish(client)));
  }

  #count(direction: 'up' | 'down', conn: Conn, bytes: number): void {
    for (const trigger of this.#triggers) {
      if (trigger.direction !== direction) continue;
      if (trigger.minWebSockets !== undefined && (!conn.ws || this.#wsOpen < trigger.minWebSockets)) continue;
      trigger.seen += bytes;
      if (trigger.seen >= trigger.atLeast) trigger.fire();
    }
  }

  // ---- HTTP ----------------------------------------------------------------------------------------

  #upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    this.#httpSockets.add(socket);
    socket.on('close', () => this.#httpSockets.delete(socket));
    const mode: FrontMode = this.#tamper ? { kind: 'http', upgrade: this.#tamper.upgrade } : this.#mode;
    const policy = mode.kind === 'http' ? mode.upgrade : 'tunnel';
    if (policy === 'tunnel') {
      const upstream = connect({ host: '127.0.0.1', port: this.#target });
      this.#httpSockets.add(upstream);
      upstream.on('close', () => {
        this.#httpSockets.delete(upstream);
        socket.destroy();
      });
      socket.on('close', () => upstream.destroy());
      upstream.on('error', () => upstream.destroy());
      const lines = [`${req.method} ${req.url} HTTP/${req.httpVersion}`];
      for (let i = 0; i < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
      upstream.write(`${lines.join('\r\n')}\r\n\r\n`);
      if (head.length > 0) upstream.write(head);
      socket.pipe(upstream);
      upstream.pipe(socket);
      return;
    }
    this.stats.upgradesRefused++;
    if (policy === 'hangup') {
      socket.destroy();
      return;
    }
    socket.end('HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\ncontent-length: 23\r\nconnection: close\r\n\r\nwebsockets not allowed\n');
  }

  async #proxyRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    try {
      for await (const chunk of req) chunks.push(chunk as Buffer);
    } catch {
      res.destroy();
      return;
    }
    const body = Buffer.concat(chunks);
    const mode = this.#mode;
    const isPost = req.method === 'POST';
    const isPull = req.method === 'GET' && /^\/v1\/motebits\/[^/]+\/events\?/.test(req.url ?? '');
    try {
      const first = await this.#send(req, body);
      if (isPost && mode.kind === 'http' && mode.replayPosts) {
        this.stats.replayed++;
        await this.#send(req, body).catch(() => null); // the relay sees the same request twice
      }
      if (isPost && mode.kind === 'http' && mode.loseAnswers && this.prng.chance(mode.loseAnswers)) {
        this.stats.answersLost++;
        res.destroy(); // the relay did the work; the device never hears of it
        return;
      }
      let payload = first.body;
      const tamper = this.#tamper;
      if (tamper && isPull && first.status === 200) {
        const done = tamperPage(JSON.parse(payload.toString('utf8')) as unknown, tamper.variant, this.prng, signerOf(req.headers.authorization));
        if (done) {
          payload = Buffer.from(JSON.stringify(done.page));
          const record: TamperRecord = { at: Date.now(), variant: tamper.variant, detail: done.detail };
          this.stats.tampered.push(record);
          tamper.resolve(record);
        }
      }
      const headers: Record<string, string | string[] | undefined> = { ...first.headers, 'content-length': String(payload.length) };
      for (const hopByHop of ['transfer-encoding', 'connection', 'keep-alive']) delete headers[hopByHop];
      res.writeHead(first.status, headers);
      res.end(payload);
    } catch {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
      res.end('bad gateway');
    }
  }

  #send(req: IncomingMessage, body: Buffer): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
    return new Promise((resolve, reject) => {
      const upstream = request(
        { host: '127.0.0.1', port: this.#target, method: req.method, path: req.url, headers: { ...req.headers, host: `127.0.0.1:${this.#target}`, connection: 'close' }, timeout: 60_000 },
        (answer) => {
          const parts: Buffer[] = [];
          answer.on('data', (chunk: Buffer) => parts.push(chunk));
          answer.on('end', () => resolve({ status: answer.statusCode ?? 502, headers: { ...answer.headers }, body: Buffer.concat(parts) }));
          answer.on('error', reject);
        },
      );
      upstream.on('timeout', () => upstream.destroy(new Error('upstream timeout')));
      upstream.on('error', reject);
      upstream.end(body);
    });
  }
}
