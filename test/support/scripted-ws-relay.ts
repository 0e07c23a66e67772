// A scripted, misbehaving relay for the WebSocket transport's tests: what the real relay never does (binary
// or non-JSON frames, unknown or invalid messages, acks that do not match the push, a socket that upgrades
// and never says 'ready', several frames in one TCP chunk, refused or redirected upgrades). It is the `ws`
// package's WebSocketServer on a real socket on 127.0.0.1, port 0; each test scripts what it says. It checks
// no token: everything it sends is what the test tells it to send, nothing more.
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';

/** An epoch a scripted relay names in 'ready' and acks (the schema's form: ep_ and 22 base64url characters). */
export const SCRIPTED_EPOCH = 'ep_scriptedscriptedscript';

export interface ScriptedSocket {
  /** 0 for the first accepted socket, and so on. */
  readonly index: number;
  /** The headers of the upgrade request. */
  readonly headers: IncomingHttpHeaders;
  /** The JSON messages the device sent, in order. */
  readonly received: ReadonlyArray<Record<string, unknown>>;
  /** How the socket closed, as the relay saw it; undefined while open. */
  readonly closed: { code: number; reason: string } | undefined;
  /** Sends one JSON text frame. */
  send(message: unknown): void;
  /** Writes whole frames (see frame()) in one write, so the device reads them in one chunk. */
  sendTogether(...frames: Buffer[]): void;
  close(code: number, reason: string): void;
  terminate(): void;
  /** Waits for the next message of `type` from the device (one not handed out before). */
  next(type: string): Promise<Record<string, unknown>>;
}

/** What the relay does with the n-th upgrade request (from 0). */
export type UpgradeAnswer = 'accept' | 'hang' | { status: number; headers?: Record<string, string> };

export interface ScriptedRelayOptions {
  /** Default: accept every upgrade. */
  upgrade?: (index: number) => UpgradeAnswer;
  /** Called with each accepted socket, at once: the script of what the relay says. */
  onSocket: (socket: ScriptedSocket) => void;
  /** Whether the relay answers the device's pings (default true, as ws does). */
  autoPong?: boolean;
  /** The relay pings every socket this often (default: never). */
  pingEveryMs?: number;
}

export interface ScriptedRelay {
  /** http://127.0.0.1:PORT */
  readonly url: string;
  readonly sockets: readonly ScriptedSocket[];
  /** When each upgrade request arrived (Date.now()), accepted or not. */
  readonly upgrades: readonly number[];
  close(): Promise<void>;
}

/** One unmasked frame as a server sends it: text for a string, else `opcode` (2 binary, 8 close). */
export function frame(payload: string | Buffer, opcode = typeof payload === 'string' ? 0x1 : 0x2): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  let header: Buffer;
  if (body.length < 126) header = Buffer.from([0x80 | opcode, body.length]);
  else if (body.length < 65_536) {
    header = Buffer.from([0x80 | opcode, 126, 0, 0]);
    header.writeUInt16BE(body.length, 2);
  } else {
    header = Buffer.from([0x80 | opcode, 127, 0, 0, 0, 0, 0, 0, 0, 0]);
    header.writeBigUInt64BE(BigInt(body.length), 2);
  }
  return Buffer.concat([header, body]);
}

/** A JSON text frame. */
export const jsonFrame = (message: unknown): Buffer => frame(JSON.stringify(message));

/** A close frame with `code` and `reason`. */
export function closeFrame(code: number, reason: string): Buffer {
  const body = Buffer.alloc(2 + Buffer.byteLength(reason));
  body.writeUInt16BE(code, 0);
  body.write(reason, 2);
  return frame(body, 0x8);
}

/** A 'ready' for `deviceId`; its token expires in `expiresInSeconds`. */
export function readyMessage(deviceId: string, options: { epoch?: string; head?: number; expiresInSeconds?: number } = {}): Record<string, unknown> {
  return { type: 'ready', device_id: deviceId, head: options.head ?? 0, epoch: options.epoch ?? SCRIPTED_EPOCH, exp: Math.floor(Date.now() / 1000) + (options.expiresInSeconds ?? 300) };
}

