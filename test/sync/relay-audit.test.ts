// What a device concludes from what its relay served (main/sync/relay-audit.ts), each rule at its edges:
// the log is another one when its epoch differs (not before a first sync), its head is behind the cursor
// (not at it) or it holds another event at the cursor's seq; a writer is undelivered when the relay names
// more of its events than are held here (not as many), leaving out this device and writers being repaired;
// and every word of the sentences a person reads about it.
import { describe, expect, it } from 'vitest';
import { describeMissing, describeRepairs, judgeRelayLog, type KnownLog, recoveryText, shortDevice, undelivered } from '../../main/sync/relay-audit.ts';
import type { Repair } from '../../main/store/relay-ledger.ts';

const ME = 'dv_MeMeMeMe7kR2xQ9vLp0aZs';
const ALICE = 'dv_AbCdEfGhIjKlMnOpQrStUv';
const BOB = 'dv_Xy9_Kq-4Tz3mWb8nRc2LdE';
const CAROL = 'dv_P0qR1sT2uV3wX4yZ5aB6cD';
const EPOCH = 'ep_8fJ2kLq9XzT4vN1wR6yB0c';
const OTHER_EPOCH = 'ep_Zq7Hn3Ws-Ud5Ke2Lp8Mr1t';
const EVENT = '0b7e3c1a-5d2f-4a9e-8c61-3f2d9a7b4e10';
const OTHER_EVENT = 'c4a19f62-7e03-4b58-9d2a-61e8f0b3c7d5';

// This device last received EVENT at relay seq 120, from the log of EPOCH.
const known: KnownLog = { epoch: EPOCH, cursor: 120, cursorEvent: { seq: 120, eventId: EVENT } };
const sameLog = { epoch: EPOCH, head: 120, at: { seq: 120, event_id: EVENT } };

const repair = (deviceId: string, deviceSeq: number, code: string, message: string): Repair => ({
  deviceId,
  relaySeq: deviceSeq + 700,
  deviceSeq,
  code,
  message,
  attempts: 1,
  firstAt: 1_700_000_000_000,
  quarantinedAt: null,
  retryAt: null,
});

describe('judgeRelayLog', () => {
  it('finds nothing wrong with the log this device synced with: same epoch, head at or past the cursor, the same event at the cursor', () => {
    expect(judgeRelayLog(known, sameLog)).toBeNull();
    expect(judgeRelayLog(known, { ...sameLog, head: 500 })).toBeNull();
  });

  it('reports a replaced relay when the epoch differs, but not before the first sync (no epoch known yet)', () => {
    expect(judgeRelayLog(known, { ...sameLog, epoch: OTHER_EPOCH })).toBe('relay_replaced');
    expect(judgeRelayLog({ epoch: null, cursor: 0, cursorEvent: null }, { epoch: OTHER_EPOCH, head: 0, at: null })).toBeNull();
    expect(judgeRelayLog({ ...known, epoch: null }, { ...sameLog, epoch: OTHER_EPOCH })).toBeNull();
  });

  it('reports a rollback when the head is behind the cursor, and not when it is at the cursor', () => {
    expect(judgeRelayLog(known, { ...sameLog, head: 119, at: null })).toBe('relay_rolled_back');
    expect(judgeRelayLog(known, { ...sameLog, head: 120, at: null })).toBeNull();
  });

  it('reports a rollback when the relay holds another event, or none, at the seq of the cursor event', () => {
    expect(judgeRelayLog(known, { ...sameLog, head: 300, at: { seq: 120, event_id: OTHER_EVENT } })).toBe('relay_rolled_back');
    expect(judgeRelayLog(known, { ...sameLog, head: 300, at: { seq: 120, event_id: null } })).toBe('relay_rolled_back');
  });

  it('compares events only with both at the same seq: not without the relay\'s answer, without a known cursor event, or at another seq', () => {
    expect(judgeRelayLog(known, { ...sameLog, at: null })).toBeNull();
    expect(judgeRelayLog({ ...known, cursorEvent: null }, { ...sameLog, at: { seq: 120, event_id: OTHER_EVENT } })).toBeNull();
    expect(judgeRelayLog(known, { ...sameLog, at: { seq: 119, event_id: OTHER_EVENT } })).toBeNull();
  });

  it('reports a replaced epoch as replaced, even when the head is behind and the event differs too', () => {
    expect(judgeRelayLog(known, { epoch: OTHER_EPOCH, head: 10, at: { seq: 120, event_id: OTHER_EVENT } })).toBe('relay_replaced');
  });
});

