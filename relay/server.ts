// The relay: HTTP (node:http) and WebSocket (ws) in front of a RelayStore. It sees envelopes and opaque
// bodies only, and never writes an event of its own. docs/protocol.md §7 is the contract.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { z } from 'zod';
import { randomBytes } from 'node:crypto';
import { sha256Hex } from '../shared/crypto.ts';
import { canonicalJson, fromBase64Url, toBase64Url } from '../shared/encoding.ts';
import { MemberKeySchema, memberIdOf } from '../shared/membership/entry.ts';
import { deviceIdFromDeviceKey } from '../shared/ids.ts';
import {
  CLOSE_CODES,
  ERROR_STATUS,
  EnrolRequestSchema,
  FrontierQuerySchema,
  MembershipOfferSchema,
  MembershipQuerySchema,
  PairingCreateSchema,
  PairingOfferSchema,
  PairingRevealSchema,
  PullQuerySchema,
  PushRequestSchema,
  RELAY_PROTOCOL,
  RELAY_REVISION,
  RevokeRequestSchema,
  AckRequestSchema,
  SnapshotBeginSchema,
  SnapshotChunkSchema,
  SnapshotCommitSchema,
  type Ack,
  type DeviceInfo,
  type SnapshotInfo,
  type ErrorCode,
  type QuotaName,
} from '../shared/portable/relay-api.ts';
import { EMPTY_BODY_SHA256, nowSeconds } from '../shared/token.ts';
import { verifyDeviceCert } from '../shared/event.ts';
import { verifyAck } from '../shared/ack.ts';
import { compactMotebit, liveAcks } from './compaction.ts';
import { SNAPSHOTS_KEPT, SNAPSHOT_UPLOAD_TTL_MS } from './snapshot-rule.ts';
import { AuthError, checkBody, verifyToken, type Expected, type Verified } from './auth.ts';
import { clientAddress } from './client-address.ts';
import { LimitsSchema, SocketCounts, pushBatch, quotaMessage, type LimitsInput, type RelayContext } from './context.ts';
import { createLogger, type LogLevel, type Logger } from './log.ts';
import { RelayMetrics } from './metrics.ts';
import { RateLimiter } from './rate-limit.ts';
import { loggablePath, parseRequestTarget } from './request-target.ts';
import { openStore } from './open-store.ts';
import { MembershipKeeper } from './membership.ts';
import { Presence } from './presence.ts';
import { matchRoute, type RouteName } from './routes.ts';
import type { AckRecord, DeviceRecord, RelayStore, SnapshotRecord } from './store.ts';
import { Connection, type ConnectionStats } from './ws.ts';

export interface RelayOptions extends LimitsInput {
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /** A SQLite file path or a postgres:// URL (ignored when `store` is given). */
  db?: string;
  /** Another RelayStore backend; the relay closes it on close(). */
  store?: RelayStore;
  /** The audience tokens must name; defaults to the URL the relay listens on. */
  audience?: string;
  /**
   * Behind a reverse proxy: take a client's address from the first X-Forwarded-For hop instead of the TCP
   * peer (which is then the proxy). Only when the proxy sets that header itself; else anybody names their own.
   */
  trustProxy?: boolean;
  /** Serve /metrics on its own listener on this port (0 picks a free one); without it, metrics are not served. */
  metricsPort?: number;
  /** Where that listener listens; default 127.0.0.1. */
  metricsHost?: string;
  logLevel?: LogLevel;
  logger?: Logger;
}

export interface RunningRelay {
  /** http://host:port */
  url: string;
  audience: string;
  /** http://host:port/metrics when metricsPort was given: Prometheus text, for the operator only. */
  metricsUrl?: string;
  /** Graceful: stop accepting, close sockets with 1001, finish requests, close the store. */
  close(): Promise<void>;
  /** For tests and operators: the open WebSocket connections. */
  stats(): { connections: ConnectionStats[] };
}

class HttpError extends Error {
  readonly code: ErrorCode;
  readonly headers: Record<string, string>;
  /** With quota_exceeded: which quota. */
  readonly quota: QuotaName | undefined;
  constructor(code: ErrorCode, message: string, headers: Record<string, string> = {}, quota?: QuotaName) {
    super(message);
    this.code = code;
    this.headers = headers;
    this.quota = quota;
  }
}

const JSON_TYPE = /^application\/json\s*(;\s*charset=utf-8\s*)?$/i;
const utf8 = new TextDecoder('utf-8', { fatal: true });
const NONCE_PRUNE_MS = 60_000;
const SHUTDOWN_GRACE_MS = 5000;

export const deviceInfo = (device: DeviceRecord): DeviceInfo => ({
  device_id: device.deviceId,
  key: toBase64Url(device.key),
  // A member of a membership log has no identity certificate: its log entry is what admits it.
  ...(device.cert === '' ? {} : { cert: device.cert }),
  ...(device.name === null ? {} : { name: device.name }),
  enrolled_at: device.enrolledAt,
  revoked_at: device.revokedAt,
  last_seen_at: device.lastSeenAt,
  read_seq: device.readSeq,
});

const snapshotInfo = (snapshot: SnapshotRecord): SnapshotInfo => ({
  snapshot_id: snapshot.snapshotId,
  device_id: snapshot.deviceId,
  size: snapshot.size,
  sha256: snapshot.sha256,
  chunk_bytes: snapshot.chunkBytes,
  chunks: snapshot.chunks,
  covers: snapshot.covers,
  created_at: snapshot.completedAt ?? snapshot.touchedAt,
});

