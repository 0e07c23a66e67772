// The relay's token rules (relay/auth.ts) one by one, at their edges: verifyToken called directly with a
// chosen "now", against the real store (SQLite; PostgreSQL in that project), so every bound is checked on the second it changes (the
// HTTP and WebSocket suites check each refusal end to end, test/relay/auth.test.ts). Each refusal's code
// and words are what a device shows a person, so they are asserted exactly.
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AuthError, checkBody, verifyToken, type AuthConfig, type Expected } from '../../relay/auth.ts';
import type { RelayStore } from '../../relay/store.ts';
import { randomSeed, signingKeyFromSeed } from '../../shared/crypto.ts';
import { IDENTITY_SIGNER, MAX_TOKEN_LIFETIME_SECONDS, bodyHash, mintToken, type TokenRequest } from '../../shared/token.ts';
import { openTestStore } from '../support/test-db.ts';
import { TestMotebit, tempDir, type TestDevice } from './support.ts';

const AUDIENCE = 'https://relay.example.com';
const SKEW = 30;
const NOW = 1_900_000_000;
const REQUEST: TokenRequest = { method: 'POST', path: '/v1/motebits/x/events', body: '{"events":[]}' };

let dir: ReturnType<typeof tempDir>;
let store: RelayStore;
let config: AuthConfig;
let motebit: TestMotebit;
let device: TestDevice;

beforeEach(async () => {
  dir = tempDir();
  store = await openTestStore(join(dir.dir, 'relay.db'));
  config = { audience: AUDIENCE, skewSeconds: SKEW, store };
  motebit = new TestMotebit();
  device = motebit.device();
  await store.enrolDevice({ motebitId: motebit.motebitId, identityKey: motebit.identity.publicKey, deviceId: device.deviceId, deviceKey: device.key.publicKey, cert: device.cert, name: null, now: 1 });
});

afterEach(async () => {
  await store.close();
  dir.cleanup();
});

const expected = (over: Partial<Expected> = {}): Expected => ({ motebitId: motebit.motebitId, signer: 'device', method: REQUEST.method, path: REQUEST.path, ...over });

function deviceToken(over: { iat?: number; lifetime?: number; nonce?: string; audience?: string; request?: TokenRequest; key?: typeof device.key; signer?: string; motebitId?: string } = {}): string {
  return mintToken({ motebitId: over.motebitId ?? motebit.motebitId, signer: over.signer ?? device.deviceId, key: over.key ?? device.key, audience: over.audience ?? AUDIENCE, request: over.request ?? REQUEST, iat: over.iat ?? NOW, ...(over.lifetime === undefined ? {} : { lifetime: over.lifetime }), ...(over.nonce === undefined ? {} : { nonce: over.nonce }) });
}

/** The refusal's code and words, or 'ok'. */
async function outcome(token: string | undefined, exp: Expected = expected(), now = NOW): Promise<string> {
  try {
    await verifyToken(config, token, exp, now);
    return 'ok';
  } catch (error) {
    if (!(error instanceof AuthError)) throw error;
    return `${error.code}: ${error.message}`;
  }
}

