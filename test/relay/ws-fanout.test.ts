// Fan-out encodes each notification once (relay/ws.ts): every socket that sends a live notification as it
// is gets the same bytes, as a text frame, exactly the JSON it got before; and a connection waiting for
// room on a full socket is let go when the socket closes. (Waiting and waking on a drained socket: the
// slow-consumer test in ws.test.ts.)
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import type { RunningRelay } from '../../relay/server.ts';
import type { StoredWireEvent } from '../../shared/portable/wire.ts';
import { TEST_STORE } from '../support/test-db.ts';
import { RelayClient, WsClient, enrolledMotebit, startTestRelay, tempDir, type TestDevice } from './support.ts';

let dir: ReturnType<typeof tempDir>;
const relays: RunningRelay[] = [];

beforeEach(() => {
  dir = tempDir();
});

afterEach(async () => {
  vi.restoreAllMocks();
  await Promise.all(relays.splice(0).map((relay) => relay.close()));
  dir.cleanup();
});

async function relayWith(devices: number, options: Parameters<typeof startTestRelay>[1] = {}): Promise<{ relay: RunningRelay; client: RelayClient; devices: TestDevice[] }> {
  const relay = await startTestRelay(join(dir.dir, `relay-${relays.length}.db`), options);
  relays.push(relay);
  const client = new RelayClient(relay);
  return { relay, client, devices: (await enrolledMotebit(client, devices)).devices };
}

async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await sleep(10);
}

/** Every frame a socket receives, raw, with whether it was binary. */
function recordFrames(socket: WsClient): { data: string; isBinary: boolean }[] {
  const frames: { data: string; isBinary: boolean }[] = [];
  socket.ws.on('message', (data: Buffer, isBinary) => frames.push({ data: data.toString('utf8'), isBinary }));
  return frames;
}

