// End-to-end encryption around any Transport: bodies leave the device sealed with AES-256-GCM under the
// motebit's current key, bound to their envelope (shared/envelope-crypto.ts), and come back opened. Only
// bodies change; ordering, cursors, acks and failures are the inner transport's. A received event that
// cannot be opened is handed on with a `problem` and its body untouched, never thrown: one bad event must
// not stop the stream. Each key is imported once per key id and bytes (BodyKeyCache), and looked up once
// per received page.
import type { KeyObject } from 'node:crypto';
import { fromBase64Url, toBase64Url } from '../../shared/encoding.ts';
import { BODY_KEY_BYTES, BodyKeyCache, envelopeAad, openBody, sealBody } from '../../shared/envelope-crypto.ts';
import type { PushResult } from '../../shared/portable/relay-api.ts';
import type { WireEvent } from '../../shared/portable/wire.ts';
import type { EventSink, ReceivedEvent, Transport, TransportError } from './transport.ts';

export interface BodyKey {
  /** base64url-safe, 1–64 characters (the wire's key_id). */
  readonly id: string;
  /** 32 bytes. */
  readonly key: Buffer;
}

export interface BodyKeyring {
  /** The key new events are sealed with. */
  readonly current: BodyKey;
  /** Any key by id (old ones too), or undefined when this device does not have it. */
  byId(id: string): Buffer | undefined;
}

export interface EncryptedTransportOptions {
  inner: Transport;
  keys: BodyKeyring;
  motebitId: string;
}

const KEY_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** A key id as a page resolves it: the imported key, or why there is none that can open anything. */
type ResolvedKey = KeyObject | 'missing' | 'wrong_size';

export class EncryptedTransport implements Transport {
  readonly inner: Transport;
  readonly #keys: BodyKeyring;
  readonly #motebitId: string;
  readonly #imported = new BodyKeyCache();

  constructor(options: EncryptedTransportOptions) {
    const { current } = options.keys;
    if (!KEY_ID.test(current.id)) throw new RangeError('a key id is 1 to 64 base64url characters');
    if (current.key.byteLength !== BODY_KEY_BYTES) throw new RangeError(`a body key is ${BODY_KEY_BYTES} bytes`);
    this.inner = options.inner;
    this.#keys = options.keys;
    this.#motebitId = options.motebitId;
  }

  get kind(): Transport['kind'] {
    return this.inner.kind;
  }

  get epoch(): string | null {
    return this.inner.epoch;
  }

  get pushesInFlight(): number {
    return this.inner.pushesInFlight;
  }

  open(after: number, sink: EventSink, epoch: string | null = null): Promise<void> {
    return this.inner.open(after, (events) => sink(this.openEvents(events)), epoch);
  }

  push(events: readonly WireEvent[]): Promise<PushResult[]> {
    return this.inner.push(events.map((event) => this.sealEvent(event)));
  }

  catchUp(): Promise<number> {
    return this.inner.catchUp();
  }

  onDown(listener: (error: TransportError) => void): void {
    this.inner.onDown(listener);
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  /** Seals a plaintext event under the current key; an event already sealed (a retry) goes as it is. */
  sealEvent(event: WireEvent): WireEvent {
    if (event.key_id !== null) return event;
    const { id, key } = this.#keys.current;
    const aad = envelopeAad({ motebit_id: this.#motebitId, device_id: event.device_id, event_id: event.event_id, device_seq: event.device_seq, key_id: id });
    return { ...event, key_id: id, body: toBase64Url(sealBody(this.#imported.key(id, key), fromBase64Url(event.body), aad)) };
  }

  /** Opens a received page; each key id in it is looked up in the keyring once. */
  openEvents(events: readonly ReceivedEvent[]): ReceivedEvent[] {
    const keys = new Map<string, ResolvedKey>();
    return events.map((event) => this.#open(event, keys));
  }

  /** Opens a received event, or returns it untouched with the problem that kept it closed. */
  openEvent(event: ReceivedEvent): ReceivedEvent {
    return this.#open(event, new Map<string, ResolvedKey>());
  }

  #open(event: ReceivedEvent, keys: Map<string, ResolvedKey>): ReceivedEvent {
    if (event.problem) return event;
    const keyId = event.key_id;
    if (keyId === null) return { ...event, problem: { code: 'not_encrypted', message: 'the body is plaintext, but this motebit encrypts its events' } };
    let key = keys.get(keyId);
    if (key === undefined) {
      key = this.#keyOf(keyId);
      keys.set(keyId, key);
    }
    if (key === 'missing') return { ...event, problem: { code: 'unknown_key', message: `this device does not have key ${keyId}` } };
    const aad = envelopeAad({ motebit_id: this.#motebitId, device_id: event.device_id, event_id: event.event_id, device_seq: event.device_seq, key_id: keyId });
    const plaintext = key === 'wrong_size' ? null : openBody(key, fromBase64Url(event.body), aad);
    if (!plaintext) return { ...event, problem: { code: 'decrypt_failed', message: `the body does not open under key ${keyId} for this envelope` } };
    return { ...event, key_id: null, body: toBase64Url(plaintext) };
  }

  /** The key with this id, imported (once per id and bytes). */
  #keyOf(keyId: string): ResolvedKey {
    const bytes = keyId === this.#keys.current.id ? this.#keys.current.key : this.#keys.byId(keyId);
    if (!bytes) return 'missing';
    // A key of the wrong size opens nothing: its events fail to decrypt, as under any wrong key.
    if (bytes.byteLength !== BODY_KEY_BYTES) return 'wrong_size';
    return this.#imported.key(keyId, bytes);
  }
}
