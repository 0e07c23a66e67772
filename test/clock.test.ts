import { describe, expect, it } from 'vitest';
import { compareEvents, concurrent, happenedBefore, nextClock, type Clocked } from '../shared/clock.ts';

const A = 'dv_AAAAAAAAAAAAAAAAAAAAAA';
const B = 'dv_BBBBBBBBBBBBBBBBBBBBBB';
const ev = (device_id: string, device_seq: number, l: number, v: Record<string, number>, event_id = `${device_id}-${device_seq}`): Clocked => ({
  device_id,
  device_seq,
  event_id,
  clock: { l, v },
});

describe('version clocks', () => {
  it('orders by Lamport time, then device id, then event id', () => {
    const a = ev(A, 1, 5, { [A]: 1 });
    const b = ev(B, 1, 5, { [B]: 1 });
    const c = ev(A, 2, 6, { [A]: 2 });
    expect([c, b, a].sort(compareEvents)).toEqual([a, b, c]);
    expect(compareEvents(ev(A, 1, 1, { [A]: 1 }, 'x'), ev(A, 1, 1, { [A]: 1 }, 'y'))).toBeLessThan(0);
  });

  it('a Lamport tie is decided by device id even when the event ids sort the other way', () => {
    const fromA = ev(A, 3, 9, { [A]: 3 }, 'ffffffff-0000-4000-8000-000000000000');
    const fromB = ev(B, 2, 9, { [B]: 2 }, '00000000-0000-4000-8000-000000000000');
    expect(compareEvents(fromA, fromB)).toBeLessThan(0); // A < B although fromB's id sorts first
    expect(compareEvents(fromB, fromA)).toBeGreaterThan(0);
    expect([fromB, fromA].sort(compareEvents).at(-1)).toBe(fromB); // so B's write wins the entity
    // Code-unit order, not locale order: "dv_Z…" sorts before "dv_a…".
    const upper = ev('dv_ZZZZZZZZZZZZZZZZZZZZZZ', 1, 4, {}, 'b');
    const lower = ev('dv_aaaaaaaaaaaaaaaaaaaaaa', 1, 4, {}, 'a');
    expect(compareEvents(upper, lower)).toBeLessThan(0);
  });

  it('a write made after seeing another is not concurrent with it', () => {
    const a1 = ev(A, 1, 1, { [A]: 1 });
    const b1 = ev(B, 1, 2, { [A]: 1, [B]: 1 }); // B had applied A's first event
    expect(happenedBefore(a1, b1)).toBe(true);
    expect(happenedBefore(b1, a1)).toBe(false);
    expect(concurrent(a1, b1)).toBe(false);
    expect(compareEvents(a1, b1)).toBeLessThan(0); // and the later write wins
  });

  it('happened-before is strict: no event happened before itself', () => {
    const a1 = ev(A, 1, 1, { [A]: 1 }); // its clock names itself, so a bare clock test would say yes
    expect(happenedBefore(a1, a1)).toBe(false);
    expect(happenedBefore(a1, { ...a1, clock: { l: 5, v: { [A]: 3 } } })).toBe(false); // the same event id, whatever the clock says
  });

  it('writes made without seeing each other are concurrent', () => {
    const a1 = ev(A, 1, 1, { [A]: 1 });
    const b1 = ev(B, 1, 1, { [B]: 1 });
    expect(concurrent(a1, b1)).toBe(true);
    expect(concurrent(a1, a1)).toBe(false);
    expect(concurrent(a1, ev(A, 2, 2, { [A]: 2 }))).toBe(false); // same device: always sequential
  });

  it('the next clock is one past everything seen and names the writer', () => {
    expect(nextClock({ lamport: 7, heads: { [B]: 3 } }, A, 4)).toEqual({ l: 8, v: { [B]: 3, [A]: 4 } });
  });
});
