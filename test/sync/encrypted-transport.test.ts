import { randomBytes } from 'node:crypto';
import { readFileSync, existsSync } from 'node:fs';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { fromBase64Url, toBase64Url } from '../../shared/encoding.ts';
import { BODY_NONCE_BYTES, envelopeAad, openBody, sealBody, sealedNonce, SEAL_OVERHEAD_BYTES } from '../../shared/envelope-crypto.ts';
import type { WireEvent } from '../../shared/portable/wire.ts';
import { EncryptedTransport, type BodyKeyring } from '../../main/sync/encrypted-transport.ts';
import { HttpTransport } from '../../main/sync/http-transport.ts';
import { RelayClient } from '../../main/sync/relay-client.ts';
import type { Transport } from '../../main/sync/transport.ts';
import { WsTransport } from '../../main/sync/ws-transport.ts';
import type { TestDevice } from '../relay/support.ts';
import { Collector, bodyJson, deviceOptions, harnesses, jsonEvents, range, type Harness } from './support.ts';

const h = harnesses();
afterEach(() => h.cleanup());

const keyring = (id: string, key: Buffer, old: Record<string, Buffer> = {}): BodyKeyring => ({ current: { id, key }, byId: (wanted) => old[wanted] });

function encrypted(inner: Transport, harness: Harness, keys: BodyKeyring): EncryptedTransport {
  const transport = new EncryptedTransport({ inner, keys, motebitId: harness.motebit.motebitId });
  h.defer(() => transport.close());
  return transport;
}

const http = (harness: Harness, device: TestDevice): HttpTransport => new HttpTransport(deviceOptions(harness.relay, device));
const wsOf = (harness: Harness, device: TestDevice): WsTransport => new WsTransport(deviceOptions(harness.relay, device));

/** Every byte the relay has written for its database (main file, WAL). */
function relayFiles(dbPath: string): Buffer {
  return Buffer.concat([dbPath, `${dbPath}-wal`].filter((path) => existsSync(path)).map((path) => readFileSync(path)));
}

function editRelayEvents(dbPath: string, edit: (db: Database.Database) => void): void {
  const db = new Database(dbPath);
  try {
    db.pragma('busy_timeout = 5000');
    edit(db);
  } finally {
    db.close();
  }
}

describe('envelope crypto', () => {
  const envelope = { motebit_id: 'mb_x', device_id: 'dv_y', event_id: '00000000-0000-4000-8000-000000000000', device_seq: 1, key_id: 'k1' };

  it('opens what it sealed, and nothing else', () => {
    const key = randomBytes(32);
    const aad = envelopeAad(envelope);
    const plaintext = Buffer.from('{"hello":"world"}');
    const sealed = sealBody(key, plaintext, aad);
    expect(sealed.byteLength).toBe(plaintext.byteLength + SEAL_OVERHEAD_BYTES);
    expect(openBody(key, sealed, aad)).toEqual(plaintext);
    expect(openBody(randomBytes(32), sealed, aad)).toBeNull();
    expect(openBody(key, sealed, envelopeAad({ ...envelope, device_seq: 2 }))).toBeNull();
    expect(openBody(key, sealed, envelopeAad({ ...envelope, key_id: 'k2' }))).toBeNull();
    for (const index of [0, BODY_NONCE_BYTES, sealed.byteLength - 1]) {
      const tampered = Buffer.from(sealed);
      tampered[index] = (tampered[index] ?? 0) ^ 1;
      expect(openBody(key, tampered, aad)).toBeNull();
    }
    expect(openBody(key, sealed.subarray(0, 10), aad)).toBeNull();
    expect(() => sealBody(randomBytes(16), plaintext, aad)).toThrow(RangeError);
  });

  it('uses a fresh nonce for every seal', () => {
    const key = randomBytes(32);
    const aad = envelopeAad(envelope);
    const nonces = new Set(Array.from({ length: 2000 }, () => sealedNonce(sealBody(key, Buffer.from('same'), aad)).toString('hex')));
    expect(nonces.size).toBe(2000);
  });
});

