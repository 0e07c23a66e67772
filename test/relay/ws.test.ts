import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { RunningRelay } from '../../relay/server.ts';
import { CLOSE_CODES } from '../../shared/portable/relay-api.ts';
import { nowSeconds } from '../../shared/token.ts';
import { RelayClient, WsClient, assertContiguous, enrolledMotebit, startTestRelay, tempDir, type TestDevice } from './support.ts';

let dir: ReturnType<typeof tempDir>;
const relays: RunningRelay[] = [];

beforeEach(() => {
  dir = tempDir();
});

afterEach(async () => {
  await Promise.all(relays.splice(0).map((relay) => relay.close()));
  dir.cleanup();
});

async function relayWith(options: Parameters<typeof startTestRelay>[1] = {}): Promise<{ relay: RunningRelay; client: RelayClient; devices: TestDevice[] }> {
  const relay = await startTestRelay(join(dir.dir, `relay-${relays.length}.db`), options);
  relays.push(relay);
  const client = new RelayClient(relay);
  const { devices } = await enrolledMotebit(client, 2);
  return { relay, client, devices };
}

/** Polls until `condition` holds (no timing is asserted; the test timeout is the only limit). */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await sleep(20);
}

describe('WebSocket sessions', () => {
  it('a socket that does not authenticate in time is closed', async () => {
    const { relay, devices } = await relayWith({ authTimeoutMs: 150 });
    const socket = new WsClient(relay.url, devices[0]!.motebit.motebitId);
    await socket.opened;
    expect(await socket.closed).toEqual({ code: CLOSE_CODES.authTimeout, reason: 'auth_timeout' });
    await until(() => relay.stats().connections.length === 0);
  });

  it('re-authenticates in-band with a fresh token, without reconnecting; an expired socket is closed', async () => {
    const { relay, devices } = await relayWith({ clockSkewSeconds: 0 });
    const [a, b] = devices as [TestDevice, TestDevice];
    const short = () => ({ iat: nowSeconds(), lifetime: 2 });

    const renewed = new WsClient(relay.url, a.motebit.motebitId);
    await renewed.opened;
    const firstToken = a.wsToken(relay.audience, short());
    renewed.sendJson({ type: 'auth', token: firstToken, after: 0 });
    await renewed.waitFor((m) => m.type === 'ready');
    const lapsing = new WsClient(relay.url, b.motebit.motebitId);
    await lapsing.opened;
    lapsing.sendJson({ type: 'auth', token: b.wsToken(relay.audience, short()), after: 0 });
    await lapsing.waitFor((m) => m.type === 'ready');

    // Refused re-auths leave the socket as it was: another device's token, a replayed token.
    renewed.sendJson({ type: 'reauth', token: b.wsToken(relay.audience) });
    await renewed.waitFor((m) => m.type === 'error' && m.code === 'unknown_device');
    renewed.sendJson({ type: 'reauth', token: firstToken });
    await renewed.waitFor((m) => m.type === 'error' && m.code === 'replayed_nonce');

    const fresh = a.wsToken(relay.audience, { lifetime: 300 });
    renewed.sendJson({ type: 'reauth', token: fresh });
    const reauthed = await renewed.waitFor((m) => m.type === 'reauthed');
    expect(reauthed).toEqual({ type: 'reauthed', exp: expect.any(Number) });

    // The socket that did not renew is closed when its token runs out; the renewed one lives on.
    expect(await lapsing.closed).toEqual({ code: CLOSE_CODES.tokenExpired, reason: 'token_expired' });
    await sleep(1100); // past the first token's expiry for certain (it was issued no later than the other's)
    const events = a.events(1);
    renewed.sendJson({ type: 'push', id: 'after-expiry', events });
    expect(await renewed.waitFor((m) => m.type === 'ack')).toMatchObject({ id: 'after-expiry', stored: 1 });
    expect(renewed.ws.readyState).toBe(renewed.ws.OPEN);
    await renewed.close();
  });

  it('a slow consumer is never buffered without bound, and later catches up from storage with nothing missed', async () => {
    const highWater = 64 * 1024;
    const pageBytes = 64 * 1024;
    const { relay, client, devices } = await relayWith({ wsHighWaterBytes: highWater, maxPageBytes: pageBytes, wsPageEvents: 50, rateLimitCapacity: 10_000, metricsPort: 0 });
    const [writer, reader] = devices as [TestDevice, TestDevice];
    const slow = await WsClient.connect(relay.url, reader, relay.audience);
    await slow.waitFor((m) => m.type === 'caught_up');
    slow.ws.pause(); // stop reading: the relay's socket fills up
    // A second slow reader that also keeps sending: its messages wait (the relay does not answer a peer
    // that does not read), and past the pending cap the socket is closed instead of queueing more.
    const flooder = await WsClient.connect(relay.url, reader, relay.audience);
    await flooder.waitFor((m) => m.type === 'caught_up');
    flooder.ws.pause();

    const batches = 150;
    const perBatch = 10;
    const bodyBytes = 4096; // ~ 8 MB in all, more than the kernel buffers between the two ends
    for (let i = 0; i < batches; i++) {
      const answer = await client.push(writer, writer.events(perBatch, bodyBytes));
      expect(answer.body.stored).toBe(perBatch);
    }
    const connections = relay.stats().connections.filter((c) => c.deviceId === reader.deviceId);
    expect(connections).toHaveLength(2);
    const connection = connections[0];
    // The relay held back: what it queued never went far past the high-water mark plus one page...
    expect(connection!.maxBufferedAmount).toBeLessThanOrEqual(highWater + pageBytes + 16 * 1024);
    // ...and it did hold back (the consumer really was slow), leaving the rest in storage.
    expect(connection!.cursor).toBeLessThan(batches * perBatch);
    expect(await (await fetch(relay.metricsUrl!)).text()).toMatch(/^motebit_relay_ws_backpressure_total [1-9]/m);

    for (let i = 0; i < 12; i++) flooder.sendJson({ type: 'push', id: `f${i}`, events: reader.events(1) });
    flooder.ws.resume();
    expect((await flooder.closed).code).toBe(CLOSE_CODES.overloaded);

    slow.ws.resume();
    const received = await slow.waitForEvents(batches * perBatch);
    expect(received).toHaveLength(batches * perBatch);
    expect(assertContiguous(received)).toBe(true);
    // Once caught up, events come live again.
    const more = writer.events(1);
    await client.push(writer, more);
    expect((await slow.waitForEvents(batches * perBatch + 1)).at(-1)?.event_id).toBe(more[0]?.event_id);
    await slow.close();
  });

  it('a peer that stops answering pings is dropped', async () => {
    const { relay, devices } = await relayWith({ heartbeatMs: 50 });
    const healthy = await WsClient.connect(relay.url, devices[0]!, relay.audience);
    const dead = await WsClient.connect(relay.url, devices[1]!, relay.audience);
    dead.ws.pause(); // reads nothing, so never answers a ping
    await until(() => relay.stats().connections.every((c) => c.deviceId !== devices[1]!.deviceId));
    expect(relay.stats().connections.map((c) => c.deviceId)).toEqual([devices[0]!.deviceId]);
    expect(healthy.ws.readyState).toBe(healthy.ws.OPEN);
    dead.ws.terminate();
    await healthy.close();
  });

  it('shutdown closes sockets with 1001', async () => {
    const { relay, devices } = await relayWith();
    const socket = await WsClient.connect(relay.url, devices[0]!, relay.audience);
    const unauthenticated = new WsClient(relay.url, devices[0]!.motebit.motebitId);
    await unauthenticated.opened;
    relays.splice(relays.indexOf(relay), 1);
    await relay.close();
    expect((await socket.closed).code).toBe(CLOSE_CODES.goingAway);
    expect((await unauthenticated.closed).code).toBe(CLOSE_CODES.goingAway);
  });
});
