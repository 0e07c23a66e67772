import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { RunningRelay } from '../../relay/server.ts';
import { randomSeed, signingKeyFromSeed } from '../../shared/crypto.ts';
import { toBase64Url } from '../../shared/encoding.ts';
import { certifyDevice } from '../../shared/event.ts';
import { CLOSE_CODES, type AuthFailureReason } from '../../shared/portable/relay-api.ts';
import { nowSeconds } from '../../shared/token.ts';
import { RelayClient, TestMotebit, WsClient, enrolledMotebit, startTestRelay, tempDir, type Answer, type ErrorAnswer, type TestDevice } from './support.ts';

let dir: ReturnType<typeof tempDir>;
let relay: RunningRelay;
let client: RelayClient;
let a: TestDevice;
let b: TestDevice;
let motebit: TestMotebit;

beforeEach(async () => {
  dir = tempDir();
  relay = await startTestRelay(join(dir.dir, 'relay.db'), { metricsPort: 0 });
  client = new RelayClient(relay);
  const enrolled = await enrolledMotebit(client, 2);
  motebit = enrolled.motebit;
  [a, b] = enrolled.devices as [TestDevice, TestDevice];
  await client.push(a, a.events(3));
});

afterEach(async () => {
  await relay.close();
  dir.cleanup();
});

async function authFailures(reason: AuthFailureReason): Promise<number> {
  const text = await (await fetch(relay.metricsUrl!)).text();
  const match = new RegExp(`^motebit_relay_auth_failures_total\\{reason="${reason}"\\} (\\d+)$`, 'm').exec(text);
  return Number(match?.[1] ?? NaN);
}

/** Sends the request with the token and expects the refusal, counted in metrics by its reason. */
async function expectRefused(reason: AuthFailureReason, status: number, send: () => Promise<Answer>): Promise<Answer<ErrorAnswer>> {
  const before = await authFailures(reason);
  const answer = (await send()) as Answer<ErrorAnswer>;
  expect(answer.status).toBe(status);
  expect(answer.headers.get('content-type')).toMatch(/^application\/json/);
  expect(answer.body.error.code).toBe(reason);
  expect(answer.body.error.message).toEqual(expect.any(String));
  expect(await authFailures(reason)).toBe(before + 1);
  return answer;
}

const pullRequest = (device: TestDevice, after = 0) => ({ method: 'GET', path: `/v1/motebits/${device.motebit.motebitId}/events?after=${after}` });