describe('EncryptedTransport', () => {
  it('round-trips through the relay; the relay stores no plaintext; every event has its own nonce', async () => {
    const harness = await h.start(2);
    const [a, b] = harness.devices as [TestDevice, TestDevice];
    const key = randomBytes(32);
    const marker = `secret-marker-${randomBytes(6).toString('hex')}`;
    const sender = encrypted(http(harness, a), harness, keyring('k1', key));
    const got = new Collector();
    const receiver = encrypted(wsOf(harness, b), harness, keyring('k1', key));
    expect(receiver.kind).toBe('websocket');
    await sender.open(0, async () => undefined);
    await receiver.open(0, got.sink);

    // The same payload many times: identical plaintexts must still give distinct ciphertexts.
    const events = jsonEvents(a, 50, () => ({ text: marker }));
    const results = await sender.push(events);
    expect(results.map((r) => r.status)).toEqual(Array(50).fill('stored'));
    await got.waitFor(50);
    expect(got.seqs()).toEqual(range(1, 50));
    for (const [index, event] of got.events.entries()) {
      expect(event.problem).toBeUndefined();
      expect(event.key_id).toBeNull();
      expect(event.body).toBe(events[index]?.body);
      expect(bodyJson(event.body)).toMatchObject({ payload: { text: marker } });
    }

    // What the relay holds and serves: sealed bodies under k1, each with its own nonce.
    const stored = await new RelayClient(deviceOptions(harness.relay, b)).pull(0, 1000);
    expect(stored.events.every((event) => event.key_id === 'k1')).toBe(true);
    const nonces = new Set(stored.events.map((event) => sealedNonce(fromBase64Url(event.body)).toString('hex')));
    expect(nonces.size).toBe(50);
    expect(new Set(stored.events.map((event) => event.body)).size).toBe(50);

    // Neither the marker nor the plaintext bodies are anywhere in the relay's files...
    const files = relayFiles(harness.dbPath);
    expect(files.includes(marker)).toBe(false);
    expect(files.includes(events[0]!.body)).toBe(false);
    // ...where an unencrypted push would be (so the check above can fail).
    const control = `control-marker-${randomBytes(6).toString('hex')}`;
    const plain = http(harness, a);
    await plain.open(0, async () => undefined);
    const [controlEvent] = jsonEvents(a, 1, () => ({ text: control }));
    await plain.push([controlEvent!]);
    expect(relayFiles(harness.dbPath).includes(controlEvent!.body)).toBe(true);
  });

  it('a body tampered with in the relay database is reported as decrypt_failed, for that event only', async () => {
    const harness = await h.start(2);
    const [a, b] = harness.devices as [TestDevice, TestDevice];
    const keys = keyring('k1', randomBytes(32));
    const sender = encrypted(http(harness, a), harness, keys);
    await sender.open(0, async () => undefined);
    await sender.push(jsonEvents(a, 5));

    let tamperedBody = '';
    editRelayEvents(harness.dbPath, (db) => {
      const row = db.prepare('SELECT body FROM events WHERE seq = 2').get() as { body: string };
      const bytes = fromBase64Url(row.body);
      bytes[bytes.byteLength - 20] = (bytes[bytes.byteLength - 20] ?? 0) ^ 0x40;
      tamperedBody = toBase64Url(bytes);
      db.prepare('UPDATE events SET body = ? WHERE seq = 2').run(tamperedBody);
    });

    const got = new Collector();
    const receiver = encrypted(http(harness, b), harness, keys);
    await receiver.open(0, got.sink);
    expect(await receiver.catchUp()).toBe(5);
    expect(got.events.map((event) => event.problem?.code ?? 'ok')).toEqual(['ok', 'decrypt_failed', 'ok', 'ok', 'ok']);
    // The bad event is handed on as the relay served it.
    expect(got.events[1]).toMatchObject({ seq: 2, key_id: 'k1', body: tamperedBody });
  });

  it('bodies swapped between two events in the relay database open for neither', async () => {
    const harness = await h.start(2);
    const [a, b] = harness.devices as [TestDevice, TestDevice];
    const keys = keyring('k1', randomBytes(32));
    const sender = encrypted(http(harness, a), harness, keys);
    await sender.open(0, async () => undefined);
    await sender.push(jsonEvents(a, 3));
    editRelayEvents(harness.dbPath, (db) => {
      const body = (seq: number) => (db.prepare('SELECT body FROM events WHERE seq = ?').get(seq) as { body: string }).body;
      const [one, three] = [body(1), body(3)];
      db.prepare('UPDATE events SET body = ? WHERE seq = ?').run(three, 1);
      db.prepare('UPDATE events SET body = ? WHERE seq = ?').run(one, 3);
    });
    const got = new Collector();
    const receiver = encrypted(wsOf(harness, b), harness, keys);
    await receiver.open(0, got.sink);
    expect(await receiver.catchUp()).toBe(3);
    expect(got.events.map((event) => event.problem?.code ?? 'ok')).toEqual(['decrypt_failed', 'ok', 'decrypt_failed']);
  });

  it('a wrong key is decrypt_failed, a missing key is unknown_key, an old key still opens', async () => {
    const harness = await h.start(2);
    const [a, b] = harness.devices as [TestDevice, TestDevice];
    const k1 = randomBytes(32);
    const k2 = randomBytes(32);
    const before = encrypted(http(harness, a), harness, keyring('k1', k1));
    await before.open(0, async () => undefined);
    await before.push(jsonEvents(a, 2));
    // The motebit rotates to k2; a device keeps k1 for old events.
    const after = encrypted(http(harness, a), harness, keyring('k2', k2, { k1 }));
    await after.open(0, async () => undefined);
    await after.push(jsonEvents(a, 2));

    const read = async (keys: BodyKeyring): Promise<string[]> => {
      const got = new Collector();
      const transport = encrypted(http(harness, b), harness, keys);
      await transport.open(0, got.sink);
      await transport.catchUp();
      return got.events.map((event) => event.problem?.code ?? `ok:${String(event.key_id)}`);
    };
    expect(await read(keyring('k2', k2, { k1 }))).toEqual(['ok:null', 'ok:null', 'ok:null', 'ok:null']);
    expect(await read(keyring('k2', k2))).toEqual(['unknown_key', 'unknown_key', 'ok:null', 'ok:null']);
    expect(await read(keyring('k2', randomBytes(32), { k1 }))).toEqual(['ok:null', 'ok:null', 'decrypt_failed', 'decrypt_failed']);
    expect(await read(keyring('k1', randomBytes(32), { k2 }))).toEqual(['decrypt_failed', 'decrypt_failed', 'ok:null', 'ok:null']);
  });

  it('a plaintext event on an encrypted motebit is reported as not_encrypted, untouched', async () => {
    const harness = await h.start(2);
    const [a, b] = harness.devices as [TestDevice, TestDevice];
    const keys = keyring('k1', randomBytes(32));
    const plain = http(harness, a);
    await plain.open(0, async () => undefined);
    const [event] = jsonEvents(a, 1);
    await plain.push([event!]);
    const sealed = encrypted(http(harness, a), harness, keys);
    await sealed.open(0, async () => undefined);
    await sealed.push(jsonEvents(a, 1));

    const got = new Collector();
    const receiver = encrypted(http(harness, b), harness, keys);
    await receiver.open(0, got.sink);
    await receiver.catchUp();
    expect(got.events[0]).toMatchObject({ seq: 1, key_id: null, body: event!.body, problem: { code: 'not_encrypted' } });
    expect(got.events[1]?.problem).toBeUndefined();
  });

  it('an event that is already sealed is pushed as it is, so a retry is a duplicate', async () => {
    const harness = await h.start(1);
    const a = harness.devices[0]!;
    const transport = encrypted(http(harness, a), harness, keyring('k1', randomBytes(32)));
    await transport.open(0, async () => undefined);
    const [event] = jsonEvents(a, 1);
    const sealed: WireEvent = transport.sealEvent(event!);
    expect(sealed.key_id).toBe('k1');
    expect(sealed.body).not.toBe(event!.body);
    expect(transport.sealEvent(sealed)).toBe(sealed);
    expect((await transport.push([sealed]))[0]).toMatchObject({ status: 'stored', seq: 1 });
    expect((await transport.push([sealed]))[0]).toMatchObject({ status: 'duplicate', seq: 1 });
    expect(() => new EncryptedTransport({ inner: http(harness, a), keys: keyring('k1', randomBytes(16)), motebitId: harness.motebit.motebitId })).toThrow(RangeError);
  });
});

