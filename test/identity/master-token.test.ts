import { describe, expect, it } from 'vitest';
import { verifySignature } from '../../shared/crypto.ts';
import { verifyDeviceCert } from '../../shared/event.ts';
import { deviceIdFromDeviceKey, motebitIdFromIdentityKey } from '../../shared/ids.ts';
import {
  MASTER_TOKEN_PREFIX,
  MASTER_TOKEN_TEXT_LENGTH,
  MasterTokenFormatError,
  formatMasterToken,
  generateMasterToken,
  parseMasterToken,
} from '../../main/identity/master-token.ts';
import { ENCRYPTION_KEY_INFO, IDENTITY_SEED_INFO, deriveBytes, deriveEncryptionKey, deriveIdentity, encryptionKeyId } from '../../main/identity/derive.ts';
import { createDeviceKey, deviceCredentials, deviceKeyFromSeed, formatDeviceSeed, parseDeviceSeed } from '../../main/identity/device-key.ts';
import { toBase64Url } from '../../shared/encoding.ts';

const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
// A fixed token, so the derivations below are pinned: changing a label or the salt breaks every motebit.
const FIXED_TOKEN = Buffer.from('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f', 'hex');

describe('master token text form', () => {
  it('round-trips random tokens and has the documented shape', () => {
    for (let i = 0; i < 50; i++) {
      const token = generateMasterToken();
      const text = formatMasterToken(token);
      expect(text.startsWith(MASTER_TOKEN_PREFIX)).toBe(true);
      expect(text).toHaveLength(MASTER_TOKEN_TEXT_LENGTH);
      expect(text).toMatch(/^mbk1_[A-Za-z0-9_-]{49}$/);
      expect(parseMasterToken(text).equals(token)).toBe(true);
    }
  });

  it('ignores white space around a pasted token', () => {
    const token = generateMasterToken();
    expect(parseMasterToken(`  ${formatMasterToken(token)}\n`).equals(token)).toBe(true);
  });

  it('catches every single-character substitution', () => {
    const text = formatMasterToken(generateMasterToken());
    let tried = 0;
    for (let i = MASTER_TOKEN_PREFIX.length; i < text.length; i++) {
      for (const c of BASE64URL) {
        if (c === text[i]) continue;
        const typo = text.slice(0, i) + c + text.slice(i + 1);
        expect(() => parseMasterToken(typo), `position ${i} → ${c}`).toThrow(MasterTokenFormatError);
        tried++;
      }
    }
    expect(tried).toBe(49 * 63);
  });

  it('catches swapped neighbours, dropped and extra characters', () => {
    const text = formatMasterToken(generateMasterToken());
    for (let i = MASTER_TOKEN_PREFIX.length; i < text.length - 1; i++) {
      if (text[i] === text[i + 1]) continue;
      const swapped = text.slice(0, i) + text[i + 1] + text[i] + text.slice(i + 2);
      expect(() => parseMasterToken(swapped)).toThrow(/checksum does not match/);
    }
    expect(() => parseMasterToken(text.slice(0, -1))).toThrow(/is 54 characters, this one is 53/);
    expect(() => parseMasterToken(text + 'A')).toThrow(/this one is 55/);
  });

  it('names what is wrong: prefix, version, characters, canonical form', () => {
    const text = formatMasterToken(generateMasterToken());
    expect(() => parseMasterToken('hello')).toThrow(/not a master token: it starts with mbk1_/);
    expect(() => parseMasterToken('mbk2_' + text.slice(5))).toThrow(/unsupported master token version "mbk2_"/);
    expect(() => parseMasterToken(text.slice(0, 10) + '+' + text.slice(11))).toThrow(/character 11 is not one of them/);
    // The last base64url character of 32 bytes carries 4 bits; a different low 2 bits decode to the same
    // bytes, and must still be refused (only one text per token). Build such a text with a valid checksum.
    const token = Buffer.alloc(32, 0);
    const canonical = formatMasterToken(token);
    expect(canonical.slice(5, 48)).toMatch(/A$/);
    expect(() => parseMasterToken(canonical.slice(0, 47) + 'B' + canonical.slice(48))).toThrow(MasterTokenFormatError);
  });
});