describe('token rules at their edges', () => {
  it('a token that is missing or not a token', async () => {
    expect(await outcome(undefined)).toBe('malformed_token: no token: send Authorization: Motebit <token>');
    expect(await outcome('')).toBe('malformed_token: no token: send Authorization: Motebit <token>');
    expect(await outcome('not.a-token')).toBe('malformed_token: the token is not a well-formed relay token');
  });

  it('another relay, another motebit, the wrong kind of signer', async () => {
    expect(await outcome(deviceToken({ audience: 'https://other.example.com' }))).toBe(`wrong_audience: the token is meant for another relay (https://other.example.com); this relay is ${AUDIENCE}`);
    // The token's audience is the sender's text: the words echo at most 100 characters of it.
    const long = `https://${'a'.repeat(300)}.example.com`;
    expect(await outcome(deviceToken({ audience: long }))).toBe(`wrong_audience: the token is meant for another relay (${long.slice(0, 100)}); this relay is ${AUDIENCE}`);
    const other = new TestMotebit();
    expect(await outcome(deviceToken(), expected({ motebitId: other.motebitId }))).toBe('wrong_motebit: the token is for another motebit');
    expect(await outcome(deviceToken(), expected({ signer: 'identity' }))).toBe('malformed_token: this request needs a token signed by the identity key');
    const identity = mintToken({ motebitId: motebit.motebitId, signer: IDENTITY_SIGNER, key: motebit.identity, audience: AUDIENCE, request: REQUEST, iat: NOW });
    expect(await outcome(identity)).toBe('malformed_token: this request needs a device token');
  });

  it(`lives more than 0 and at most ${MAX_TOKEN_LIFETIME_SECONDS} seconds`, async () => {
    const words = `malformed_token: a token lives more than 0 and at most ${MAX_TOKEN_LIFETIME_SECONDS} seconds`;
    expect(await outcome(deviceToken({ lifetime: 0 }))).toBe(words);
    expect(await outcome(deviceToken({ lifetime: -1 }))).toBe(words);
    expect(await outcome(deviceToken({ lifetime: MAX_TOKEN_LIFETIME_SECONDS + 1 }))).toBe(words);
    expect(await outcome(deviceToken({ lifetime: MAX_TOKEN_LIFETIME_SECONDS }))).toBe('ok');
    expect(await outcome(deviceToken({ lifetime: 1 }))).toBe('ok');
  });

  it('is good from iat - skew until exp + skew, not a second beyond either', async () => {
    expect(await outcome(deviceToken({ iat: NOW + SKEW }))).toBe('ok');
    expect(await outcome(deviceToken({ iat: NOW + SKEW + 1 }))).toBe('token_not_yet_valid: the token is issued in the future (check the clock)');
    const lifetime = 120;
    expect(await outcome(deviceToken({ lifetime }), expected(), NOW + lifetime + SKEW - 1)).toBe('ok');
    expect(await outcome(deviceToken({ lifetime }), expected(), NOW + lifetime + SKEW)).toBe('token_expired: the token has expired');
  });

  it('is for one request: method, path, and the body when it is known before auth (otherwise checkBody)', async () => {
    const words = 'body_mismatch: the token was signed for another request (method, path or body)';
    expect(await outcome(deviceToken(), expected({ method: 'GET' }))).toBe(words);
    expect(await outcome(deviceToken(), expected({ path: `${REQUEST.path}?after=1` }))).toBe(words);
    expect(await outcome(deviceToken(), expected({ bodySha256: bodyHash('{"events":[1]}') }))).toBe(words);
    expect(await outcome(deviceToken(), expected({ bodySha256: bodyHash(REQUEST.body) }))).toBe('ok');
    // Body unknown at auth: the header alone authenticates, and the body read is compared after.
    const verified = await verifyToken(config, deviceToken(), expected(), NOW);
    expect(() => checkBody(verified, bodyHash(REQUEST.body))).not.toThrow();
    expect(() => checkBody(verified, bodyHash('{"events":[1]}'))).toThrow(new AuthError('body_mismatch', 'the token was signed for another request (method, path or body)'));
  });

  it('a device: enrolled, its own key, not revoked; a stranger and a wrong key get the same answer', async () => {
    const same = 'unknown_device: no device of this motebit has this key';
    expect(await outcome(deviceToken({ key: signingKeyFromSeed(randomSeed()) }))).toBe(same);
    const stranger = motebit.device('stranger'); // never enrolled
    expect(await outcome(deviceToken({ signer: stranger.deviceId, key: stranger.key }))).toBe(same);
    // A recovery key signs only membership requests, never as a device.
    expect(await outcome(deviceToken({ signer: `rk_${'A'.repeat(22)}` }))).toBe(same);
    const ok = await verifyToken(config, deviceToken(), expected(), NOW);
    expect(ok).toMatchObject({ deviceId: device.deviceId, firstEnrolment: false, claims: { signer: device.deviceId } });
    await store.revokeDevice(motebit.motebitId, device.deviceId, 2);
    expect(await outcome(deviceToken())).toBe('revoked_device: the device has been revoked');
  });

  it('the identity: its registered key, or on first enrolment the key its id derives from', async () => {
    const identityToken = (m: TestMotebit, key = m.identity) => mintToken({ motebitId: m.motebitId, signer: IDENTITY_SIGNER, key, audience: AUDIENCE, request: REQUEST, iat: NOW });
    const asIdentity = (m: TestMotebit, proposed?: Buffer): Expected => ({ ...expected({ motebitId: m.motebitId, signer: 'identity' }), ...(proposed ? { proposedIdentityKey: proposed } : {}) });
    expect(await verifyToken(config, identityToken(motebit), asIdentity(motebit), NOW)).toMatchObject({ deviceId: null, firstEnrolment: false });
    expect(await outcome(identityToken(motebit, signingKeyFromSeed(randomSeed())), asIdentity(motebit))).toBe('bad_signature: the signature does not verify');

    const fresh = new TestMotebit(); // not registered yet
    expect(await outcome(identityToken(fresh), asIdentity(fresh))).toBe('bad_signature: the signature does not verify');
    expect(await outcome(identityToken(fresh), asIdentity(fresh, Buffer.from(motebit.identity.publicKey)))).toBe('bad_signature: the signature does not verify');
    expect(await verifyToken(config, identityToken(fresh), asIdentity(fresh, Buffer.from(fresh.identity.publicKey)), NOW)).toMatchObject({ deviceId: null, firstEnrolment: true });
  });

  it('spends its nonce once, only after the signature holds, and keeps it until the token can no longer be used', async () => {
    const nonce = 'n'.repeat(22);
    // A forged token with this nonce spends nothing...
    expect(await outcome(deviceToken({ nonce, key: signingKeyFromSeed(randomSeed()) }))).toMatch(/^unknown_device/);
    // ...so the real one still works, once.
    const token = deviceToken({ nonce, lifetime: 120 });
    expect(await outcome(token)).toBe('ok');
    expect(await outcome(token)).toBe('replayed_nonce: the token has already been used');
    // Pruning just before the token's last valid second keeps the nonce: a replay then is still refused.
    const lastValid = NOW + 120 + SKEW - 1;
    await store.pruneNonces(lastValid);
    expect(await outcome(token, expected(), lastValid)).toBe('replayed_nonce: the token has already been used');
  });
});
