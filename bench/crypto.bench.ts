// Crypto as the engine uses it: Ed25519 sign and verify (node:crypto, shared/crypto.ts) over a token-sized
// message, and AES-256-GCM sealBody/openBody (shared/envelope-crypto.ts) on 1 KB bodies with the envelope
// AAD. Beside openBody: the same decryption with the key imported once as a KeyObject, which is what
// openBody would cost if it cached the key (openBody imports the raw key again on every call).
import { createDecipheriv, createSecretKey, randomBytes } from 'node:crypto';
import { randomSeed, signingKeyFromSeed, verifySignature } from '../shared/crypto.ts';
import { envelopeAad, openBody, sealBody } from '../shared/envelope-crypto.ts';
import { newEventId } from '../shared/ids.ts';
import { progress, rounds, seconds, type Figure } from './support.ts';

const BODY_BYTES = 1024;
const MB = 1024 * 1024;

/** Calls `fn` in a loop for about `ms` and returns calls per second. */
function rate(ms: number, fn: () => void): number {
  const start = performance.now();
  let calls = 0;
  while (performance.now() - start < ms) {
    for (let i = 0; i < 100; i++) fn();
    calls += 100;
  }
  return calls / seconds(start);
}

export async function cryptoBench(roundCount: number): Promise<Figure[]> {
  progress('crypto: Ed25519 sign/verify, AES-256-GCM seal/open of 1 KB bodies');
  const key = signingKeyFromSeed(randomSeed());
  const message = randomBytes(320); // about a relay token's signing input
  const signature = key.sign(message);
  const signPerS = await rounds(roundCount, 'Ed25519 sign', () => rate(400, () => void key.sign(message)));
  const verifyPerS = await rounds(roundCount, 'Ed25519 verify', () => rate(400, () => void verifySignature(key.publicKey, message, signature)));

  const bodyKey = randomBytes(32);
  const plaintext = randomBytes(BODY_BYTES);
  const aad = envelopeAad({ motebit_id: `mb_${'a'.repeat(22)}`, device_id: `dv_${'b'.repeat(22)}`, event_id: newEventId(), device_seq: 42, key_id: 'k1' });
  const sealed = sealBody(bodyKey, plaintext, aad);
  const sealPerS = await rounds(roundCount, 'AES-256-GCM seal 1 KB', () => rate(400, () => void sealBody(bodyKey, plaintext, aad)));
  const openPerS = await rounds(roundCount, 'AES-256-GCM open 1 KB', () =>
    rate(400, () => {
      if (!openBody(bodyKey, sealed, aad)) throw new Error('does not open');
    }),
  );
  const keyObject = createSecretKey(bodyKey);
  const nonce = sealed.subarray(0, 12);
  const tag = sealed.subarray(sealed.length - 16);
  const ciphertext = sealed.subarray(12, sealed.length - 16);
  const cachedPerS = await rounds(roundCount, 'AES-256-GCM open 1 KB, cached KeyObject', () =>
    rate(400, () => {
      const decipher = createDecipheriv('aes-256-gcm', keyObject, nonce, { authTagLength: 16 });
      decipher.setAAD(aad);
      decipher.setAuthTag(tag);
      Buffer.concat([decipher.update(ciphertext), decipher.final()]);
    }),
  );
  const mbps = (perS: number) => (perS * BODY_BYTES) / MB;
  return [
    { key: 'ed25519_sign_per_s', label: 'Ed25519 sign, node:crypto', value: signPerS, unit: 'signs/s' },
    { key: 'ed25519_verify_per_s', label: 'Ed25519 verify, node:crypto', value: verifyPerS, unit: 'verifies/s', note: '320-byte message' },
    { key: 'aes_gcm_mb_per_s', label: 'AES-256-GCM openBody, 1 KB bodies', value: mbps(openPerS), unit: 'MB/s', note: `${Math.round(openPerS)} bodies/s; the receiving path` },
    { key: 'aes_gcm_seal_mb_per_s', label: 'AES-256-GCM sealBody, 1 KB bodies', value: mbps(sealPerS), unit: 'MB/s', note: `${Math.round(sealPerS)} bodies/s` },
    { key: 'aes_gcm_open_cached_key_mb_per_s', label: 'AES-256-GCM open, key imported once', value: mbps(cachedPerS), unit: 'MB/s', note: `x${(cachedPerS / openPerS).toFixed(2)} vs openBody` },
  ];
}
