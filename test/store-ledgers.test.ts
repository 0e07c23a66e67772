// The two ledgers beside a device's log (main/store/relay-ledger.ts, membership-ledger.ts), each rule on its
// own against a real SQLite file: what the device remembers of a relay that served bad events (the repair
// of a writer, its quarantine and release), of the relay it moves away from, and the membership entries it
// verified, in order only.
import { describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { PULL_CURSOR } from '../main/store/relay-ledger.ts';
import { deviceLab } from './support/motebit.ts';

const lab = deviceLab('ledgers');
const policy = { maxAttempts: 2, quarantineMs: 1_000 };
const failure = (deviceId: string, relaySeq: number, deviceSeq: number, code = 'bad_signature') => ({ deviceId, relaySeq, deviceSeq, code, message: `${code} at ${deviceSeq}` });

describe('the relay ledger', () => {
  it('remembers a writer to fetch again: the lowest relay seq, the earliest cause, attempts, then a quarantine that expires', () => {
    const { store } = lab.device('a');
    const ledger = store.ledger;
    ledger.noteFailure(failure('dv_w', 50, 7), 100);
    ledger.noteFailure(failure('dv_w', 40, 9, 'broken_chain'), 110); // a lower relay seq, a later cause
    expect(ledger.repairs()).toEqual([{ deviceId: 'dv_w', relaySeq: 40, deviceSeq: 7, code: 'bad_signature', message: 'bad_signature at 7', attempts: 0, firstAt: 100, quarantinedAt: null, retryAt: null }]);
    ledger.noteFailure(failure('dv_w', 60, 3, 'missing_event'), 120); // an earlier cause replaces it
    expect(ledger.repairs()[0]).toMatchObject({ relaySeq: 40, deviceSeq: 3, code: 'missing_event' });
    ledger.noteFailure(failure('dv_w', 30, 3, 'fork'), 125); // the same device seq: the first cause stays
    expect(ledger.repairs()[0]).toMatchObject({ relaySeq: 30, deviceSeq: 3, code: 'missing_event' });

    ledger.endCycle(new Set(['dv_w']), 200, policy);
    expect([ledger.isQuarantined('dv_w'), ledger.activeRepairs().length, ledger.quarantined()]).toEqual([false, 1, []]);
    ledger.endCycle(new Set(['dv_w']), 300, policy); // the second failing cycle: quarantined
    expect(ledger.isQuarantined('dv_w')).toBe(true);
    expect(ledger.activeRepairs()).toEqual([]);
    expect(ledger.quarantined()).toMatchObject([{ deviceId: 'dv_w', attempts: 2, quarantinedAt: 300, retryAt: 1_300 }]);
    ledger.noteFailure(failure('dv_w', 1, 1), 400); // a quarantined writer stays as it is
    expect(ledger.quarantined()).toMatchObject([{ relaySeq: 30, deviceSeq: 3 }]);
    expect(ledger.isQuarantined('dv_other')).toBe(false);

    ledger.releaseExpired(1_299);
    expect(ledger.isQuarantined('dv_w')).toBe(true);
    ledger.releaseExpired(1_300);
    expect(ledger.isQuarantined('dv_w')).toBe(false);
    expect(ledger.activeRepairs()).toMatchObject([{ deviceId: 'dv_w', attempts: 0, quarantinedAt: null, retryAt: null }]);
    ledger.endCycle(new Set(), 1_400, policy); // fetched again and it verified: repaired
    expect(ledger.repairs()).toEqual([]);
  });

  it('the cursor event is kept and cleared (the file keeps no trace of it); moving to another relay forgets the epoch, the cursor, its event and every repair', () => {
    const { store, path } = lab.device('a');
    const ledger = store.ledger;
    ledger.setCursorEvent({ seq: 12, eventId: 'e12' });
    expect(ledger.cursorEvent()).toEqual({ seq: 12, eventId: 'e12' });
    ledger.setCursorEvent(null);
    expect(ledger.cursorEvent()).toBeNull();

    const raw = new Database(path, { readonly: true }); // what the file holds, beside the ledger's own reading
    expect(raw.prepare("SELECT value FROM meta WHERE key = 'cursor_event'").all()).toEqual([]);
    raw.close();

    // A replaced or rolled-back relay: every repair starts over.
    ledger.noteFailure(failure('dv_w', 5, 2), 100);
    ledger.clearRepairs();
    expect(ledger.repairs()).toEqual([]);

    ledger.setCursorEvent({ seq: 12, eventId: 'e12' });
    ledger.setEpoch('epoch-1');
    store.setCursor(PULL_CURSOR, 12);
    ledger.noteFailure(failure('dv_w', 5, 2), 100);
    ledger.forgetRelay();
    expect([ledger.epoch(), ledger.cursorEvent(), ledger.repairs(), store.getCursor(PULL_CURSOR)]).toEqual([null, null, [], 0]);
  });
});

describe('the membership ledger', () => {
  it('takes entries that follow the held ones, all or none, and says which one does not', () => {
    const { store } = lab.device('a');
    const ledger = store.membership;
    const entry = (seq: number) => ({ seq, hash: String(seq).padStart(64, '0'), text: `{"seq":${seq}}` });
    expect(() => ledger.append([entry(1)])).toThrow('membership entry 1 does not follow entry -1');
    ledger.append([entry(0), entry(1)]);
    expect(() => ledger.append([entry(2), entry(4)])).toThrow('membership entry 4 does not follow entry 2');
    expect(ledger.entries().map((e) => e.seq)).toEqual([0, 1]); // nothing of a refused append is kept
    expect(ledger.head()).toBe(1);
  });
});
