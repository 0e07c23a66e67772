// A small typed HTTP client for the relay (docs/protocol.md §7): one fresh single-use token per request,
// every response validated against the shared schemas, every failure a classified TransportError.
import { canonicalAudience } from '../../shared/audience.ts';
import type { z } from 'zod';
import type { SigningKey } from '../../shared/crypto.ts';
import { fromBase64Url, toBase64Url } from '../../shared/encoding.ts';
import { certifyDevice } from '../../shared/event.ts';
import { signAck } from '../../shared/ack.ts';
import {
  AckResponseSchema,
  LatestSnapshotResponseSchema,
  SnapshotBeginResponseSchema,
  SnapshotChunkDataSchema,
  SnapshotChunkResponseSchema,
  SnapshotCommitResponseSchema,
  type LatestSnapshotResponse,
  type SnapshotBegin,
  type SnapshotBeginResponse,
  type SnapshotInfo,
  DeviceListResponseSchema,
  EnrolResponseSchema,
  ErrorBodySchema,
  FrontierResponseSchema,
  HealthResponseSchema,
  type HealthResponse,
  MembershipOfferResponseSchema,
  MembershipResponseSchema,
  MAX_PULL_LIMIT,
  PairingCreatedSchema,
  PairingStateSchema,
  PairingStepResponseSchema,
  PullResponseSchema,
  PushResponseSchema,
  RevokeResponseSchema,
  type DeviceInfo,
  type DeviceListResponse,
  type EnrolRequest,
  type EnrolResponse,
  type FrontierResponse,
  type PullResponse,
  type PushResponse,
  type RevokeResponse,
  type MembershipResponse,
  type PairingOffer,
  type PairingState,
} from '../../shared/portable/relay-api.ts';
import type { MemberKey } from '../../shared/membership/entry.ts';
import { IDENTITY_SIGNER, mintToken } from '../../shared/token.ts';
import type { WireEvent } from '../../shared/portable/wire.ts';
import { QUOTA_EXCEEDED, TransportError, quotaExceeded } from './transport.ts';

export const DEFAULT_REQUEST_TIMEOUT_MS = 15_000;

export interface RelayClientOptions {
  /** The relay's base URL, an origin such as https://relay.example or http://127.0.0.1:8787. */
  relayUrl: string;
  motebitId: string;
  deviceId: string;
  deviceKey: SigningKey;
  /** The audience tokens name; defaults to the relay URL's origin (what a relay uses unless told otherwise), loopback names as 127.0.0.1 (shared/audience.ts). */
  audience?: string;
  /** Per request, including reading the response body. */
  timeoutMs?: number;
  fetch?: typeof fetch;
}

export interface EnrolDeviceOptions {
  /** The motebit identity key (signs the request). */
  identityKey: SigningKey;
  /** The public key of the device to enrol; defaults to this client's device. */
  deviceKey?: Uint8Array;
  /** certifyDevice(identity, motebitId, deviceKey); computed from identityKey when omitted. */
  cert?: string;
  name?: string;
}

export interface RevokeDeviceOptions {
  identityKey: SigningKey;
  deviceId: string;
}

interface Signed {
  signer: string;
  key: SigningKey;
}

/** 'auth' for 401/403, 'network' for 5xx, 'refused' for any other refusal. */
export function kindOfStatus(status: number): TransportError['kind'] {
  if (status === 401 || status === 403) return 'auth';
  if (status >= 500) return 'network';
  return 'refused';
}

/**
 * Whether a relay answers at `relayUrl` (GET /healthz), before any identity exists: TransportError when not.
 * An unsigned request never reads the client's motebit, device or key, so none is needed.
 */
export async function checkRelay(relayUrl: string, options: Pick<RelayClientOptions, 'timeoutMs' | 'fetch'> = {}): Promise<void> {
  const unsigned: SigningKey = {
    publicKey: Buffer.alloc(32),
    sign: () => {
      throw new Error('an unsigned health check never signs');
    },
  };
  await new RelayClient({ ...options, relayUrl, motebitId: '', deviceId: '', deviceKey: unsigned }).health();
}

export class RelayClient {
  readonly relayUrl: string;
  readonly audience: string;
  readonly motebitId: string;
  readonly deviceId: string;
  readonly #deviceKey: SigningKey;
  readonly #timeoutMs: number;
  readonly #fetch: typeof fetch;

  constructor(options: RelayClientOptions) {
    const url = new URL(options.relayUrl);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError('the relay URL is http: or https:');
    if (url.pathname !== '/' || url.search !== '' || url.hash !== '') throw new TypeError('the relay URL is an origin, without a path');
    this.relayUrl = url.origin;
    this.audience = options.audience ?? canonicalAudience(url.origin);
    this.motebitId = options.motebitId;
    this.deviceId = options.deviceId;
    this.#deviceKey = options.deviceKey;
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.#fetch = options.fetch ?? fetch;
  }

  get #device(): Signed {
    return { signer: this.deviceId, key: this.#deviceKey };
  }