describe('token refusals, one reason each', () => {
  it('malformed_token: no token, garbage, a token with unknown claims', async () => {
    const request = pullRequest(a);
    await expectRefused('malformed_token', 401, () => client.send(request, undefined));
    await expectRefused('malformed_token', 401, () => client.send(request, 'not-a-token'));
    await expectRefused('malformed_token', 401, () => client.send(request, `${toBase64Url(Buffer.from('{"v":1}'))}.${'A'.repeat(86)}`));
    // A lifetime beyond five minutes is not a token this relay takes.
    await expectRefused('malformed_token', 401, () => client.send(request, a.token(relay.audience, request, { lifetime: 301 })));
    // The Authorization scheme is Motebit.
    await expectRefused('malformed_token', 401, () => client.send(request, undefined, { authorization: `Bearer ${a.token(relay.audience, request)}` }));
  });

  it('unknown_device: a device token signed by another key is refused like an unknown device', async () => {
    const request = pullRequest(a);
    const impostor = signingKeyFromSeed(randomSeed());
    await expectRefused('unknown_device', 401, () => client.send(request, a.token(relay.audience, request, { key: impostor })));
  });

  it('unknown_device: a device never enrolled', async () => {
    const stranger = motebit.device('stranger');
    const request = pullRequest(stranger);
    await expectRefused('unknown_device', 401, () => client.send(request, stranger.token(relay.audience, request)));
  });

  it('revoked_device: a revoked device token', async () => {
    expect((await client.revoke(motebit, b.deviceId)).status).toBe(200);
    const request = pullRequest(b);
    await expectRefused('revoked_device', 403, () => client.send(request, b.token(relay.audience, request)));
  });

  it('token_expired', async () => {
    const request = pullRequest(a);
    await expectRefused('token_expired', 401, () => client.send(request, a.token(relay.audience, request, { iat: nowSeconds() - 400, lifetime: 300 })));
  });

  it('token_not_yet_valid: iat beyond the skew window', async () => {
    const request = pullRequest(a);
    await expectRefused('token_not_yet_valid', 401, () => client.send(request, a.token(relay.audience, request, { iat: nowSeconds() + 120 })));
    // Within the 30 s window it is accepted.
    expect((await client.send(request, a.token(relay.audience, request, { iat: nowSeconds() + 10 }))).status).toBe(200);
  });

  it('wrong_audience: a token for another relay', async () => {
    const request = pullRequest(a);
    await expectRefused('wrong_audience', 401, () => client.send(request, a.token('https://other-relay.example', request)));
  });

  it('replayed_nonce: the same token twice', async () => {
    const request = pullRequest(a);
    const token = a.token(relay.audience, request);
    expect((await client.send(request, token)).status).toBe(200);
    await expectRefused('replayed_nonce', 401, () => client.send(request, token));
  });

  it('replayed_nonce survives a restart', async () => {
    const dbPath = join(dir.dir, 'replay.db');
    const audience = 'http://relay.test';
    let r = await startTestRelay(dbPath, { audience });
    let c = new RelayClient(r);
    const { devices } = await enrolledMotebit(c, 1);
    const device = devices[0]!;
    const request = pullRequest(device);
    const token = device.token(audience, request);
    expect((await c.send(request, token)).status).toBe(200);
    await r.close();
    r = await startTestRelay(dbPath, { audience });
    c = new RelayClient(r);
    try {
      const answer = (await c.send(request, token)) as Answer<ErrorAnswer>;
      expect(answer.status).toBe(401);
      expect(answer.body.error.code).toBe('replayed_nonce');
    } finally {
      await r.close();
    }
  });

  it('body_mismatch: a token signed for another body, path, query or method', async () => {
    const events = a.events(1);
    const request = client.pushRequest(a, events);
    const token = a.token(relay.audience, request);
    await expectRefused('body_mismatch', 401, () => client.send({ ...request, body: JSON.stringify({ events: a.events(1) }) }, token));
    // Another cursor than the one signed.
    const pull = pullRequest(a, 0);
    await expectRefused('body_mismatch', 401, () => client.send(pullRequest(a, 2), a.token(relay.audience, pull)));
    // A pull token used on the device list.
    await expectRefused('body_mismatch', 401, () => client.send({ method: 'GET', path: `/v1/motebits/${motebit.motebitId}/devices` }, a.token(relay.audience, pull)));
    // The refused push stored nothing.
    expect((await client.pullAll(a)).length).toBe(3);
  });

  it('wrong_motebit: a token for motebit A on motebit B’s path is refused the same way whether B exists or not', async () => {
    const other = await enrolledMotebit(client, 1);
    const ghost = new TestMotebit(); // never enrolled
    const answers: Answer<ErrorAnswer>[] = [];
    for (const target of [other.motebit.motebitId, ghost.motebitId]) {
      const request = { method: 'GET', path: `/v1/motebits/${target}/events?after=0` };
      answers.push(await expectRefused('wrong_motebit', 403, () => client.send(request, a.token(relay.audience, request))));
    }
    expect(answers[0]?.body).toEqual(answers[1]?.body);
  });
});

