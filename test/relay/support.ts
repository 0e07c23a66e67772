// Test helpers for the relay: real relays on 127.0.0.1 port 0 over real SQLite files in a temp dir, an
// identity with devices, enrolment, tokens, and small HTTP and WebSocket clients. No mocks.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { randomSeed, signingKeyFromSeed, type SigningKey } from '../../shared/crypto.ts';
import { toBase64Url } from '../../shared/encoding.ts';
import { certifyDevice } from '../../shared/event.ts';
import { deviceIdFromDeviceKey, motebitIdFromIdentityKey, newEventId } from '../../shared/ids.ts';
import type { PushResponse, WsServerMessage } from '../../shared/portable/relay-api.ts';
import { IDENTITY_SIGNER, mintToken, mintWsToken, type MintOptions, type TokenRequest } from '../../shared/token.ts';
import type { StoredWireEvent, WireEvent } from '../../shared/portable/wire.ts';
import { startRelay, type RelayOptions, type RunningRelay } from '../../relay/server.ts';
import { testDb } from '../support/test-db.ts';

export function tempDir(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'motebit-relay-test-'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A relay on 127.0.0.1:0 with logs off, on the SQLite file `dbPath` (or its PostgreSQL twin: test-db.ts). */
export async function startTestRelay(dbPath: string, options: Partial<RelayOptions> = {}): Promise<RunningRelay> {
  return startRelay({ host: '127.0.0.1', port: 0, db: await testDb(dbPath), logLevel: 'silent', ...options });
}

export type TokenOverrides = Partial<Omit<MintOptions, 'key' | 'signer'>> & { key?: SigningKey; signer?: string };

export interface Request {
  method: string;
  path: string;
  body?: string;
}

export class TestDevice {
  readonly key: SigningKey;
  readonly deviceId: string;
  readonly cert: string;
  readonly motebit: TestMotebit;
  readonly name: string;
  nextDeviceSeq = 1;

  constructor(motebit: TestMotebit, name: string) {
    this.motebit = motebit;
    this.name = name;
    this.key = signingKeyFromSeed(randomSeed());
    this.deviceId = deviceIdFromDeviceKey(this.key.publicKey);
    this.cert = certifyDevice(motebit.identity, motebit.motebitId, this.key.publicKey);
  }

  token(audience: string, request: TokenRequest, overrides: TokenOverrides = {}): string {
    return mintToken({ motebitId: this.motebit.motebitId, signer: this.deviceId, key: this.key, audience, request, ...overrides });
  }

  wsToken(audience: string, overrides: TokenOverrides = {}): string {
    return mintWsToken({ motebitId: this.motebit.motebitId, signer: this.deviceId, key: this.key, audience, ...overrides });
  }

  /** `count` new events of this device with opaque bodies of `bodyBytes` random-looking bytes. */
  events(count: number, bodyBytes = 32): WireEvent[] {
    return Array.from({ length: count }, () => ({
      event_id: newEventId(),
      device_id: this.deviceId,
      device_seq: this.nextDeviceSeq++,
      key_id: 'k1',
      body: toBase64Url(Buffer.alloc(bodyBytes, this.nextDeviceSeq % 251)),
    }));
  }
}

export class TestMotebit {
  readonly identity: SigningKey;
  readonly motebitId: string;

  constructor() {
    this.identity = signingKeyFromSeed(randomSeed());
    this.motebitId = motebitIdFromIdentityKey(this.identity.publicKey);
  }

  device(name = 'device'): TestDevice {
    return new TestDevice(this, name);
  }

  identityToken(audience: string, request: TokenRequest, overrides: TokenOverrides = {}): string {
    return mintToken({ motebitId: this.motebitId, signer: IDENTITY_SIGNER, key: this.identity, audience, request, ...overrides });
  }

  enrolBody(device: TestDevice): string {
    return JSON.stringify({ identity_key: toBase64Url(this.identity.publicKey), device_key: toBase64Url(device.key.publicKey), cert: device.cert, name: device.name });
  }
}

export interface Answer<T = unknown> {
  status: number;
  body: T;
  headers: Headers;
}

export interface ErrorAnswer {
  error: { code: string; message: string };
}

/** An HTTP client that signs each request as the brief says: one fresh token per request. */
export class RelayClient {
  readonly url: string;
  readonly audience: string;

  constructor(relay: Pick<RunningRelay, 'url' | 'audience'>) {
    this.url = relay.url;
    this.audience = relay.audience;
  }

  async send<T = unknown>(request: Request, token: string | undefined, headers: Record<string, string> = {}): Promise<Answer<T>> {
    const response = await fetch(this.url + request.path, {
      method: request.method,
      headers: {
        ...(request.body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(token === undefined ? {} : { authorization: `Motebit ${token}` }),
        ...headers,
      },
      ...(request.body === undefined ? {} : { body: request.body }),
    });
    const text = await response.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // not JSON (e.g. /metrics)
    }
    return { status: response.status, body: body as T, headers: response.headers };
  }

  enrolRequest(device: TestDevice): Request {
    return { method: 'POST', path: `/v1/motebits/${device.motebit.motebitId}/devices`, body: device.motebit.enrolBody(device) };
  }

  async enrol(device: TestDevice): Promise<Answer> {
    const request = this.enrolRequest(device);
    return this.send(request, device.motebit.identityToken(this.audience, request));
  }

  async revoke(motebit: TestMotebit, deviceId: string): Promise<Answer> {
    const request = { method: 'POST', path: `/v1/motebits/${motebit.motebitId}/devices/${deviceId}/revoke`, body: '{}' };
    return this.send(request, motebit.identityToken(this.audience, request));
  }

  async devices(device: TestDevice): Promise<Answer> {
    const request = { method: 'GET', path: `/v1/motebits/${device.motebit.motebitId}/devices` };
    return this.send(request, device.token(this.audience, request));
  }

  pushRequest(device: TestDevice, events: WireEvent[]): Request {
    return { method: 'POST', path: `/v1/motebits/${device.motebit.motebitId}/events`, body: JSON.stringify({ events }) };
  }

  async push(device: TestDevice, events: WireEvent[]): Promise<Answer<PushResponse>> {
    const request = this.pushRequest(device, events);
    return this.send<PushResponse>(request, device.token(this.audience, request));
  }

  async pull(device: TestDevice, after: number, limit?: number): Promise<Answer<{ events: StoredWireEvent[]; next: number; more: boolean }>> {
    const request = { method: 'GET', path: `/v1/motebits/${device.motebit.motebitId}/events?after=${after}${limit === undefined ? '' : `&limit=${limit}`}` };
    return this.send(request, device.token(this.audience, request));
  }

  /** Pulls every page after `after`. */
  async pullAll(device: TestDevice, after = 0, limit?: number): Promise<StoredWireEvent[]> {
    const all: StoredWireEvent[] = [];
    let cursor = after;
    for (;;) {
      const answer = await this.pull(device, cursor, limit);
      if (answer.status !== 200) throw new Error(`pull failed: ${answer.status} ${JSON.stringify(answer.body)}`);
      all.push(...answer.body.events);
      cursor = answer.body.next;
      if (!answer.body.more) return all;
    }
  }

  async healthy(): Promise<boolean> {
    const answer = await this.send({ method: 'GET', path: '/healthz' }, undefined);
    return answer.status === 200;
  }
}

/** Enrols a new motebit with `count` devices. */
export async function enrolledMotebit(client: RelayClient, count: number): Promise<{ motebit: TestMotebit; devices: TestDevice[] }> {
  const motebit = new TestMotebit();
  const devices: TestDevice[] = [];
  for (let i = 0; i < count; i++) {
    const device = motebit.device(`device ${i + 1}`);
    const answer = await client.enrol(device);
    if (answer.status !== 201) throw new Error(`enrol failed: ${answer.status} ${JSON.stringify(answer.body)}`);
    devices.push(device);
  }
  return { motebit, devices };
}

/** A WebSocket client that records every message, the events in order, and the close. */
export class WsClient {
  readonly ws: WebSocket;
  readonly messages: WsServerMessage[] = [];
  readonly events: StoredWireEvent[] = [];
  readonly opened: Promise<void>;
  readonly closed: Promise<{ code: number; reason: string }>;
  #waiters: Array<() => void> = [];

  constructor(url: string, motebitId: string) {
    this.ws = new WebSocket(`${url.replace(/^http/, 'ws')}/v1/motebits/${motebitId}/ws`);
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('error', reject);
    });
    this.closed = new Promise((resolve) => this.ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    this.ws.on('error', () => undefined);
    this.ws.on('message', (data) => {
      const message = JSON.parse(String(data)) as WsServerMessage;
      this.messages.push(message);
      if (message.type === 'events') this.events.push(...message.events);
      for (const wake of this.#waiters.splice(0)) wake();
    });
    this.ws.on('close', () => {
      for (const wake of this.#waiters.splice(0)) wake();
    });
  }

  static async connect(url: string, device: TestDevice, audience: string, after = 0): Promise<WsClient> {
    const client = new WsClient(url, device.motebit.motebitId);
    await client.opened;
    client.sendJson({ type: 'auth', token: device.wsToken(audience), after });
    await client.waitFor((m) => m.type === 'ready');
    return client;
  }

  sendJson(value: unknown): void {
    this.ws.send(JSON.stringify(value));
  }

  /** Resolves with the first message (already received or coming) that matches; rejects if the socket closes first. */
  async waitFor(predicate: (message: WsServerMessage) => boolean, what = 'message'): Promise<WsServerMessage> {
    for (;;) {
      const found = this.messages.find(predicate);
      if (found) return found;
      if (this.ws.readyState === WebSocket.CLOSED || this.ws.readyState === WebSocket.CLOSING) throw new Error(`socket closed while waiting for ${what}`);
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }

  async waitForEvents(count: number): Promise<StoredWireEvent[]> {
    while (this.events.length < count) {
      if (this.ws.readyState === WebSocket.CLOSED || this.ws.readyState === WebSocket.CLOSING) throw new Error(`socket closed with ${this.events.length}/${count} events`);
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
    return this.events;
  }

  close(): Promise<{ code: number; reason: string }> {
    this.ws.close();
    return this.closed;
  }
}

/** The seqs are 1..n without gap or repeat, in order. */
export function assertContiguous(events: StoredWireEvent[], from = 1): boolean {
  return events.every((event, index) => event.seq === from + index);
}