  get #base(): string {
    return `/v1/motebits/${this.motebitId}`;
  }

  /** The relay's protocol and revision (unsigned). */
  async health(): Promise<HealthResponse> {
    return this.#request('GET', '/healthz', undefined, null, HealthResponseSchema);
  }

  async push(events: readonly WireEvent[]): Promise<PushResponse> {
    return this.#request('POST', `${this.#base}/events`, { events }, this.#device, PushResponseSchema);
  }

  async pull(after: number, limit: number = MAX_PULL_LIMIT): Promise<PullResponse> {
    return this.#request('GET', `${this.#base}/events?after=${after}&limit=${limit}`, undefined, this.#device, PullResponseSchema);
  }

  /** The relay log's epoch, head, each writer's highest stored device_seq, and (given `at`) the event at that seq. */
  async frontier(at?: number): Promise<FrontierResponse> {
    return this.#request('GET', `${this.#base}/frontier${at === undefined ? '' : `?at=${at}`}`, undefined, this.#device, FrontierResponseSchema);
  }

  async listDevices(): Promise<DeviceInfo[]> {
    return (await this.deviceList()).devices;
  }

  /** The device list with the log's head (when the relay says it), to tell how far behind each device is. */
  async deviceList(): Promise<DeviceListResponse> {
    return this.#request('GET', `${this.#base}/devices`, undefined, this.#device, DeviceListResponseSchema);
  }

  /** The motebit's membership entries after `after` (-1: all) and the relay's last entry number (docs/keys.md). */
  async membership(after: number): Promise<MembershipResponse> {
    return this.#request('GET', `${this.#base}/membership${after === -1 ? '' : `?after=${after}`}`, undefined, this.#device, MembershipResponseSchema);
  }

  /** Offers entries for the relay to check and append; answers the relay's new last entry number. */
  async offerMembership(entries: readonly unknown[]): Promise<number> {
    return (await this.#request('POST', `${this.#base}/membership`, { entries }, this.#device, MembershipOfferResponseSchema)).head;
  }

  // Snapshots and acknowledgements (docs/protocol.md §7, "Snapshots and compaction"): the relay stores a
  // sealed snapshot in chunks and never reads it; uploads and downloads resume by chunk index.

  /** Begins (or resumes) this device's upload of a snapshot: answers whether it is complete and which chunks the relay holds. */
  async beginSnapshot(begin: SnapshotBegin): Promise<SnapshotBeginResponse> {
    return this.#request('POST', `${this.#base}/snapshots`, begin, this.#device, SnapshotBeginResponseSchema);
  }

  /** Sends chunk `index` (raw bytes; chunk_bytes long, the last one the remainder); answers how many chunks the relay holds. */
  async putSnapshotChunk(snapshotId: string, index: number, data: Uint8Array): Promise<number> {
    return (await this.#request('POST', `${this.#base}/snapshots/${snapshotId}/chunks/${index}`, { data: toBase64Url(data) }, this.#device, SnapshotChunkResponseSchema)).received;
  }

  /** Completes the upload once every chunk is there (the relay checks the whole blob's SHA-256): it becomes the latest snapshot. */
  async commitSnapshot(snapshotId: string): Promise<SnapshotInfo> {
    return (await this.#request('POST', `${this.#base}/snapshots/${snapshotId}/commit`, {}, this.#device, SnapshotCommitResponseSchema)).snapshot;
  }

  /** The newest complete snapshot (null when none), and every live device's newest signed acknowledgement. */
  async latestSnapshot(): Promise<LatestSnapshotResponse> {
    return this.#request('GET', `${this.#base}/snapshots/latest`, undefined, this.#device, LatestSnapshotResponseSchema);
  }

  /** Chunk `index` of a complete snapshot, as raw bytes. */
  async snapshotChunk(snapshotId: string, index: number): Promise<Buffer> {
    return fromBase64Url((await this.#request('GET', `${this.#base}/snapshots/${snapshotId}/chunks/${index}`, undefined, this.#device, SnapshotChunkDataSchema)).data);
  }

  /** Acknowledges what this device has applied ({ device_id: highest device_seq }), signed with its key, at `at` (Unix ms). */
  async postAck(covers: Readonly<Record<string, number>>, at: number = Date.now()): Promise<void> {
    const sig = signAck(this.#deviceKey, { motebitId: this.motebitId, deviceId: this.deviceId, covers, at });
    await this.#request('POST', `${this.#base}/acks`, { covers, at, sig }, this.#device, AckResponseSchema);
  }

  async enrolDevice(options: EnrolDeviceOptions): Promise<EnrolResponse> {
    const deviceKey = options.deviceKey ?? this.#deviceKey.publicKey;
    const body: EnrolRequest = {
      identity_key: toBase64Url(options.identityKey.publicKey),
      device_key: toBase64Url(deviceKey),
      cert: options.cert ?? certifyDevice(options.identityKey, this.motebitId, deviceKey),
      ...(options.name === undefined ? {} : { name: options.name }),
    };
    return this.#request('POST', `${this.#base}/devices`, body, { signer: IDENTITY_SIGNER, key: options.identityKey }, EnrolResponseSchema);
  }

  async revokeDevice(options: RevokeDeviceOptions): Promise<RevokeResponse> {
    return this.#request('POST', `${this.#base}/devices/${options.deviceId}/revoke`, {}, { signer: IDENTITY_SIGNER, key: options.identityKey }, RevokeResponseSchema);
  }

  async #request<T>(method: 'GET' | 'POST', path: string, json: unknown, signed: Signed | null, schema: z.ZodType<T>): Promise<T> {
    const body = json === undefined ? undefined : JSON.stringify(json);
    const what = `${method} ${path.split('?')[0] ?? path}`;
    let answer: { status: number; text: string };
    try {
      answer = await this.#exchange(method, path, body, signed);
    } catch (error) {
      // A kept-alive connection the relay closed (it restarted) fails before any answer. Every request of
      // the protocol is idempotent (pushes by event id), so one retry on a new connection, with a fresh
      // single-use token, is safe.
      if (!isStaleConnection(error)) throw this.#unreachable(what, error);
      try {
        answer = await this.#exchange(method, path, body, signed);
      } catch (again) {
        throw this.#unreachable(what, again);
      }
    }
    const { status, text } = answer;
    let parsed: unknown;
    let isJson = true;
    try {
      parsed = JSON.parse(text);
    } catch {
      isJson = false;
    }
    if (status < 200 || status >= 300) {
      const refusal = isJson ? ErrorBodySchema.safeParse(parsed) : undefined;
      const code = refusal?.success ? refusal.data.error.code : undefined;
      // A quota refusal is a 403 but no auth problem: the device says what it means in its own words.
      if (code === QUOTA_EXCEEDED) throw quotaExceeded(refusal?.data?.error.quota);
      const message = refusal?.success ? refusal.data.error.message : `HTTP ${status}`;
      throw new TransportError(kindOfStatus(status), `${what}: ${code ?? 'refused'}: ${message}`, code === undefined ? {} : { code });
    }
    if (!isJson) throw new TransportError('protocol', `${what}: the relay answered ${status} with a body that is not JSON`);
    const result = schema.safeParse(parsed);
    if (!result.success) throw new TransportError('protocol', `${what}: unexpected answer from the relay: ${result.error.issues[0]?.message ?? 'invalid'}`, { cause: result.error });
    return result.data;
  }

  async #exchange(method: 'GET' | 'POST', path: string, body: string | undefined, signed: Signed | null): Promise<{ status: number; text: string }> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (signed) {
      const token = mintToken({ motebitId: this.motebitId, signer: signed.signer, key: signed.key, audience: this.audience, request: { method, path, ...(body === undefined ? {} : { body }) } });
      headers.authorization = `Motebit ${token}`;
    }
    const response = await this.#fetch(this.relayUrl + path, {
      method,
      headers,
      ...(body === undefined ? {} : { body }),
      signal: AbortSignal.timeout(this.#timeoutMs),
      redirect: 'error',
    });
    return { status: response.status, text: await response.text() };
  }

  #unreachable(what: string, error: unknown): TransportError {
    const timedOut = error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError');
    return new TransportError('network', timedOut ? `${what}: no answer from the relay within ${this.#timeoutMs} ms` : `${what}: cannot reach the relay (${describe(error)})`, { cause: error });
  }

  // Pairing by approval (docs/keys.md): unsigned, so a device that is not yet a member can make them (its
  // motebit, device id and key are never read).

  /** Opens a rendezvous for a new device's public keys: its id (what the code carries) and expiry (seconds). */
  async openPairing(member: MemberKey): Promise<{ id: string; expires_at: number }> {
    return this.#request('POST', '/v1/pairings', { member }, null, PairingCreatedSchema);
  }

  /** What the rendezvous holds so far: the new device's keys, the member's offer, the new device's reveal. */
  async pairing(id: string): Promise<PairingState> {
    return this.#request('GET', `/v1/pairings/${id}`, undefined, null, PairingStateSchema);
  }

  /** The member's commitment to the motebit the new device joins (taken once). */
  async offerPairing(id: string, offer: PairingOffer): Promise<void> {
    await this.#request('POST', `/v1/pairings/${id}/offer`, offer, null, PairingStepResponseSchema);
  }

  /** The new device's nonce, once the offer is there (taken once). */
  async revealPairing(id: string, nonceB64: string): Promise<void> {
    await this.#request('POST', `/v1/pairings/${id}/reveal`, { nonce: nonceB64 }, null, PairingStepResponseSchema);
  }
}

/** A request that failed on a pooled connection the other side had closed, before any answer. */
function isStaleConnection(error: unknown): boolean {
  const code = error instanceof Error && error.cause instanceof Error && 'code' in error.cause ? error.cause.code : undefined;
  return code === 'UND_ERR_SOCKET' || code === 'ECONNRESET' || code === 'UND_ERR_CLOSED';
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause;
  if (cause instanceof Error) return 'code' in cause && typeof cause.code === 'string' ? cause.code : cause.message;
  return error.message;
}
