// The engine prefers WebSocket, uses HTTP while WebSocket cannot connect, and returns to WebSocket when it
// can. The engine is built directly here so the first WebSocket attempt can be sent to a closed port.
import { afterEach, beforeEach, expect, it } from 'vitest';
import { EncryptedTransport } from '../../main/sync/encrypted-transport.ts';
import { masterTokenIdentity } from '../../main/identity/local-identity.ts';
import { SyncEngine } from '../../main/sync/engine.ts';
import { HttpTransport } from '../../main/sync/http-transport.ts';
import type { Transport, TransportKind } from '../../main/sync/transport.ts';
import { WsTransport } from '../../main/sync/ws-transport.ts';
import { Lab, freePort, syncAll } from '../support/devices.ts';

let lab: Lab;
beforeEach(() => void (lab = new Lab()));
afterEach(() => lab.close());

it('falls back to HTTP while WebSocket cannot connect, and returns to WebSocket when it can', async () => {
  const relay = await lab.relay();
  const a = await lab.create(relay.url, { name: 'a' });
  const b = await lab.join(a, { name: 'b' });
  const deadPort = await freePort();
  const { identity } = a;
  let wsAttempts = 0;
  const connect = (kind: TransportKind): Transport => {
    let inner: Transport;
    if (kind === 'websocket') {
      wsAttempts++;
      const url = wsAttempts === 1 ? `http://127.0.0.1:${deadPort}` : relay.url; // the first attempt cannot connect
      inner = new WsTransport({ relayUrl: url, audience: relay.url, motebitId: identity.motebitId, deviceId: identity.deviceId, deviceKey: identity.deviceKey });
    } else {
      inner = new HttpTransport(a.relay);
    }
    const { id, key } = masterTokenIdentity(identity).encryptionKey;
    return new EncryptedTransport({ inner, motebitId: identity.motebitId, keys: { current: { id, key }, byId: (k) => (k === id ? key : undefined) } });
  };
  const engine = new SyncEngine({ store: a.store, relay: a.relayControl, credentials: identity.credentials, connect, transport: 'auto', intervalMs: 60_000, wsRetryFirstMs: 50 });
  try {
    a.put('memory/1', 'over http');
    const first = await engine.syncNow();
    expect(first.ok).toBe(true);
    expect(engine.status().transport).toBe('http');

    await new Promise((resolve) => setTimeout(resolve, 100)); // past the WebSocket retry backoff
    a.put('memory/2', 'over websocket');
    const second = await engine.syncNow();
    expect(second.ok).toBe(true);
    expect(engine.status().transport).toBe('websocket');
    expect(wsAttempts).toBe(2);

    await syncAll([b]);
    expect(b.get('memory/1')?.value).toBe('over http');
    expect(b.get('memory/2')?.value).toBe('over websocket');
  } finally {
    await engine.stop();
  }
});

it('with transport "websocket" only, a refused socket fails the cycle instead of falling back', async () => {
  const relay = await lab.relay();
  const a = await lab.create(relay.url, { name: 'a' });
  const deadPort = await freePort();
  const { identity } = a;
  const engine = new SyncEngine({
    store: a.store,
    relay: a.relayControl,
    credentials: identity.credentials,
    connect: () => new WsTransport({ relayUrl: `http://127.0.0.1:${deadPort}`, audience: relay.url, motebitId: identity.motebitId, deviceId: identity.deviceId, deviceKey: identity.deviceKey }),
    transport: 'websocket',
    intervalMs: 60_000,
  });
  try {
    a.put('memory/1', 'stays queued');
    const result = await engine.syncNow();
    expect(result.ok).toBe(false);
    expect(result.error?.kind).toBe('network');
    expect(engine.status()).toMatchObject({ state: 'offline', transport: null, pendingOut: 1 });
  } finally {
    await engine.stop();
  }
});
