import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { RunningRelay } from '../../relay/server.ts';
import { CLOSE_CODES, type ErrorCode, type WsServerMessage } from '../../shared/portable/relay-api.ts';
import { RelayClient, WsClient, enrolledMotebit, startTestRelay, tempDir, type Answer, type ErrorAnswer, type Request, type TestDevice, type TestMotebit } from './support.ts';

const MAX_REQUEST_BYTES = 64 * 1024;
const MAX_WS_PAYLOAD = 32 * 1024;

let dir: ReturnType<typeof tempDir>;
let relay: RunningRelay;
let client: RelayClient;
let motebit: TestMotebit;
let a: TestDevice;

beforeEach(async () => {
  dir = tempDir();
  relay = await startTestRelay(join(dir.dir, 'relay.db'), { maxRequestBytes: MAX_REQUEST_BYTES, wsMaxPayloadBytes: MAX_WS_PAYLOAD, maxBatchEvents: 10 });
  client = new RelayClient(relay);
  const enrolled = await enrolledMotebit(client, 1);
  motebit = enrolled.motebit;
  a = enrolled.devices[0]!;
});

afterEach(async () => {
  // Whatever was thrown at it, the relay still answers.
  expect(await client.healthy()).toBe(true);
  await relay.close();
  dir.cleanup();
});

/** A request signed correctly (so the refusal is about the input, not the token), then its answer. */
async function signed(request: Request, headers: Record<string, string> = {}, signer: 'device' | 'identity' = 'device'): Promise<Answer<ErrorAnswer>> {
  const token = signer === 'device' ? a.token(relay.audience, request) : motebit.identityToken(relay.audience, request);
  return (await client.send(request, token, headers)) as Answer<ErrorAnswer>;
}

function expectError(answer: Answer<ErrorAnswer>, status: number, code: ErrorCode): void {
  expect(answer.status).toBe(status);
  expect(answer.headers.get('content-type')).toMatch(/^application\/json/);
  expect(answer.body.error.code).toBe(code);
}

const eventsPath = () => `/v1/motebits/${motebit.motebitId}/events`;
const devicesPath = () => `/v1/motebits/${motebit.motebitId}/devices`;

