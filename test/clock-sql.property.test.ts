// Property: SQLite, sorting by sqlOrder (shared/clock.ts), orders events exactly as compareEvents does —
// on random events with many Lamport ties and device ids that tie-break against the event ids — so the
// store's SQL (an entity's winner when the state is rebuilt, the writes after a conflict) can never
// disagree with the order devices use in code. Seeds: test/support/property.ts.
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { compareEvents, sqlOrder, type Clocked } from '../shared/clock.ts';
import { assertProperty, propertyPlan } from './support/property.ts';

const PLAN = propertyPlan('clock/SQL order', 300);
const RUNS = PLAN.runs * PLAN.seeds.length;

const db = new Database(':memory:');
db.exec('CREATE TABLE events (lamport INTEGER NOT NULL, device_id TEXT NOT NULL, event_id TEXT NOT NULL)');
afterAll(() => db.close());

const ID_CHARS = 'AZaz09_-Mm';
const deviceId = fc.string({ unit: fc.constantFrom(...ID_CHARS), minLength: 22, maxLength: 22 }).map((s) => `dv_${s}`);
const hex = fc.constantFrom(...'0123456789abcdef');
const eventId = fc.tuple(fc.string({ unit: hex, minLength: 8, maxLength: 8 }), fc.string({ unit: hex, minLength: 12, maxLength: 12 })).map(([a, b]) => `${a}-0000-4000-8000-${b}`);
const event: fc.Arbitrary<Clocked> = fc.record({ l: fc.integer({ min: 1, max: 4 }), device_id: fc.oneof(deviceId, fc.constantFrom('dv_AAAAAAAAAAAAAAAAAAAAAA', 'dv_aaaaaaaaaaaaaaaaaaaaaa', 'dv_ZZZZZZZZZZZZZZZZZZZZZZ')), event_id: eventId }).map((e) => ({
  device_id: e.device_id,
  device_seq: 1,
  event_id: e.event_id,
  clock: { l: e.l, v: {} },
}));

describe('sqlOrder', () => {
  it(`SQLite sorts events as compareEvents does, both ways (${RUNS} sets)`, () => {
    assertProperty(
      fc.property(fc.uniqueArray(event, { minLength: 2, maxLength: 30, selector: (e) => e.event_id }), (events) => {
        db.exec('DELETE FROM events');
        const insert = db.prepare('INSERT INTO events (lamport, device_id, event_id) VALUES (?, ?, ?)');
        for (const e of events) insert.run(e.clock.l, e.device_id, e.event_id);
        const inCode = [...events].sort(compareEvents).map((e) => e.event_id);
        const ascending = (db.prepare(`SELECT event_id FROM events ORDER BY ${sqlOrder('ASC')}`).pluck().all() as string[]);
        const descending = (db.prepare(`SELECT event_id FROM events ORDER BY ${sqlOrder('DESC')}`).pluck().all() as string[]);
        expect(ascending).toEqual(inCode);
        expect(descending).toEqual([...inCode].reverse());
      }),
      PLAN,
    );
  });
});