const ackInfo = (ack: AckRecord): Ack => ({ device_id: ack.deviceId, covers: ack.covers, at: ack.at, sig: ack.sig });

export async function startRelay(options: RelayOptions): Promise<RunningRelay> {
  const limits = LimitsSchema.parse(pickLimits(options));
  const log = options.logger ?? createLogger(options.logLevel ?? 'info');
  if (!options.store && !options.db) throw new TypeError('startRelay needs db or store');
  const store: RelayStore = options.store ?? (await openStore(options.db ?? '', log));
  const metrics = new RelayMetrics();
  const connections = new Set<Connection>();
  const server = createServer({ requestTimeout: 30_000, headersTimeout: 15_000 });
  const wss = new WebSocketServer({ noServer: true, maxPayload: limits.wsMaxPayloadBytes, perMessageDeflate: false });
  const metricsServer = options.metricsPort === undefined ? undefined : createServer({ requestTimeout: 30_000, headersTimeout: 15_000 });

  const host = options.host ?? '127.0.0.1';
  let url: string;
  let metricsUrl: string | undefined;
  try {
    url = await listen(server, options.port ?? 0, host);
    if (metricsServer) metricsUrl = `${await listen(metricsServer, options.metricsPort ?? 0, options.metricsHost ?? '127.0.0.1')}/metrics`;
  } catch (error) {
    if (server.listening) server.close();
    await store.close();
    throw error;
  }
  const audience = options.audience ?? url;
  const trustProxy = options.trustProxy ?? false;

  const ctx: RelayContext = {
    store,
    auth: { audience, skewSeconds: limits.clockSkewSeconds, store },
    limits,
    metrics,
    log,
    rateLimiter: new RateLimiter({ capacity: limits.rateLimitCapacity, refillPerSecond: limits.rateLimitPerSecond }),
    wsAuthLimiter: new RateLimiter({ capacity: limits.wsAuthCapacity, refillPerSecond: limits.wsAuthPerSecond }),
    sockets: new SocketCounts(),
    presence: new Presence(store, log, limits.seenWriteMs),
    push: (motebitId, deviceId, events, transport) => pushBatch({ store, metrics, limits }, motebitId, deviceId, events, transport),
  };
  const membership = new MembershipKeeper(store);
  // Pairing needs no account: the new device knows no motebit yet. Per address: a few new rendezvous a
  // minute, and polling at about a request a second.
  const pairingCreateLimiter = new RateLimiter({ capacity: 10, refillPerSecond: 10 / 60 });
  const pairingLimiter = new RateLimiter({ capacity: 60, refillPerSecond: 2 });
  const newMotebitLimiter = new RateLimiter({ capacity: limits.newMotebitCapacity, refillPerSecond: limits.newMotebitsPerMinute / 60 });

  // ---- HTTP ----

  /**
   * Checks the token. Everything it signs but the body's hash is in the header, so for most requests this
   * runs before the body is read (pass no bodySha256, then verifyBody once it is); nobody unauthenticated
   * gets the relay to buffer, hash or parse a body.
   */
  async function authenticate(req: IncomingMessage, expected: Expected): Promise<Verified> {
    const header = req.headers.authorization;
    const token = header?.startsWith('Motebit ') ? header.slice('Motebit '.length).trim() : undefined;
    try {
      const verified = await verifyToken(ctx.auth, token, expected, nowSeconds());
      const wait = ctx.rateLimiter.take(`${expected.motebitId}/${verified.claims.signer}`);
      if (wait > 0) {
        metrics.rateLimit('device');
        throw new HttpError('rate_limited', 'too many requests; retry later', { 'retry-after': String(wait) });
      }
      if (verified.deviceId !== null) ctx.presence.seen(expected.motebitId, verified.deviceId);
      return verified;
    } catch (error) {
      throw asHttpError(error);
    }
  }

  /** The body read after authenticate is the one the token signed (body_mismatch otherwise). */
  function verifyBody(verified: Verified, body: Buffer): void {
    try {
      checkBody(verified, sha256Hex(body));
    } catch (error) {
      throw asHttpError(error);
    }
  }

  function asHttpError(error: unknown): unknown {
    if (!(error instanceof AuthError)) return error;
    metrics.authFailure(error.code);
    return new HttpError(error.code, error.message);
  }

  /** The answer to a refusal by quota (counted where it is decided: pushBatch, enrol). */
  function quotaError(quota: QuotaName): HttpError {
    return new HttpError('quota_exceeded', quotaMessage(quota, limits), {}, quota);
  }

  /** What a body must declare before anything else is done: JSON, and not above the size cap. */
  async function checkBodyHeaders(req: IncomingMessage): Promise<void> {
    const type = req.headers['content-type'] ?? '';
    if (!JSON_TYPE.test(type)) {
      await drain(req, limits.maxRequestBytes);
      throw new HttpError('unsupported_media_type', 'the body must be application/json');
    }
    const declared = Number(req.headers['content-length'] ?? '0');
    if (declared > limits.maxRequestBytes) {
      await drain(req, limits.maxRequestBytes);
      throw new HttpError('payload_too_large', `a request body is at most ${limits.maxRequestBytes} bytes`);
    }
  }

  async function readBody(req: IncomingMessage): Promise<Buffer> {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.byteLength;
      if (size > limits.maxRequestBytes) tooLarge = true;
      if (tooLarge) {
        if (size > limits.maxRequestBytes * 4) break; // stop reading; the connection is closed after the answer
        continue;
      }
      chunks.push(chunk);
    }
    if (tooLarge) throw new HttpError('payload_too_large', `a request body is at most ${limits.maxRequestBytes} bytes`);
    return Buffer.concat(chunks);
  }

  function parseJson(body: Buffer): unknown {
    try {
      return JSON.parse(utf8.decode(body));
    } catch {
      throw new HttpError('invalid_json', 'the body is not valid UTF-8 JSON');
    }
  }

  function validate<T>(schema: z.ZodType<T>, value: unknown): T {
    const parsed = schema.safeParse(value);
    if (!parsed.success) throw new HttpError('bad_request', z.prettifyError(parsed.error).slice(0, 2000));
    return parsed.data;
  }

  /** What the token must name; without bodySha256 the body is checked after auth (verifyBody). */
  const expect = (req: IncomingMessage, motebitId: string, signer: Expected['signer'], bodySha256?: string): Expected => ({
    motebitId,
    signer,
    method: req.method ?? '',
    path: req.url ?? '',
    ...(bodySha256 === undefined ? {} : { bodySha256 }),
  });

  async function enrol(req: IncomingMessage, res: ServerResponse, motebitId: string): Promise<void> {
    // The one request whose body is read before auth: a first enrolment names, in its body, the identity
    // key its token is checked against (the body is bounded by maxRequestBytes either way).
    await checkBodyHeaders(req);
    const body = await readBody(req);
    // The identity key to check a first enrolment against comes from the body; it is only trusted when
    // the motebit id derives from it, and the body itself is bound to the token.
    let proposed: Buffer | undefined;
    try {
      const raw: unknown = JSON.parse(body.toString('utf8'));
      if (typeof raw === 'object' && raw !== null && 'identity_key' in raw && typeof raw.identity_key === 'string' && raw.identity_key.length === 43) {
        proposed = fromBase64Url(raw.identity_key);
      }
    } catch {
      proposed = undefined;
    }
    const verified = await authenticate(req, { ...expect(req, motebitId, 'identity', sha256Hex(body)), ...(proposed ? { proposedIdentityKey: proposed } : {}) });
    await refuseOnceUpgraded(motebitId);
    if (verified.firstEnrolment) limitNewMotebits(req);
    const request = validate(EnrolRequestSchema, parseJson(body));
    const identityKey = fromBase64Url(request.identity_key);
    const deviceKey = fromBase64Url(request.device_key);
    const deviceId = deviceIdFromDeviceKey(deviceKey);
    if (!verifyDeviceCert(identityKey, motebitId, deviceId, request.device_key, request.cert)) {
      throw new HttpError('bad_cert', 'the cert is not the identity signature over this motebit, device and key');
    }
    const outcome = await store.enrolDevice({ motebitId, identityKey, deviceId, deviceKey, cert: request.cert, name: request.name ?? null, now: Date.now(), maxDevices: limits.maxDevicesPerMotebit });
    switch (outcome.kind) {
      case 'created':
      case 'exists':
        log.info({ motebit_id: motebitId, device_id: deviceId, created: outcome.kind === 'created' }, 'device enrolled');
        sendJson(res, outcome.kind === 'created' ? 201 : 200, { device: deviceInfo(outcome.device), created: outcome.kind === 'created' });
        return;
      case 'wrong_identity':
        throw new HttpError('wrong_identity', 'the motebit is registered under another identity key');
      case 'key_mismatch':
        throw new HttpError('device_key_mismatch', 'the device id is enrolled with another key');
      case 'revoked':
        throw new HttpError('device_revoked', 'the device has been revoked and cannot be enrolled again');
      case 'quota_exceeded':
        metrics.quotaRefusal('devices');
        throw quotaError('devices');
    }
  }

  /**
   * Once a motebit has a membership log (docs/keys.md), its old identity key, which every protocol-2 device
   * and every device revoked under it still holds, no longer enrols or revokes anything: the log does.
   */
  async function refuseOnceUpgraded(motebitId: string): Promise<void> {
    if ((await membership.state(motebitId)) !== null) {
      throw new HttpError('membership_refused', 'this motebit keeps a membership log: devices are added by approval and removed with a signed entry, no longer with its old identity key');
    }
  }

  /** New motebits (first enrolments) per client address: identities cost nothing to make, storage does. */
  function limitNewMotebits(req: IncomingMessage): void {
    const wait = newMotebitLimiter.take(clientAddress(req, trustProxy));
    if (wait === 0) return;
    metrics.rateLimit('new_motebit');
    throw new HttpError('rate_limited', 'too many new motebits from this address; retry later', { 'retry-after': String(wait) });
  }

  async function revoke(req: IncomingMessage, res: ServerResponse, motebitId: string, deviceId: string): Promise<void> {
    await checkBodyHeaders(req);
    const verified = await authenticate(req, expect(req, motebitId, 'identity'));
    const body = await readBody(req);
    verifyBody(verified, body);
    validate(RevokeRequestSchema, parseJson(body));
    await refuseOnceUpgraded(motebitId);
    const outcome = await store.revokeDevice(motebitId, deviceId, Date.now());
    if (outcome.kind === 'unknown') throw new HttpError('not_found', 'no such device');
    log.info({ motebit_id: motebitId, device_id: deviceId, already: outcome.kind === 'already_revoked' }, 'device revoked');
    sendJson(res, 200, { device: deviceInfo(outcome.device) });
  }

  async function listDevices(req: IncomingMessage, res: ServerResponse, motebitId: string, search: URLSearchParams): Promise<void> {
    await drain(req, limits.maxRequestBytes);
    await authenticate(req, expect(req, motebitId, 'device', EMPTY_BODY_SHA256));
    if ([...search.keys()].length > 0) throw new HttpError('bad_request', 'the device list takes no query parameters');
    // With the log's head, so a device can tell how far behind each device is (head - read_seq).
    const [devices, head] = await Promise.all([store.devices(motebitId), store.head(motebitId)]);
    // The recovery key has a row so it can sign in, but it is not a device.
    const listed = devices.filter((device) => !device.deviceId.startsWith('rk_'));
    sendJson(res, 200, { devices: ctx.presence.overlay(motebitId, listed).map(deviceInfo), head });
  }

  async function push(req: IncomingMessage, res: ServerResponse, motebitId: string): Promise<void> {
    await checkBodyHeaders(req);
    const verified = await authenticate(req, expect(req, motebitId, 'device'));
    const body = await readBody(req);
    verifyBody(verified, body);
    const json = parseJson(body);
    if (typeof json === 'object' && json !== null && 'events' in json && Array.isArray(json.events) && json.events.length > limits.maxBatchEvents) {
      throw new HttpError('too_many_events', `a push carries at most ${limits.maxBatchEvents} events`);
    }
    const request = validate(PushRequestSchema, json);
    const outcome = await ctx.push(motebitId, verified.deviceId ?? '', request.events, 'http');
    if (!outcome.ok) throw quotaError(outcome.quota);
    sendJson(res, 200, outcome.response);
  }

  async function pull(req: IncomingMessage, res: ServerResponse, motebitId: string, search: URLSearchParams): Promise<void> {
    await drain(req, limits.maxRequestBytes);
    const verified = await authenticate(req, expect(req, motebitId, 'device', EMPTY_BODY_SHA256));
    const { after, limit } = validate(PullQuerySchema, singleQuery(search));
    const stop = metrics.pullLatency.startTimer();
    const page = await store.readAfter(motebitId, after, Math.min(limit, limits.maxPullLimit), limits.maxPageBytes);
    stop();
    metrics.eventsOut.inc({ transport: 'http' }, page.events.length);
    if (verified.deviceId !== null) ctx.presence.seen(motebitId, verified.deviceId, page.next);
    sendJson(res, 200, { events: page.events, next: page.next, more: page.more, head: page.head, epoch: page.epoch });
  }

  async function frontier(req: IncomingMessage, res: ServerResponse, motebitId: string, search: URLSearchParams): Promise<void> {
    await drain(req, limits.maxRequestBytes);
    const verified = await authenticate(req, expect(req, motebitId, 'device', EMPTY_BODY_SHA256));
    const { at } = validate(FrontierQuerySchema, singleQuery(search));
    // `at` is the device's cursor: it holds the log up to there.
    if (at !== undefined && verified.deviceId !== null) ctx.presence.seen(motebitId, verified.deviceId, at);
    const log = await store.frontier(motebitId, at);
    sendJson(res, 200, {
      epoch: log.epoch,
      head: log.head,
      devices: log.devices.map((d) => ({ device_id: d.deviceId, seq: d.seq })),
      at: log.at && { seq: log.at.seq, event_id: log.at.eventId },
      ...(log.floors.length > 0 ? { floors: Object.fromEntries(log.floors.map((f) => [f.deviceId, f.seq])) } : {}),
    });
  }

  // ---- Snapshots, acknowledgements, compaction (docs/protocol.md §7, "Snapshots and compaction") ----

  /** The device a device token names (device routes only ever authenticate a device). */
  function deviceOf(verified: Verified): string {
    if (verified.deviceId === null) throw new HttpError('malformed_token', 'this request needs a device token');
    return verified.deviceId;
  }

  /** Reads, checks and parses the body of an authenticated device POST; answers the device id and the JSON. */
  async function devicePost(req: IncomingMessage, motebitId: string): Promise<{ deviceId: string; json: unknown }> {
    await checkBodyHeaders(req);
    const verified = await authenticate(req, expect(req, motebitId, 'device'));
    const body = await readBody(req);
    verifyBody(verified, body);
    return { deviceId: deviceOf(verified), json: parseJson(body) };
  }

  /** An authenticated device GET without query parameters; answers the device id. */
  async function deviceGet(req: IncomingMessage, motebitId: string, search: URLSearchParams, what: string): Promise<string> {
    await drain(req, limits.maxRequestBytes);
    const verified = await authenticate(req, expect(req, motebitId, 'device', EMPTY_BODY_SHA256));
    if ([...search.keys()].length > 0) throw new HttpError('bad_request', `${what} takes no query parameters`);
    return deviceOf(verified);
  }

  /** Compaction after a commit or an acknowledgement: housekeeping, so a failure is logged, never the answer. */
  async function compactAfter(motebitId: string): Promise<void> {
    try {
      await compactMotebit(store, log, motebitId);
    } catch (error) {
      log.error({ motebit_id: motebitId, err: error instanceof Error ? error.message : String(error) }, 'compaction failed');
    }
  }

  const NO_UPLOAD = 'no such upload: it was never begun, was replaced by a newer upload of this device, was discarded, or expired; begin it again';

  async function beginSnapshot(req: IncomingMessage, res: ServerResponse, motebitId: string): Promise<void> {
    const { deviceId, json } = await devicePost(req, motebitId);
    const begin = validate(SnapshotBeginSchema, json);
    if (begin.size > limits.maxSnapshotBytes) {
      metrics.quotaRefusal('snapshot_bytes');
      throw quotaError('snapshot_bytes');
    }
    const outcome = await store.beginSnapshot(motebitId, { snapshotId: begin.snapshot_id, deviceId, size: begin.size, sha256: begin.sha256, chunkBytes: begin.chunk_bytes, covers: begin.covers, now: Date.now() });
    switch (outcome.kind) {
      case 'conflict':
        throw new HttpError(
          'snapshot_conflict',
          outcome.reason === 'other_device' ? "this snapshot id is another device's; choose a new id" : 'this snapshot id was begun with another size, hash, chunk size or covers; choose a new id',
        );
      case 'complete':
        return sendJson(res, 200, { snapshot_id: begin.snapshot_id, complete: true, received: Array.from({ length: outcome.chunks }, (_, i) => i) });
      case 'begun':
      case 'resumed':
        if (outcome.kind === 'begun') log.info({ motebit_id: motebitId, device_id: deviceId, snapshot_id: begin.snapshot_id, size: begin.size }, 'snapshot upload begun');
        return sendJson(res, 200, { snapshot_id: begin.snapshot_id, complete: false, received: outcome.received });
    }
  }

  async function putSnapshotChunk(req: IncomingMessage, res: ServerResponse, motebitId: string, snapshotId: string, chunk: string): Promise<void> {
    const { deviceId, json } = await devicePost(req, motebitId);
    const data = fromBase64Url(validate(SnapshotChunkSchema, json).data);
    const index = Number(chunk);
    const outcome = await store.putSnapshotChunk(motebitId, snapshotId, deviceId, index, data, Date.now());
    switch (outcome.kind) {
      case 'stored':
        return sendJson(res, 200, { received: outcome.received });
      case 'not_found':
        throw new HttpError('not_found', NO_UPLOAD);
      case 'other_device':
        throw new HttpError('snapshot_conflict', "this upload is another device's: only the device that began it writes its chunks");
      case 'out_of_range':
        throw new HttpError('bad_request', `this snapshot has ${outcome.chunks} chunks, numbered 0 to ${outcome.chunks - 1}`);
      case 'wrong_length':
        throw new HttpError('bad_request', `chunk ${index} is ${outcome.expected} bytes long; this one is ${data.byteLength}`);
      case 'conflict':
        throw new HttpError('snapshot_conflict', `chunk ${index} is held already with other bytes`);
    }
  }

  async function commitSnapshot(req: IncomingMessage, res: ServerResponse, motebitId: string, snapshotId: string): Promise<void> {
    const { deviceId, json } = await devicePost(req, motebitId);
    validate(SnapshotCommitSchema, json);
    const outcome = await store.commitSnapshot(motebitId, snapshotId, deviceId, SNAPSHOTS_KEPT, Date.now());
    switch (outcome.kind) {
      case 'not_found':
        throw new HttpError('not_found', NO_UPLOAD);
      case 'other_device':
        throw new HttpError('snapshot_conflict', "this upload is another device's: only the device that began it commits it");
      case 'incomplete':
        throw new HttpError('snapshot_incomplete', `${outcome.missing} ${outcome.missing === 1 ? 'chunk is' : 'chunks are'} still missing; send ${outcome.missing === 1 ? 'it' : 'them'}, then commit again`);
      case 'mismatch':
        log.info({ motebit_id: motebitId, device_id: deviceId, snapshot_id: snapshotId }, 'snapshot upload discarded: its chunks do not hash to its sha256');
        throw new HttpError('snapshot_mismatch', 'the chunks do not hash to the declared sha256, so the upload was discarded; begin it again');
      case 'committed':
        log.info({ motebit_id: motebitId, device_id: deviceId, snapshot_id: snapshotId, size: outcome.snapshot.size, pruned: outcome.pruned }, 'snapshot committed');
        await compactAfter(motebitId);
        return sendJson(res, 200, { snapshot: snapshotInfo(outcome.snapshot) });
    }
  }

  async function latestSnapshot(req: IncomingMessage, res: ServerResponse, motebitId: string, search: URLSearchParams): Promise<void> {
    await deviceGet(req, motebitId, search, 'the latest snapshot');
    const [latest, devices, acks] = await Promise.all([store.latestSnapshot(motebitId), store.devices(motebitId), store.acks(motebitId)]);
    sendJson(res, 200, { snapshot: latest && snapshotInfo(latest), acks: liveAcks(devices, acks).map(ackInfo) });
  }

  async function readSnapshotChunk(req: IncomingMessage, res: ServerResponse, motebitId: string, snapshotId: string, chunk: string, search: URLSearchParams): Promise<void> {
    await deviceGet(req, motebitId, search, 'a snapshot chunk');
    const data = await store.snapshotChunk(motebitId, snapshotId, Number(chunk));
    if (!data) throw new HttpError('not_found', 'no such chunk: the snapshot is not complete on this relay, is gone, or has fewer chunks');
    sendJson(res, 200, { data: toBase64Url(data) });
  }

  async function postAck(req: IncomingMessage, res: ServerResponse, motebitId: string): Promise<void> {
    const { deviceId, json } = await devicePost(req, motebitId);
    const ack = validate(AckRequestSchema, json);
    const device = await store.device(motebitId, deviceId);
    if (!device || !verifyAck(device.key, { motebitId, deviceId, covers: ack.covers, at: ack.at }, ack.sig)) {
      throw new HttpError('bad_request', "the acknowledgement's signature does not verify with this device's key");
    }
    if (await store.putAck(motebitId, { deviceId, covers: ack.covers, at: ack.at, sig: ack.sig })) await compactAfter(motebitId);
    sendJson(res, 200, { ok: true });
  }

  async function readMembership(req: IncomingMessage, res: ServerResponse, motebitId: string, search: URLSearchParams): Promise<void> {
    await drain(req, limits.maxRequestBytes);
    await authenticate(req, expect(req, motebitId, 'member', EMPTY_BODY_SHA256));
    const { after } = validate(MembershipQuerySchema, singleQuery(search));
    const entries = await membership.entries(motebitId, after);
    const last = entries.at(-1) as { seq?: number } | undefined;
    sendJson(res, 200, { entries, head: last?.seq ?? (await membership.state(motebitId))?.head.seq ?? -1 });
  }

  async function offerMembership(req: IncomingMessage, res: ServerResponse, motebitId: string): Promise<void> {
    await checkBodyHeaders(req);
    // A log that exists takes entries from its current members; a new motebit's genesis comes from
    // anyone (its entries sign themselves; new motebits are limited per address); a protocol-2 motebit
    // starts its log only through one of its devices not revoked (docs/keys.md, upgrade). Authenticated
    // from the header, before the body is read.
    const started = (await membership.state(motebitId)) !== null;
    const identityKey = await store.identityKey(motebitId);
    const verified = started || (identityKey !== null && identityKey.byteLength > 0) ? await authenticate(req, expect(req, motebitId, 'member')) : null;
    if (!verified) limitNewMotebits(req);
    const body = await readBody(req);
    if (verified) verifyBody(verified, body);
    const { entries } = validate(MembershipOfferSchema, parseJson(body));
    const outcome = await membership.offer(motebitId, entries, Date.now());
    if (outcome.kind === 'refused') {
      log.info({ motebit_id: motebitId, seq: outcome.error.seq, fault: outcome.error.fault }, 'membership entry refused');
      throw new HttpError('membership_refused', outcome.error.message);
    }
    if (outcome.kind === 'conflict') throw new HttpError('membership_conflict', `the membership log has moved on (it ends at entry ${outcome.head}); read it again and offer what follows`);
    log.info({ motebit_id: motebitId, head: outcome.head, entries: entries.length }, 'membership appended');
    sendJson(res, 200, { head: outcome.head });
  }

  function limitPairing(req: IncomingMessage, limiter: RateLimiter): void {
    const wait = limiter.take(clientAddress(req, trustProxy));
    if (wait === 0) return;
    metrics.rateLimit('pairing');
    throw new HttpError('rate_limited', 'too many pairing requests from this address; retry later', { 'retry-after': String(wait) });
  }

  // The pairing rendezvous (docs/keys.md): the relay only carries what the two devices exchange.
  async function createPairing(req: IncomingMessage, res: ServerResponse): Promise<void> {
    limitPairing(req, pairingCreateLimiter);
    await checkBodyHeaders(req);
    const { member } = validate(PairingCreateSchema, parseJson(await readBody(req)));
    const key = validate(MemberKeySchema, member);
    if (key.role !== 'device' || memberIdOf('device', fromBase64Url(key.sign_key)) !== key.id) throw new HttpError('bad_request', 'a pairing names a new device: role device, its id derived from its signing key');
    const expiresAt = nowSeconds() + limits.pairingLifetimeSeconds;
    for (;;) {
      const id = randomBytes(6).toString('base64url');
      if (await store.createPairing(id, canonicalJson(key), expiresAt)) return sendJson(res, 201, { id, expires_at: expiresAt });
    }
  }

  async function readPairing(req: IncomingMessage, res: ServerResponse, id: string): Promise<void> {
    limitPairing(req, pairingLimiter);
    await drain(req, limits.maxRequestBytes);
    const record = await store.pairing(id, nowSeconds());
    if (!record) throw new HttpError('not_found', 'no such pairing: the code was never made, has expired or has been used');
    sendJson(res, 200, { member: JSON.parse(record.member), offer: record.offer && JSON.parse(record.offer), reveal: record.reveal && JSON.parse(record.reveal), expires_at: record.expiresAt });
  }

  async function pairingStep(req: IncomingMessage, res: ServerResponse, id: string, step: 'offer' | 'reveal'): Promise<void> {
    limitPairing(req, pairingLimiter);
    await checkBodyHeaders(req);
    const json = parseJson(await readBody(req));
    const done =
      step === 'offer'
        ? await store.setPairingOffer(id, canonicalJson(validate(PairingOfferSchema, json)), nowSeconds())
        : await store.setPairingReveal(id, canonicalJson(validate(PairingRevealSchema, json)), nowSeconds());
    if (!done) throw new HttpError('not_found', `no pairing waiting for ${step === 'offer' ? 'an offer' : 'a reveal'}: the code has expired, was used, or this step was done already`);
    sendJson(res, 200, { ok: true });
  }

  function singleQuery(search: URLSearchParams): Record<string, string> {
    const query: Record<string, string> = {};
    for (const [key, value] of search) {
      if (key in query) throw new HttpError('bad_request', `query parameter ${key} is given twice`);
      query[key] = value;
    }
    return query;
  }

  type Handler = (req: IncomingMessage, res: ServerResponse, params: Record<string, string>, search: URLSearchParams) => Promise<void>;
  // One handler per route of the table (relay/routes.ts, which says what each requires to sign in).
  const handlers: Record<RouteName, Handler> = {
    health: async (_req, res) => sendJson(res, 200, { ok: true, protocol: RELAY_PROTOCOL, revision: RELAY_REVISION }),
    enrol: (req, res, p) => enrol(req, res, p.motebit!),
    devices: (req, res, p, search) => listDevices(req, res, p.motebit!, search),
    revoke: (req, res, p) => revoke(req, res, p.motebit!, p.device!),
    push: (req, res, p) => push(req, res, p.motebit!),
    pull: (req, res, p, search) => pull(req, res, p.motebit!, search),
    frontier: (req, res, p, search) => frontier(req, res, p.motebit!, search),
    membership: (req, res, p, search) => readMembership(req, res, p.motebit!, search),
    offerMembership: (req, res, p) => offerMembership(req, res, p.motebit!),
    ws: async () => {
      throw new HttpError('bad_request', 'this endpoint is a WebSocket: send an upgrade request');
    },
    beginSnapshot: (req, res, p) => beginSnapshot(req, res, p.motebit!),
    latestSnapshot: (req, res, p, search) => latestSnapshot(req, res, p.motebit!, search),
    putSnapshotChunk: (req, res, p) => putSnapshotChunk(req, res, p.motebit!, p.snapshot!, p.chunk!),
    snapshotChunk: (req, res, p, search) => readSnapshotChunk(req, res, p.motebit!, p.snapshot!, p.chunk!, search),
    commitSnapshot: (req, res, p) => commitSnapshot(req, res, p.motebit!, p.snapshot!),
    ack: (req, res, p) => postAck(req, res, p.motebit!),
    createPairing: (req, res) => createPairing(req, res),
    pairing: (req, res, p) => readPairing(req, res, p.pairing!),
    pairingOffer: (req, res, p) => pairingStep(req, res, p.pairing!, 'offer'),
    pairingReveal: (req, res, p) => pairingStep(req, res, p.pairing!, 'reveal'),
  };

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const target = parseRequestTarget(req.url);
    if (!target) throw new HttpError('bad_request', 'the request target must be a path such as /healthz');
    // No /metrics here: its counters move whenever any motebit writes, so it is for the operator only,
    // on its own listener (metricsPort).
    const match = matchRoute(req.method ?? '', target.pathname);
    if (match.kind === 'not_found') throw new HttpError('not_found', 'no such endpoint');
    if (match.kind === 'method_not_allowed') throw new HttpError('method_not_allowed', `use ${match.allow.join(' or ')}`, { allow: match.allow.join(', ') });
    return handlers[match.route.name](req, res, match.params, target.searchParams);
  }

  // Responses still being written, per connection: an upgrade pipelined behind one waits until that
  // answer is out (else the 101 would go first and the answer would be written into the WebSocket).
  const unanswered = new WeakMap<object, { count: number; then: (() => void)[] }>();
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const started = performance.now();
    const pending = unanswered.get(req.socket) ?? { count: 0, then: [] };
    unanswered.set(req.socket, pending);
    pending.count++;
    res.on('close', () => {
      if (--pending.count > 0) return;
      for (const next of pending.then.splice(0)) next();
    });
    res.on('finish', () => {
      metrics.httpResponses.inc({ status: String(res.statusCode) });
      log.debug({ method: req.method, path: loggablePath(req.url), status: res.statusCode, ms: Math.round(performance.now() - started) }, 'http');
    });
    route(req, res).catch((error: unknown) => answerError(req, res, error));
  });

  function answerError(req: IncomingMessage, res: ServerResponse, error: unknown): void {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    if (error instanceof HttpError) {
      // Refused before its body was read (a bad token, say): answer now, and discard the body as it comes
      // (a bounded amount; beyond it the connection is dropped), so the answer reaches a client still
      // sending it and nothing of the body is kept.
      const early = !req.complete && !req.destroyed && !req.readableDidRead;
      if (early) discard(req, limits.maxRequestBytes);
      else if (error.code === 'payload_too_large' || !req.complete) res.setHeader('connection', 'close');
      sendError(res, error.code, error.message, error.headers, error.quota);
      if (error.code !== 'not_found') log.info({ method: req.method, path: loggablePath(req.url), code: error.code, ...(error.quota ? { quota: error.quota } : {}) }, 'request refused');
      return;
    }
    // The client went away mid-body (the body's stream ends with 'aborted', ECONNRESET): nothing failed here.
    if ((req.destroyed && !req.complete) || (error instanceof Error && (error as NodeJS.ErrnoException).code === 'ECONNRESET' && !req.complete)) {
      log.debug({ method: req.method, path: loggablePath(req.url) }, 'client left before its request body was complete');
      return;
    }
    log.error({ err: error instanceof Error ? error.message : String(error) }, 'request failed');
    sendError(res, 'internal', 'the relay could not handle the request');
  }

  server.on('clientError', (_error, socket: Duplex) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
    else socket.destroy();
  });

  // ---- Metrics, on their own listener ----

  metricsServer?.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const only = parseRequestTarget(req.url)?.pathname === '/metrics' && req.method === 'GET';
    if (!only) {
      sendError(res, 'not_found', 'this listener serves GET /metrics only');
      return;
    }
    metrics.registry.metrics().then(
      (text) => {
        res.writeHead(200, { 'content-type': metrics.registry.contentType, 'cache-control': 'no-store' });
        res.end(text);
      },
      (error: unknown) => {
        log.error({ err: error instanceof Error ? error.message : String(error) }, 'metrics failed');
        sendError(res, 'internal', 'the relay could not collect its metrics');
      },
    );
  });

  // ---- WebSocket ----

  let closing = false;
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const guarded = (): void => {
      try {
        upgrade(req, socket, head);
      } catch (error) {
        // A bug here must cost one connection, never the process.
        log.error({ err: error instanceof Error ? error.message : String(error) }, 'upgrade failed');
        socket.destroy();
      }
    };
    const pending = unanswered.get(req.socket);
    if (pending && pending.count > 0) pending.then.push(guarded);
    else guarded();
  });
  function upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    const match = matchRoute('GET', parseRequestTarget(req.url)?.pathname ?? '');
    const motebitId = match.kind === 'route' && match.route.name === 'ws' ? match.params.motebit : undefined;
    if (closing || !motebitId) {
      rejectUpgrade(socket, closing ? 503 : 404);
      return;
    }
    if (connections.size >= limits.maxConnections) {
      metrics.upgradesRefused.inc({ cap: 'connections' });
      rejectUpgrade(socket, 503);
      return;
    }
    // Until it authenticates a socket is nobody's: it counts against its client's address and against
    // all sockets waiting, never against the motebit its URL names.
    const address = clientAddress(req, trustProxy);
    const room = ctx.sockets.canWait(address, limits);
    if (room !== 'ok') {
      metrics.upgradesRefused.inc({ cap: room === 'address' ? 'unauthenticated_per_address' : 'unauthenticated' });
      rejectUpgrade(socket, room === 'address' ? 429 : 503);
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      const connection = new Connection(ws, motebitId, address, ctx);
      connections.add(connection);
      ws.on('close', () => connections.delete(connection));
    });
  }

  const heartbeat = setInterval(() => {
    for (const connection of connections) connection.heartbeat();
  }, limits.heartbeatMs);
  heartbeat.unref();
  const pruner = setInterval(() => {
    store.pruneNonces(nowSeconds()).catch((error: unknown) => log.error({ err: String(error) }, 'nonce pruning failed'));
    store.prunePairings(nowSeconds()).catch((error: unknown) => log.error({ err: String(error) }, 'pairing pruning failed'));
    store.pruneSnapshotUploads(Date.now() - SNAPSHOT_UPLOAD_TTL_MS).catch((error: unknown) => log.error({ err: String(error) }, 'snapshot upload pruning failed'));
    for (const limiter of [ctx.rateLimiter, ctx.wsAuthLimiter, newMotebitLimiter, pairingCreateLimiter, pairingLimiter]) limiter.prune();
  }, NONCE_PRUNE_MS);
  pruner.unref();
  await store.pruneNonces(nowSeconds());

  log.info({ url, audience, protocol: RELAY_PROTOCOL, ...(metricsUrl ? { metrics_url: metricsUrl } : {}) }, 'relay listening');

  let closed: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closed ??= (async () => {
      closing = true;
      clearInterval(heartbeat);
      clearInterval(pruner);
      const httpDone = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const socketsDone = Promise.all(
        [...connections].map(
          (connection) =>
            new Promise<void>((resolve) => {
              connection.onClosed(resolve);
              connection.close(CLOSE_CODES.goingAway, 'relay shutting down');
            }),
        ),
      );
      const grace = new Promise<void>((resolve) => setTimeout(resolve, SHUTDOWN_GRACE_MS).unref());
      const metricsDone = new Promise<void>((resolve) => (metricsServer ? metricsServer.close(() => resolve()) : resolve()));
      metricsServer?.closeIdleConnections();
      await Promise.race([Promise.all([httpDone, socketsDone, metricsDone]), grace]);
      server.closeAllConnections();
      metricsServer?.closeAllConnections();
      for (const client of wss.clients) client.terminate();
      wss.close();
      await ctx.presence.flush();
      await store.close();
      log.info({ url }, 'relay closed');
    })();
    return closed;
  };

  return { url, audience, ...(metricsUrl ? { metricsUrl } : {}), close, stats: () => ({ connections: [...connections].map((connection) => connection.stats()) }) };
}

