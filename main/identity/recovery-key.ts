// The recovery key (docs/keys.md; Keybase's paper key): a 32-byte root secret made at `init`, shown once
// as text (and QR) to be written down, never stored on any device. It is a member of the motebit's
// membership log: it can add a device when every device is lost, remove any device, and name its own
// successor. Text form (shared/code-text.ts): MBR1- and 13 groups of four, then a checksum group.
import { randomBytes } from 'node:crypto';
import { formatCode, parseCode, type CodeKind } from '../../shared/code-text.ts';
import { memberFromSecret, type MemberSecret } from '../../shared/membership/author.ts';

export const RECOVERY_KEY_BYTES = 32;
const RECOVERY_KEY: CodeKind = { prefix: 'MBR1', bytes: RECOVERY_KEY_BYTES, domain: 'motebit/recovery-key/v1', name: 'recovery key' };

export function generateRecoverySecret(): Buffer {
  return randomBytes(RECOVERY_KEY_BYTES);
}

export function formatRecoveryKey(secret: Uint8Array): string {
  return formatCode(RECOVERY_KEY, secret);
}

/** The recovery key's secret; throws CodeTextError, in words, for a mistyped or damaged key. */
export function parseRecoveryKey(text: string): Buffer {
  return parseCode(RECOVERY_KEY, text);
}

/** The recovery key as a member: its signing and X25519 keys, derived from the secret. */
export function recoveryMember(secret: Uint8Array): MemberSecret {
  return memberFromSecret('recovery', secret, null);
}
