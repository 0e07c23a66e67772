// A plaintext envelope and the event it carries (main/sync/codec.ts): the body is the base64url of the
// event's canonical JSON; a received body must be JSON, no deeper than events may be, and the event its
// envelope names (so a relay cannot swap bodies between envelopes). Each refusal in its words.
import { describe, expect, it } from 'vitest';
import { fromWire, toWire } from '../../main/sync/codec.ts';
import type { ReceivedEvent } from '../../main/sync/transport.ts';
import { canonicalJson, toBase64Url } from '../../shared/encoding.ts';
import { GENESIS_HASH, PROTOCOL_VERSION, type SealedEvent } from '../../shared/portable/event.ts';
import { MAX_EVENT_DEPTH } from '../../shared/portable/json-bounds.ts';

const EVENT: SealedEvent = {
  v: PROTOCOL_VERSION,
  motebit_id: 'mb_AAAAAAAAAAAAAAAAAAAAAA',
  device_id: 'dv_BBBBBBBBBBBBBBBBBBBBBB',
  event_id: '0b7e3c1a-5d2f-4a9e-8c61-3f2d9a7b4e10',
  device_seq: 3,
  prev: GENESIS_HASH,
  clock: { l: 3, v: { dv_BBBBBBBBBBBBBBBBBBBBBB: 3 } },
  entity: 'memory/1',
  op: 'set',
  payload: { text: 'hello' },
  ts: 1_700_000_000_000,
};

const received = (body: string, envelope: Partial<ReceivedEvent> = {}): ReceivedEvent => ({
  seq: 7,
  event_id: EVENT.event_id,
  device_id: EVENT.device_id,
  device_seq: EVENT.device_seq,
  key_id: null,
  body: toBase64Url(Buffer.from(body)),
  ...envelope,
});

describe('the plaintext envelope', () => {
  it('carries the canonical JSON of the event, named by its id, device and number', () => {
    const wire = toWire(EVENT);
    expect(wire).toEqual({ event_id: EVENT.event_id, device_id: EVENT.device_id, device_seq: 3, key_id: null, body: toBase64Url(Buffer.from(canonicalJson(EVENT))) });
    expect(fromWire({ ...wire, seq: 7 })).toEqual({ ok: true, event: EVENT, text: canonicalJson(EVENT) });
  });

  it('passes on a problem the transport already found', () => {
    const problem = { code: 'decrypt_failed', message: 'event x does not open' } as const;
    expect(fromWire({ ...received(canonicalJson(EVENT)), problem })).toEqual({ ok: false, problem });
  });

  it('refuses a body that is not JSON, or nested deeper than an event may be', () => {
    expect(fromWire(received('{"not json'))).toEqual({ ok: false, problem: { code: 'unreadable', message: `event ${EVENT.event_id} has a body that is not JSON` } });
    const nested = (depth: number): string => `${'['.repeat(depth)}${']'.repeat(depth)}`;
    expect(fromWire(received(nested(MAX_EVENT_DEPTH + 1)))).toEqual({ ok: false, problem: { code: 'unreadable', message: `event ${EVENT.event_id} is nested deeper than ${MAX_EVENT_DEPTH} levels` } });
    // At the bound it is JSON; it is not this envelope's event, so it is refused for that instead.
    expect(fromWire(received(nested(MAX_EVENT_DEPTH)))).toMatchObject({ ok: false, problem: { code: 'envelope_mismatch' } });
  });

  it("refuses the body of another event: another id, device or number, or no event at all", () => {
    const mismatch = { ok: false, problem: { code: 'envelope_mismatch', message: `event ${EVENT.event_id} carries the body of another event` } };
    for (const other of [{ event_id: '5d1c7b0e-2f3a-4e8b-9c6d-7a1b2c3d4e5f' }, { device_id: 'dv_CCCCCCCCCCCCCCCCCCCCCC' }, { device_seq: 4 }]) {
      expect(fromWire(received(canonicalJson({ ...EVENT, ...other }))), JSON.stringify(other)).toEqual(mismatch);
    }
    expect(fromWire(received('null'))).toEqual(mismatch);
  });
});
