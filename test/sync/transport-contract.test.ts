// The Transport contract (main/sync/transport.ts), run unchanged against every implementation: WebSocket,
// HTTP, and each wrapped in encryption. The engine holds any of them without knowing which, so each must
// deliver, push, refuse and fail the same way. Real relay, real sockets; an implementation-specific
// behaviour (live delivery, backpressure, fallback) stays in that implementation's own test file.
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { EncryptedTransport, type BodyKeyring } from '../../main/sync/encrypted-transport.ts';
import { HttpTransport } from '../../main/sync/http-transport.ts';
import { EPOCH_CHANGED, TransportError, type Transport } from '../../main/sync/transport.ts';
import { MAX_BATCH_EVENTS } from '../../shared/portable/relay-api.ts';
import { WsTransport } from '../../main/sync/ws-transport.ts';
import type { TestDevice } from '../relay/support.ts';
import { Collector, bodyJson, deviceOptions, harnesses, jsonEvents, range, type Harness } from './support.ts';

const h = harnesses();
afterEach(() => h.cleanup());

/** One key for every device of a harness: what a motebit's devices share under protocol 2. */
const keys = new WeakMap<Harness, BodyKeyring>();
function keyringOf(harness: Harness): BodyKeyring {
  let ring = keys.get(harness);
  if (!ring) {
    const key = randomBytes(32);
    ring = { current: { id: 'k1', key }, byId: (id) => (id === 'k1' ? key : undefined) };
    keys.set(harness, ring);
  }
  return ring;
}

type Make = (harness: Harness, device: TestDevice, relayUrl?: string) => Transport;
const plain: Record<string, Make> = {
  websocket: (harness, device, via) => new WsTransport(deviceOptions(harness.relay, device, via)),
  http: (harness, device, via) => new HttpTransport(deviceOptions(harness.relay, device, via)),
};
const IMPLEMENTATIONS: Record<string, Make> = {
  ...plain,
  'encrypted websocket': (harness, device, via) => new EncryptedTransport({ inner: plain.websocket!(harness, device, via), keys: keyringOf(harness), motebitId: harness.motebit.motebitId }),
  'encrypted http': (harness, device, via) => new EncryptedTransport({ inner: plain.http!(harness, device, via), keys: keyringOf(harness), motebitId: harness.motebit.motebitId }),
};

