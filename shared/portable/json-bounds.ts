// Bounds on untrusted JSON, checked before anything recursive touches it (JSON.parse, zod, canonical
// encoding). A body nested thousands deep once made every other device's sync fail with "Maximum call
// stack size exceeded"; with these checks it is one malformed event, reported and not applied.

/** Deepest nesting of arrays and objects allowed in a payload (an event adds one level around it). */
export const MAX_PAYLOAD_DEPTH = 64;
/** Deepest nesting in a whole event's JSON: the payload inside the event object, and the event's own fields. */
export const MAX_EVENT_DEPTH = MAX_PAYLOAD_DEPTH + 2;

/**
 * The nesting depth of JSON text, scanned without recursion and without parsing, or Infinity once it
 * passes `limit` (so a hostile text costs at most one pass). Brackets inside strings do not count.
 */
export function jsonTextDepth(text: string, limit: number): number {
  let depth = 0;
  let deepest = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      // Skip the string's contents in one search per quote: a quote ends the string unless an odd number
      // of backslashes precedes it (an escaped backslash, \\, escapes nothing after it).
      for (;;) {
        const close = text.indexOf('"', i + 1);
        if (close === -1) return deepest; // an unterminated string: nothing after it counts
        let slashes = 0;
        while (text.charCodeAt(close - 1 - slashes) === 0x5c /* \ */) slashes++;
        i = close;
        if (slashes % 2 === 0) break;
      }
    } else if (c === 0x5b /* [ */ || c === 0x7b /* { */) {
      depth++;
      if (depth > limit) return Infinity;
      if (depth > deepest) deepest = depth;
    } else if (c === 0x5d /* ] */ || c === 0x7d /* } */) depth--;
  }
  return deepest;
}

/** The nesting depth of a JSON value, walked without recursion, or Infinity once it passes `limit`. */
export function jsonValueDepth(value: unknown, limit: number): number {
  let deepest = 0;
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [item, depth] = stack.pop()!;
    if (item === null || typeof item !== 'object') continue;
    const here = depth + 1;
    if (here > limit) return Infinity;
    if (here > deepest) deepest = here;
    for (const child of Array.isArray(item) ? item : Object.values(item)) stack.push([child, here]);
  }
  return deepest;
}
