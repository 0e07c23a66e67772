import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { randomSeed, signingKeyFromSeed } from '../../shared/crypto.ts';
import { deviceIdFromDeviceKey } from '../../shared/ids.ts';
import { MAX_BATCH_EVENTS } from '../../shared/portable/relay-api.ts';
import { RelayClient } from '../../main/sync/relay-client.ts';
import { TransportError } from '../../main/sync/transport.ts';
import { TestMotebit } from '../relay/support.ts';
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
