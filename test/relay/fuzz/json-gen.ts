// JSON bodies and messages to throw at the relay: a small tree of nodes that fast-check generates and
// shrinks, rendered to bytes only when sent (valid events, enrolment bodies and tokens are minted then,
// so a body can be right everywhere but in one place). Deep nesting (up to 100k levels) and wide
// objects are rendered by repetition, never generated level by level.
import fc from 'fast-check';

export type TokenKind = 'ws-valid' | 'ws-other-device' | 'ws-expired' | 'ws-identity' | 'http-token' | 'garbage';

export type JNode =
  | { t: 'lit'; text: string }
  | { t: 'val'; v: unknown }
  | { t: 'deep'; depth: number; shape: 'array' | 'object' | 'mixed'; leaf: JNode }
  | { t: 'wide'; count: number; key: string; value: JNode }
  | { t: 'many'; count: number; item: JNode }
  | { t: 'obj'; entries: Array<[string, JNode]> }
  | { t: 'arr'; items: JNode[] }
  | { t: 'event'; patch: Array<[string, JNode | null]> }
  | { t: 'enrol'; patch: Array<[string, JNode | null]> }
  | { t: 'token'; kind: TokenKind };

/** What a rendered body may need from the live fixture. */
export interface JsonContext {
  /** A valid wire event of the fuzzing device. */
  event(): Record<string, unknown>;
  /** A valid enrolment body for a new device of the fuzzed motebit. */
  enrolBody(): Record<string, unknown>;
  token(kind: TokenKind): string;
}

/** Bytes mangled after rendering: cut short, odd bytes appended or prepended, one byte replaced. */
export type Mangle = { m: 'none' } | { m: 'truncate'; at: number } | { m: 'append'; bytes: number[] } | { m: 'prepend'; bytes: number[] } | { m: 'replace'; at: number; byte: number };

export function renderJson(node: JNode, ctx: JsonContext): string {
  const parts: string[] = [];
  write(node, ctx, parts);
  return parts.join('');
}

export function mangle(text: string, how: Mangle): Buffer {
  const bytes = Buffer.from(text, 'utf8');
  switch (how.m) {
    case 'none':
      return bytes;
    case 'truncate':
      return bytes.subarray(0, Math.floor(bytes.length * how.at));
    case 'append':
      return Buffer.concat([bytes, Buffer.from(how.bytes)]);
    case 'prepend':
      return Buffer.concat([Buffer.from(how.bytes), bytes]);
    case 'replace': {
      if (bytes.length === 0) return bytes;
      const copy = Buffer.from(bytes);
      copy[Math.floor(how.at * (copy.length - 1))] = how.byte;
      return copy;
    }
  }
}

function write(node: JNode, ctx: JsonContext, out: string[]): void {
  switch (node.t) {
    case 'lit':
      out.push(node.text);
      return;
    case 'val':
      out.push(JSON.stringify(node.v) ?? 'null');
      return;
    case 'deep': {
      const open = { array: '[', object: '{"a":', mixed: '[{"a":' }[node.shape];
      const close = { array: ']', object: '}', mixed: '}]' }[node.shape];
      out.push(open.repeat(node.depth));
      write(node.leaf, ctx, out);
      out.push(close.repeat(node.depth));
      return;
    }
    case 'wide': {
      out.push('{');
      const value: string[] = [];
      write(node.value, ctx, value);
      const v = value.join('');
      for (let i = 0; i < node.count; i++) out.push(`${i ? ',' : ''}${JSON.stringify(node.key === '#' ? `k${i}` : node.key)}:${v}`);
      out.push('}');
      return;
    }
    case 'many': {
      out.push('[');
      for (let i = 0; i < node.count; i++) {
        if (i) out.push(',');
        write(node.item, ctx, out);
      }
      out.push(']');
      return;
    }
    case 'obj':
      out.push('{');
      node.entries.forEach(([key, value], i) => {
        out.push(`${i ? ',' : ''}${JSON.stringify(key)}:`);
        write(value, ctx, out);
      });
      out.push('}');
      return;
    case 'arr':
      out.push('[');
      node.items.forEach((item, i) => {
        if (i) out.push(',');
        write(item, ctx, out);
      });
      out.push(']');
      return;
    case 'event':
    case 'enrol': {
      const base = node.t === 'event' ? ctx.event() : ctx.enrolBody();
      const entries = Object.entries(base).map(([k, v]): [string, JNode] => [k, { t: 'val', v }]);
      for (const [key, value] of node.patch) {
        const at = entries.findIndex(([k]) => k === key);
        if (value === null) {
          if (at >= 0) entries.splice(at, 1);
        } else if (at >= 0) entries[at] = [key, value];
        else entries.push([key, value]);
      }
      write({ t: 'obj', entries }, ctx, out);
      return;
    }
    case 'token':
      out.push(JSON.stringify(ctx.token(node.kind)));
      return;
  }
}