describe('EncryptedTransport, each refusal in its words', () => {
  it('takes a key id of base64url characters and a 32-byte key only', async () => {
    const harness = await h.start(1);
    const inner = http(harness, harness.devices[0]!);
    h.defer(() => inner.close());
    const make = (keys: BodyKeyring) => () => new EncryptedTransport({ inner, keys, motebitId: harness.motebit.motebitId });
    expect(make(keyring('not a key id!', randomBytes(32)))).toThrow(new RangeError('a key id is 1 to 64 base64url characters'));
    expect(make(keyring('k1', randomBytes(16)))).toThrow(new RangeError('a body key is 32 bytes'));
    expect(make(keyring('k1', randomBytes(32)))).not.toThrow();
  });

  it('names why an event stays closed: already a problem, plaintext, a key it lacks, a key of the wrong size, another envelope', async () => {
    const harness = await h.start(1);
    const [a] = harness.devices as [TestDevice];
    const inner = http(harness, a);
    h.defer(() => inner.close());
    const transport = new EncryptedTransport({ inner, keys: keyring('k1', randomBytes(32), { short: randomBytes(16) }), motebitId: harness.motebit.motebitId });
    const [plain] = jsonEvents(a, 1);
    const sealed = { ...transport.sealEvent(plain!), seq: 1 };
    expect(transport.sealEvent(sealed)).toBe(sealed); // already sealed: as it is
    expect(transport.openEvent(sealed)).toEqual({ ...plain, seq: 1 });
    const problem = { code: 'decrypt_failed', message: 'found earlier' } as const;
    expect(transport.openEvent({ ...sealed, problem })).toEqual({ ...sealed, problem });
    expect(transport.openEvent({ ...plain!, seq: 1 }).problem).toEqual({ code: 'not_encrypted', message: 'the body is plaintext, but this motebit encrypts its events' });
    expect(transport.openEvent({ ...sealed, key_id: 'k9' }).problem).toEqual({ code: 'unknown_key', message: 'this device does not have key k9' });
    expect(transport.openEvent({ ...sealed, key_id: 'short' }).problem).toEqual({ code: 'decrypt_failed', message: 'the body does not open under key short for this envelope' });
    expect(transport.openEvent({ ...sealed, device_seq: sealed.device_seq + 1 }).problem).toEqual({ code: 'decrypt_failed', message: 'the body does not open under key k1 for this envelope' });
  });
});
