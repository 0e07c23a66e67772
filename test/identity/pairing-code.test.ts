// The pairing code of pairing by approval (shared/membership/pairing-code.ts): its text form, the
// commitment to the new device's keys and nonce, and the short authentication string.
import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { CodeTextError } from '../../shared/code-text.ts';
import { memberFromSecret } from '../../shared/membership/author.ts';
import {
  commitmentHolds,
  formatPairingCode,
  newPairingNonce,
  newRendezvousId,
  pairingCommitment,
  parsePairingCode,
  shortAuthString,
} from '../../shared/membership/pairing-code.ts';

/** Fixed bytes (so every run checks the same codes): SHA-256 of a label. */
const fixed = (label: string, bytes: number): Buffer => createHash('sha256').update(label).digest().subarray(0, bytes);

describe('pairing code', () => {
  it('round-trips, and forgives case, spaces, dashes and I/L/O typed for 1/1/0', () => {
    const code = { rendezvousId: newRendezvousId(), commitment: pairingCommitment(memberFromSecret('device', randomBytes(32), 'phone').key, newPairingNonce()) };
    const text = formatPairingCode(code);
    expect(text).toMatch(/^MBP1(-[0-9A-HJKMNP-TV-Z]{1,4}){7}-[0-9A-HJKMNP-TV-Z]{4}$/);
    for (const typed of [text, text.toLowerCase(), text.replace(/-/g, ' '), text.replace(/-/g, ''), `  ${text}\n`, text.replace(/1/g, 'l').replace(/0/g, 'O').replace(/^MBP1/, 'MBP1')]) {
      const parsed = parsePairingCode(typed);
      expect(parsed.rendezvousId.equals(code.rendezvousId)).toBe(true);
      expect(parsed.commitment.equals(code.commitment)).toBe(true);
    }
  });

  it('catches every single mistyped character and every dropped or doubled one, in words', () => {
    for (const label of ['a', 'b', 'c']) {
      const text = formatPairingCode({ rendezvousId: fixed(`r${label}`, 6), commitment: fixed(`c${label}`, 10) });
      const chars = text.replace(/-/g, '').slice(4);
      for (let i = 0; i < chars.length; i++) {
        for (const c of '0123456789ABCDEFGHJKMNPQRSTVWXYZ') {
          if (c === chars[i]) continue;
          const typo = `MBP1${chars.slice(0, i)}${c}${chars.slice(i + 1)}`;
          expect(() => parsePairingCode(typo), typo).toThrow(CodeTextError);
        }
        expect(() => parsePairingCode(`MBP1${chars.slice(0, i)}${chars.slice(i + 1)}`)).toThrow(/missing or extra/);
        expect(() => parsePairingCode(`MBP1${chars.slice(0, i)}${chars[i]}${chars.slice(i)}`)).toThrow(/missing or extra/);
      }
    }
    expect(() => parsePairingCode('motebit-pair:1:abc:def')).toThrow(/old pairing code/);
    expect(() => parsePairingCode('hello')).toThrow(/not a pairing code/);
  });

  it('the commitment holds only for the keys and nonce it was made from', () => {
    const phone = memberFromSecret('device', randomBytes(32), 'phone');
    const nonce = newPairingNonce();
    const code = { rendezvousId: newRendezvousId(), commitment: pairingCommitment(phone.key, nonce) };
    expect(commitmentHolds(code, phone.key, nonce)).toBe(true);
    expect(commitmentHolds(code, phone.key, newPairingNonce())).toBe(false);
    expect(commitmentHolds(code, memberFromSecret('device', randomBytes(32), 'phone').key, nonce)).toBe(false); // keys swapped by a relay
    expect(commitmentHolds(code, { ...phone.key, name: 'laptop' }, nonce)).toBe(false); // name changed
    expect(commitmentHolds(code, phone.key, nonce.subarray(0, 8))).toBe(false);
  });

  it('the commitment is the documented hash of the keys, one per line, and the nonce; a device with no name commits to an empty line', () => {
    const phone = memberFromSecret('device', fixed('phone', 32), null);
    const nonce = fixed('nonce', 16);
    const reference = createHash('sha256')
      .update(Buffer.concat([Buffer.from(`motebit/pairing-commit/v1\n${phone.key.id}\n${phone.key.sign_key}\n${phone.key.kem_key}\n\n`), nonce]))
      .digest()
      .subarray(0, 10);
    expect(pairingCommitment(phone.key, nonce)).toEqual(reference);
  });

  it('both screens show the same six digits only for the same motebit, keys and nonce', () => {
    const phone = memberFromSecret('device', randomBytes(32), 'phone');
    const nonce = newPairingNonce();
    const genesis = 'a'.repeat(64);
    const sas = shortAuthString(genesis, phone.key, nonce);
    expect(sas).toMatch(/^\d{3} \d{3}$/);
    expect(shortAuthString(genesis, phone.key, Buffer.from(nonce))).toBe(sas);
    // Different motebits give different strings (all distinct over 50 fake genesis hashes: a collision
    // would be a 1-in-a-million coincidence for a pair, not a property of the code).
    const strings = new Set(Array.from({ length: 50 }, (_, i) => shortAuthString(fixed(`g${i}`, 32).toString('hex'), phone.key, fixed('n', 16))));
    expect(strings.size).toBe(50);
  });
});