describe('WebSocket fan-out', () => {
  it('sends one notification to every socket as the same text frame, the JSON of the events message, serialised once', async () => {
    const receivers = 5;
    const { relay, client, devices } = await relayWith(receivers + 1);
    const [writer, ...readers] = devices as [TestDevice, ...TestDevice[]];
    const sockets = await Promise.all(readers.map((reader) => WsClient.connect(relay.url, reader, relay.audience)));
    await Promise.all(sockets.map((socket) => socket.waitFor((m) => m.type === 'caught_up')));
    const frames = sockets.map(recordFrames);

    const stringify = vi.spyOn(JSON, 'stringify');
    const pushed = writer.events(3, 100);
    const answer = await client.push(writer, pushed);
    expect(answer.body.stored).toBe(3);
    await Promise.all(sockets.map((socket) => socket.waitForEvents(3)));
    const eventsMessages = stringify.mock.calls.filter(([value]) => (value as { type?: unknown } | null)?.type === 'events');
    stringify.mockRestore();
    expect(eventsMessages).toHaveLength(1);

    const stored: StoredWireEvent[] = pushed.map((event, i) => {
      const result = answer.body.results[i]!;
      if (result.status !== 'stored') throw new Error(`event ${i} was not stored`);
      return { ...event, seq: result.seq };
    });
    const [first] = frames[0]!;
    expect(first?.isBinary).toBe(false);
    expect(JSON.parse(first!.data)).toEqual({ type: 'events', events: stored });
    for (const received of frames) expect(received).toEqual([first]);
    await Promise.all(sockets.map((socket) => socket.close()));
  });

  it('a socket catching up from storage gets the same text as one that heard the events live', async () => {
    const { relay, client, devices } = await relayWith(3);
    const [writer, live, late] = devices as [TestDevice, TestDevice, TestDevice];
    const listening = await WsClient.connect(relay.url, live, relay.audience);
    await listening.waitFor((m) => m.type === 'caught_up');
    const liveFrames = recordFrames(listening);
    await client.push(writer, writer.events(4));
    await listening.waitForEvents(4);

    const catching = new WsClient(relay.url, late.motebit.motebitId);
    const lateFrames = recordFrames(catching);
    await catching.opened;
    catching.sendJson({ type: 'auth', token: late.wsToken(relay.audience), after: 0 });
    await catching.waitFor((m) => m.type === 'caught_up');
    const lateEvents = lateFrames.filter((frame) => frame.data.startsWith('{"type":"events"'));
    expect(lateEvents).toEqual(liveFrames);
    expect(lateEvents.every((frame) => !frame.isBinary)).toBe(true);
    await Promise.all([listening.close(), catching.close()]);
  });

  it('a connection waiting for room is let go when its socket closes', async () => {
    const { relay, client, devices } = await relayWith(2, { wsHighWaterBytes: 4096, maxPageBytes: 16 * 1024, wsPageEvents: 10, rateLimitCapacity: 10_000 });
    const [writer, reader] = devices as [TestDevice, TestDevice];
    const slow = await WsClient.connect(relay.url, reader, relay.audience);
    await slow.waitFor((m) => m.type === 'caught_up');
    slow.ws.pause();
    // ~8 MB in all: more than the kernel buffers between the two ends.
    for (let i = 0; i < 150; i++) await client.push(writer, writer.events(10, 4096));
    // It is stuck above the mark, catching up from storage and waiting for room.
    expect(relay.stats().connections.find((c) => c.deviceId === reader.deviceId)?.catchingUp).toBe(true);
    slow.ws.terminate();
    await until(() => relay.stats().connections.every((c) => c.deviceId !== reader.deviceId));
    expect(slow.ws.readyState).toBe(WebSocket.CLOSED);
  });

  it("a device's pushes sent back to back are stored, answered and fanned out in order; anything after them is answered after them", async () => {
    const { relay, devices } = await relayWith(3);
    const [writer, reader] = devices as [TestDevice, TestDevice, TestDevice];
    const listening = await WsClient.connect(relay.url, reader, relay.audience);
    await listening.waitFor((m) => m.type === 'caught_up');
    const readerFrames = recordFrames(listening);
    const pushing = await WsClient.connect(relay.url, writer, relay.audience);
    await pushing.waitFor((m) => m.type === 'caught_up');
    // Revision 5: before 'ready' the relay says how many pushes may be in flight.
    expect(pushing.messages.slice(0, 2)).toEqual([{ type: 'limits', pushes_in_flight: 4 }, expect.objectContaining({ type: 'ready' })]);
    const answers = pushing.messages.length;

    const events = writer.events(18);
    for (let i = 0; i < 6; i++) {
      pushing.sendJson({ type: 'push', id: `p${i}`, events: events.slice(i * 3, i * 3 + 3) });
      if (i === 2) pushing.sendJson({ type: 'push', id: 'bad', events: [{}] }); // refused: answered in its turn too
    }
    pushing.sendJson({ type: 'reauth', token: writer.wsToken(relay.audience) });
    await pushing.waitFor((m) => m.type === 'reauthed');
    await listening.waitForEvents(18);

    const replies = pushing.messages.slice(answers).filter((m) => m.type !== 'events' && m.type !== 'caught_up');
    expect(replies.map((m) => (m.type === 'ack' ? `${m.id}:${m.stored}` : m.type === 'error' ? `${m.id}:${m.code}` : m.type))).toEqual(['p0:3', 'p1:3', 'p2:3', 'bad:bad_request', 'p3:3', 'p4:3', 'p5:3', 'reauthed']);
    const received = readerFrames.map((frame) => JSON.parse(frame.data) as { type: string; events: StoredWireEvent[] }).filter((m) => m.type === 'events');
    expect(received.flatMap((m) => m.events.map((e) => [e.seq, e.event_id]))).toEqual(events.map((e, i) => [i + 1, e.event_id]));
    // On SQLite the pushes that arrived together share one commit, and their news one message per receiver.
    if (TEST_STORE === 'sqlite') expect(received.length).toBeLessThan(6);
    await Promise.all([listening.close(), pushing.close()]);
  });
});
