// Quotas and fairness: one motebit (tenant) or one anonymous client cannot take what the others need.
// Real relays on 127.0.0.1 port 0 with small limits, real sockets; different client addresses come from
// X-Forwarded-For on a relay told to trust it (trustProxy), since every test client is 127.0.0.1.
import { connect } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { toIpcError } from '../../main/app/ipc-dispatch.ts';
import type { TransportPreference } from '../../main/sync/engine.ts';
import { TransportError } from '../../main/sync/transport.ts';
import { closeError } from '../../main/sync/ws-transport.ts';
import type { RelayOptions, RunningRelay } from '../../relay/server.ts';
import { randomSeed, signingKeyFromSeed } from '../../shared/crypto.ts';
import { CLOSE_CODES, type QuotaName } from '../../shared/portable/relay-api.ts';
import { Lab } from '../support/devices.ts';
import { RelayClient, TestMotebit, WsClient, enrolledMotebit, startTestRelay, tempDir, type Answer, type TestDevice } from './support.ts';

interface QuotaAnswer {
  error: { code: string; quota?: string; message: string };
}

let dir: ReturnType<typeof tempDir>;
const relays: RunningRelay[] = [];
const sockets: WebSocket[] = [];

beforeEach(() => {
  dir = tempDir();
});

afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.terminate();
  await Promise.all(relays.splice(0).map((relay) => relay.close()));
  dir.cleanup();
});

async function relayWith(options: Partial<RelayOptions>): Promise<{ relay: RunningRelay; client: RelayClient }> {
  const relay = await startTestRelay(join(dir.dir, `relay-${relays.length}.db`), { metricsPort: 0, ...options });
  relays.push(relay);
  return { relay, client: new RelayClient(relay) };
}

/** One sample of the relay's metrics, from its metrics listener; NaN when the series is not there. */
async function metric(relay: RunningRelay, series: string): Promise<number> {
  const text = await (await fetch(relay.metricsUrl!)).text();
  const escaped = series.replace(/[{}"]/g, (c) => `\\${c}`);
  return Number(new RegExp(`^${escaped} (\\d+)$`, 'm').exec(text)?.[1] ?? NaN);
}

const quotaRefusals = (relay: RunningRelay, quota: QuotaName) => metric(relay, `motebit_relay_quota_refusals_total{quota="${quota}"}`);

function expectQuota(answer: Answer<unknown>, quota: QuotaName): void {
  expect(answer.status).toBe(403);
  const body = answer.body as QuotaAnswer;
  expect(body.error.code).toBe('quota_exceeded');
  expect(body.error.quota).toBe(quota);
  expect(body.error.message).toMatch(/^this motebit has /);
}

/** A raw WebSocket (optionally claiming a client address): resolves once open, or with the upgrade's refusal status. */
async function rawSocket(relay: RunningRelay, motebitId: string, from?: string): Promise<{ ws: WebSocket; status: number }> {
  const ws = new WebSocket(`${relay.url.replace(/^http/, 'ws')}/v1/motebits/${motebitId}/ws`, from ? { headers: { 'x-forwarded-for': from } } : {});
  sockets.push(ws);
  ws.on('error', () => undefined);
  const status = await new Promise<number>((resolve) => {
    ws.once('open', () => resolve(101));
    ws.once('unexpected-response', (_request, response) => {
      response.resume();
      resolve(response.statusCode ?? 0);
    });
  });
  return { ws, status };
}

const closed = (ws: WebSocket): Promise<{ code: number; reason: string }> =>
  new Promise((resolve) => {
    if (ws.readyState === WebSocket.CLOSED) resolve({ code: 0, reason: '' });
    else ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() }));
  });

/** Authenticates a raw socket as `device`; resolves with 'ready' or the close. */
async function authenticate(ws: WebSocket, device: TestDevice, audience: string): Promise<'ready' | { code: number; reason: string }> {
  const ended = closed(ws);
  const ready = new Promise<'ready'>((resolve) =>
    ws.on('message', (data) => {
      if ((JSON.parse(String(data)) as { type: string }).type === 'ready') resolve('ready');
    }),
  );
  ws.send(JSON.stringify({ type: 'auth', token: device.wsToken(audience), after: 0 }));
  return Promise.race([ready, ended]);
}