// ---- arbitraries ----

const SPECIAL_NUMBERS = ['1e400', '-1e400', '1e-400', '-0', '0.0', '123456789012345678901234567890', '9007199254740993', '-9007199254740993', '1.5', '1E+2', '-1', '4294967296', '1e21', '18446744073709551616', '0x10', 'NaN', 'Infinity', '01', '.5', '+1'];
const ODD_KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'events', 'type', 'token', 'after', 'id', 'seq', '', '\u0000', '\ud800', 'é', 'x'.repeat(300)];
const GARBAGE_TEXT = ['', ' ', '{', '[', '}', '{"events":', '{"events":[', 'null', 'true', '"', '"\\u"', '"\\ud800"', '{"a":1,}', '[1,]', "{'a':1}", '{"a" 1}', '\u00ff', '\ufeff{}', '{}{}', '/* */{}', '{"a":1}x'];

export const deepNode = (leaf: fc.Arbitrary<JNode>): fc.Arbitrary<JNode> =>
  fc.record({
    t: fc.constant('deep' as const),
    depth: fc.oneof({ arbitrary: fc.constantFrom(1000, 10_000, 100_000), weight: 1 }, { arbitrary: fc.integer({ min: 1, max: 300 }), weight: 2 }),
    shape: fc.constantFrom('array' as const, 'object' as const, 'mixed' as const),
    leaf,
  });

const leafNode: fc.Arbitrary<JNode> = fc.oneof(
  { arbitrary: fc.jsonValue({ maxDepth: 2 }).map((v): JNode => ({ t: 'val', v })), weight: 4 },
  { arbitrary: fc.constantFrom(...SPECIAL_NUMBERS).map((text): JNode => ({ t: 'lit', text })), weight: 2 },
  { arbitrary: fc.constantFrom<unknown>(null, true, 0, -1, '', [], {}, 'x'.repeat(5000), 2 ** 53, -(2 ** 31), '\ud800x', 'a\u0000b', '💥'.repeat(64), 'é'.repeat(129), '\u202e\ufeff', ' ').map((v): JNode => ({ t: 'val', v })), weight: 2 },
  { arbitrary: fc.string({ unit: 'binary', maxLength: 40 }).map((v): JNode => ({ t: 'val', v })), weight: 1 },
);

const keyArb = fc.oneof({ arbitrary: fc.constantFrom(...ODD_KEYS), weight: 2 }, { arbitrary: fc.string({ maxLength: 12 }), weight: 1 });

/** Any JSON-ish value: leaves, small objects and arrays (odd keys, duplicates), deep and wide nodes. */
export const anyNode: fc.Arbitrary<JNode> = fc.letrec<{ node: JNode }>((tie) => ({
  node: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    { arbitrary: leafNode, weight: 6 },
    { arbitrary: fc.record({ t: fc.constant('obj' as const), entries: fc.array(fc.tuple(keyArb, tie('node')), { maxLength: 4 }) }), weight: 2 },
    { arbitrary: fc.record({ t: fc.constant('arr' as const), items: fc.array(tie('node'), { maxLength: 4 }) }), weight: 2 },
    { arbitrary: deepNode(leafNode), weight: 1 },
    { arbitrary: fc.record({ t: fc.constant('wide' as const), count: fc.constantFrom(2, 100, 10_000, 100_000), key: fc.constantFrom('#', '__proto__', 'events', 'a'), value: fc.constantFrom<unknown>(0, null, 'v', {}, []).map((v): JNode => ({ t: 'val', v })) }), weight: 1 },
  ),
})).node;

