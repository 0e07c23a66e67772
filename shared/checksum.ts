// A short checksum for text that people copy, paste and sometimes type: 6 base64url characters (36 bits)
// of a domain-separated SHA-256. Any typo, dropped or swapped character is caught except with
// probability 2^-36. It detects mistakes; it is not a MAC and adds no secrecy.
import { sha256 } from './crypto.ts';

export const CHECKSUM_LENGTH = 6;

export function textChecksum(domain: string, text: string): string {
  return sha256(`${domain}\n${text}`).toString('base64url').slice(0, CHECKSUM_LENGTH);
}