describe('isolation between motebits', () => {
  it('a device of A claiming motebit B learns nothing about B, existing or not', async () => {
    const other = await enrolledMotebit(client, 1);
    await client.push(other.devices[0]!, other.devices[0]!.events(2));
    const ghost = new TestMotebit();
    const answers: Answer<ErrorAnswer>[] = [];
    for (const target of [other.motebit.motebitId, ghost.motebitId]) {
      for (const request of [
        { method: 'GET', path: `/v1/motebits/${target}/events?after=0` },
        { method: 'GET', path: `/v1/motebits/${target}/devices` },
        { method: 'POST', path: `/v1/motebits/${target}/events`, body: JSON.stringify({ events: a.events(1) }) },
      ]) {
        const token = a.token(relay.audience, request, { motebitId: target });
        answers.push((await client.send(request, token)) as Answer<ErrorAnswer>);
      }
    }
    for (const answer of answers) {
      expect(answer.status).toBe(401);
      expect(answer.body).toEqual(answers[0]?.body);
      expect(answer.body.error.code).toBe('unknown_device');
    }
    // And over a WebSocket.
    const socket = new WsClient(relay.url, other.motebit.motebitId);
    await socket.opened;
    socket.sendJson({ type: 'auth', token: a.wsToken(relay.audience), after: 0 });
    expect(await socket.closed).toEqual({ code: CLOSE_CODES.authFailed, reason: 'wrong_motebit' });
  });

  it('the same event id in two motebits is two events; logs and seqs stay apart', async () => {
    const other = await enrolledMotebit(client, 1);
    const mine = a.events(1)[0]!;
    const theirs = { ...other.devices[0]!.events(1)[0]!, event_id: mine.event_id };
    expect((await client.push(a, [mine])).body.results[0]).toMatchObject({ status: 'stored', seq: 4 });
    expect((await client.push(other.devices[0]!, [theirs])).body.results[0]).toMatchObject({ status: 'stored', seq: 1 });
    expect((await client.pullAll(other.devices[0]!)).map((e) => e.device_id)).toEqual([other.devices[0]!.deviceId]);
    expect((await client.pullAll(a)).every((e) => e.device_id === a.deviceId)).toBe(true);
  });
});

describe('enrolment', () => {
  it('lists devices with key, cert, name and revocation', async () => {
    const answer = (await client.devices(a)) as Answer<{ devices: Array<Record<string, unknown>> }>;
    expect(answer.status).toBe(200);
    expect(answer.body.devices).toEqual([
      { device_id: a.deviceId, key: toBase64Url(a.key.publicKey), cert: a.cert, name: a.name, enrolled_at: expect.any(Number), revoked_at: null, last_seen_at: expect.any(Number), read_seq: 0 },
      { device_id: b.deviceId, key: toBase64Url(b.key.publicKey), cert: b.cert, name: b.name, enrolled_at: expect.any(Number), revoked_at: null, last_seen_at: null, read_seq: 0 },
    ]);
  });

  it('re-enrolling the same device is idempotent; a replayed enrolment request is refused', async () => {
    const again = await client.enrol(a);
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ created: false, device: { device_id: a.deviceId } });
    const c = motebit.device('c');
    const request = client.enrolRequest(c);
    const token = motebit.identityToken(relay.audience, request);
    expect((await client.send(request, token)).status).toBe(201);
    await expectRefused('replayed_nonce', 401, () => client.send(request, token));
  });

  it('the motebit id must derive from the identity key (self-certifying)', async () => {
    const impostor = new TestMotebit();
    const device = impostor.device();
    // Impostor enrols its own device on a fresh motebit id that is not its key's.
    const ghost = new TestMotebit();
    const body = impostor.enrolBody(device);
    const request = { method: 'POST', path: `/v1/motebits/${ghost.motebitId}/devices`, body };
    await expectRefused('bad_signature', 401, () => client.send(request, impostor.identityToken(relay.audience, request, { motebitId: ghost.motebitId })));
  });

  it('later enrolments must be signed by the same identity', async () => {
    const impostor = new TestMotebit();
    const device = impostor.device();
    // A device certified by the impostor, enrolment signed by the impostor, on our motebit's path.
    const cert = certifyDevice(impostor.identity, motebit.motebitId, device.key.publicKey);
    const body = JSON.stringify({ identity_key: toBase64Url(impostor.identity.publicKey), device_key: toBase64Url(device.key.publicKey), cert });
    const request = { method: 'POST', path: `/v1/motebits/${motebit.motebitId}/devices`, body };
    await expectRefused('bad_signature', 401, () => client.send(request, impostor.identityToken(relay.audience, request, { motebitId: motebit.motebitId })));
    // Signed by our identity but naming another identity key in the body.
    const answer = (await client.send(request, motebit.identityToken(relay.audience, request))) as Answer<ErrorAnswer>;
    expect(answer.status).toBe(403);
    expect(answer.body.error.code).toBe('wrong_identity');
    expect(((await client.devices(a)).body as { devices: unknown[] }).devices).toHaveLength(2);
  });

  it('a cert that is not the identity signature over this device is refused', async () => {
    const c = motebit.device('c');
    const body = JSON.stringify({ identity_key: toBase64Url(motebit.identity.publicKey), device_key: toBase64Url(c.key.publicKey), cert: a.cert });
    const request = { method: 'POST', path: `/v1/motebits/${motebit.motebitId}/devices`, body };
    const answer = (await client.send(request, motebit.identityToken(relay.audience, request))) as Answer<ErrorAnswer>;
    expect(answer.status).toBe(400);
    expect(answer.body.error.code).toBe('bad_cert');
  });

  it('enrolment and revocation need the identity, not a device', async () => {
    const request = { method: 'POST', path: `/v1/motebits/${motebit.motebitId}/devices/${b.deviceId}/revoke`, body: '{}' };
    await expectRefused('malformed_token', 401, () => client.send(request, a.token(relay.audience, request)));
    const other = await enrolledMotebit(client, 1);
    await expectRefused('wrong_motebit', 403, () => client.send(request, other.motebit.identityToken(relay.audience, request)));
    expect((await client.pull(b, 0)).status).toBe(200); // b still works
  });
});

