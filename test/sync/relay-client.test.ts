import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { randomSeed, signingKeyFromSeed } from '../../shared/crypto.ts';
import { deviceIdFromDeviceKey } from '../../shared/ids.ts';
import { MAX_BATCH_EVENTS, MIN_RELAY_REVISION, RELAY_PROTOCOL } from '../../shared/portable/relay-api.ts';
import { DEFAULT_REQUEST_TIMEOUT_MS, RelayClient } from '../../main/sync/relay-client.ts';
import { TransportError } from '../../main/sync/transport.ts';
import { TestMotebit } from '../relay/support.ts';
import { startRewritingProxy } from '../support/rewriting-proxy.ts';
import { deviceOptions, harnesses, jsonEvents, rejection } from './support.ts';

const h = harnesses();
afterEach(() => h.cleanup());

/** A plain HTTP server that answers every request with `status` and `body`, or never answers. */
async function fakeServer(status: number | 'silent', body: string): Promise<string> {
  const server: Server = createServer((_req, res) => {
    if (status === 'silent') return;
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  h.defer(() => {
    server.closeAllConnections();
    return new Promise((resolve) => server.close(resolve));
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** A URL where nothing listens: a port that was just free. */
async function deadUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return `http://127.0.0.1:${port}`;
}

const anyDevice = () => {
  const motebit = new TestMotebit();
  const device = motebit.device();
  return { motebitId: motebit.motebitId, deviceId: device.deviceId, deviceKey: device.key };
};

/** A relay stand-in that answers /healthz and can drop chosen requests the way a relay that restarted does. */
async function flakyServer(fail: (request: number) => 'close' | 'reset' | null): Promise<{ url: string; requests: () => number; connections: () => number }> {
  let requests = 0;
  let connections = 0;
  const server: Server = createServer((req, res) => {
    requests++;
    const how = fail(requests);
    // Before any answer, on a connection the client kept alive: closed (FIN) or reset (RST).
    if (how === 'close') return void req.socket.destroy();
    if (how === 'reset') return void req.socket.resetAndDestroy();
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ ok: true, protocol: RELAY_PROTOCOL, revision: MIN_RELAY_REVISION }));
  });
  server.on('connection', () => void connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  h.defer(() => {
    server.closeAllConnections();
    return new Promise((resolve) => server.close(resolve));
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests: () => requests, connections: () => connections };
}

/** A fetch that fails its first call with `error` (as fetch would), then is the real fetch. */
function failingOnce(error: unknown): { fetch: typeof fetch; calls: () => number } {
  let calls = 0;
  return {
    fetch: (input, init) => (calls++ === 0 ? Promise.reject(error) : fetch(input, init)),
    calls: () => calls,
  };
}

describe('RelayClient', () => {
  it('pushes, pulls, lists devices and checks health against a real relay', async () => {
    const { relay, devices } = await h.start(2);
    const [a, b] = devices as [NonNullable<(typeof devices)[0]>, NonNullable<(typeof devices)[0]>];
    const clientA = new RelayClient(deviceOptions(relay, a));
    const clientB = new RelayClient(deviceOptions(relay, b));
    await clientA.health();
    const events = jsonEvents(a, 3);
    const pushed = await clientA.push(events);
    expect(pushed).toMatchObject({ stored: 3, duplicate: 0, rejected: 0, head: 3 });
    expect(pushed.results.map((r) => r.status)).toEqual(['stored', 'stored', 'stored']);
    // A retried batch returns the same seqs.
    expect((await clientA.push(events)).results).toEqual(events.map((event, index) => ({ event_id: event.event_id, status: 'duplicate', seq: index + 1 })));
    const page = await clientB.pull(1, 1);
    expect(page).toMatchObject({ next: 2, more: true });
    expect(page.events.map((event) => event.event_id)).toEqual([events[1]?.event_id]);
    const rest = await clientB.pull(0, 1000);
    expect(rest.events.map((event) => event.body)).toEqual(events.map((event) => event.body));
    expect(rest.more).toBe(false);
    expect((await clientB.listDevices()).map((device) => device.device_id).sort()).toEqual([a.deviceId, b.deviceId].sort());
  });

  it('enrols and revokes devices with the identity key', async () => {
    const { relay, motebit, devices } = await h.start(1);
    const a = devices[0]!;
    const newKey = signingKeyFromSeed(randomSeed());
    const newDevice = new RelayClient({ relayUrl: relay.url, motebitId: motebit.motebitId, deviceId: deviceIdFromDeviceKey(newKey.publicKey), deviceKey: newKey });
    // Not enrolled yet: its tokens name an unknown device.
    const before = await rejection(newDevice.listDevices());
    expect(before).toBeInstanceOf(TransportError);
    expect(before).toMatchObject({ kind: 'auth', code: 'unknown_device' });

    const enrolled = await newDevice.enrolDevice({ identityKey: motebit.identity, name: 'laptop' });
    expect(enrolled).toMatchObject({ created: true, device: { device_id: newDevice.deviceId, name: 'laptop', revoked_at: null } });
    expect((await newDevice.enrolDevice({ identityKey: motebit.identity, name: 'laptop' })).created).toBe(false);
    expect((await newDevice.listDevices()).map((device) => device.device_id)).toContain(newDevice.deviceId);

    // Another device revokes it with the identity key; from then on it is refused with revoked_device.
    const fromA = new RelayClient(deviceOptions(relay, a));
    const revoked = await fromA.revokeDevice({ identityKey: motebit.identity, deviceId: newDevice.deviceId });
    expect(revoked.device.revoked_at).not.toBeNull();
    const after = await rejection(newDevice.push(jsonEvents(a, 1).map((event) => ({ ...event, device_id: newDevice.deviceId }))));
    expect(after).toMatchObject({ kind: 'auth', code: 'revoked_device' });
    // A revoked device cannot be enrolled again: a refusal, not an auth failure.
    expect(await rejection(newDevice.enrolDevice({ identityKey: motebit.identity }))).toMatchObject({ kind: 'refused', code: 'device_revoked' });
    // Enrolling with a key that is not the motebit's identity is an auth failure.
    const impostor = signingKeyFromSeed(randomSeed());
    expect(await rejection(fromA.enrolDevice({ identityKey: impostor, deviceKey: signingKeyFromSeed(randomSeed()).publicKey }))).toMatchObject({ kind: 'auth', code: 'bad_signature' });
  });

  it('classifies failures: network, auth (with the relay code), refused, protocol', async () => {
    const { relay, devices } = await h.start(1);
    const a = devices[0]!;

    // Nothing listens.
    const nothing = await rejection(new RelayClient({ ...anyDevice(), relayUrl: await deadUrl() }).health());
    expect(nothing).toBeInstanceOf(TransportError);
    expect(nothing).toMatchObject({ kind: 'network' });

    // Listens but never answers: the request timeout turns it into a network failure.
    const silent = await rejection(new RelayClient({ ...anyDevice(), relayUrl: await fakeServer('silent', ''), timeoutMs: 200 }).health());
    expect(silent).toMatchObject({ kind: 'network' });

    // A token for another audience.
    const wrongAudience = await rejection(new RelayClient({ ...deviceOptions(relay, a), audience: 'https://elsewhere.example' }).listDevices());
    expect(wrongAudience).toMatchObject({ kind: 'auth', code: 'wrong_audience' });

    // A refusal that is not about auth.
    const tooMany = await rejection(new RelayClient(deviceOptions(relay, a)).push(jsonEvents(a, MAX_BATCH_EVENTS + 1)));
    expect(tooMany).toMatchObject({ kind: 'refused', code: 'too_many_events' });

    // A 5xx (a broken gateway in front of the relay) is a network failure; its code is kept when it has one.
    const gateway = await rejection(new RelayClient({ ...anyDevice(), relayUrl: await fakeServer(502, 'bad gateway') }).health());
    expect(gateway).toMatchObject({ kind: 'network' });
    const internal = await rejection(new RelayClient({ ...anyDevice(), relayUrl: await fakeServer(500, JSON.stringify({ error: { code: 'internal', message: 'bug' } })) }).health());
    expect(internal).toMatchObject({ kind: 'network', code: 'internal' });

    // Answers that do not validate are protocol failures.
    const wrongShape = await rejection(new RelayClient({ ...anyDevice(), relayUrl: await fakeServer(200, JSON.stringify({ events: 'nope', next: 0, more: false })) }).pull(0, 10));
    expect(wrongShape).toMatchObject({ kind: 'protocol' });
    const notJson = await rejection(new RelayClient({ ...anyDevice(), relayUrl: await fakeServer(200, '<html>captive portal</html>') }).health());
    expect(notJson).toMatchObject({ kind: 'protocol' });
  });

  it('names the relay origin as the audience by default and refuses URLs with a path', () => {
    const client = new RelayClient({ ...anyDevice(), relayUrl: 'https://relay.example:8443/' });
    expect(client.audience).toBe('https://relay.example:8443');
    expect(() => new RelayClient({ ...anyDevice(), relayUrl: 'https://relay.example/api' })).toThrow(TypeError);
  });
});

describe('RelayClient: the words and causes of its failures, and the one retry on a stale connection', () => {
  it('refuses a relay URL that is not an http(s) origin, in words', () => {
    expect(() => new RelayClient({ ...anyDevice(), relayUrl: 'ftp://relay.example' })).toThrow(new TypeError('the relay URL is http: or https:'));
    for (const relayUrl of ['https://relay.example/api', 'https://relay.example/?motebit=1', 'https://relay.example/#top']) {
      expect(() => new RelayClient({ ...anyDevice(), relayUrl })).toThrow(new TypeError('the relay URL is an origin, without a path'));
    }
    expect(new RelayClient({ ...anyDevice(), relayUrl: 'http://relay.example/' }).relayUrl).toBe('http://relay.example');
  });

  it('says which request failed and why: the relay code and words, the status, a body that is not JSON, the first schema issue', async () => {
    const { relay, devices } = await h.start(1);
    const a = devices[0]!;
    const wrongAudience = await rejection(new RelayClient({ ...deviceOptions(relay, a), audience: 'https://elsewhere.example' }).listDevices());
    expect(wrongAudience).toMatchObject({ kind: 'auth', code: 'wrong_audience', message: `GET /v1/motebits/${a.motebit.motebitId}/devices: wrong_audience: the token is meant for another relay (https://elsewhere.example); this relay is ${relay.audience}` });

    const internal = await rejection(new RelayClient({ ...anyDevice(), relayUrl: await fakeServer(500, JSON.stringify({ error: { code: 'internal', message: 'bug' } })) }).health());
    expect(internal).toMatchObject({ kind: 'network', code: 'internal', message: 'GET /healthz: internal: bug' });
    const gateway = await rejection(new RelayClient({ ...anyDevice(), relayUrl: await fakeServer(502, 'bad gateway') }).health());
    expect(gateway).toMatchObject({ kind: 'network', code: undefined, message: 'GET /healthz: refused: HTTP 502' });
    // 300 is no success (and no redirect fetch follows): a refusal, whatever its body says.
    const choices = await rejection(new RelayClient({ ...anyDevice(), relayUrl: await fakeServer(300, JSON.stringify({ ok: true })) }).health());
    expect(choices).toMatchObject({ kind: 'refused', message: 'GET /healthz: refused: HTTP 300' });

    const notJson = await rejection(new RelayClient({ ...anyDevice(), relayUrl: await fakeServer(200, '<html>captive portal</html>') }).health());
    expect(notJson).toMatchObject({ kind: 'protocol', message: 'GET /healthz: the relay answered 200 with a body that is not JSON' });

    // The query is not part of what is named; the schema's error is the cause.
    const device = anyDevice();
    const wrongShape = await rejection(new RelayClient({ ...device, relayUrl: await fakeServer(200, JSON.stringify({ events: 'nope', next: 0, more: false })) }).pull(0, 10));
    expect(wrongShape).toMatchObject({ kind: 'protocol', message: `GET /v1/motebits/${device.motebitId}/events: unexpected answer from the relay: Invalid input: expected array, received string` });
    expect((wrongShape as Error).cause).toBeInstanceOf(z.ZodError);
  });

  it('says the relay cannot be reached, with the system code or else the words of the cause, and keeps the cause', async () => {
    const refused = await rejection(new RelayClient({ ...anyDevice(), relayUrl: await deadUrl() }).health());
    expect(refused).toMatchObject({ kind: 'network', message: 'GET /healthz: cannot reach the relay (ECONNREFUSED)' });
    expect((refused as Error).cause).toMatchObject({ name: 'TypeError', message: 'fetch failed', cause: { code: 'ECONNREFUSED' } });

    // A fetch of another kind (the option) may fail with a cause whose code is no system code, with no cause, or with no Error at all.
    const failing = async (error: unknown): Promise<unknown> => rejection(new RelayClient({ ...anyDevice(), relayUrl: 'http://relay.example', fetch: failingOnce(error).fetch }).health());
    expect(await failing(new TypeError('fetch failed', { cause: Object.assign(new Error('socket hang up'), { code: 42 }) }))).toMatchObject({ kind: 'network', message: 'GET /healthz: cannot reach the relay (socket hang up)' });
    expect(await failing(new Error('no route to the relay'))).toMatchObject({ kind: 'network', message: 'GET /healthz: cannot reach the relay (no route to the relay)' });
    const notAnError = await failing('offline');
    expect(notAnError).toMatchObject({ kind: 'network', message: 'GET /healthz: cannot reach the relay (offline)' });
    expect((notAnError as Error).cause).toBe('offline');
  });

  it('says no answer came in time, for a timeout and for a fetch that reports it as an abort', async () => {
    const silent = await rejection(new RelayClient({ ...anyDevice(), relayUrl: await fakeServer('silent', ''), timeoutMs: 200 }).health());
    expect(silent).toMatchObject({ kind: 'network', message: 'GET /healthz: no answer from the relay within 200 ms' });
    expect((silent as Error).cause).toMatchObject({ name: 'TimeoutError' });
    // A fetch whose signal reports an abort without the timeout's reason (an AbortError).
    const aborting: typeof fetch = (input, init) => fetch(input, { ...init, signal: AbortSignal.abort() });
    const aborted = await rejection(new RelayClient({ ...anyDevice(), relayUrl: await fakeServer(200, '{}'), fetch: aborting }).health());
    expect(aborted).toMatchObject({ kind: 'network', message: `GET /healthz: no answer from the relay within ${DEFAULT_REQUEST_TIMEOUT_MS} ms` });
    expect((aborted as Error).cause).toMatchObject({ name: 'AbortError' });
  });

  it('retries once, on a new connection, a request whose kept-alive connection the relay closed or reset', async () => {
    for (const how of ['close', 'reset'] as const) {
      const relay = await flakyServer((request) => (request === 2 ? how : null));
      const client = new RelayClient({ ...anyDevice(), relayUrl: relay.url });
      await client.health();
      expect(await client.health()).toEqual({ ok: true, protocol: RELAY_PROTOCOL, revision: MIN_RELAY_REVISION });
      expect([relay.requests(), relay.connections()]).toEqual([3, 2]);
    }
    // Only once: a second failure is the request's failure.
    const relay = await flakyServer((request) => (request >= 2 ? 'close' : null));
    const client = new RelayClient({ ...anyDevice(), relayUrl: relay.url });
    await client.health();
    expect(await rejection(client.health())).toMatchObject({ kind: 'network', message: 'GET /healthz: cannot reach the relay (UND_ERR_SOCKET)' });
    expect(relay.requests()).toBe(3);
    // undici's code for a request on a connection it had already closed is retried the same way.
    const closedClient = failingOnce(new TypeError('fetch failed', { cause: Object.assign(new Error('The client is destroyed'), { code: 'UND_ERR_CLOSED' }) }));
    const healthy = await flakyServer(() => null);
    expect(await new RelayClient({ ...anyDevice(), relayUrl: healthy.url, fetch: closedClient.fetch }).health()).toMatchObject({ ok: true });
    expect([closedClient.calls(), healthy.requests()]).toEqual([2, 1]);
  });

  it('reads the whole membership log without a query, and from an entry number with one', async () => {
    const { relay, devices } = await h.start(1);
    const proxy = await startRewritingProxy(() => relay.url);
    h.defer(() => proxy.close());
    const asked: string[] = [];
    proxy.rewrite((answer) => void asked.push(`${answer.method} ${answer.path}?${answer.query.toString()}`));
    const client = new RelayClient(deviceOptions(relay, devices[0]!, proxy.url));
    const whole = await client.membership(-1);
    expect(await client.membership(0)).toEqual(whole);
    const path = `/v1/motebits/${devices[0]!.motebit.motebitId}/membership`;
    expect(asked).toEqual([`GET ${path}?`, `GET ${path}?after=0`]);
  });
});
