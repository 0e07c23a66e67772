// WebSocket cases: upgrade requests (valid and invalid key, version, headers; on every path), then
// frames wrong in any field (opcodes, RSV bits, masks, lengths larger than the data, fragmentation,
// oversized control frames, invalid UTF-8, binary), and JSON messages after a valid auth.
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { bytesOf } from './bytes.ts';
import { fillTarget, rawTarget, type HttpContext } from './http-gen.ts';
import { mangle, mangleArb, renderJson, wsMessage, type JNode, type Mangle } from './json-gen.ts';
import { OPCODES, closePayload, encodeFrame, type LengthForm } from './ws-frames.ts';

export type Payload =
  | { p: 'bytes'; bytes: number[] }
  | { p: 'text'; text: string }
  | { p: 'json'; node: JNode; mangle: Mangle }
  | { p: 'close'; code: number | null; reason: string; badUtf8: boolean }
  | { p: 'fill'; size: number; byte: number };

export interface FrameSpec {
  fin: boolean;
  rsv: number;
  opcode: number;
  mask: 'none' | 'zero' | [number, number, number, number];
  payload: Payload;
  length: LengthForm;
}

export type FrameGroup =
  | { g: 'frame'; frame: FrameSpec }
  /** One message in `pieces` fragments; `between` is slipped in after the first fragment. */
  | { g: 'fragmented'; opcode: number; payload: Payload; pieces: number; between: 'nothing' | 'ping' | 'pong' | 'new-text' | 'close' | 'long-ping'; lastFin: boolean };

export interface Upgrade {
  method: string;
  /** The WebSocket path of the fuzzed motebit, or any request target. */
  target: string;
  key: 'valid' | 'short' | 'long' | 'not-base64' | 'empty' | 'missing' | 'twice';
  version: string | null;
  upgrade: string | null;
  connection: string | null;
  extra: string[];
}

export interface WsCase {
  upgrade: Upgrade;
  groups: FrameGroup[];
  /** Frames in the same write as the upgrade request (they reach the relay as `head`), or after the 101. */
  timing: 'with-upgrade' | 'after-101';
  end: 'close' | 'fin' | 'hold';
}

export interface AuthedMessage {
  node: JNode;
  mangle: Mangle;
  pieces: number;
  binary: boolean;
}

export interface AuthedWsCase {
  after: number;
  messages: AuthedMessage[];
  /** This many valid pushes at once after the messages (past the pending-message cap, into the rate limit). */
  burst: number;
  groups: FrameGroup[];
  end: 'close' | 'fin' | 'hold';
}

// ---- arbitraries ----

const weighted = <T>(common: fc.Arbitrary<T>, rare: fc.Arbitrary<T>, commonWeight = 6): fc.Arbitrary<T> => fc.oneof({ arbitrary: common, weight: commonWeight }, { arbitrary: rare, weight: 1 });

const payloadArb: fc.Arbitrary<Payload> = fc.oneof(
  { arbitrary: fc.record({ p: fc.constant('json' as const), node: wsMessage, mangle: mangleArb }), weight: 4 },
  { arbitrary: fc.record({ p: fc.constant('bytes' as const), bytes: fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 40 }) }), weight: 2 },
  { arbitrary: fc.record({ p: fc.constant('text' as const), text: fc.string({ unit: 'grapheme', maxLength: 40 }) }), weight: 1 },
  { arbitrary: fc.constantFrom<number[]>([0xff], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xe2, 0x82], [0x7b, 0xff, 0x7d]).map((bytes): Payload => ({ p: 'bytes', bytes })), weight: 1 },
  {
    arbitrary: fc.record({
      p: fc.constant('close' as const),
      code: fc.oneof(fc.constantFrom(1000, 1001, 1005, 1006, 1004, 1015, 999, 2999, 3000, 4999, 5000, 65535, 0), fc.constant(null)),
      reason: fc.oneof(fc.constant(''), fc.string({ maxLength: 20 }), fc.constant('r'.repeat(124))),
      badUtf8: fc.boolean(),
    }),
    weight: 1,
  },
  { arbitrary: fc.record({ p: fc.constant('fill' as const), size: fc.constantFrom(125, 126, 200, 65_535, 65_536, 70_000), byte: fc.constantFrom(0x20, 0x7b, 0xff) }), weight: 1 },
);

const maskArb: fc.Arbitrary<FrameSpec['mask']> = weighted<FrameSpec['mask']>(
  fc.tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 })),
  fc.constantFrom<FrameSpec['mask']>('none', 'zero'),
  8,
);

export const frameArb: fc.Arbitrary<FrameSpec> = fc.record({
  fin: weighted(fc.constant(true), fc.constant(false), 4),
  rsv: weighted(fc.constant(0), fc.integer({ min: 1, max: 7 }), 8),
  opcode: weighted(fc.constantFrom(0, 1, 2, 8, 9, 10), fc.integer({ min: 0, max: 15 }), 5),
  mask: maskArb,
  payload: payloadArb,
  length: weighted(fc.constant<LengthForm>('minimal'), fc.constantFrom<LengthForm>('wide16', 'wide64', 'more', 'max63', 'max64', 'over-cap'), 5),
});