/** Polls until `condition` holds (no timing is asserted; the test timeout is the only limit). */
async function until(condition: () => boolean | Promise<boolean>): Promise<void> {
  while (!(await condition())) await sleep(20);
}

describe('stored data per motebit', () => {
  it('refuses a push beyond the stored-events quota whole, counts it, and keeps everything before it', async () => {
    const { relay, client } = await relayWith({ maxStoredEvents: 5 });
    const { devices } = await enrolledMotebit(client, 1);
    const device = devices[0]!;
    const first = device.events(3);
    expect((await client.push(device, first)).body.stored).toBe(3);

    const over = device.events(3);
    expectQuota(await client.push(device, over), 'stored_events');
    expect(await quotaRefusals(relay, 'stored_events')).toBe(1);
    expect((await client.pullAll(device)).map((e) => e.event_id)).toEqual(first.map((e) => e.event_id));

    // Up to the quota exactly is fine; a retry of stored events adds nothing and is not refused.
    device.nextDeviceSeq = 4;
    const fill = device.events(2);
    expect((await client.push(device, fill)).body.stored).toBe(2);
    expect((await client.push(device, first)).body.duplicate).toBe(3);
    expectQuota(await client.push(device, device.events(1)), 'stored_events');
    expect(await quotaRefusals(relay, 'stored_events')).toBe(2);
    expect((await client.pullAll(device)).map((e) => e.event_id)).toEqual([...first, ...fill].map((e) => e.event_id));
  });

  it('refuses a push beyond the stored-bytes quota over HTTP and WebSocket; another motebit is not affected', async () => {
    // Bodies of 300 bytes are 400 base64url characters: two events fit in 1000, a third does not.
    const { relay, client } = await relayWith({ maxStoredBytes: 1000 });
    const { devices } = await enrolledMotebit(client, 1);
    const device = devices[0]!;
    const kept = device.events(2, 300);
    expect((await client.push(device, kept)).body.stored).toBe(2);

    expectQuota(await client.push(device, device.events(1, 300)), 'stored_bytes');
    device.nextDeviceSeq = 3;
    const socket = await WsClient.connect(relay.url, device, relay.audience);
    socket.sendJson({ type: 'push', id: 'big', events: device.events(1, 300) });
    const refusal = await socket.waitFor((m) => m.type === 'error');
    expect(refusal).toMatchObject({ type: 'error', id: 'big', code: 'quota_exceeded', quota: 'stored_bytes', message: expect.stringMatching(/^this motebit has /) });
    expect(socket.ws.readyState).toBe(WebSocket.OPEN);
    expect(await quotaRefusals(relay, 'stored_bytes')).toBe(2);
    expect((await client.pullAll(device)).map((e) => e.event_id)).toEqual(kept.map((e) => e.event_id));

    const other = await enrolledMotebit(client, 1);
    expect((await client.push(other.devices[0]!, other.devices[0]!.events(2, 300))).body.stored).toBe(2);
    await socket.close();
  });
});

describe('devices per motebit', () => {
  it('refuses a device beyond the quota; re-enrolling a device is not a new one; revoking makes room', async () => {
    const { relay, client } = await relayWith({ maxDevicesPerMotebit: 2 });
    const { motebit, devices } = await enrolledMotebit(client, 2);
    const third = motebit.device('third');
    expectQuota(await client.enrol(third), 'devices');
    expect(await quotaRefusals(relay, 'devices')).toBe(1);
    expect((await client.enrol(devices[0]!)).status).toBe(200);
    expect(((await client.devices(devices[0]!)).body as { devices: unknown[] }).devices).toHaveLength(2);

    expect((await client.revoke(motebit, devices[1]!.deviceId)).status).toBe(200);
    expect((await client.enrol(third)).status).toBe(201);
  });
});

