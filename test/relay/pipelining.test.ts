// Two ways a client could once confuse the relay over one raw connection, found by the fuzzer
// (test/relay/fuzz.test.ts): an upgrade pipelined behind a plain request, and a body cut off mid-way.
import { connect } from 'node:net';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, expect, it } from 'vitest';
import type { RunningRelay } from '../../relay/server.ts';
import { RelayClient, enrolledMotebit, startTestRelay, tempDir } from './support.ts';

let dir: ReturnType<typeof tempDir>;
let relay: RunningRelay;
const lines: { level: number; msg: string }[] = [];

beforeEach(async () => {
  dir = tempDir();
  lines.length = 0;
  const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line) as { level: number; msg: string }) });
  relay = await startTestRelay(join(dir.dir, 'relay.db'), { logger });
});
afterEach(async () => {
  await relay.close();
  dir.cleanup();
});

/** Sends raw bytes, optionally hangs up after `hangUpMs`, and returns every status line received. */
function raw(bytes: string, hangUpMs?: number): Promise<string[]> {
  const { port } = new URL(relay.url);
  return new Promise((resolve) => {
    let received = '';
    const socket = connect(Number(port), '127.0.0.1', () => {
      socket.write(bytes);
      if (hangUpMs !== undefined) setTimeout(() => socket.destroy(), hangUpMs);
    });
    socket.on('data', (chunk) => (received += chunk.toString('latin1')));
    socket.on('error', () => {});
    // A status line may follow a body without a line break (a JSON answer with a content-length).
    socket.on('close', () => resolve(received.match(/HTTP\/1\.1 \d{3} [^\r\n]*/g) ?? []));
    setTimeout(() => socket.destroy(), 1500);
  });
}

/** Resolves once the relay has logged `msg` (10 s at most). */
async function logged(msg: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!lines.some((line) => line.msg === msg)) {
    if (Date.now() > deadline) throw new Error(`the relay never logged "${msg}"`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const WS = '/v1/motebits/mb_AAAAAAAAAAAAAAAAAAAAAA/ws';

it('an upgrade pipelined behind a request is answered after it, never before', async () => {
  const statuses = await raw(
    // A request answered asynchronously (after a token check), as /metrics was before it moved to its own listener.
    `GET /v1/motebits/mb_AAAAAAAAAAAAAAAAAAAAAA/events HTTP/1.1\r\nHost: x\r\n\r\nGET ${WS} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  );
  expect(statuses).toEqual(['HTTP/1.1 401 Unauthorized', 'HTTP/1.1 101 Switching Protocols']);
});

it('a client that hangs up in the middle of a body is not logged as a relay failure', async () => {
  await raw('POST /v1/motebits/mb_AAAAAAAAAAAAAAAAAAAAAA/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10\r\n\r\n{}', 200);
  await logged('request refused'); // refused from its header (no token) before the hang-up
  expect(lines.filter((line) => line.level >= 50)).toEqual([]);
  expect((await fetch(`${relay.url}/healthz`)).status).toBe(200);
});

it('an authenticated client that hangs up in the middle of its body is not logged as a relay failure either', async () => {
  // Authenticated from the header first, so the relay is already reading the body when the client goes.
  const client = new RelayClient(relay);
  const { devices } = await enrolledMotebit(client, 1);
  const device = devices[0]!;
  const request = client.pushRequest(device, device.events(1));
  const token = device.token(relay.audience, request);
  const partial = (request.body ?? '').slice(0, 20);
  await raw(`POST ${request.path} HTTP/1.1\r\nHost: x\r\nAuthorization: Motebit ${token}\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n${partial}`, 300);
  await logged('client left before its request body was complete'); // the relay saw the hang-up
  expect(lines.filter((line) => line.level >= 50)).toEqual([]);
  expect((await fetch(`${relay.url}/healthz`)).status).toBe(200);
});
