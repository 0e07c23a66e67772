// The small rules of shared/ crypto, one at a time, against references written out here (never imported
// from the code they check): seeds and keys of the right size, the AAD an encrypted body is bound to, the
// body key cache's bound, what an acknowledgement covers, a relay's audience, the text of typed codes,
// and the bytes a relay token signs.
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { coversAll } from '../shared/ack.ts';
import { canonicalAudience, sameAudience } from '../shared/audience.ts';
import { CodeTextError, formatCode, parseCode, type CodeKind } from '../shared/code-text.ts';
import { signingKeyFromSeed, verifySignature } from '../shared/crypto.ts';
import { BodyKeyCache, envelopeAad, openBody, sealBody } from '../shared/envelope-crypto.ts';
import { MAX_TOKEN_LENGTH, mintToken, parseToken, signingInput } from '../shared/token.ts';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const envelope = { motebit_id: 'mb_AAAAAAAAAAAAAAAAAAAAAA', device_id: 'dv_BBBBBBBBBBBBBBBBBBBBBB', event_id: '00000000-0000-4000-8000-000000000000', device_seq: 7, key_id: 'ek_CCCCCCCCCCCCCCCC' };

describe('crypto rules', () => {
  it('an Ed25519 seed is 32 bytes; a key or signature of another size is simply invalid', () => {
    expect(() => signingKeyFromSeed(randomBytes(31))).toThrow(new RangeError('an Ed25519 seed is 32 bytes'));
    const key = signingKeyFromSeed(randomBytes(32));
    const sig = key.sign(Buffer.from('m'));
    expect(verifySignature(key.publicKey, Buffer.from('m'), sig)).toBe(true);
    expect(verifySignature(key.publicKey.subarray(0, 31), Buffer.from('m'), sig)).toBe(false);
    // node:crypto would import a key with a byte too many as its first 32 (trailing bytes after the DER are
    // ignored), so that "key" would verify the real key's signatures.
    expect(verifySignature(Buffer.concat([key.publicKey, Buffer.alloc(1)]), Buffer.from('m'), sig)).toBe(false);
    expect(verifySignature(key.publicKey, Buffer.from('m'), Buffer.concat([sig, Buffer.alloc(1)]))).toBe(false);
    expect(verifySignature(key.publicKey, Buffer.from('m'), sig.subarray(0, 63))).toBe(false);
  });

  it('a body is bound to exactly the documented AAD; bad envelopes are refused, not written some other way', () => {
    const reference = `{"device_id":"${envelope.device_id}","device_seq":7,"event_id":"${envelope.event_id}","key_id":"${envelope.key_id}","motebit_id":"${envelope.motebit_id}"}`;
    expect(envelopeAad(envelope).toString('utf8')).toBe(reference);
    // Known answer: AES-256-GCM over that AAD with a fixed key and nonce, computed here with node:crypto directly.
    const key = Buffer.alloc(32, 1);
    const nonce = Buffer.alloc(12, 2);
    const cipher = createCipheriv('aes-256-gcm', key, nonce);
    cipher.setAAD(Buffer.from(reference));
    const expected = Buffer.concat([nonce, cipher.update('hello'), cipher.final(), cipher.getAuthTag()]);
    expect(sealBody(key, Buffer.from('hello'), envelopeAad(envelope), nonce)).toEqual(expected);
    expect(() => envelopeAad({ ...envelope, device_id: 'dv_\ud800' })).toThrow();
    expect(() => envelopeAad({ ...envelope, device_seq: Number.NaN })).toThrow();
    // Not the shortcut's shape (a number where a string belongs): written by canonicalize, as documented, not thrown.
    const odd = { ...envelope, key_id: 5 as unknown as string };
    expect(envelopeAad(odd).toString('utf8')).toBe(reference.replace(`"key_id":"${envelope.key_id}"`, '"key_id":5'));
    const first = { ...envelope, motebit_id: 5 as unknown as string };
    expect(envelopeAad(first).toString('utf8')).toBe(reference.replace(`"motebit_id":"${envelope.motebit_id}"`, '"motebit_id":5'));
  });

  it('body keys and nonces of the wrong size are refused in words; an empty body seals and opens; a short one does not open', () => {
    const aad = envelopeAad(envelope);
    expect(() => sealBody(Buffer.alloc(31), Buffer.from('x'), aad)).toThrow(new RangeError('an AES-256-GCM key is 32 bytes'));
    expect(() => openBody(Buffer.alloc(16), Buffer.alloc(40), aad)).toThrow(new RangeError('an AES-256-GCM key is 32 bytes'));
    expect(() => sealBody(Buffer.alloc(32), Buffer.from('x'), aad, Buffer.alloc(8))).toThrow(new RangeError('a nonce is 12 bytes'));
    const key = randomBytes(32);
    const empty = sealBody(key, Buffer.alloc(0), aad);
    expect(empty.byteLength).toBe(28);
    expect(openBody(key, empty, aad)).toEqual(Buffer.alloc(0));
    expect(openBody(key, empty.subarray(0, 27), aad)).toBeNull();
  });

  it('the body key cache holds at least one key, and a cache of one keeps the last key used', () => {
    expect(() => new BodyKeyCache(0)).toThrow(new RangeError('a key cache holds at least one key'));
    const cache = new BodyKeyCache(1);
    const a = cache.key('ek_a', Buffer.alloc(32, 1));
    expect(cache.key('ek_a', Buffer.alloc(32, 1))).toBe(a);
    cache.key('ek_b', Buffer.alloc(32, 2));
    expect(cache.size).toBe(1);
    expect(cache.key('ek_a', Buffer.alloc(32, 1))).not.toBe(a);
  });

  it('an acknowledgement covers a snapshot only when it reaches every writer the snapshot covers', () => {
    expect(coversAll({ a: 5, b: 3 }, { a: 5, b: 3 })).toBe(true);
    expect(coversAll({ a: 5 }, { a: 5, b: 1 })).toBe(false);
    expect(coversAll({ a: 5, b: 0 }, { a: 4, b: 1 })).toBe(false);
    expect(coversAll({}, { constructor: 1 })).toBe(false);
    expect(coversAll({ a: 1 }, {})).toBe(true);
  });

  it("a relay's audience is its origin, loopback names as 127.0.0.1; anything else is compared as it is", () => {
    expect(canonicalAudience('http://LOCALHOST:8080/')).toBe('http://127.0.0.1:8080');
    expect(canonicalAudience('https://relay.example.com:443/x')).toBe('https://relay.example.com');
    expect(canonicalAudience('ftp://relay.example.com')).toBe('ftp://relay.example.com');
    expect(canonicalAudience('not a url')).toBe('not a url');
    expect(canonicalAudience('mailto:relay@example.com')).toBe('mailto:relay@example.com'); // its origin would be "null"
    expect(sameAudience('http://localhost:8080', 'http://127.0.0.1:8080')).toBe(true);
    expect(sameAudience('https://localhost:8080', 'http://127.0.0.1:8080')).toBe(false);
    expect(sameAudience('http://relay.example.com', 'https://relay.example.com')).toBe(false);
  });

  it('typed codes: each mistake is named in words, none is read as another value', () => {
    const kind: CodeKind = { prefix: 'TST1', bytes: 5, domain: 'test/code/v1', name: 'test code' };
    const text = formatCode(kind, Buffer.from([1, 2, 3, 4, 5]));
    expect(text).toMatch(/^TST1-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}$/);
    expect(parseCode(kind, text.toLowerCase().replaceAll('-', ' '))).toEqual(Buffer.from([1, 2, 3, 4, 5]));
    expect(() => formatCode(kind, Buffer.alloc(4))).toThrow(new RangeError('a test code holds 5 bytes'));
    const body = text.slice(5).replaceAll('-', '');
    // The checksum, as documented: SHA-256 of "domain\nbody", its first 6 base64url characters read back as bytes, each byte mod 32 a Crockford character.
    const digest = Buffer.from(createHash('sha256').update(`test/code/v1\n${body.slice(0, 8)}`).digest('base64url').slice(0, 6), 'base64url');
    expect(body.slice(8)).toBe([...digest.subarray(0, 4)].map((b) => '0123456789ABCDEFGHJKMNPQRSTVWXYZ'[b % 32]).join(''));
    const fail = (t: string) => {
      try {
        parseCode(kind, t);
      } catch (error) {
        expect(error).toBeInstanceOf(CodeTextError);
        expect((error as Error).name).toBe('CodeTextError');
        return (error as Error).message;
      }
      return 'accepted';
    };
    expect(fail(`XYZ1${body}`)).toBe('not a test code: it starts with TST1');
    expect(fail(`TST1${body.slice(1)}`)).toBe('a test code has 12 characters after TST1, this one has 11: part of it is missing or extra');
    expect(fail(`TST1${body.slice(0, 2)}U${body.slice(3)}`)).toBe('character 3 after TST1 ("U") is not part of a test code');
    const swapped = body[0] === '2' ? '3' : '2';
    expect(fail(`TST1${swapped}${body.slice(1)}`)).toBe('the test code does not check out: a character is mistyped');
  });

  it('typed codes: a body whose last character carries bits past the last byte, though its checksum is right, is damaged', () => {
    // 6 bytes are 48 bits in 10 characters of 5 bits: the last character's 2 low bits hold nothing, and written codes leave them 0.
    const kind: CodeKind = { prefix: 'TST2', bytes: 6, domain: 'test/code/v2', name: 'test code' };
    const written = formatCode(kind, Buffer.from([1, 2, 3, 4, 5, 6])).slice(5).replaceAll('-', '').slice(0, 10);
    const body = written.slice(0, 9) + '0123456789ABCDEFGHJKMNPQRSTVWXYZ'['0123456789ABCDEFGHJKMNPQRSTVWXYZ'.indexOf(written[9]!) | 1];
    const digest = Buffer.from(createHash('sha256').update(`test/code/v2\n${body}`).digest('base64url').slice(0, 6), 'base64url');
    const checksum = [...digest.subarray(0, 4)].map((b) => '0123456789ABCDEFGHJKMNPQRSTVWXYZ'[b % 32]).join('');
    expect(body).not.toBe(written);
    expect(() => parseCode(kind, `TST2${body}${checksum}`)).toThrow(new CodeTextError('the test code is damaged'));
  });

  it('a relay token signs its domain, a zero byte, then the claims; one token has one encoding, within a bound', () => {
    expect(signingInput(Buffer.from('{"a":1}'))).toEqual(Buffer.concat([Buffer.from('motebit/relay-token/v1'), Buffer.from([0]), Buffer.from('{"a":1}')]));
    const key = signingKeyFromSeed(randomBytes(32));
    const mint = (path: string, audience = 'http://127.0.0.1:1') => mintToken({ motebitId: envelope.motebit_id, signer: envelope.device_id, key, audience, request: { method: 'GET', path } });
    const token = mint('/v1/x');
    const [claims, sig] = token.split('.') as [string, string];
    expect(parseToken(token)?.claims.path).toBe('/v1/x');
    // The same claims, written with a space: valid JSON, valid claims, not the bytes that were signed.
    const spaced = Buffer.from(Buffer.from(claims, 'base64url').toString('utf8').replace('{', '{ ')).toString('base64url');
    expect(parseToken(`${spaced}.${sig}`)).toBeNull();
    expect(parseToken(`${Buffer.from('{not json').toString('base64url')}.${sig}`)).toBeNull();
    // The same bytes in another text: a dangling character after the claims, or other unused low bits in the
    // signature's last character (86 characters hold 516 bits for 512), decode to the same token and are refused.
    const otherBits = (text: string) => text.slice(0, -1) + ALPHABET[ALPHABET.indexOf(text.at(-1)!) ^ 1];
    expect(Buffer.from(otherBits(sig), 'base64url')).toEqual(Buffer.from(sig, 'base64url'));
    expect(parseToken(`${claims}.${otherBits(sig)}`)).toBeNull();
    const whole = [0, 1, 2, 3].map((n) => mint('/v1/x' + 'y'.repeat(n))).find((t) => t.indexOf('.') % 4 === 0)!;
    const [wholeClaims, wholeSig] = whole.split('.') as [string, string];
    expect(parseToken(whole)).not.toBeNull();
    expect(Buffer.from(`${wholeClaims}A`, 'base64url')).toEqual(Buffer.from(wholeClaims, 'base64url'));
    expect(parseToken(`${wholeClaims}A.${wholeSig}`)).toBeNull();
    // Up to the bound it is read; past it, not (a token of exactly 2048 characters cannot be well formed:
    // 87 characters of signature and dot leave 1961, which no base64url text written by an encoder has).
    const tokens = Array.from({ length: 400 }, (_, i) => mint('/v1/' + 'p'.repeat(1000), `http://${'a'.repeat(100 + i)}`));
    const within = tokens.filter((t) => t.length <= MAX_TOKEN_LENGTH).at(-1)!;
    const over = tokens.find((t) => t.length > MAX_TOKEN_LENGTH)!;
    expect(MAX_TOKEN_LENGTH - within.length).toBeLessThan(3);
    expect(parseToken(within)).not.toBeNull();
    expect(parseToken(over)).toBeNull();
  });
});
