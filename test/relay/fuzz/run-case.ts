// Plays one generated case against the relay over a real TCP socket and says what was sent and what
// came back. Every socket has a hard deadline; a quiet socket is given up on after `idleMs`.
import { setTimeout as sleep } from 'node:timers/promises';
import { splitAt } from './bytes.ts';
import type { Fixture } from './fixture.ts';
import { renderHttp, type HttpCase } from './http-gen.ts';
import { RawSession, type SessionResult } from './raw-socket.ts';
import { readServerFrames } from './ws-frames.ts';
import { authFrame, closeFrame, renderBurst, renderGroups, renderMessage, renderUpgrade, validUpgrade, type AuthedWsCase, type WsCase } from './ws-gen.ts';

export interface Timing {
  deadlineMs: number;
  idleMs: number;
}

export interface Played {
  sent: Buffer;
  result: SessionResult;
  /** Still open if the relay kept it: the caller checks the relay meanwhile, then destroys it. */
  session: RawSession;
}

const HEAD_END = Buffer.from('\r\n\r\n');
const headDone = (received: Buffer): boolean => received.includes(HEAD_END);
const is101 = (received: Buffer): boolean => received.subarray(0, 12).toString('latin1') === 'HTTP/1.1 101';

export async function playHttp(fx: Fixture, c: HttpCase, timing: Timing): Promise<Played> {
  const sent = renderHttp(c, fx.ctx);
  const session = await RawSession.open(fx.port, timing.deadlineMs);
  const pieces = splitAt(sent, c.splits);
  for (const [i, piece] of pieces.entries()) {
    if (i > 0) await sleep(2);
    session.write(piece);
  }
  if (c.halfClose) session.end();
  return { sent, result: await session.settle(timing.idleMs), session };
}

export async function playWs(fx: Fixture, c: WsCase, timing: Timing): Promise<Played> {
  const head = renderUpgrade(c.upgrade, fx.ctx);
  const frames = Buffer.concat([renderGroups(c.groups, fx.ctx), c.end === 'close' ? closeFrame() : Buffer.alloc(0)]);
  const session = await RawSession.open(fx.port, timing.deadlineMs);
  if (c.timing === 'with-upgrade') session.write(Buffer.concat([head, frames]));
  else {
    session.write(head);
    if ((await session.waitFor(headDone, timing.deadlineMs)) && is101(session.received)) session.write(frames);
  }
  if (c.end === 'fin') session.end();
  return { sent: Buffer.concat([head, frames]), result: await session.settle(timing.idleMs), session };
}

/** A valid upgrade and auth (both must succeed), then the generated messages and frames. */
export async function playAuthedWs(fx: Fixture, c: AuthedWsCase, timing: Timing): Promise<Played> {
  const head = validUpgrade(fx.ctx);
  const auth = authFrame(fx.ctx.token('ws-valid'), c.after);
  const rest = Buffer.concat([...c.messages.map((m) => renderMessage(m, fx.ctx)), renderBurst(c.burst, fx.ctx), renderGroups(c.groups, fx.ctx), c.end === 'close' ? closeFrame() : Buffer.alloc(0)]);
  const sent = Buffer.concat([head, auth, rest]);
  const session = await RawSession.open(fx.port, timing.deadlineMs + 2000);
  try {
    session.write(head);
    if (!(await session.waitFor(headDone, timing.deadlineMs)) || !is101(session.received)) {
      throw new Error(`a valid WebSocket upgrade was not answered 101: ${JSON.stringify(session.received.toString('latin1').slice(0, 200))}`);
    }
    const start = session.received.indexOf(HEAD_END) + HEAD_END.length;
    session.write(auth);
    const ready = (received: Buffer): boolean => readServerFrames(received.subarray(start)).some((f) => f.opcode === 1 && f.payload.toString('utf8').startsWith('{"type":"ready"'));
    if (!(await session.waitFor(ready, timing.deadlineMs))) {
      const frames = readServerFrames(session.received.subarray(start)).map((f) => `${f.opcode}:${f.payload.toString('utf8').slice(0, 120)}`);
      throw new Error(`a valid WebSocket auth got no ready message; the relay sent ${JSON.stringify(frames)}`);
    }
    session.write(rest);
    if (c.end === 'fin') session.end();
    return { sent, result: await session.settle(timing.idleMs), session };
  } catch (error) {
    session.destroy();
    throw error;
  }
}
