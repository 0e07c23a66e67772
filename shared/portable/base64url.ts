// The form of base64url text on the wire (the bytes themselves are decoded with Node's Buffer:
// shared/encoding.ts). Imports nothing.

/** base64url of exactly `bytes` bytes, no padding. */
export function base64UrlPattern(bytes: number): RegExp {
  const chars = Math.ceil((bytes * 4) / 3);
  return new RegExp(`^[A-Za-z0-9_-]{${chars}}$`);
}

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/**
 * Whether `text` is base64url without padding exactly as an encoder writes it, so that one text means one
 * byte string: only alphabet characters, a length that is not 1 more than a multiple of 4, and the unused
 * low bits of the last character zero (a decoder ignores them, so "QQ" and "QR" would both decode to "A").
 */
export function isCanonicalBase64Url(text: string): boolean {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) return false;
  const tail = text.length % 4;
  if (tail === 1) return false;
  if (tail === 0) return true;
  const last = ALPHABET.indexOf(text[text.length - 1]!);
  const unusedBits = tail === 2 ? 0b1111 : 0b11;
  return (last & unusedBits) === 0;
}