export const groupArb: fc.Arbitrary<FrameGroup> = fc.oneof(
  { arbitrary: frameArb.map((frame): FrameGroup => ({ g: 'frame', frame })), weight: 3 },
  {
    arbitrary: fc.record({
      g: fc.constant('fragmented' as const),
      opcode: fc.constantFrom(OPCODES.text, OPCODES.binary, OPCODES.continuation, OPCODES.ping),
      payload: payloadArb,
      pieces: fc.integer({ min: 2, max: 5 }),
      between: fc.constantFrom('nothing' as const, 'ping' as const, 'pong' as const, 'new-text' as const, 'close' as const, 'long-ping' as const),
      lastFin: weighted(fc.constant(true), fc.constant(false), 4),
    }),
    weight: 1,
  },
);

const WS_TARGETS = ['/v1/motebits/{mb}/ws', '/v1/motebits/{stranger}/ws', '/v1/motebits/{mb}/ws?x=1', '/v1/motebits/{mb}/ws/', '//v1/motebits/{mb}/ws', 'http://[', 'http://127.0.0.1/v1/motebits/{mb}/ws', '/v1/motebits/mb_/ws'];

export const upgradeArb: fc.Arbitrary<Upgrade> = fc.record({
  method: weighted(fc.constant('GET'), fc.constantFrom('POST', 'HEAD', 'PUT', 'OPTIONS', 'CONNECT', 'get'), 10),
  target: fc.oneof({ arbitrary: fc.constant('/v1/motebits/{mb}/ws'), weight: 12 }, { arbitrary: fc.constantFrom(...WS_TARGETS), weight: 2 }, { arbitrary: rawTarget, weight: 2 }),
  key: weighted(fc.constant('valid' as const), fc.constantFrom('short' as const, 'long' as const, 'not-base64' as const, 'empty' as const, 'missing' as const, 'twice' as const), 20),
  version: weighted(fc.constant<string | null>('13'), fc.constantFrom<string | null>(null, '8', '14', 'abc', '13, 13', '', '013', '13\0'), 20),
  upgrade: weighted(fc.constant<string | null>('websocket'), fc.constantFrom<string | null>(null, 'WebSocket', 'h2c', 'websocket, h2c', '', 'websocket\0'), 20),
  connection: weighted(fc.constant<string | null>('Upgrade'), fc.constantFrom<string | null>(null, 'keep-alive, Upgrade', 'close', 'upgrade, close', 'Upgrade\0'), 20),
  extra: fc.array(
    fc.constantFrom(
      'Sec-WebSocket-Protocol: a,,b',
      'Sec-WebSocket-Protocol: ' + 'p'.repeat(3000),
      'Sec-WebSocket-Protocol: motebit, motebit',
      'Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits',
      'Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=99',
      'Sec-WebSocket-Extensions: ;;;',
      'Origin: http://[',
      'Origin: null',
      'Content-Length: 10',
      'Transfer-Encoding: chunked',
      'Authorization: Bearer x',
      'Host: [',
    ),
    { maxLength: 3 },
  ),
});

const endArb = fc.constantFrom('close' as const, 'fin' as const, 'fin' as const, 'hold' as const);

export const wsCase: fc.Arbitrary<WsCase> = fc.record({
  upgrade: upgradeArb,
  groups: fc.array(groupArb, { maxLength: 5 }),
  timing: fc.constantFrom('with-upgrade' as const, 'after-101' as const),
  end: endArb,
});

export const authedWsCase: fc.Arbitrary<AuthedWsCase> = fc.record({
  after: fc.oneof(fc.constant(0), fc.nat(), fc.constant(Number.MAX_SAFE_INTEGER)),
  messages: fc.array(
    fc.record({
      node: wsMessage,
      mangle: mangleArb,
      pieces: weighted(fc.constant(1), fc.integer({ min: 2, max: 4 }), 4),
      binary: weighted(fc.constant(false), fc.constant(true), 12),
    }),
    { minLength: 1, maxLength: 4 },
  ),
  burst: weighted(fc.constant(0), fc.integer({ min: 1, max: 40 }), 6),
  groups: weighted(fc.constant<FrameGroup[]>([]), fc.array(groupArb, { minLength: 1, maxLength: 3 }), 3),
  end: endArb,
});

// ---- rendering ----

