// Relay tokens (docs/protocol.md §7, "Tokens"): short-lived, single-use, Ed25519-signed statements
// "this key, of this motebit, makes this request to this relay now". The relay stores only public keys,
// never a secret: a device signs with its device key, the identity signs enrolments and revocations.
//
//   token        = base64url(claims bytes) "." base64url(signature)
//   claims bytes = RFC 8785 canonical JSON of the claims
//   signature    = Ed25519(key, "motebit/relay-token/v1" || 0x00 || claims bytes)
//
// The domain prefix keeps a token signature from ever being valid as any other signed message of ours
// (device certs, event seals), and the other way round.
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { sha256Hex, verifySignature, type SigningKey } from './crypto.ts';
import { canonicalBytes, canonicalJson, fromBase64Url, toBase64Url } from './encoding.ts';
import { isCanonicalBase64Url } from './portable/base64url.ts';
import { DeviceIdSchema, MotebitIdSchema, RecoveryIdSchema } from './portable/ids.ts';

export const TOKEN_VERSION = 1;
export const TOKEN_DOMAIN = 'motebit/relay-token/v1';
/** A token lives at most this long (exp - iat). */
export const MAX_TOKEN_LIFETIME_SECONDS = 300;
/** The default clock skew a relay tolerates on iat and exp. */
export const DEFAULT_CLOCK_SKEW_SECONDS = 30;
/** A token is a few hundred bytes; anything much longer is not one. */
export const MAX_TOKEN_LENGTH = 2048;
/** The signer of enrolment and revocation tokens: the motebit identity key itself. */
export const IDENTITY_SIGNER = 'identity';
/** The method and path a WebSocket auth token is bound to (the body hash is that of the empty body). */
export const WS_METHOD = 'WS';
export const wsPath = (motebitId: string): string => `/v1/motebits/${motebitId}/ws`;
export const EMPTY_BODY_SHA256 = sha256Hex('');

export const TokenClaimsSchema = z.strictObject({
  v: z.literal(TOKEN_VERSION),
  /** The motebit the request is about. */
  motebit_id: MotebitIdSchema,
  /** Who signed: a device id (device key), a recovery key id (docs/keys.md) or "identity" (the motebit identity key). */
  signer: z.union([DeviceIdSchema, RecoveryIdSchema, z.literal(IDENTITY_SIGNER)]),
  /** The relay the token is meant for: its base URL, compared exactly. */
  aud: z.string().min(1).max(512),
  /** Issued at / expires at, Unix seconds. */
  iat: z.int().min(0).max(Number.MAX_SAFE_INTEGER),
  exp: z.int().min(0).max(Number.MAX_SAFE_INTEGER),
  /** Single use: 16 random bytes, base64url. */
  nonce: z.string().regex(/^[A-Za-z0-9_-]{16,64}$/),
  /** The request it authorises: HTTP method (or "WS"), path with query, SHA-256 hex of the raw body. */
  method: z.string().regex(/^[A-Z]{1,16}$/),
  path: z.string().min(1).max(1024),
  body_sha256: z.string().regex(/^[0-9a-f]{64}$/),
});
export type TokenClaims = z.infer<typeof TokenClaimsSchema>;

export interface TokenRequest {
  method: string;
  /** Path with query, exactly as sent (the HTTP request target). */
  path: string;
  /** The raw request body (empty for GET). */
  body?: Uint8Array | string;
}

export interface MintOptions {
  motebitId: string;
  /** A device id, or IDENTITY_SIGNER when `key` is the identity key. */
  signer: string;
  key: SigningKey;
  audience: string;
  request: TokenRequest;
  /** Unix seconds; defaults to now. */
  iat?: number;
  /** Seconds; defaults to 120, at most MAX_TOKEN_LIFETIME_SECONDS. */
  lifetime?: number;
  /** Defaults to 16 random bytes. */
  nonce?: string;
}

export function signingInput(claimsBytes: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from(TOKEN_DOMAIN, 'utf8'), Buffer.from([0]), claimsBytes]);
}

export const nowSeconds = (): number => Math.floor(Date.now() / 1000);

export function bodyHash(body: Uint8Array | string | undefined): string {
  return body === undefined ? EMPTY_BODY_SHA256 : sha256Hex(body);
}

/** Signs a token from claims as given (tests use this to make tokens that are wrong on purpose). */
export function signClaims(claims: TokenClaims, key: SigningKey): string {
  const bytes = canonicalBytes(claims);
  return `${toBase64Url(bytes)}.${toBase64Url(key.sign(signingInput(bytes)))}`;
}

export function mintToken(options: MintOptions): string {
  const iat = options.iat ?? nowSeconds();
  const claims: TokenClaims = {
    v: TOKEN_VERSION,
    motebit_id: options.motebitId,
    signer: options.signer,
    aud: options.audience,
    iat,
    exp: iat + (options.lifetime ?? 120),
    nonce: options.nonce ?? toBase64Url(randomBytes(16)),
    method: options.request.method.toUpperCase(),
    path: options.request.path,
    body_sha256: bodyHash(options.request.body),
  };
  return signClaims(claims, options.key);
}

/** A WebSocket auth (or re-auth) token for a device. */
export function mintWsToken(options: Omit<MintOptions, 'request'>): string {
  return mintToken({ ...options, request: { method: WS_METHOD, path: wsPath(options.motebitId) } });
}

export interface ParsedToken {
  claims: TokenClaims;
  /** Exactly the bytes that were signed (after the domain prefix). */
  claimsBytes: Buffer;
  signature: Buffer;
}

const TOKEN_SHAPE = /^([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]{86})$/;

/** Parses a token without checking its signature; null when it is not a well-formed token. */
export function parseToken(token: string): ParsedToken | null {
  if (token.length > MAX_TOKEN_LENGTH) return null;
  const match = TOKEN_SHAPE.exec(token);
  // One token, one text: a decoder ignores a dangling character and the unused low bits of the last one,
  // so without this `claims + "A"` or a signature with other trailing bits would be the same token again.
  if (!match || !isCanonicalBase64Url(match[1]!) || !isCanonicalBase64Url(match[2]!)) return null;
  const claimsBytes = fromBase64Url(match[1]!);
  let json: unknown;
  try {
    json = JSON.parse(claimsBytes.toString('utf8'));
  } catch {
    return null;
  }
  const parsed = TokenClaimsSchema.safeParse(json);
  if (!parsed.success) return null;
  // One token, one encoding: the signed bytes must be the canonical form of the claims.
  if (canonicalJson(parsed.data) !== claimsBytes.toString('utf8')) return null;
  return { claims: parsed.data, claimsBytes, signature: fromBase64Url(match[2]!) };
}

export function verifyTokenSignature(token: ParsedToken, publicKey: Uint8Array): boolean {
  return verifySignature(publicKey, signingInput(token.claimsBytes), token.signature);
}