for (const [name, make] of Object.entries(IMPLEMENTATIONS)) {
  describe(`Transport contract: ${name}`, () => {
    const transport = (harness: Harness, device: TestDevice, via?: string): Transport => {
      const made = make(harness, device, via);
      h.defer(() => made.close());
      return made;
    };

    it('delivers every event after the cursor once, in relay order, and catchUp names the last', async () => {
      const harness = await h.start(2);
      const [a, b] = harness.devices as [TestDevice, TestDevice];
      const writer = transport(harness, a);
      await writer.open(0, async () => undefined);
      const sent = jsonEvents(a, 30, (i) => ({ n: i }));
      for (let i = 0; i < sent.length; i += 10) expect((await writer.push(sent.slice(i, i + 10))).map((r) => r.status)).toEqual(Array(10).fill('stored'));

      const all = new Collector();
      const reader = transport(harness, b);
      await reader.open(0, all.sink);
      expect(await reader.catchUp()).toBe(30);
      expect(all.seqs()).toEqual(range(1, 30));
      expect(all.events.map((e) => e.event_id)).toEqual(sent.map((e) => e.event_id));
      expect(all.events.map((e) => bodyJson(e.body))).toEqual(sent.map((e) => bodyJson(e.body))); // bodies as they were pushed
      expect(all.overlapped).toBe(false);
      expect(reader.epoch).toMatch(/^ep_/);

      const tail = new Collector();
      const late = transport(harness, b);
      await late.open(25, tail.sink);
      expect(await late.catchUp()).toBe(30);
      expect(tail.seqs()).toEqual(range(26, 30));
    });

    it('answers a push event by event: stored, then duplicate for the same events again', async () => {
      const harness = await h.start(1);
      const [a] = harness.devices as [TestDevice];
      const writer = transport(harness, a);
      await writer.open(0, async () => undefined);
      const events = jsonEvents(a, 3);
      const first = await writer.push(events);
      expect(first.map((r) => r.status)).toEqual(['stored', 'stored', 'stored']);
      const again = await writer.push(events);
      expect(again.map((r) => r.status)).toEqual(['duplicate', 'duplicate', 'duplicate']);
      expect(again.map((r) => r.event_id)).toEqual(events.map((e) => e.event_id));
    });

    it('refuses a revoked device with an auth error (at open, or at the first answer), and its pushes too', async () => {
      const harness = await h.start(2);
      const [, b] = harness.devices as [TestDevice, TestDevice];
      expect((await harness.client.revoke(harness.motebit, b.deviceId)).status).toBe(200);
      const revoked = transport(harness, b);
      const atOpen = await revoked.open(0, async () => undefined).then(() => null, (e: unknown) => e);
      const error = atOpen ?? (await revoked.catchUp().then(() => null, (e: unknown) => e));
      if (atOpen === null) await expect(revoked.push(jsonEvents(b, 1))).rejects.toMatchObject({ kind: 'auth', code: 'revoked_device' });
      expect(error).toBeInstanceOf(TransportError);
      expect(error).toMatchObject({ kind: 'auth', code: 'revoked_device' });
    });

    it('says the relay cannot be reached as a network error', async () => {
      const harness = await h.start(1);
      const [a] = harness.devices as [TestDevice];
      const error = await transport(harness, a, 'http://127.0.0.1:9')
        .open(0, async () => undefined)
        .then(() => null, (e: unknown) => e);
      expect(error).toBeInstanceOf(TransportError);
      expect((error as TransportError).kind).toBe('network');
    });

    it('is used in order: nothing before open, once open is enough, nothing after close; a cursor is a sequence number; a batch has a bound', async () => {
      const harness = await h.start(1);
      const [a] = harness.devices as [TestDevice];
      const used = transport(harness, a);
      await expect(used.push(jsonEvents(a, 1))).rejects.toThrow(/open the transport first/);
      await expect(used.catchUp()).rejects.toThrow(/open the transport first/);
      for (const after of [-1, 1.5, Number.MAX_SAFE_INTEGER + 1]) await expect(used.open(after, async () => undefined)).rejects.toThrow(RangeError);
      await used.open(0, async () => undefined);
      await expect(used.open(0, async () => undefined)).rejects.toThrow(/already open/);
      expect(await used.push([])).toEqual([]);
      await expect(used.push(jsonEvents(a, MAX_BATCH_EVENTS + 1))).rejects.toThrow(new RangeError(`a push carries at most ${MAX_BATCH_EVENTS} events`));
      expect(await used.catchUp()).toBe(0); // nothing of the refused batch was sent
      await used.close();
      for (const call of [() => used.push(jsonEvents(a, 1)), () => used.catchUp(), () => used.open(0, async () => undefined)]) {
        await expect(call()).rejects.toMatchObject({ name: 'TransportError', kind: 'network', message: 'the transport is closed' });
      }
    });

    it('refuses a relay log with another epoch than the cursor was taken from (at open, or at the first answer)', async () => {
      const harness = await h.start(1);
      const [a] = harness.devices as [TestDevice];
      const bound = transport(harness, a);
      const atOpen = await bound.open(0, async () => undefined, 'ep_AAAAAAAAAAAAAAAAAAAAAA').then(() => null, (e: unknown) => e);
      const error = atOpen ?? (await bound.catchUp().then(() => null, (e: unknown) => e));
      expect(error).toBeInstanceOf(TransportError);
      expect((error as TransportError).code).toBe(EPOCH_CHANGED);
    });
  });
}