describe('undelivered', () => {
  const held = new Map([
    [ME, 10],
    [ALICE, 90],
    [BOB, 12],
    [CAROL, 7],
  ]);

  it('lists each writer the relay names more events of than are held here, with both counts, in the relay\'s order', () => {
    const devices = [
      { device_id: BOB, seq: 40 },
      { device_id: CAROL, seq: 7 },
      { device_id: ALICE, seq: 100 },
    ];
    expect(undelivered({ devices }, held, ME, new Set())).toEqual([
      { deviceId: BOB, held: 12, claimed: 40 },
      { deviceId: ALICE, held: 90, claimed: 100 },
    ]);
  });

  it('is no gap where this device holds as many events as the relay names, or more', () => {
    const devices = [
      { device_id: CAROL, seq: 7 },
      { device_id: ALICE, seq: 89 },
    ];
    expect(undelivered({ devices }, held, ME, new Set())).toEqual([]);
  });

  it('counts a writer not held here at all as held 0', () => {
    expect(undelivered({ devices: [{ device_id: CAROL, seq: 3 }] }, new Map(), ME, new Set())).toEqual([{ deviceId: CAROL, held: 0, claimed: 3 }]);
  });

  it('leaves out this device\'s own events and writers already being repaired', () => {
    const devices = [
      { device_id: ME, seq: 50 },
      { device_id: ALICE, seq: 100 },
      { device_id: BOB, seq: 40 },
    ];
    expect(undelivered({ devices }, held, ME, new Set([BOB]))).toEqual([{ deviceId: ALICE, held: 90, claimed: 100 }]);
  });
});

describe('the words', () => {
  it('shortens a device id to its first 11 characters: dv_ and 8 more', () => {
    expect(shortDevice(ALICE)).toBe('dv_AbCdEfGh');
  });

  it('describes each missing writer by its short id and both counts, joined by "; " (nothing for none)', () => {
    expect(describeMissing([{ deviceId: ALICE, held: 90, claimed: 100 }])).toBe('device dv_AbCdEfGh (this device has 90 of its 100 events)');
    expect(
      describeMissing([
        { deviceId: ALICE, held: 90, claimed: 100 },
        { deviceId: BOB, held: 0, claimed: 3 },
      ]),
    ).toBe('device dv_AbCdEfGh (this device has 90 of its 100 events); device dv_Xy9_Kq-4 (this device has 0 of its 3 events)');
    expect(describeMissing([])).toBe('');
  });

  it('describes each failed writer by its first failing event, short id, code and message, joined by "; "', () => {
    const badSignature = repair(ALICE, 57, 'bad_signature', 'the signature does not verify');
    const decryptFailed = repair(BOB, 3, 'decrypt_failed', 'the body does not open under key k1 for this envelope');
    expect(describeRepairs([badSignature])).toBe(
      'the relay served events that failed verification and were not applied: event 57 of device dv_AbCdEfGh (bad_signature: the signature does not verify)',
    );
    expect(describeRepairs([badSignature, decryptFailed])).toBe(
      'the relay served events that failed verification and were not applied: event 57 of device dv_AbCdEfGh (bad_signature: the signature does not verify); ' +
        'event 3 of device dv_Xy9_Kq-4 (decrypt_failed: the body does not open under key k1 for this envelope)',
    );
  });

  it('says what happened to the relay, for each reason', () => {
    expect(recoveryText({ reason: 'relay_replaced', resent: 5 })).toBe('The relay had lost data (its storage was replaced by an empty one); this device sent 5 events again.');
    expect(recoveryText({ reason: 'relay_rolled_back', resent: 5 })).toBe('The relay had lost data (it was restored from an older copy); this device sent 5 events again.');
    expect(recoveryText({ reason: 'relay_missing_events', resent: 5 })).toBe('The relay had lost data (it had lost some events); this device sent 5 events again.');
    expect(recoveryText({ reason: 'relay_skipped_events', resent: 5 })).toBe(
      'The relay had lost data (it had not sent some events, so the whole log was fetched again); this device sent 5 events again.',
    );
  });

  it('says how many events this device sent again: none (another device had), one event, or thousands with a separator', () => {
    expect(recoveryText({ reason: 'relay_replaced', resent: 0 })).toBe('The relay had lost data (its storage was replaced by an empty one); another device had already sent everything again.');
    expect(recoveryText({ reason: 'relay_replaced', resent: 1 })).toBe('The relay had lost data (its storage was replaced by an empty one); this device sent 1 event again.');
    expect(recoveryText({ reason: 'relay_replaced', resent: 2438 })).toBe('The relay had lost data (its storage was replaced by an empty one); this device sent 2,438 events again.');
  });
});
