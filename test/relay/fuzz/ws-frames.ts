// WebSocket frames (RFC 6455 §5.2) by hand, so a frame can be wrong in any field: client frames to send,
// and a minimal reader for the relay's (unmasked) frames.

export type LengthForm = 'minimal' | 'wide16' | 'wide64' | 'more' | 'max63' | 'max64' | 'over-cap';

export interface Frame {
  fin: boolean;
  /** RSV1-3 as a 3-bit number (0 for a valid frame: the relay negotiates no extension). */
  rsv: number;
  opcode: number;
  /** 'none' sends an unmasked client frame (a protocol error). */
  mask: 'none' | 'zero' | [number, number, number, number];
  payload: Buffer;
  length: LengthForm;
}

export const OPCODES = { continuation: 0, text: 1, binary: 2, close: 8, ping: 9, pong: 10 } as const;

/** The declared payload length for a length form. */
function declared(frame: Frame): bigint {
  const actual = BigInt(frame.payload.length);
  switch (frame.length) {
    case 'more':
      return actual + 1000n;
    case 'max63':
      return 2n ** 63n - 1n;
    case 'max64':
      return 2n ** 64n - 1n;
    case 'over-cap':
      return BigInt(5 * 1024 * 1024);
    default:
      return actual;
  }
}

/** Which length field carries the length: the smallest that fits, unless a wider one is asked for. */
function lengthField(form: LengthForm, length: bigint): 'small' | 'wide16' | 'wide64' {
  if (form === 'wide64') return 'wide64';
  if (form === 'wide16' && length < 65536n) return 'wide16';
  if (length < 126n) return 'small';
  return length < 65536n ? 'wide16' : 'wide64';
}

export function encodeFrame(frame: Frame): Buffer {
  const length = declared(frame);
  const masked = frame.mask !== 'none';
  const head: number[] = [(frame.fin ? 0x80 : 0) | ((frame.rsv & 7) << 4) | (frame.opcode & 0x0f)];
  const form = lengthField(frame.length, length);
  if (form === 'small') head.push((masked ? 0x80 : 0) | Number(length));
  else if (form === 'wide16') head.push((masked ? 0x80 : 0) | 126, Number(length >> 8n) & 0xff, Number(length) & 0xff);
  else {
    head.push((masked ? 0x80 : 0) | 127);
    for (let shift = 56n; shift >= 0n; shift -= 8n) head.push(Number((length >> shift) & 0xffn));
  }
  if (!masked) return Buffer.concat([Buffer.from(head), frame.payload]);
  const key = frame.mask === 'zero' ? [0, 0, 0, 0] : (frame.mask as number[]);
  const body = Buffer.from(frame.payload);
  for (let i = 0; i < body.length; i++) body[i]! ^= key[i % 4]!;
  return Buffer.concat([Buffer.from(head), Buffer.from(key), body]);
}

export function closePayload(code: number | null, reason: Buffer): Buffer {
  if (code === null) return reason;
  const bytes = Buffer.alloc(2);
  bytes.writeUInt16BE(code & 0xffff);
  return Buffer.concat([bytes, reason]);
}

export interface ServerFrame {
  opcode: number;
  payload: Buffer;
}

/** The complete frames the relay sent, read from `bytes` (which starts after the 101 response head). */
export function readServerFrames(bytes: Buffer): ServerFrame[] {
  const frames: ServerFrame[] = [];
  let at = 0;
  while (at + 2 <= bytes.length) {
    const opcode = bytes[at]! & 0x0f;
    let length = bytes[at + 1]! & 0x7f;
    let offset = at + 2;
    if (length === 126) {
      if (offset + 2 > bytes.length) break;
      length = bytes.readUInt16BE(offset);
      offset += 2;
    } else if (length === 127) {
      if (offset + 8 > bytes.length) break;
      length = Number(bytes.readBigUInt64BE(offset));
      offset += 8;
    }
    if (offset + length > bytes.length) break;
    frames.push({ opcode, payload: bytes.subarray(offset, offset + length) });
    at = offset + length;
  }
  return frames;
}
