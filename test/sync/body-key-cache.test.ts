// Body keys are imported once per key id and key bytes (shared/envelope-crypto.ts, BodyKeyCache), and a
// received page looks each key id up once (EncryptedTransport.openEvents). The cache must never serve a
// key for another id or for other bytes than it was imported from, must stay bounded, and must show no
// key material. envelopeAad writes the AAD itself; it must be byte for byte what canonicalize writes.
import { randomBytes } from 'node:crypto';
import { inspect } from 'node:util';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EncryptedTransport, type BodyKeyring } from '../../main/sync/encrypted-transport.ts';
import type { ReceivedEvent, Transport } from '../../main/sync/transport.ts';
import { canonicalBytes, toBase64Url } from '../../shared/encoding.ts';
import { BodyKeyCache, envelopeAad, openBody, sealBody } from '../../shared/envelope-crypto.ts';
import { newEventId } from '../../shared/ids.ts';
import { assertProperty, propertyPlan } from '../support/property.ts';

const MOTEBIT = `mb_${'m'.repeat(22)}`;
const DEVICE = `dv_${'d'.repeat(22)}`;

const envelope = (keyId: string, deviceSeq = 1) => ({ motebit_id: MOTEBIT, device_id: DEVICE, event_id: newEventId(), device_seq: deviceSeq, key_id: keyId });

describe('BodyKeyCache', () => {
  it('imports a key once per key id and bytes, and serves it only for that id and those bytes', () => {
    const cache = new BodyKeyCache();
    const k1 = randomBytes(32);
    const k2 = randomBytes(32);
    const aad1 = envelopeAad(envelope('k1'));
    const aad2 = envelopeAad(envelope('k2'));
    const sealed1 = sealBody(k1, Buffer.from('one'), aad1);
    const sealed2 = sealBody(k2, Buffer.from('two'), aad2);

    const first = cache.key('k1', k1);
    expect(cache.key('k1', Buffer.from(k1))).toBe(first); // same id, same bytes (another buffer): the same import
    const second = cache.key('k2', k2);
    expect(second).not.toBe(first);
    expect(openBody(first, sealed1, aad1)?.toString()).toBe('one');
    expect(openBody(second, sealed2, aad2)?.toString()).toBe('two');
    expect(openBody(second, sealed1, aad1)).toBeNull();
    expect(openBody(first, sealed2, aad2)).toBeNull();

    // The same bytes under another id are another entry; another id never gets k1's entry.
    const sameBytesOtherId = cache.key('k2', k1);
    expect(sameBytesOtherId).not.toBe(first);
    expect(sameBytesOtherId).not.toBe(second);
    // Other bytes under a known id (a keyring that changed): imported afresh, never the old key.
    const rotated = randomBytes(32);
    const renewed = cache.key('k1', rotated);
    expect(renewed).not.toBe(first);
    expect(openBody(renewed, sealed1, aad1)).toBeNull();
    expect(openBody(renewed, sealBody(rotated, Buffer.from('three'), aad1), aad1)?.toString()).toBe('three');
    expect(cache.key('k1', k1)).toBe(first);
  });

  it('is bounded, dropping the least recently used key first', () => {
    const cache = new BodyKeyCache(2);
    const [a, b, c] = [randomBytes(32), randomBytes(32), randomBytes(32)];
    const keyA = cache.key('a', a);
    const keyB = cache.key('b', b);
    expect(cache.key('a', a)).toBe(keyA); // a is now the most recently used
    cache.key('c', c); // b goes
    expect(cache.size).toBe(2);
    expect(cache.key('a', a)).toBe(keyA);
    const keyB2 = cache.key('b', b);
    expect(keyB2).not.toBe(keyB); // imported again
    expect(keyB2.equals(keyB)).toBe(true); // the same key
    expect(cache.size).toBe(2);
    expect(() => new BodyKeyCache(0)).toThrow(RangeError);
  });

  it('refuses keys that are not 32 bytes, and shows no key material', () => {
    const cache = new BodyKeyCache();
    expect(() => cache.key('k1', randomBytes(16))).toThrow(RangeError);
    const bytes = randomBytes(32);
    cache.key('k1', bytes);
    for (const shown of [inspect(cache, { showHidden: true, depth: 5 }), JSON.stringify(cache), String(cache)]) {
      for (const encoding of ['hex', 'base64', 'base64url'] as const) expect(shown).not.toContain(bytes.toString(encoding).slice(0, 16));
      expect(shown).not.toMatch(/k1/);
    }
  });
});

/** A transport underneath that is never used: openEvents and sealEvent need none. */
const unused = {} as Transport;

function received(key: Buffer, keyId: string, seq: number, text: string): ReceivedEvent {
  const env = envelope(keyId, seq);
  return { event_id: env.event_id, device_id: DEVICE, device_seq: seq, key_id: keyId, seq, body: toBase64Url(sealBody(key, Buffer.from(text), envelopeAad(env))) };
}

describe('EncryptedTransport key lookups', () => {
  it('looks each key id of a page up once, and sees a keyring change on the next page', () => {
    const k1 = randomBytes(32);
    const k0 = randomBytes(32);
    let keyBytes = k1;
    const lookups: string[] = [];
    const keys: BodyKeyring = {
      get current() {
        return { id: 'k1', key: keyBytes };
      },
      byId: (id) => {
        lookups.push(id);
        return id === 'k0' ? k0 : undefined;
      },
    };
    const transport = new EncryptedTransport({ inner: unused, keys, motebitId: MOTEBIT });
    const page = [received(k1, 'k1', 1, 'a'), received(k0, 'k0', 2, 'b'), received(k1, 'k1', 3, 'c'), received(k0, 'k0', 4, 'd'), received(k1, 'k9', 5, 'e')];
    const opened = transport.openEvents(page);
    expect(opened.map((event) => event.problem?.code ?? Buffer.from(event.body, 'base64url').toString())).toEqual(['a', 'b', 'c', 'd', 'unknown_key']);
    expect(lookups).toEqual(['k0', 'k9']); // once per page each; the current key needs no lookup

    // The motebit's key k1 now has other bytes (the keyring changed): the old import is not used for it.
    keyBytes = randomBytes(32);
    const next = transport.openEvents([received(k1, 'k1', 6, 'old'), received(keyBytes, 'k1', 7, 'new')]);
    expect(next.map((event) => event.problem?.code ?? Buffer.from(event.body, 'base64url').toString())).toEqual(['decrypt_failed', 'new']);
  });
});

describe('envelopeAad', () => {
  it('is byte for byte the canonical JSON of the envelope', () => {
    const text = fc.oneof(fc.string({ unit: 'grapheme' }), fc.string({ unit: 'binary' }), fc.string(), fc.constantFrom('', '"', '\\', '\u2028', '\u0000', 'ü', '😀'));
    assertProperty(
      fc.property(text, text, text, text, fc.oneof(fc.integer(), fc.double()), (motebit_id, device_id, event_id, key_id, device_seq) => {
        const value = { motebit_id, device_id, event_id, device_seq, key_id };
        let expected: Buffer | Error;
        try {
          expected = canonicalBytes(value);
        } catch (error) {
          expected = error as Error;
        }
        if (expected instanceof Error) expect(() => envelopeAad(value)).toThrow();
        else expect(envelopeAad(value).equals(expected)).toBe(true);
      }),
      propertyPlan('body key cache', 2000),
    );
  });
});
