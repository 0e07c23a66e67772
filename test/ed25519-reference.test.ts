// Our Ed25519 (node:crypto) must be standard Ed25519: checked against RFC 8032's test vector and against
// @noble/ed25519, an independent implementation.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import * as noble from '@noble/ed25519';
import { randomSeed, signingKeyFromSeed, verifySignature } from '../shared/crypto.ts';

noble.hashes.sha512 = (message: Uint8Array) => new Uint8Array(createHash('sha512').update(message).digest());

describe('Ed25519', () => {
  it('matches RFC 8032 test vector 1', () => {
    const key = signingKeyFromSeed(Buffer.from('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60', 'hex'));
    expect(key.publicKey.toString('hex')).toBe('d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a');
    expect(key.sign(new Uint8Array()).toString('hex')).toBe(
      'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
    );
  });

  it('signs what @noble/ed25519 verifies, and verifies what it signs', () => {
    const seed = randomSeed();
    const ours = signingKeyFromSeed(seed);
    const message = Buffer.from('motebit');
    expect(Buffer.from(noble.getPublicKey(seed)).equals(ours.publicKey)).toBe(true);
    expect(noble.verify(ours.sign(message), message, ours.publicKey)).toBe(true);
    expect(verifySignature(ours.publicKey, message, noble.sign(message, seed))).toBe(true);
  });

  it('treats a wrong message, key or malformed signature as invalid, never as an exception', () => {
    const key = signingKeyFromSeed(randomSeed());
    const sig = key.sign(Buffer.from('a'));
    expect(verifySignature(key.publicKey, Buffer.from('b'), sig)).toBe(false);
    expect(verifySignature(signingKeyFromSeed(randomSeed()).publicKey, Buffer.from('a'), sig)).toBe(false);
    expect(verifySignature(key.publicKey, Buffer.from('a'), sig.subarray(1))).toBe(false);
    expect(verifySignature(new Uint8Array(5), Buffer.from('a'), sig)).toBe(false);
  });
});