describe('derivations', () => {
  it('are deterministic: the same token gives the same motebit, keys and key id', () => {
    const token = generateMasterToken();
    const a = deriveIdentity(token);
    const b = deriveIdentity(parseMasterToken(formatMasterToken(token)));
    expect(b.motebitId).toBe(a.motebitId);
    expect(b.identityKey.publicKey.equals(a.identityKey.publicKey)).toBe(true);
    expect(b.encryptionKey.id).toBe(a.encryptionKey.id);
    expect(b.encryptionKey.key.equals(a.encryptionKey.key)).toBe(true);
    expect(a.motebitId).toBe(motebitIdFromIdentityKey(a.identityKey.publicKey));
    expect(a.encryptionKey.key).toHaveLength(32);
    expect(a.encryptionKey.id).toMatch(/^ek_[A-Za-z0-9_-]{16}$/);
  });

  it('are pinned for a fixed token (labels, salt and key id format are part of the protocol)', () => {
    const derived = deriveIdentity(FIXED_TOKEN);
    expect(formatMasterToken(FIXED_TOKEN)).toBe(PINNED.text);
    expect(derived.motebitId).toBe(PINNED.motebitId);
    expect(derived.encryptionKey.id).toBe(PINNED.keyId);
    expect(derived.encryptionKey.key.toString('hex')).toBe(PINNED.key);
  });

  it('are distinct per label and per token', () => {
    const token = generateMasterToken();
    const seed = deriveBytes(token, IDENTITY_SEED_INFO);
    const key = deriveBytes(token, ENCRYPTION_KEY_INFO);
    expect(seed.equals(key)).toBe(false);
    expect(seed.equals(token) || key.equals(token)).toBe(false);
    expect(deriveBytes(token, 'motebit/other/v1').equals(seed)).toBe(false);
    const other = deriveIdentity(generateMasterToken());
    const mine = deriveIdentity(token);
    expect(other.motebitId).not.toBe(mine.motebitId);
    expect(other.encryptionKey.id).not.toBe(mine.encryptionKey.id);
    expect(encryptionKeyId(deriveEncryptionKey(token).key)).toBe(mine.encryptionKey.id);
  });

  it('give an identity key that signs, and a device cert the relay accepts', () => {
    const { identityKey, motebitId } = deriveIdentity(generateMasterToken());
    const message = Buffer.from('hello');
    expect(verifySignature(identityKey.publicKey, message, identityKey.sign(message))).toBe(true);
    const device = createDeviceKey();
    expect(device.deviceId).toBe(deviceIdFromDeviceKey(device.signingKey.publicKey));
    const credentials = deviceCredentials(identityKey, motebitId, device);
    expect(verifyDeviceCert(identityKey.publicKey, motebitId, device.deviceId, toBase64Url(device.signingKey.publicKey), credentials.cert!)).toBe(true);
    const stranger = deriveIdentity(generateMasterToken());
    expect(verifyDeviceCert(stranger.identityKey.publicKey, motebitId, device.deviceId, toBase64Url(device.signingKey.publicKey), credentials.cert!)).toBe(false);
  });

  it('device keys are random, and their stored form round-trips', () => {
    const a = createDeviceKey();
    const b = createDeviceKey();
    expect(a.deviceId).not.toBe(b.deviceId);
    const again = deviceKeyFromSeed(parseDeviceSeed(formatDeviceSeed(a.seed)));
    expect(again.deviceId).toBe(a.deviceId);
    expect(() => parseDeviceSeed('dks1_short')).toThrow(/damaged/);
  });
});

// The key was checked against an independent HKDF-SHA256 (RFC 5869, Python hmac) of the same inputs.
const PINNED = {
  text: 'mbk1_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8RwhZ9n',
  motebitId: 'mb_s0wAS47zMPTv5pPlqb9UNg',
  keyId: 'ek_2jwsRNSEfzNEXX8-',
  key: 'c870c768875c7a6a78856061f4a579aad0ce5b83f9abe713b7c62a2395df8192',
};