const EVENT_FIELDS = ['event_id', 'device_id', 'device_seq', 'key_id', 'body', 'seq', '__proto__', 'extra'];
const patchArb = (fields: string[]): fc.Arbitrary<Array<[string, JNode | null]>> =>
  fc.array(fc.tuple(fc.constantFrom(...fields), fc.option(anyNode, { freq: 4, nil: null })), { maxLength: 3 });

/** A wire event: valid, or valid but for a few fields replaced, removed or added. */
export const eventNode: fc.Arbitrary<JNode> = patchArb(EVENT_FIELDS).map((patch): JNode => ({ t: 'event', patch }));

/** The events array of a push: a few events (good or bad), anything, deep, or more than the batch cap. */
const eventsNode: fc.Arbitrary<JNode> = fc.oneof(
  { arbitrary: fc.array(fc.oneof({ arbitrary: eventNode, weight: 4 }, { arbitrary: anyNode, weight: 1 }), { minLength: 1, maxLength: 3 }).map((items): JNode => ({ t: 'arr', items })), weight: 6 },
  { arbitrary: anyNode, weight: 2 },
  { arbitrary: fc.constantFrom(256, 257, 100_000).map((count): JNode => ({ t: 'many', count, item: count > 1000 ? { t: 'val', v: 0 } : { t: 'event', patch: [] } })), weight: 1 },
  { arbitrary: deepNode(eventNode), weight: 1 },
);

/** Deep nesting (10k to 500k levels) where a parser or validator would walk into it. */
const deepSomewhere = (wrap: Array<(deep: JNode) => JNode>): fc.Arbitrary<JNode> =>
  fc
    .record({
      at: fc.nat(wrap.length - 1),
      depth: fc.constantFrom(10_000, 100_000, 500_000),
      shape: fc.constantFrom('array' as const, 'object' as const, 'mixed' as const),
      leaf: fc.constantFrom<unknown>(null, 1, 'x', {}).map((v): JNode => ({ t: 'val', v })),
    })
    .map(({ at, depth, shape, leaf }) => wrap[at]!({ t: 'deep', depth, shape, leaf }));
const obj = (...entries: Array<[string, JNode]>): JNode => ({ t: 'obj', entries });
const lit = (v: unknown): JNode => ({ t: 'val', v });

const extraEntries = fc.array(fc.tuple(keyArb, anyNode), { maxLength: 2 });

/** A body for POST /v1/motebits/{id}/events. */
export const pushBody: fc.Arbitrary<JNode> = fc.oneof(
  { arbitrary: fc.tuple(eventsNode, extraEntries, fc.boolean()).map(([events, extra, first]): JNode => ({ t: 'obj', entries: first ? [['events', events], ...extra] : [...extra, ['events', events]] })), weight: 6 },
  { arbitrary: anyNode, weight: 2 },
  { arbitrary: fc.constantFrom(...GARBAGE_TEXT).map((text): JNode => ({ t: 'lit', text })), weight: 1 },
  { arbitrary: eventsNode.map((events): JNode => ({ t: 'obj', entries: [['__proto__', { t: 'obj', entries: [['events', events]] }]] })), weight: 1 },
  {
    arbitrary: deepSomewhere([
      (deep) => deep,
      (deep) => obj(['events', deep]),
      (deep) => obj(['events', { t: 'arr', items: [deep] }]),
      (deep) => obj(['events', { t: 'arr', items: [{ t: 'event', patch: [['body', deep]] }] }]),
      (deep) => obj(['__proto__', deep], ['events', { t: 'arr', items: [{ t: 'event', patch: [] }] }]),
    ]),
    weight: 1,
  },
);

