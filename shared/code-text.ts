// Text that people read aloud, write on paper or type from another screen: a prefix, Crockford base32
// (no I, L, O, U; case-free) in groups of four, and four checksum characters. Reading forgives case,
// spaces, dashes and the letters I, L, O typed for 1, 1, 0; a mistyped, dropped or doubled character is
// reported in words, never accepted as another value.
import { base32crockford } from '@scure/base';
import { textChecksum } from './checksum.ts';

const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const CHECKSUM_CHARS = 4;

/** The text is not a valid code of its kind; the message says what is wrong, in words. */
export class CodeTextError extends Error {
  override readonly name = 'CodeTextError';
}

export interface CodeKind {
  /** Upper-case letters and digits, e.g. MBP1. */
  readonly prefix: string;
  readonly bytes: number;
  /** Domain of the checksum: a code of one kind never checks out as another. */
  readonly domain: string;
  /** What it is called in messages, e.g. "pairing code". */
  readonly name: string;
}

function checksum(kind: CodeKind, body: string): string {
  const digest = Buffer.from(textChecksum(kind.domain, body), 'base64url');
  let text = '';
  for (let i = 0; i < CHECKSUM_CHARS; i++) text += ALPHABET[digest[i]! % 32];
  return text;
}

const bodyLength = (kind: CodeKind): number => Math.ceil((kind.bytes * 8) / 5);

export function formatCode(kind: CodeKind, bytes: Uint8Array): string {
  if (bytes.byteLength !== kind.bytes) throw new RangeError(`a ${kind.name} holds ${kind.bytes} bytes`);
  const body = base32crockford.encode(bytes);
  return `${kind.prefix}-${body.match(/.{1,4}/g)!.join('-')}-${checksum(kind, body)}`;
}

export function parseCode(kind: CodeKind, text: string): Buffer {
  const cleaned = text
    .toUpperCase()
    .replace(/[\s-]/g, '')
    .replace(/[IL]/g, '1')
    .replace(/O/g, '0');
  if (!cleaned.startsWith(kind.prefix)) throw new CodeTextError(`not a ${kind.name}: it starts with ${kind.prefix}`);
  const rest = cleaned.slice(kind.prefix.length);
  const length = bodyLength(kind);
  if (rest.length !== length + CHECKSUM_CHARS) {
    throw new CodeTextError(`a ${kind.name} has ${length + CHECKSUM_CHARS} characters after ${kind.prefix}, this one has ${rest.length}: part of it is missing or extra`);
  }
  const body = rest.slice(0, length);
  const bad = body.search(/[^0-9A-HJKMNP-TV-Z]/);
  if (bad !== -1) throw new CodeTextError(`character ${bad + 1} after ${kind.prefix} ("${body[bad]}") is not part of a ${kind.name}`);
  if (checksum(kind, body) !== rest.slice(length)) throw new CodeTextError(`the ${kind.name} does not check out: a character is mistyped`);
  let bytes: Uint8Array;
  try {
    bytes = base32crockford.decode(body);
  } catch {
    throw new CodeTextError(`the ${kind.name} is damaged`);
  }
  if (bytes.byteLength !== kind.bytes) throw new CodeTextError(`the ${kind.name} is damaged`);
  return Buffer.from(bytes);
}
