// Property: an event's payload is judged exactly as z.json() judges it (same acceptance, same value, same
// issues), although a payload that is already a plain JSON tree is no longer re-walked by zod.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { z } from 'zod';
import { SealedEventSchema, isPlainJsonTree } from '../shared/portable/event.ts';
import { MAX_PAYLOAD_DEPTH } from '../shared/portable/json-bounds.ts';
import { assertProperty, propertyPlan } from './support/property.ts';

const PLAN = propertyPlan('event payload', 1000);
const RUNS = PLAN.runs * PLAN.seeds.length;

const DEVICE = `dv_${'A'.repeat(22)}`;
const base = {
  v: 1,
  motebit_id: `mb_${'B'.repeat(22)}`,
  device_id: DEVICE,
  event_id: '01890a5d-ac96-774b-bcce-b302099a8057',
  device_seq: 1,
  prev: '0'.repeat(64),
  clock: { l: 1, v: { [DEVICE]: 1 } },
  entity: 'memory/1',
  op: 'set',
  ts: 1,
};

const reference = z.json();
function judge(payload: unknown) {
  const result = SealedEventSchema.safeParse({ ...base, payload });
  return result.success ? { ok: true, payload: result.data.payload, issues: [] } : { ok: false, payload: undefined, issues: result.error.issues.filter((i) => i.path[0] === 'payload') };
}
function expected(payload: unknown) {
  const result = reference.safeParse(payload);
  return result.success
    ? { ok: true, payload: result.data, issues: [] }
    : { ok: false, payload: undefined, issues: result.error.issues.map((i) => ({ ...i, path: ['payload', ...i.path] })) };
}

describe('event payload validation', () => {
  it('accepts a well-formed event (the control)', () => {
    expect(SealedEventSchema.safeParse({ ...base, payload: { text: 'x', n: 1 } }).success).toBe(true);
  });

  it(`a JSON.parse result is accepted as z.json() accepts it, value for value (${RUNS} cases)`, () => {
    assertProperty(
      fc.property(fc.jsonValue({ maxDepth: 6 }), (value) => {
        const parsed: unknown = JSON.parse(JSON.stringify(value));
        const got = judge(parsed);
        const want = expected(parsed);
        expect(got.ok).toBe(want.ok);
        if (got.ok) expect(got.payload).toStrictEqual(want.payload);
      }),
      PLAN,
    );
  });

  it(`any value at all is accepted or refused as z.json() does, with the same issues (${RUNS} cases)`, () => {
    const anything = fc.anything({
      maxDepth: 4,
      withBigInt: true,
      withBoxedValues: true,
      withDate: true,
      withMap: true,
      withSet: true,
      withNullPrototype: true,
      withObjectString: true,
      withSparseArray: true,
      withTypedArray: true,
      withUnicodeString: true,
    });
    assertProperty(
      fc.property(anything, (value) => {
        const got = judge(value);
        const want = expected(value);
        expect(got.ok).toBe(want.ok);
        if (got.ok) expect(JSON.stringify(got.payload)).toBe(JSON.stringify(want.payload));
        else expect(got.issues.map((i) => [i.code, i.path, i.message])).toEqual(want.issues.map((i) => [i.code, i.path, i.message]));
      }),
      PLAN,
    );
  });

  it('edge cases: non-finite numbers, undefined, functions, symbols, own __proto__, holes, class instances', () => {
    const symbolKeyed = { a: 1, [Symbol('s')]: 2 };
    const cases: unknown[] = [
      NaN,
      Infinity,
      -Infinity,
      undefined,
      () => 1,
      Symbol('x'),
      10n,
      new Date(0),
      new Map(),
      [1, , 3],
      [undefined],
      { a: undefined },
      { a: NaN },
      JSON.parse('{"__proto__":{"x":1},"b":2}'),
      JSON.parse('[{"__proto__":1}]'),
      Object.assign(Object.create(null) as object, { a: 1 }),
      symbolKeyed,
      new (class Thing {
        a = 1;
      })(),
      { nested: [{ deep: [1, 'two', null, true, { x: -0 }] }] },
      JSON.parse(`${'['.repeat(64)}${']'.repeat(64)}`),
    ];
    for (const value of cases) {
      const got = judge(value);
      const want = expected(value);
      expect(got.ok, String(typeof value)).toBe(want.ok);
      if (got.ok) expect(got.payload).toStrictEqual(want.payload);
      else expect(got.issues.map((i) => [i.code, i.path, i.message])).toEqual(want.issues.map((i) => [i.code, i.path, i.message]));
    }
    // Deeper than MAX_PAYLOAD_DEPTH is JSON, and still refused by the event's own rule.
    expect(judge(JSON.parse(`${'['.repeat(65)}${']'.repeat(65)}`))).toMatchObject({ ok: false, issues: [{ message: 'a payload is nested at most 64 deep' }] });
  });

  it(`the fast path: every JSON.parse result without a __proto__ key is a plain JSON tree, and nothing z.json() would refuse or change is (${RUNS} cases each)`, () => {
    assertProperty(
      fc.property(fc.jsonValue({ maxDepth: 6 }), (value) => {
        // An own "__proto__" key (JSON.parse makes one) is the exception: z.json() drops it, so it is not a plain tree.
        const text = JSON.stringify(value);
        expect(isPlainJsonTree(JSON.parse(text))).toBe(!text.includes('"__proto__":'));
      }),
      PLAN,
    );
    const anything = fc.anything({ maxDepth: 4, withBigInt: true, withBoxedValues: true, withDate: true, withMap: true, withSet: true, withNullPrototype: true, withSparseArray: true, withTypedArray: true });
    assertProperty(
      fc.property(anything, (value) => {
        if (!isPlainJsonTree(value)) return;
        const want = reference.safeParse(value);
        expect(want.success).toBe(true);
        expect(JSON.stringify(value)).toBe(JSON.stringify(want.data));
      }),
      PLAN,
    );
  });

  it('the fast path, case by case: depth up to the bound, and no for what is not a plain tree', () => {
    let deep: unknown = 1;
    for (let i = 0; i < MAX_PAYLOAD_DEPTH; i++) deep = [deep];
    expect(isPlainJsonTree(deep)).toBe(true);
    expect(isPlainJsonTree([deep])).toBe(false);
    let deepObject: unknown = 1;
    for (let i = 0; i < MAX_PAYLOAD_DEPTH; i++) deepObject = { a: deepObject };
    expect(isPlainJsonTree(deepObject)).toBe(true);
    expect(isPlainJsonTree({ a: deepObject })).toBe(false);
    expect(isPlainJsonTree({ a: [{ b: [true, false, null, 'x', -0.5] }] })).toBe(true);
    class Sub extends Array {}
    const no: unknown[] = [Number.NaN, -Infinity, [1, , 3], { [Symbol('s')]: 1 }, JSON.parse('{"__proto__": 1}'), Object.create(null), Sub.from([1]), new Date(0), undefined, 1n, () => 1, [undefined], { a: undefined }];
    expect(no.map((value) => isPlainJsonTree(value))).toEqual(no.map(() => false));
  });
});