/** A body for POST /v1/motebits/{id}/devices (an enrolment). */
export const enrolBody: fc.Arbitrary<JNode> = fc.oneof(
  { arbitrary: patchArb(['identity_key', 'device_key', 'cert', 'name', '__proto__', 'extra']).map((patch): JNode => ({ t: 'enrol', patch })), weight: 6 },
  { arbitrary: anyNode, weight: 2 },
  { arbitrary: deepSomewhere([(deep) => deep, (deep) => ({ t: 'enrol', patch: [['identity_key', deep]] }), (deep) => ({ t: 'enrol', patch: [['name', deep]] })]), weight: 1 },
  { arbitrary: fc.constantFrom(...GARBAGE_TEXT).map((text): JNode => ({ t: 'lit', text })), weight: 1 },
);

const tokenNode: fc.Arbitrary<JNode> = fc.oneof(
  { arbitrary: fc.constantFrom<TokenKind>('ws-valid', 'ws-other-device', 'ws-expired', 'ws-identity', 'http-token', 'garbage').map((kind): JNode => ({ t: 'token', kind })), weight: 3 },
  { arbitrary: anyNode, weight: 1 },
);

const typeNode: fc.Arbitrary<JNode> = fc.oneof(
  { arbitrary: fc.constantFrom('auth', 'push', 'reauth').map((v): JNode => ({ t: 'val', v })), weight: 5 },
  { arbitrary: anyNode, weight: 1 },
);

/** A WebSocket client message (auth, push, reauth, or anything), fields right, wrong or missing. */
export const wsMessage: fc.Arbitrary<JNode> = fc.oneof(
  {
    arbitrary: fc
      .record({
        type: typeNode,
        token: fc.option(tokenNode, { nil: undefined }),
        after: fc.option(fc.oneof(fc.nat().map((v): JNode => ({ t: 'val', v })), leafNode), { nil: undefined }),
        id: fc.option(fc.oneof(fc.string({ minLength: 1, maxLength: 8 }).map((v): JNode => ({ t: 'val', v })), leafNode), { nil: undefined }),
        events: fc.option(eventsNode, { nil: undefined }),
        extra: extraEntries,
      })
      .map(({ type, extra, ...fields }): JNode => {
        const entries: Array<[string, JNode]> = [['type', type]];
        for (const [key, value] of Object.entries(fields)) if (value !== undefined) entries.push([key, value]);
        return { t: 'obj', entries: [...entries, ...extra] };
      }),
    weight: 6,
  },
  { arbitrary: anyNode, weight: 2 },
  { arbitrary: fc.constantFrom(...GARBAGE_TEXT).map((text): JNode => ({ t: 'lit', text })), weight: 1 },
  {
    arbitrary: deepSomewhere([
      (deep) => deep,
      (deep) => obj(['type', lit('push')], ['id', lit('p1')], ['events', deep]),
      (deep) => obj(['type', lit('push')], ['id', lit('p1')], ['events', { t: 'arr', items: [deep] }]),
      (deep) => obj(['type', lit('reauth')], ['token', deep]),
      (deep) => obj(['type', deep]),
      (deep) => obj(['type', lit('auth')], ['token', { t: 'token', kind: 'ws-valid' }], ['after', deep]),
    ]),
    weight: 1,
  },
);

export const mangleArb: fc.Arbitrary<Mangle> = fc.oneof(
  { arbitrary: fc.constant({ m: 'none' } as const), weight: 12 },
  { arbitrary: fc.double({ min: 0, max: 1, noNaN: true }).map((at): Mangle => ({ m: 'truncate', at })), weight: 1 },
  { arbitrary: fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 1, maxLength: 4 }).map((bytes): Mangle => ({ m: 'append', bytes })), weight: 1 },
  { arbitrary: fc.constantFrom<number[]>([0xef, 0xbb, 0xbf], [0xff], [0x00], [0x20]).map((bytes): Mangle => ({ m: 'prepend', bytes })), weight: 1 },
  { arbitrary: fc.record({ at: fc.double({ min: 0, max: 1, noNaN: true }), byte: fc.constantFrom(0x00, 0x80, 0xc0, 0xff, 0x22, 0x5c) }).map(({ at, byte }): Mangle => ({ m: 'replace', at, byte })), weight: 1 },
);
