// Property: jsonTextDepth, which skips a string's contents with indexOf, gives exactly what the scan one
// character at a time gave, on JSON and on any text at all (unterminated strings, stray backslashes).
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { MAX_EVENT_DEPTH, jsonTextDepth } from '../shared/portable/json-bounds.ts';
import { assertProperty, propertyPlan } from './support/property.ts';

const PLAN = propertyPlan('json bounds', 1000);
const RUNS = PLAN.runs * PLAN.seeds.length;

/** The implementation before the indexOf skip, kept here as the reference (it imports nothing). */
function referenceJsonTextDepth(text: string, limit: number): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c /* \ */) i++;
      else if (c === 0x22 /* " */) inString = false;
      continue;
    }
    if (c === 0x22) inString = true;
    else if (c === 0x5b /* [ */ || c === 0x7b /* { */) {
      depth++;
      if (depth > limit) return Infinity;
      if (depth > deepest) deepest = depth;
    } else if (c === 0x5d /* ] */ || c === 0x7d /* } */) depth--;
  }
  return deepest;
}

// Texts made of the characters that matter, so quotes, backslash runs and brackets meet often.
const tricky = fc.string({ unit: fc.constantFrom('"', '\\', '[', ']', '{', '}', 'a', ',', ':', ' ', '\u00e9'), maxLength: 80 });
const limit = fc.integer({ min: 0, max: 10 });

describe('jsonTextDepth', () => {
  it(`matches the character-at-a-time scan on arbitrary texts (${RUNS} cases)`, () => {
    assertProperty(
      fc.property(tricky, limit, (text, max) => {
        expect(jsonTextDepth(text, max)).toBe(referenceJsonTextDepth(text, max));
      }),
      PLAN,
    );
  });

  it(`matches it on JSON texts, strings with escapes included (${RUNS} cases)`, () => {
    const strings = fc.string({ unit: fc.constantFrom('"', '\\', '[', '{', '}', ']', 'x', '\n'), maxLength: 12 });
    const value = fc.letrec((tie) => ({
      node: fc.oneof({ depthSize: 'small' }, strings, fc.integer(), fc.constant(null), fc.array(tie('node'), { maxLength: 4 }), fc.dictionary(strings, tie('node'), { maxKeys: 4 })),
    })).node;
    assertProperty(
      fc.property(value, fc.integer({ min: 0, max: MAX_EVENT_DEPTH }), (json, max) => {
        const text = JSON.stringify(json);
        expect(jsonTextDepth(text, max)).toBe(referenceJsonTextDepth(text, max));
      }),
      PLAN,
    );
  });

  it('examples: escaped quotes and escaped backslashes before a quote', () => {
    for (const text of ['"\\""', '["\\\\"]', '["\\\\\\"]"]', '{"a\\\\":[1]}', '["[[[\\"[["]', '"unterminated [[', '"\\', '[["\\\\\\\\"]]']) {
      expect(jsonTextDepth(text, 64)).toBe(referenceJsonTextDepth(text, 64));
    }
    expect(jsonTextDepth('[["\\\\"],[["]"]]]', 64)).toBe(3);
    expect(jsonTextDepth('['.repeat(70), 64)).toBe(Infinity);
  });
});