function pickLimits(options: RelayOptions): LimitsInput {
  const {
    host: _host,
    port: _port,
    db: _db,
    store: _store,
    audience: _audience,
    trustProxy: _trustProxy,
    metricsPort: _metricsPort,
    metricsHost: _metricsHost,
    logLevel: _logLevel,
    logger: _logger,
    ...limits
  } = options;
  return limits;
}

/** Listens and answers the server's base URL, http://host:port. */
async function listen(server: Server, port: number, host: string): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  return `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`;
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

function sendError(res: ServerResponse, code: ErrorCode, message: string, headers: Record<string, string> = {}, quota?: QuotaName): void {
  sendJson(res, ERROR_STATUS[code], { error: { code, ...(quota ? { quota } : {}), message } }, headers);
}

const UPGRADE_REFUSALS = { 404: 'Not Found', 429: 'Too Many Requests', 503: 'Service Unavailable' } as const;

function rejectUpgrade(socket: Duplex, status: keyof typeof UPGRADE_REFUSALS): void {
  const text = UPGRADE_REFUSALS[status];
  socket.end(`HTTP/1.1 ${status} ${text}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
}

/** Discards the rest of a body in the background; past 4x the cap the connection is dropped instead. */
function discard(req: IncomingMessage, cap: number): void {
  drain(req, cap).then(
    () => {
      if (!req.complete) req.socket.destroy();
    },
    () => req.socket.destroy(),
  );
}

/** Reads and discards a body (up to 4x the cap), so an early answer still reaches the client. */
async function drain(req: IncomingMessage, cap: number): Promise<void> {
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.byteLength;
    if (size > cap * 4) return;
  }
}