describe('sockets', () => {
  it('a motebit at its socket quota is refused at auth with 4409 "sockets"; other motebits and unauthenticated sockets naming it do not count', async () => {
    const { relay, client } = await relayWith({ maxSocketsPerMotebit: 2 });
    const a = await enrolledMotebit(client, 1);
    const b = await enrolledMotebit(client, 1);
    const deviceA = a.devices[0]!;

    // Sockets that never authenticate name motebit A in their URL, as anybody can: they are not A's.
    for (let i = 0; i < 3; i++) expect((await rawSocket(relay, a.motebit.motebitId)).status).toBe(101);
    const held = [await WsClient.connect(relay.url, deviceA, relay.audience), await WsClient.connect(relay.url, deviceA, relay.audience)];

    const third = await rawSocket(relay, a.motebit.motebitId);
    const refusal = await authenticate(third.ws, deviceA, relay.audience);
    expect(refusal).toEqual({ code: CLOSE_CODES.quotaExceeded, reason: 'sockets' });
    expect(await quotaRefusals(relay, 'sockets')).toBe(1);
    // A device reads it as the connection limit (not final: it falls back to HTTP and tries again later).
    const { code, reason } = refusal as { code: number; reason: string };
    expect(closeError(code, reason)).toMatchObject({ kind: 'refused', code: 'quota_exceeded', quota: 'sockets', message: expect.stringContaining('connection limit') });

    // Motebit B is not held up by A.
    const ofB = [await WsClient.connect(relay.url, b.devices[0]!, relay.audience), await WsClient.connect(relay.url, b.devices[0]!, relay.audience)];

    // Once one of A's sockets is gone, A may open another.
    await held[0]!.close();
    await until(() => relay.stats().connections.filter((c) => c.motebitId === a.motebit.motebitId && c.deviceId !== null).length === 1);
    const again = await rawSocket(relay, a.motebit.motebitId);
    expect(await authenticate(again.ws, deviceA, relay.audience)).toBe('ready');
    for (const socket of [held[1]!, ...ofB]) await socket.close();
  });

  it('caps sockets waiting for auth per client address, and in all', async () => {
    const { relay, client } = await relayWith({ wsMaxUnauthenticatedPerAddress: 2, wsMaxUnauthenticated: 3, trustProxy: true, authTimeoutMs: 60_000 });
    const { motebit, devices } = await enrolledMotebit(client, 1);
    const id = motebit.motebitId;

    const first = await rawSocket(relay, id, '198.51.100.1');
    expect((await rawSocket(relay, id, '198.51.100.1')).status).toBe(101);
    expect((await rawSocket(relay, id, '198.51.100.1')).status).toBe(429);
    expect(await metric(relay, 'motebit_relay_ws_upgrades_refused_total{cap="unauthenticated_per_address"}')).toBe(1);

    // Another address still gets in, until all sockets waiting reach the global cap.
    expect((await rawSocket(relay, id, '198.51.100.2')).status).toBe(101);
    expect((await rawSocket(relay, id, '198.51.100.3')).status).toBe(503);
    expect(await metric(relay, 'motebit_relay_ws_upgrades_refused_total{cap="unauthenticated"}')).toBe(1);

    // A socket that authenticates no longer waits: its address (and the relay) has room again.
    expect(await authenticate(first.ws, devices[0]!, relay.audience)).toBe('ready');
    expect((await rawSocket(relay, id, '198.51.100.1')).status).toBe(101);
  });

  it('without trustProxy the TCP peer is the address, whatever X-Forwarded-For claims', async () => {
    const { relay, client } = await relayWith({ wsMaxUnauthenticatedPerAddress: 1, authTimeoutMs: 60_000 });
    const { motebit } = await enrolledMotebit(client, 1);
    expect((await rawSocket(relay, motebit.motebitId, '198.51.100.1')).status).toBe(101);
    expect((await rawSocket(relay, motebit.motebitId, '198.51.100.2')).status).toBe(429);
  });

  it('rate-limits WebSocket auths per client address with 4429 "rate_limited"', async () => {
    const { relay, client } = await relayWith({ wsAuthCapacity: 2, wsAuthPerSecond: 0.001, trustProxy: true });
    const { motebit, devices } = await enrolledMotebit(client, 1);
    const device = devices[0]!;
    for (let i = 0; i < 2; i++) expect(await authenticate((await rawSocket(relay, motebit.motebitId, '198.51.100.1')).ws, device, relay.audience)).toBe('ready');
    const limited = await rawSocket(relay, motebit.motebitId, '198.51.100.1');
    expect(await authenticate(limited.ws, device, relay.audience)).toEqual({ code: CLOSE_CODES.overloaded, reason: 'rate_limited' });
    expect(await metric(relay, 'motebit_relay_rate_limited_total{limit="ws_auth"}')).toBe(1);
    // Another address is not limited by this one.
    expect(await authenticate((await rawSocket(relay, motebit.motebitId, '198.51.100.2')).ws, device, relay.audience)).toBe('ready');
  });
});

