// What the cases got back, counted for a short report after each property: the first status line (and
// error code, or WebSocket close), how the socket ended, and the relay's WebSocket messages by type.
// It shows how deep the generated cases reach (parser, router, auth, schema, WebSocket protocol).
import type { SessionResult } from './raw-socket.ts';
import { readServerFrames } from './ws-frames.ts';

const is101 = (received: Buffer): boolean => received.subarray(0, 12).toString('latin1') === 'HTTP/1.1 101';
const framesAfterHead = (received: Buffer): ReturnType<typeof readServerFrames> => readServerFrames(received.subarray(received.indexOf('\r\n\r\n') + 4));

export class Tally {
  readonly #outcomes = new Map<string, number>();
  readonly #wsTypes = new Map<string, number>();

  add(kind: string, result: SessionResult): void {
    const text = result.received.toString('latin1');
    const status = /^HTTP\/1\.[01] \d{3}/.exec(text)?.[0] ?? (text.length ? 'non-HTTP bytes' : 'no bytes');
    const end = result.hitDeadline ? 'deadline' : result.closedByRelay ? 'closed by relay' : 'idle';
    const code = /"code":"([a-z_]+)"/.exec(text)?.[1];
    let detail = '';
    if (is101(result.received)) {
      // An HTTP answer after a 101 (an upgrade pipelined behind a pending request) fails the case in
      // runCase; counted here too so the report shows it.
      if (text.indexOf('HTTP/1.1 ', 12) > 0) detail = ' [an HTTP answer after the 101]';
      else {
        const close = framesAfterHead(result.received).find((f) => f.opcode === 8);
        if (close) detail = ` close ${close.payload.length >= 2 ? close.payload.readUInt16BE(0) : '-'} ${close.payload.subarray(2).toString('utf8')}`.trimEnd();
      }
      for (const frame of framesAfterHead(result.received)) {
        const type = frame.opcode === 1 ? (/^\{"type":"([a-z_]+)"/.exec(frame.payload.toString('utf8'))?.[1] ?? 'text') : `opcode ${frame.opcode}`;
        this.#wsTypes.set(type, (this.#wsTypes.get(type) ?? 0) + 1);
      }
    }
    const key = `${kind} ${status}${code ? ` ${code}` : ''}${detail} / ${end}`;
    this.#outcomes.set(key, (this.#outcomes.get(key) ?? 0) + 1);
  }

  /** The report, and a fresh start. */
  take(title: string): string {
    const lines = [...this.#outcomes].sort((a, b) => b[1] - a[1]).map(([key, n]) => `  ${String(n).padStart(5)}  ${key}`);
    const types = [...this.#wsTypes].map(([type, n]) => `${type} ${n}`).join(', ');
    this.#outcomes.clear();
    this.#wsTypes.clear();
    return `${title}:\n${lines.join('\n')}${types ? `\n  relay WebSocket messages: ${types}` : ''}`;
  }
}
