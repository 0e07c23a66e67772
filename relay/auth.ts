// Token checks (docs/protocol.md §7, "Tokens"). The order is fixed and cheap checks come first; the
// nonce is spent only once the signature holds, so nobody can burn another's nonces. Everything but the
// body's hash is in the signed claims, so a request is authenticated from its header alone and its body
// read only then (checkBody compares the hash).
import { sameAudience } from '../shared/audience.ts';
import { randomSeed, signingKeyFromSeed } from '../shared/crypto.ts';
import { motebitIdFromIdentityKey } from '../shared/ids.ts';
import type { AuthFailureReason } from '../shared/portable/relay-api.ts';
import { IDENTITY_SIGNER, MAX_TOKEN_LIFETIME_SECONDS, parseToken, verifyTokenSignature, type TokenClaims } from '../shared/token.ts';
import type { RelayStore } from './store.ts';

export class AuthError extends Error {
  readonly code: AuthFailureReason;
  constructor(code: AuthFailureReason, message: string) {
    super(message);
    this.code = code;
  }
}

export interface Expected {
  /** The motebit named by the URL path. */
  motebitId: string;
  /**
   * Who must have signed: a device of the motebit; a member (a device or the recovery key, which signs in
   * only to read and extend the membership log, docs/keys.md); or its protocol-2 identity key.
   */
  signer: 'device' | 'member' | 'identity';
  method: string;
  /** Path with query, exactly as requested. */
  path: string;
  /** The body's SHA-256 when it is known before auth (enrolment; empty for GET and WS); otherwise check it with checkBody. */
  bodySha256?: string;
  /** Only for a first enrolment: the identity key the request names, accepted if the motebit id derives from it. */
  proposedIdentityKey?: Buffer;
}

export interface Verified {
  claims: TokenClaims;
  /** The device id for a device token; null for an identity token. */
  deviceId: string | null;
  /** An identity token checked against the key its request proposed: the motebit is not registered yet. */
  firstEnrolment: boolean;
}

// Checked when there is no key to check against (an unknown device or motebit), so that a refusal takes as
// long as with a wrong key and timing does not tell which it was. Random per process, its private half
// thrown away; a token that did verify against it would be refused all the same (there is no key).
const DUMMY_KEY = signingKeyFromSeed(randomSeed()).publicKey;
const NO_SUCH_DEVICE = 'no device of this motebit has this key';

export interface AuthConfig {
  audience: string;
  skewSeconds: number;
  store: RelayStore;
}

export async function verifyToken(config: AuthConfig, token: string | undefined, expected: Expected, nowSeconds: number): Promise<Verified> {
  if (token === undefined || token === '') throw new AuthError('malformed_token', 'no token: send Authorization: Motebit <token>');
  const parsed = parseToken(token);
  if (!parsed) throw new AuthError('malformed_token', 'the token is not a well-formed relay token');
  const { claims } = parsed;
  if (!sameAudience(claims.aud, config.audience)) throw new AuthError('wrong_audience', `the token is meant for another relay (${claims.aud.slice(0, 100)}); this relay is ${config.audience}`);
  if (claims.motebit_id !== expected.motebitId) throw new AuthError('wrong_motebit', 'the token is for another motebit');
  const isIdentity = claims.signer === IDENTITY_SIGNER;
  if (isIdentity !== (expected.signer === 'identity')) {
    throw new AuthError('malformed_token', expected.signer === 'identity' ? 'this request needs a token signed by the identity key' : 'this request needs a device token');
  }
  if (claims.exp <= claims.iat || claims.exp - claims.iat > MAX_TOKEN_LIFETIME_SECONDS) {
    throw new AuthError('malformed_token', `a token lives more than 0 and at most ${MAX_TOKEN_LIFETIME_SECONDS} seconds`);
  }
  if (claims.iat > nowSeconds + config.skewSeconds) throw new AuthError('token_not_yet_valid', 'the token is issued in the future (check the clock)');
  if (nowSeconds >= claims.exp + config.skewSeconds) throw new AuthError('token_expired', 'the token has expired');
  if (claims.method !== expected.method || claims.path !== expected.path || (expected.bodySha256 !== undefined && claims.body_sha256 !== expected.bodySha256)) {
    throw new AuthError('body_mismatch', 'the token was signed for another request (method, path or body)');
  }

  if (isIdentity) {
    let key = await config.store.identityKey(claims.motebit_id);
    const registered = key !== null;
    // A motebit not yet registered: its first enrolment names the key, which must be the one its id derives from.
    if (!key && expected.proposedIdentityKey && motebitIdFromIdentityKey(expected.proposedIdentityKey) === claims.motebit_id) {
      key = expected.proposedIdentityKey;
    }
    // No key at all is answered like a wrong key, so an identity request learns nothing about existence.
    const holds = verifyTokenSignature(parsed, key ?? DUMMY_KEY);
    if (!key || !holds) throw new AuthError('bad_signature', 'the signature does not verify');
    await spendNonce(config, claims);
    return { claims, deviceId: null, firstEnrolment: !registered };
  }
  // A recovery key is a member, not a device: it never syncs events.
  if (expected.signer === 'device' && claims.signer.startsWith('rk_')) throw new AuthError('unknown_device', NO_SUCH_DEVICE);
  // An unknown device and a wrong key get one answer, after the same work: the refusal tells nobody
  // which device ids a motebit has.
  const device = await config.store.device(claims.motebit_id, claims.signer);
  const holds = verifyTokenSignature(parsed, device?.key ?? DUMMY_KEY);
  if (!device || !holds) throw new AuthError('unknown_device', NO_SUCH_DEVICE);
  if (device.revokedAt !== null) throw new AuthError('revoked_device', 'the device has been revoked');
  await spendNonce(config, claims);
  return { claims, deviceId: claims.signer, firstEnrolment: false };
}

/** The last check of a request authenticated from its header: the body read is the one the token signed. */
export function checkBody(verified: Verified, bodySha256: string): void {
  if (verified.claims.body_sha256 !== bodySha256) throw new AuthError('body_mismatch', 'the token was signed for another request (method, path or body)');
}

async function spendNonce(config: AuthConfig, claims: TokenClaims): Promise<void> {
  if (!(await config.store.useNonce(claims.motebit_id, claims.signer, claims.nonce, claims.exp + config.skewSeconds))) {
    throw new AuthError('replayed_nonce', 'the token has already been used');
  }
}