describe('new motebits per client address', () => {
  it('limits first enrolments per address, while an existing motebit still enrols new devices', async () => {
    const { relay, client } = await relayWith({ newMotebitCapacity: 2, newMotebitsPerMinute: 0.01, trustProxy: true });
    const from = (address: string) => ({ 'x-forwarded-for': address });
    const enrolFrom = (device: TestDevice, address: string) => {
      const request = client.enrolRequest(device);
      return client.send<QuotaAnswer>(request, device.motebit.identityToken(relay.audience, request), from(address));
    };
    const existing = new TestMotebit();
    expect((await enrolFrom(existing.device('one'), '198.51.100.1')).status).toBe(201);
    expect((await enrolFrom(new TestMotebit().device(), '198.51.100.1')).status).toBe(201);

    const refusedMotebit = new TestMotebit();
    const refused = await enrolFrom(refusedMotebit.device(), '198.51.100.1');
    expect(refused.status).toBe(429);
    expect(refused.body.error.code).toBe('rate_limited');
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(await metric(relay, 'motebit_relay_rate_limited_total{limit="new_motebit"}')).toBe(1);

    // A new device of a motebit that exists is not a new motebit; another address is not this one.
    expect((await enrolFrom(existing.device('two'), '198.51.100.1')).status).toBe(201);
    expect((await enrolFrom(refusedMotebit.device(), '198.51.100.2')).status).toBe(201);
  });
});

describe('authentication', () => {
  it('an unknown device and a wrong key get the same refusal, over HTTP and WebSocket', async () => {
    const { relay, client } = await relayWith({});
    const { motebit, devices } = await enrolledMotebit(client, 2);
    const known = devices[0]!;
    const stranger = motebit.device('never enrolled');
    const impostor = signingKeyFromSeed(randomSeed());
    expect((await client.revoke(motebit, devices[1]!.deviceId)).status).toBe(200);
    const revoked = devices[1]!;

    const path = `/v1/motebits/${motebit.motebitId}/events?after=0`;
    const answers = [
      await client.send({ method: 'GET', path }, stranger.token(relay.audience, { method: 'GET', path })),
      await client.send({ method: 'GET', path }, known.token(relay.audience, { method: 'GET', path }, { key: impostor })),
      // A revoked device's id with a wrong key says nothing of the revocation either.
      await client.send({ method: 'GET', path }, revoked.token(relay.audience, { method: 'GET', path }, { key: impostor })),
    ];
    for (const answer of answers) {
      expect(answer.status).toBe(401);
      expect(answer.body).toEqual(answers[0]!.body);
    }
    expect((answers[0]!.body as QuotaAnswer).error.code).toBe('unknown_device');

    const closes = [];
    for (const token of [stranger.wsToken(relay.audience), known.wsToken(relay.audience, { key: impostor })]) {
      const socket = new WsClient(relay.url, motebit.motebitId);
      await socket.opened;
      socket.sendJson({ type: 'auth', token, after: 0 });
      closes.push(await socket.closed);
    }
    expect(closes).toEqual([
      { code: CLOSE_CODES.authFailed, reason: 'unknown_device' },
      { code: CLOSE_CODES.authFailed, reason: 'unknown_device' },
    ]);
  });

  it('a push whose body is not the one its token signed is refused with body_mismatch and stores nothing', async () => {
    const { relay, client } = await relayWith({});
    const { devices } = await enrolledMotebit(client, 1);
    const device = devices[0]!;
    const signed = client.pushRequest(device, device.events(1));
    device.nextDeviceSeq = 1;
    const sent = client.pushRequest(device, device.events(1));
    const answer = await client.send<QuotaAnswer>(sent, device.token(relay.audience, signed));
    expect(answer.status).toBe(401);
    expect(answer.body.error.code).toBe('body_mismatch');
    expect(await metric(relay, 'motebit_relay_auth_failures_total{reason="body_mismatch"}')).toBe(1);
    expect(await client.pullAll(device)).toEqual([]);
  });

  it('a push with a bad token is answered from its header, before its body has arrived', async () => {
    const { relay, client } = await relayWith({});
    const { motebit } = await enrolledMotebit(client, 1);
    const stranger = motebit.device('never enrolled');
    const body = JSON.stringify({ events: stranger.events(1) });
    const path = `/v1/motebits/${motebit.motebitId}/events`;
    const token = stranger.token(relay.audience, { method: 'POST', path, body });
    const { port } = new URL(relay.url);
    const socket = connect(Number(port), '127.0.0.1');
    try {
      // Headers and half the body; the rest is sent only once the answer is in.
      socket.write(`POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nAuthorization: Motebit ${token}\r\n\r\n`);
      socket.write(body.slice(0, body.length / 2));
      let received = '';
      await new Promise<void>((resolve) => {
        socket.on('data', (chunk: Buffer) => {
          received += chunk.toString('latin1');
          if (received.includes('\r\n\r\n{') && received.endsWith('}')) resolve();
        });
        socket.on('close', () => resolve());
      });
      expect(received).toMatch(/^HTTP\/1\.1 401 /);
      expect(received).toContain('"code":"unknown_device"');
      // The connection still serves the next request once the refused body is through.
      socket.write(body.slice(body.length / 2));
      received = '';
      socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
      await until(() => received.includes('"ok":true') || socket.destroyed);
      expect(received).toMatch(/^HTTP\/1\.1 200 /);
    } finally {
      socket.destroy();
    }
  });
});