function renderPayload(payload: Payload, ctx: HttpContext): Buffer {
  switch (payload.p) {
    case 'bytes':
      return Buffer.from(payload.bytes);
    case 'text':
      return Buffer.from(payload.text, 'utf8');
    case 'json':
      return mangle(renderJson(payload.node, ctx), payload.mangle);
    case 'close':
      return closePayload(payload.code, payload.badUtf8 ? Buffer.from([0xff, 0xfe]) : Buffer.from(payload.reason, 'utf8'));
    case 'fill':
      return Buffer.alloc(payload.size, payload.byte);
  }
}

const frame = (spec: FrameSpec, ctx: HttpContext): Buffer => encodeFrame({ ...spec, payload: renderPayload(spec.payload, ctx) });
const simple = (opcode: number, payload: Buffer, fin = true): Buffer => encodeFrame({ fin, rsv: 0, opcode, mask: [1, 2, 3, 4], payload, length: 'minimal' });

export function renderGroups(groups: FrameGroup[], ctx: HttpContext): Buffer {
  const out: Buffer[] = [];
  for (const group of groups) {
    if (group.g === 'frame') {
      out.push(frame(group.frame, ctx));
      continue;
    }
    const payload = renderPayload(group.payload, ctx);
    const size = Math.max(1, Math.ceil(payload.length / group.pieces));
    for (let i = 0; i < group.pieces; i++) {
      const last = i === group.pieces - 1;
      out.push(simple(i === 0 ? group.opcode : OPCODES.continuation, payload.subarray(i * size, (i + 1) * size), last ? group.lastFin : false));
      if (i === 0) {
        if (group.between === 'ping') out.push(simple(OPCODES.ping, Buffer.from('p')));
        if (group.between === 'pong') out.push(simple(OPCODES.pong, Buffer.alloc(0)));
        if (group.between === 'new-text') out.push(simple(OPCODES.text, Buffer.from('{}')));
        if (group.between === 'close') out.push(simple(OPCODES.close, closePayload(1000, Buffer.alloc(0))));
        if (group.between === 'long-ping') out.push(simple(OPCODES.ping, Buffer.alloc(200, 0x70)));
      }
    }
  }
  return Buffer.concat(out);
}

function wsKey(kind: Upgrade['key']): string[] {
  const b64 = (n: number): string => randomBytes(n).toString('base64');
  switch (kind) {
    case 'valid':
      return [b64(16)];
    case 'short':
      return [b64(15)];
    case 'long':
      return [b64(17)];
    case 'not-base64':
      return ['!!!!!!!!!!!!!!!!!!!!!!=='];
    case 'empty':
      return [''];
    case 'missing':
      return [];
    case 'twice':
      return [b64(16), b64(16)];
  }
}

export function renderUpgrade(upgrade: Upgrade, ctx: HttpContext): Buffer {
  const lines = [`${upgrade.method} ${fillTarget(upgrade.target, ctx)} HTTP/1.1`, 'Host: 127.0.0.1'];
  if (upgrade.upgrade !== null) lines.push(`Upgrade: ${upgrade.upgrade}`);
  if (upgrade.connection !== null) lines.push(`Connection: ${upgrade.connection}`);
  for (const key of wsKey(upgrade.key)) lines.push(`Sec-WebSocket-Key: ${key}`);
  if (upgrade.version !== null) lines.push(`Sec-WebSocket-Version: ${upgrade.version}`);
  lines.push(...upgrade.extra);
  return bytesOf(`${lines.join('\r\n')}\r\n\r\n`);
}

/** A valid upgrade to the fuzzed motebit's WebSocket. */
export function validUpgrade(ctx: HttpContext): Buffer {
  return renderUpgrade({ method: 'GET', target: '/v1/motebits/{mb}/ws', key: 'valid', version: '13', upgrade: 'websocket', connection: 'Upgrade', extra: [] }, ctx);
}

export function renderMessage(message: AuthedMessage, ctx: HttpContext): Buffer {
  const payload = mangle(renderJson(message.node, ctx), message.mangle);
  const opcode = message.binary ? OPCODES.binary : OPCODES.text;
  if (message.pieces <= 1 || payload.length < message.pieces) return simple(opcode, payload);
  const size = Math.ceil(payload.length / message.pieces);
  const frames: Buffer[] = [];
  for (let i = 0; i < message.pieces; i++) frames.push(simple(i === 0 ? opcode : OPCODES.continuation, payload.subarray(i * size, (i + 1) * size), i === message.pieces - 1));
  return Buffer.concat(frames);
}

/** `count` valid pushes of one fresh event each, as separate messages. */
export function renderBurst(count: number, ctx: HttpContext): Buffer {
  return Buffer.concat(Array.from({ length: count }, (_, i) => simple(OPCODES.text, Buffer.from(JSON.stringify({ type: 'push', id: `b${i}`, events: [ctx.event()] })))));
}

export const closeFrame = (): Buffer => simple(OPCODES.close, closePayload(1000, Buffer.from('bye')));
export const authFrame = (token: string, after: number): Buffer => simple(OPCODES.text, Buffer.from(JSON.stringify({ type: 'auth', token, after })));
