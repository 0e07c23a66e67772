// The recovery key's text form (main/identity/recovery-key.ts): what is written on paper reads back to the
// same member, and a mistake in copying it is reported, never read as another key.
import { describe, expect, it } from 'vitest';
import { CodeTextError } from '../../shared/code-text.ts';
import { formatRecoveryKey, generateRecoverySecret, parseRecoveryKey, recoveryMember } from '../../main/identity/recovery-key.ts';
import { formatPairingCode } from '../../shared/membership/pairing-code.ts';

describe('recovery key', () => {
  it('reads back, as written or retyped loosely, to the same recovery member', () => {
    const secret = generateRecoverySecret();
    const text = formatRecoveryKey(secret);
    expect(text).toMatch(/^MBR1(-[0-9A-HJKMNP-TV-Z]{1,4}){14}$/);
    const member = recoveryMember(secret);
    expect(member.key.id).toMatch(/^rk_/);
    for (const typed of [text, text.toLowerCase().replace(/-/g, ' '), text.replace(/-/g, '')]) {
      expect(recoveryMember(parseRecoveryKey(typed)).key).toEqual(member.key);
    }
  });

  it('refuses a mistyped character, a missing group, and a pairing code given in its place', () => {
    const text = formatRecoveryKey(generateRecoverySecret());
    const i = 10;
    const swapped = text.slice(0, i) + (text[i] === 'A' ? 'B' : 'A') + text.slice(i + 1);
    expect(() => parseRecoveryKey(swapped)).toThrow(/mistyped/);
    expect(() => parseRecoveryKey(text.slice(0, -5))).toThrow(/missing or extra/);
    expect(() => parseRecoveryKey(text.replace(/-\w{4}-/, '-'))).toThrow(CodeTextError);
    const pairing = formatPairingCode({ rendezvousId: Buffer.alloc(6, 1), commitment: Buffer.alloc(10, 2) });
    expect(() => parseRecoveryKey(pairing)).toThrow(/not a recovery key/);
  });
});
