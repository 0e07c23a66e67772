// Between the store's events and what the relay carries: the body of a plaintext envelope is the
// base64url of the event's canonical JSON (the encrypted transport then replaces it with ciphertext).
import { canonicalBytes, fromBase64Url, toBase64Url } from '../../shared/encoding.ts';
import type { SealedEvent } from '../../shared/portable/event.ts';
import { MAX_EVENT_DEPTH, jsonTextDepth } from '../../shared/portable/json-bounds.ts';
import type { WireEvent } from '../../shared/portable/wire.ts';
import type { EventProblem, ReceivedEvent } from './transport.ts';

export function toWire(event: SealedEvent): WireEvent {
  return {
    event_id: event.event_id,
    device_id: event.device_id,
    device_seq: event.device_seq,
    key_id: null,
    body: toBase64Url(canonicalBytes(event)),
  };
}

export type Decoded =
  | { ok: true; event: unknown; /** the JSON text it arrived as */ text: string }
  | { ok: false; problem: EventProblem | { code: 'unreadable' | 'envelope_mismatch'; message: string } };

/**
 * Opens a received plaintext envelope. The event inside is validated by the store; here we only check it
 * is JSON and that it is the event the envelope names, so a relay cannot swap bodies between envelopes.
 */
export function fromWire(received: ReceivedEvent): Decoded {
  if (received.problem) return { ok: false, problem: received.problem };
  let event: unknown;
  let text: string;
  try {
    text = fromBase64Url(received.body).toString('utf8');
    if (jsonTextDepth(text, MAX_EVENT_DEPTH) > MAX_EVENT_DEPTH) {
      return { ok: false, problem: { code: 'unreadable', message: `event ${received.event_id} is nested deeper than ${MAX_EVENT_DEPTH} levels` } };
    }
    event = JSON.parse(text);
  } catch {
    return { ok: false, problem: { code: 'unreadable', message: `event ${received.event_id} has a body that is not JSON` } };
  }
  const inner = event as Partial<SealedEvent> | null;
  if (!inner || inner.event_id !== received.event_id || inner.device_id !== received.device_id || inner.device_seq !== received.device_seq) {
    return { ok: false, problem: { code: 'envelope_mismatch', message: `event ${received.event_id} carries the body of another event` } };
  }
  return { ok: true, event, text };
}