describe('bad input over HTTP', () => {
  it('push: content type, JSON, unknown fields, bad events, too many, too large', async () => {
    const good = JSON.stringify({ events: a.events(1) });
    expectError(await signed({ method: 'POST', path: eventsPath(), body: good }, { 'content-type': 'text/plain' }), 415, 'unsupported_media_type');
    expectError(await signed({ method: 'POST', path: eventsPath(), body: '{"events": [' }), 400, 'invalid_json');
    expectError(await signed({ method: 'POST', path: eventsPath(), body: '"just a string"' }), 400, 'bad_request');
    expectError(await signed({ method: 'POST', path: eventsPath(), body: JSON.stringify({ events: a.events(1), extra: 1 }) }), 400, 'bad_request');
    expectError(await signed({ method: 'POST', path: eventsPath(), body: JSON.stringify({ events: [] }) }), 400, 'bad_request');
    const [event] = a.events(1);
    for (const bad of [
      { ...event, body: 'not base64url!' },
      { ...event, event_id: 'not-a-uuid' },
      { ...event, device_seq: 0 },
      { ...event, device_seq: 1.5 },
      { ...event, key_id: 'x'.repeat(65) },
      { ...event, surprise: true },
      { ...event, seq: 1 }, // the relay assigns seq; a device cannot
    ]) {
      expectError(await signed({ method: 'POST', path: eventsPath(), body: JSON.stringify({ events: [bad] }) }), 400, 'bad_request');
    }
    expectError(await signed({ method: 'POST', path: eventsPath(), body: JSON.stringify({ events: a.events(11) }) }), 413, 'too_many_events');
    const huge = JSON.stringify({ events: a.events(1, MAX_REQUEST_BYTES) });
    expectError(await signed({ method: 'POST', path: eventsPath(), body: huge }), 413, 'payload_too_large');
    // Invalid UTF-8 is not JSON.
    const bytes = Buffer.from([0x7b, 0xff, 0xfe, 0x7d]);
    const response = await fetch(relay.url + eventsPath(), {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Motebit ${a.token(relay.audience, { method: 'POST', path: eventsPath(), body: bytes })}` },
      body: bytes,
    });
    expect(response.status).toBe(400);
    expect(((await response.json()) as ErrorAnswer).error.code).toBe('invalid_json');
    // None of it was stored.
    expect(await client.pullAll(a)).toEqual([]);
  });

  it('pull: every bad query is a 400', async () => {
    for (const query of ['after=-1', 'after=abc', 'after=1.5', 'limit=0', 'limit=5000', 'after=1&after=2', 'after=0&cursor=3', 'after=99999999999999999999']) {
      expectError(await signed({ method: 'GET', path: `${eventsPath()}?${query}` }), 400, 'bad_request');
    }
    const ok = await signed({ method: 'GET', path: `${eventsPath()}?limit=1000` });
    expect(ok.status).toBe(200);
  });

  it('enrol and revoke: content type, JSON, unknown fields, bad keys, too large, unknown device', async () => {
    const c = motebit.device('c');
    const body = motebit.enrolBody(c);
    expectError(await signed({ method: 'POST', path: devicesPath(), body }, { 'content-type': 'application/x-www-form-urlencoded' }, 'identity'), 415, 'unsupported_media_type');
    expectError(await signed({ method: 'POST', path: devicesPath(), body: body.slice(0, -1) }, {}, 'identity'), 400, 'invalid_json');
    expectError(await signed({ method: 'POST', path: devicesPath(), body: JSON.stringify({ ...JSON.parse(body), admin: true }) }, {}, 'identity'), 400, 'bad_request');
    expectError(await signed({ method: 'POST', path: devicesPath(), body: JSON.stringify({ ...JSON.parse(body), device_key: 'short' }) }, {}, 'identity'), 400, 'bad_request');
    expectError(await signed({ method: 'POST', path: devicesPath(), body: JSON.stringify({ ...JSON.parse(body), name: 'n'.repeat(MAX_REQUEST_BYTES + 1) }) }, {}, 'identity'), 413, 'payload_too_large');

    const revokePath = `${devicesPath()}/${c.deviceId}/revoke`;
    expectError(await signed({ method: 'POST', path: revokePath, body: '{"why":"because"}' }, {}, 'identity'), 400, 'bad_request');
    expectError(await signed({ method: 'POST', path: revokePath, body: '{}' }, {}, 'identity'), 404, 'not_found'); // never enrolled
    expectError(await signed({ method: 'POST', path: `${devicesPath()}/dv_short/revoke`, body: '{}' }, {}, 'identity'), 404, 'not_found');
    expectError(await signed({ method: 'GET', path: `${devicesPath()}?all=1` }), 400, 'bad_request');
    // The motebit still has exactly one device.
    expect(((await client.devices(a)).body as { devices: unknown[] }).devices).toHaveLength(1);
  });

  it('unknown routes and methods', async () => {
    expectError((await client.send({ method: 'GET', path: '/nope' }, undefined)) as Answer<ErrorAnswer>, 404, 'not_found');
    expectError((await client.send({ method: 'GET', path: '/v1/motebits/mb_bad/events' }, undefined)) as Answer<ErrorAnswer>, 404, 'not_found');
    expectError((await client.send({ method: 'GET', path: `/v1/motebits/${motebit.motebitId}/elsewhere` }, undefined)) as Answer<ErrorAnswer>, 404, 'not_found');
    const put = (await client.send({ method: 'PUT', path: eventsPath(), body: '{}' }, undefined)) as Answer<ErrorAnswer>;
    expectError(put, 405, 'method_not_allowed');
    expect(put.headers.get('allow')).toBe('GET, POST');
    expectError((await client.send({ method: 'POST', path: '/healthz', body: '{}' }, undefined)) as Answer<ErrorAnswer>, 405, 'method_not_allowed');
    expectError((await client.send({ method: 'GET', path: `/v1/motebits/${motebit.motebitId}/ws` }, undefined)) as Answer<ErrorAnswer>, 400, 'bad_request');
  });

  it('rate limits per device with 429 and Retry-After, without touching other devices', async () => {
    const limited = await startTestRelay(join(dir.dir, 'limited.db'), { rateLimitCapacity: 3, rateLimitPerSecond: 0.1 });
    try {
      const c = new RelayClient(limited);
      const { devices } = await enrolledMotebit(c, 2);
      const [x, y] = devices as [TestDevice, TestDevice];
      for (let i = 0; i < 3; i++) expect((await c.pull(x, 0)).status).toBe(200);
      const refused = (await c.pull(x, 0)) as unknown as Answer<ErrorAnswer>;
      expectError(refused, 429, 'rate_limited');
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect((await c.pull(y, 0)).status).toBe(200);
      // Over the socket, a push beyond the limit is answered with an error naming the push.
      // y has spent 1 of its 3 tokens: the third push is over the limit (socket auth itself is not counted).
      const socket = await WsClient.connect(limited.url, y, limited.audience);
      for (let i = 0; i < 3; i++) socket.sendJson({ type: 'push', id: `p${i}`, events: y.events(1) });
      const error = await socket.waitFor((m) => m.type === 'error' && m.code === 'rate_limited');
      expect(error).toMatchObject({ id: expect.stringMatching(/^p\d$/), retry_after: expect.any(Number) });
      await socket.close();
    } finally {
      await limited.close();
    }
  });
});

describe('bad input over WebSocket', () => {
  async function openSocket(): Promise<WsClient> {
    const socket = new WsClient(relay.url, motebit.motebitId);
    await socket.opened;
    return socket;
  }

  it('before auth, a bad first message closes the socket with 4400', async () => {
    for (const send of [
      (s: WsClient) => s.ws.send('{not json'),
      (s: WsClient) => s.sendJson({ type: 'push', id: 'x', events: a.events(1) }),
      (s: WsClient) => s.sendJson({ type: 'auth', token: a.wsToken(relay.audience), after: -1 }),
      (s: WsClient) => s.sendJson({ type: 'auth', token: a.wsToken(relay.audience), after: 0, extra: 1 }),
      (s: WsClient) => s.ws.send(Buffer.from([1, 2, 3]), { binary: true }),
    ]) {
      const socket = await openSocket();
      send(socket);
      expect((await socket.closed).code).toBe(CLOSE_CODES.protocolError);
    }
  });

  it('a token for HTTP is not a WebSocket token', async () => {
    const socket = await openSocket();
    socket.sendJson({ type: 'auth', token: a.token(relay.audience, { method: 'GET', path: `/v1/motebits/${motebit.motebitId}/ws` }), after: 0 });
    expect(await socket.closed).toEqual({ code: CLOSE_CODES.authFailed, reason: 'body_mismatch' });
  });

  it('after auth, bad messages are answered with errors and the socket keeps working', async () => {
    const socket = await WsClient.connect(relay.url, a, relay.audience);
    const errors = () => socket.messages.filter((m): m is Extract<WsServerMessage, { type: 'error' }> => m.type === 'error');
    socket.ws.send('][');
    await socket.waitFor((m) => m.type === 'error' && m.code === 'invalid_json');
    socket.sendJson({ type: 'subscribe' });
    const firstFree = a.nextDeviceSeq; // refused pushes store nothing: the next good event is still this one
    socket.sendJson({ type: 'push', id: 'bad', events: [{ ...a.events(1)[0], body: '***' }] });
    socket.sendJson({ type: 'push', id: 'many', events: a.events(11) });
    socket.sendJson({ type: 'auth', token: a.wsToken(relay.audience), after: 0 });
    await socket.waitFor((m) => m.type === 'error' && m.code === 'bad_request' && m.message.includes('reauth'));
    expect(errors().map((e) => [e.code, e.id])).toEqual([
      ['invalid_json', undefined],
      ['bad_request', undefined],
      ['bad_request', 'bad'],
      ['too_many_events', 'many'],
      ['bad_request', undefined],
    ]);
    a.nextDeviceSeq = firstFree;
    const events = a.events(2);
    socket.sendJson({ type: 'push', id: 'good', events });
    expect(await socket.waitFor((m) => m.type === 'ack')).toMatchObject({ id: 'good', stored: 2 });
    expect((await socket.waitForEvents(2)).map((e) => e.event_id)).toEqual(events.map((e) => e.event_id));
    await socket.close();
  });

  it('an oversized message closes only that socket, with 1009', async () => {
    const bystander = await WsClient.connect(relay.url, a, relay.audience);
    const socket = await WsClient.connect(relay.url, a, relay.audience);
    socket.sendJson({ type: 'push', id: 'big', events: a.events(1, MAX_WS_PAYLOAD) });
    expect((await socket.closed).code).toBe(CLOSE_CODES.tooBig);
    a.nextDeviceSeq--; // the refused event was not stored
    bystander.sendJson({ type: 'push', id: 'fine', events: a.events(1) });
    expect(await bystander.waitFor((m) => m.type === 'ack')).toMatchObject({ stored: 1 });
    await bystander.close();
  });

  it('an upgrade on an unknown path is refused', async () => {
    const ws = new WebSocket(`${relay.url.replace('http', 'ws')}/v1/motebits/nope/ws`);
    ws.on('error', () => undefined);
    const status = await new Promise<number>((resolve) => ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0)));
    expect(status).toBe(404);
    ws.terminate();
  });
});