describe('metrics', () => {
  it('are served on their own listener only; the main port answers 404', async () => {
    const { relay } = await relayWith({});
    expect((await fetch(`${relay.url}/metrics`)).status).toBe(404);
    const served = await fetch(relay.metricsUrl!);
    expect(served.status).toBe(200);
    const text = await served.text();
    expect(text).toMatch(/^motebit_relay_quota_refusals_total\{quota="sockets"\} 0$/m);
    expect(new URL(relay.metricsUrl!).hostname).toBe('127.0.0.1');
    expect((await fetch(relay.metricsUrl!.replace(/\/metrics$/, '/healthz'))).status).toBe(404);

    const without = await startTestRelay(join(dir.dir, 'plain.db'));
    relays.push(without);
    expect(without.metricsUrl).toBeUndefined();
    expect((await fetch(`${without.url}/metrics`)).status).toBe(404);
  });
});

describe('what a device says', () => {
  let lab: Lab;
  beforeEach(() => void (lab = new Lab()));
  afterEach(() => lab.close());

  it.each<TransportPreference>(['http', 'websocket'])('over %s, a sync the stored-data quota refuses fails, with the limit and the next step in words', async (transport) => {
    const { relay } = await relayWith({ maxStoredBytes: 4096 });
    const device = await lab.create(relay.url, { name: 'a', transport });
    device.put('notes/1', 'x'.repeat(8000));
    const result = await device.syncNow();
    expect(result.ok).toBe(false);
    const status = device.status();
    expect(status.state).toBe('error');
    expect(status.pendingOut).toBeGreaterThan(0);
    expect(status.lastError).toMatchObject({ kind: 'relay', message: expect.stringContaining('stored data limit'), nextStep: expect.stringContaining("relay's operator") });
    expect(`${status.lastError?.message} ${status.lastError?.nextStep}`).not.toMatch(/\/v1\/|quota_exceeded|HTTP/);
    expect(await quotaRefusals(relay, 'stored_bytes')).toBe(1);
  });

  it('joining beyond the device quota fails with the limit and the next step in words', async () => {
    const { relay } = await relayWith({ maxDevicesPerMotebit: 1 });
    const first = await lab.create(relay.url, { name: 'a' });
    const refused = await lab.join(first, { name: 'b' }).then(
      () => null,
      (error: unknown) => error,
    );
    expect(refused).toBeInstanceOf(TransportError);
    expect(refused).toMatchObject({ kind: 'refused', code: 'quota_exceeded', quota: 'devices', message: expect.stringContaining('device limit') });
    const shown = toIpcError(refused);
    expect(shown).toMatchObject({ code: 'relay', message: expect.stringMatching(/device limit.*revoke a device/) });
    expect(shown.message).not.toMatch(/\/v1\/|quota_exceeded|HTTP/);
  });
});
