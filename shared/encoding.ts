// Byte and text encodings used on the wire and in hashes. Canonical JSON is RFC 8785 (JCS), so every
// device and every implementation hashes the same value to the same bytes. Node (Buffer); the form of
// base64url text is portable: shared/portable/base64url.ts.
import canonicalizeJcs from 'canonicalize';

export function canonicalJson(value: unknown): string {
  const text = canonicalizeJcs(value);
  if (text === undefined) throw new TypeError('value has no canonical JSON form');
  return text;
}

export function canonicalBytes(value: unknown): Buffer {
  return Buffer.from(canonicalJson(value), 'utf8');
}

export function toBase64Url(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');
}

export function fromBase64Url(text: string): Buffer {
  return Buffer.from(text, 'base64url');
}