describe('revocation', () => {
  it('closes the live socket, refuses the next request, and a replayed enrolment does not re-admit the device', async () => {
    const enrolment = client.enrolRequest(b);
    const enrolmentToken = motebit.identityToken(relay.audience, enrolment);
    const socket = await WsClient.connect(relay.url, b, relay.audience, 0);
    const watcher = await WsClient.connect(relay.url, a, relay.audience, 0);

    const revoked = await client.revoke(motebit, b.deviceId);
    expect(revoked.status).toBe(200);
    expect(revoked.body).toMatchObject({ device: { device_id: b.deviceId, revoked_at: expect.any(Number) } });
    expect(await socket.closed).toEqual({ code: CLOSE_CODES.revoked, reason: 'revoked' });

    // Its next request, HTTP or WebSocket.
    const request = client.pushRequest(b, b.events(1));
    await expectRefused('revoked_device', 403, () => client.send(request, b.token(relay.audience, request)));
    const retry = new WsClient(relay.url, motebit.motebitId);
    await retry.opened;
    retry.sendJson({ type: 'auth', token: b.wsToken(relay.audience), after: 0 });
    expect(await retry.closed).toEqual({ code: CLOSE_CODES.authFailed, reason: 'revoked_device' });

    // Replaying an enrolment (made before the revocation, never sent): refused, and a fresh one too.
    const replay = (await client.send(enrolment, enrolmentToken)) as Answer<ErrorAnswer>;
    expect(replay.status).toBe(409);
    expect(replay.body.error.code).toBe('device_revoked');
    const fresh = (await client.enrol(b)) as Answer<ErrorAnswer>;
    expect(fresh.status).toBe(409);
    expect(fresh.body.error.code).toBe('device_revoked');
    await expectRefused('revoked_device', 403, () => client.pull(b, 0));

    // The other device is untouched and sees the revocation in the list.
    expect(watcher.ws.readyState).toBe(watcher.ws.OPEN);
    const list = (await client.devices(a)).body as { devices: Array<{ device_id: string; revoked_at: number | null }> };
    expect(list.devices.find((d) => d.device_id === b.deviceId)?.revoked_at).toEqual(expect.any(Number));
    await watcher.close();
  });
});