/** The ack the real relay would send for `push`: every event stored, from seq `firstSeq` on. */
export function ackFor(push: Record<string, unknown>, options: { firstSeq?: number; epoch?: string } = {}): Record<string, unknown> {
  const events = push.events as Array<{ event_id: string }>;
  const first = options.firstSeq ?? 1;
  return {
    type: 'ack',
    id: push.id,
    results: events.map((event, index) => ({ event_id: event.event_id, status: 'stored', seq: first + index })),
    stored: events.length,
    duplicate: 0,
    rejected: 0,
    head: first + events.length - 1,
    epoch: options.epoch ?? SCRIPTED_EPOCH,
  };
}

export async function startScriptedRelay(options: ScriptedRelayOptions): Promise<ScriptedRelay> {
  const sockets: ScriptedSocket[] = [];
  const upgrades: number[] = [];
  const raw = new Set<Socket>();
  // It would agree to compression if asked (the device must not ask).
  const wss = new WebSocketServer({ noServer: true, autoPong: options.autoPong ?? true, perMessageDeflate: true });
  const server = createServer((_req, res) => {
    res.writeHead(404).end();
  });
  server.on('connection', (socket: Socket) => {
    raw.add(socket);
    socket.on('close', () => raw.delete(socket));
  });
  server.on('upgrade', (req, socket: Duplex, head: Buffer) => {
    const index = upgrades.length;
    upgrades.push(Date.now());
    socket.on('error', () => socket.destroy());
    const answer = options.upgrade?.(index) ?? 'accept';
    if (answer === 'hang') return;
    if (answer !== 'accept') {
      const headers = Object.entries(answer.headers ?? {}).map(([name, value]) => `${name}: ${value}\r\n`);
      socket.end(`HTTP/1.1 ${answer.status} Scripted\r\n${headers.join('')}content-length: 0\r\nconnection: close\r\n\r\n`);
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
      const accepted = scripted(sockets.length, ws, socket, req.headers);
      sockets.push(accepted);
      options.onSocket(accepted);
    });
  });
  const pinger =
    options.pingEveryMs === undefined
      ? undefined
      : setInterval(() => {
          for (const client of wss.clients) client.ping();
        }, options.pingEveryMs);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    sockets,
    upgrades,
    close: () =>
      new Promise<void>((resolve) => {
        clearInterval(pinger);
        for (const client of wss.clients) client.terminate();
        for (const socket of raw) socket.destroy();
        wss.close();
        server.close(() => resolve());
      }),
  };
}

function scripted(index: number, ws: WebSocket, socket: Duplex, headers: IncomingHttpHeaders): ScriptedSocket {
  const received: Array<Record<string, unknown>> = [];
  const handed = new Set<Record<string, unknown>>();
  const waiters: Array<{ type: string; resolve: (message: Record<string, unknown>) => void }> = [];
  let closed: { code: number; reason: string } | undefined;
  ws.on('error', () => undefined);
  ws.on('message', (data) => {
    const message = JSON.parse(data.toString()) as Record<string, unknown>;
    received.push(message);
    const waiter = waiters.findIndex((w) => w.type === message.type);
    if (waiter < 0) return;
    handed.add(message);
    waiters.splice(waiter, 1)[0]!.resolve(message);
  });
  ws.on('close', (code, reason) => {
    closed = { code, reason: reason.toString() };
  });
  return {
    index,
    headers,
    received,
    get closed() {
      return closed;
    },
    send: (message) => ws.send(JSON.stringify(message)),
    sendTogether: (...frames) => socket.write(Buffer.concat(frames)),
    close: (code, reason) => ws.close(code, reason),
    terminate: () => ws.terminate(),
    next: (type) => {
      const waiting = received.find((message) => message.type === type && !handed.has(message));
      if (!waiting) return new Promise((resolve) => waiters.push({ type, resolve }));
      handed.add(waiting);
      return Promise.resolve(waiting);
    },
  };
}
