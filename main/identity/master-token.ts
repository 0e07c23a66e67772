// The sync master token: the motebit's root secret, 32 random bytes. Everything else a device needs to be
// the motebit (identity key, encryption key) is derived from it (derive.ts). Its text form is
//
//   mbk1_ + base64url(32 bytes) (43 characters) + checksum (6 characters)   = 54 characters
//
// so it can be recognised (prefix and version), copied whole (base64url: no characters that break
// double-click selection) and checked (a mistyped character is reported, never silently accepted).
import { randomBytes } from 'node:crypto';
import { CHECKSUM_LENGTH, textChecksum } from '../../shared/checksum.ts';

export const MASTER_TOKEN_BYTES = 32;
export const MASTER_TOKEN_PREFIX = 'mbk1_';
const BODY_LENGTH = 43; // ceil(32 * 4 / 3), unpadded
export const MASTER_TOKEN_TEXT_LENGTH = MASTER_TOKEN_PREFIX.length + BODY_LENGTH + CHECKSUM_LENGTH;
const CHECKSUM_DOMAIN = 'motebit/master-token/v1';

/** The master token is not in the expected text form; the message says what is wrong. */
export class MasterTokenFormatError extends Error {
  override readonly name = 'MasterTokenFormatError';
}

/** 32 fresh random bytes: a new motebit. */
export function generateMasterToken(): Buffer {
  return randomBytes(MASTER_TOKEN_BYTES);
}

export function formatMasterToken(token: Uint8Array): string {
  if (token.byteLength !== MASTER_TOKEN_BYTES) throw new RangeError(`a master token is ${MASTER_TOKEN_BYTES} bytes`);
  const body = Buffer.from(token).toString('base64url');
  return MASTER_TOKEN_PREFIX + body + textChecksum(CHECKSUM_DOMAIN, MASTER_TOKEN_PREFIX + body);
}

/** Parses the text form back to its 32 bytes; surrounding white space is ignored. */
export function parseMasterToken(text: string): Buffer {
  const trimmed = text.trim();
  if (!trimmed.startsWith(MASTER_TOKEN_PREFIX)) {
    if (/^mbk\d+_/.test(trimmed)) throw new MasterTokenFormatError(`unsupported master token version "${trimmed.slice(0, trimmed.indexOf('_') + 1)}": this app reads ${MASTER_TOKEN_PREFIX} tokens`);
    throw new MasterTokenFormatError(`not a master token: it starts with ${MASTER_TOKEN_PREFIX}`);
  }
  if (trimmed.length !== MASTER_TOKEN_TEXT_LENGTH) {
    throw new MasterTokenFormatError(`a master token is ${MASTER_TOKEN_TEXT_LENGTH} characters, this one is ${trimmed.length}: part of it is missing or extra`);
  }
  const bad = trimmed.slice(MASTER_TOKEN_PREFIX.length).search(/[^A-Za-z0-9_-]/);
  if (bad !== -1) {
    throw new MasterTokenFormatError(`a master token has only letters, digits, "-" and "_"; character ${MASTER_TOKEN_PREFIX.length + bad + 1} is not one of them`);
  }
  const body = trimmed.slice(MASTER_TOKEN_PREFIX.length, MASTER_TOKEN_PREFIX.length + BODY_LENGTH);
  const checksum = trimmed.slice(MASTER_TOKEN_PREFIX.length + BODY_LENGTH);
  if (textChecksum(CHECKSUM_DOMAIN, MASTER_TOKEN_PREFIX + body) !== checksum) {
    throw new MasterTokenFormatError('the master token checksum does not match: a character is mistyped or the token is damaged');
  }
  const token = Buffer.from(body, 'base64url');
  // Node decodes leniently; only the one canonical encoding of 32 bytes is a token.
  if (token.byteLength !== MASTER_TOKEN_BYTES || token.toString('base64url') !== body) {
    throw new MasterTokenFormatError('the master token is not a canonical encoding of 32 bytes');
  }
  return token;
}
