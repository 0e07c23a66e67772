// Fan-out: one device pushes, 100 other connected devices of the same motebit receive over WebSocket.
// The same workload then runs against a peer relay (Hocuspocus: 100 clients on one Yjs document, one
// client sends updates), and our figures are given as ratios to the peer's, measured in this run.
//
// Workload, identical for both relays (each relay in its own process, all clients in this one):
//   latency:    LATENCY_PUSHES pushes of one 1 KB event, each sent once the previous one reached all
//               receivers and was acknowledged; latency = receipt at a receiver - send, every receiver.
//   throughput: THROUGHPUT_EVENTS events of 1 KB in pushes of BATCH events, at most WINDOW pushes
//               unacknowledged; events/s delivered = events x receivers / (last receipt - first send).
// A push of ours is one 'push' message (the relay fsyncs it, then fans out 'events'); a push to the peer
// is one Yjs update (a transaction setting BATCH map keys to the same 1 KB strings), which it applies to
// its in-memory document and broadcasts. Our acknowledgement is 'ack'; Hocuspocus answers each update
// with a SyncStatus message. Receivers stay thin on both sides: ours parse the JSON message (it names
// the events), the peer's decode the message header (a receiver counts updates: they arrive in order).
import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import * as decoding from 'lib0/decoding';
import * as encoding from 'lib0/encoding';
import * as Y from 'yjs';
import { toBase64Url } from '../shared/encoding.ts';
import { newEventId } from '../shared/ids.ts';
import type { WireEvent } from '../shared/wire.ts';
import { Child, LeanSocket, Signal, newMotebit, percentile, seedRelayDb, type BenchMotebit } from './lib.ts';
import { median, progress, scratch, type Figure } from './support.ts';
import { startFleet } from './relay-fleet.ts';

export const RECEIVERS = 100;
const BODY_BYTES = 1024;
export const BATCH = 10;
const WINDOW = 4;
const WAIT_MS = 20_000;

export interface Params {
  latencyPushes: number;
  throughputEvents: number;
}

/** What the driver needs of a relay under test. Batches are numbered 0, 1, ... in send order. */
export interface System {
  readonly name: string;
  /** Sends batch `index` of `size` events now. */
  push(index: number, size: number): void;
  /** Called by the system: receiver `receiver` has all of batch `index` at time `at`. */
  onBatch: (receiver: number, index: number, at: number) => void;
  /** Called by the system on each acknowledgement of a push. */
  onAck: () => void;
  /** Called by the system when something went wrong in a socket handler (a refused push, a closed socket). */
  onError: (error: Error) => void;
  close(): Promise<void>;
}

export interface RoundResult {
  p50: number;
  p99: number;
  eventsPerSecond: number;
}

export async function runRound(system: System, params: Params): Promise<RoundResult> {
  const signal = new Signal();
  const sentAt: number[] = [];
  const receivedCount: number[] = [];
  const latencies: number[] = [];
  let acked = 0;
  let complete = 0;
  let lastReceipt = 0;
  let base = 0; // batch numbering continues across phases and rounds
  let measuring = true;
  system.onAck = () => {
    acked++;
    signal.poke();
  };
  system.onError = (error) => signal.fail(error);
  system.onBatch = (_receiver, index, at) => {
    const local = index - base;
    if (local < 0) return;
    receivedCount[local] = (receivedCount[local] ?? 0) + 1;
    if (receivedCount[local] === RECEIVERS) complete++;
    if (measuring) latencies.push(at - sentAt[local]!);
    lastReceipt = at;
    signal.poke();
  };

  // Latency: one event at a time.
  const first = (system as { nextIndex?: number }).nextIndex ?? 0;
  base = first;
  for (let i = 0; i < params.latencyPushes; i++) {
    const ackedBefore = acked;
    sentAt[i] = performance.now();
    system.push(first + i, 1);
    await signal.wait(() => (receivedCount[i] ?? 0) >= RECEIVERS && acked > ackedBefore, WAIT_MS, `${system.name} latency push ${i}`);
  }
  measuring = false;

  // Throughput: batches of BATCH, a window of WINDOW unacknowledged pushes.
  base = first + params.latencyPushes;
  const batches = Math.ceil(params.throughputEvents / BATCH);
  receivedCount.length = 0;
  sentAt.length = 0;
  complete = 0;
  const ackedBefore = acked;
  const start = performance.now();
  for (let i = 0; i < batches; i++) {
    await signal.wait(() => i - (acked - ackedBefore) < WINDOW, WAIT_MS, `${system.name} ack window`);
    sentAt[i] = performance.now();
    system.push(base + i, BATCH);
  }
  await signal.wait(() => complete === batches, WAIT_MS, `${system.name} throughput delivery`);
  await signal.wait(() => acked - ackedBefore >= batches, WAIT_MS, `${system.name} final acks`);
  (system as { nextIndex?: number }).nextIndex = base + batches;
  const elapsed = (lastReceipt - start) / 1000;
  return { p50: percentile(latencies, 50), p99: percentile(latencies, 99), eventsPerSecond: (batches * BATCH * RECEIVERS) / elapsed };
}

// ---- our relay ----------------------------------------------------------------------------------

export async function ourSystem(dir: string): Promise<System> {
  const motebit = newMotebit(RECEIVERS + 1);
  const dbPath = `${dir}/fanout-relay.db`;
  seedRelayDb(dbPath, [motebit]);
  const fleet = await startFleet(dbPath, 1);
  return relaySystem('our relay', fleet.urls, fleet.audience, motebit, () => fleet.stop());
}

/**
 * Our relay's side of the workload over one or more instances of one relay (same database, same audience):
 * the pusher (the motebit's first device) on the first instance, receiver r on instance r mod N.
 * `stop` stops the instances; it is called on close and when connecting fails.
 */
export async function relaySystem(name: string, urls: readonly string[], audience: string, motebit: BenchMotebit, stop: () => Promise<void>): Promise<System> {
  const sockets: LeanSocket[] = [];
  try {
    const [pusherDevice, ...receiverDevices] = motebit.devices;
    if (receiverDevices.length !== RECEIVERS) throw new Error(`the fan-out motebit needs ${RECEIVERS + 1} devices`);
    const body = toBase64Url(randomBytes(BODY_BYTES));
    const batchOfLastEvent = new Map<string, number>();
    let deviceSeq = 0;
    const pusher = await LeanSocket.connect(urls[0]!, motebit.motebitId, pusherDevice!, audience);
    sockets.push(pusher);
    const system: System = {
      name,
      onBatch: () => undefined,
      onAck: () => undefined,
      onError: () => undefined,
      push(index, size) {
        const events: WireEvent[] = Array.from({ length: size }, () => ({ event_id: newEventId(), device_id: pusherDevice!.deviceId, device_seq: ++deviceSeq, key_id: 'k1', body }));
        batchOfLastEvent.set(events.at(-1)!.event_id, index);
        pusher.ws.send(JSON.stringify({ type: 'push', id: String(index), events }));
      },
      async close() {
        for (const socket of sockets) socket.close();
        await stop();
      },
    };
    pusher.onMessage = (message) => {
      if (message.type === 'ack' && message.stored === (message.results as unknown[]).length) system.onAck();
      else if (message.type === 'ack' || message.type === 'error') system.onError(new Error(`the relay refused a push: ${JSON.stringify(message).slice(0, 300)}`));
    };
    pusher.ws.on('close', (code) => system.onError(new Error(`the pusher's socket closed (${code})`)));
    const connected = await Promise.all(receiverDevices.map((device, r) => LeanSocket.connect(urls[r % urls.length]!, motebit.motebitId, device, audience)));
    connected.forEach((socket, receiver) => {
      sockets.push(socket);
      socket.ws.on('close', (code) => system.onError(new Error(`receiver ${receiver}'s socket closed (${code})`)));
      socket.onEvents = (events, at) => {
        for (const event of events) {
          const index = batchOfLastEvent.get(event.event_id);
          if (index !== undefined) system.onBatch(receiver, index, at);
        }
      };
    });
    return system;
  } catch (error) {
    for (const socket of sockets) socket.close();
    await stop();
    throw error;
  }
}

// ---- the peer: Hocuspocus -----------------------------------------------------------------------

const SYNC = 0;
const AUTH = 2;
const SYNC_REPLY = 4;
const SYNC_STATUS = 8;
const SYNC_STEP_2 = 1;
const SYNC_UPDATE = 2;
const AUTH_TOKEN = 0;
const AUTHENTICATED = 2;

function frame(documentName: string, write: (encoder: encoding.Encoder) => void): Uint8Array {
  const encoder = encoding.createEncoder();
  encoding.writeVarString(encoder, documentName);
  write(encoder);
  return encoding.toUint8Array(encoder);
}

/** A raw Hocuspocus client: authenticates, asks for the document (sync step 1), then hears updates. */
async function peerClient(url: string, documentName: string, onFrame: (type: number, subtype: number, at: number) => void): Promise<WebSocket> {
  const ws = new WebSocket(`${url}/${documentName}`, { perMessageDeflate: false });
  ws.binaryType = 'nodebuffer';
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  ws.on('error', () => undefined);
  let synced: () => void = () => undefined;
  const ready = new Promise<void>((resolve, reject) => {
    synced = resolve;
    ws.once('close', (code) => reject(new Error(`peer socket closed (${code}) before sync`)));
  });
  ws.on('message', (data: Buffer) => {
    const at = performance.now();
    const decoder = decoding.createDecoder(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    decoding.readVarString(decoder);
    const type = decoding.readVarUint(decoder);
    const subtype = type === SYNC || type === SYNC_REPLY || type === AUTH ? decoding.readVarUint(decoder) : -1;
    if (type === AUTH && subtype === AUTHENTICATED) {
      // sync step 1 with an empty state vector: "send me the document"
      ws.send(frame(documentName, (e) => (encoding.writeVarUint(e, SYNC), encoding.writeVarUint(e, 0), encoding.writeVarUint8Array(e, Y.encodeStateVector(new Y.Doc())))));
    } else if ((type === SYNC || type === SYNC_REPLY) && subtype === SYNC_STEP_2) synced();
    onFrame(type, subtype, at);
  });
  ws.send(frame(documentName, (e) => (encoding.writeVarUint(e, AUTH), encoding.writeVarUint(e, AUTH_TOKEN), encoding.writeVarString(e, 'bench'))));
  await ready;
  return ws;
}

export async function peerSystem(): Promise<System> {
  const { child, ready } = await Child.start<{ url: string }>('./peer-child.ts', {});
  const sockets: WebSocket[] = [];
  try {
    const documentName = 'fanout';
    const body = toBase64Url(randomBytes(BODY_BYTES));
    const doc = new Y.Doc();
    const map = doc.getMap<string>('events');
    let key = 0;
    let pending: Uint8Array | null = null;
    doc.on('update', (update: Uint8Array) => {
      pending = update;
    });
    const system: System = {
      name: 'peer (Hocuspocus)',
      onBatch: () => undefined,
      onAck: () => undefined,
      onError: () => undefined,
      push(_index, size) {
        doc.transact(() => {
          for (let i = 0; i < size; i++) map.set(`e${++key}`, body);
        });
        const update = pending!;
        pending = null;
        pusher.send(frame(documentName, (e) => (encoding.writeVarUint(e, SYNC), encoding.writeVarUint(e, SYNC_UPDATE), encoding.writeVarUint8Array(e, update))));
      },
      async close() {
        for (const socket of sockets) socket.terminate();
        await child.stop();
      },
    };
    const pusher = await peerClient(ready.url, documentName, (type) => {
      if (type === SYNC_STATUS) system.onAck();
    });
    sockets.push(pusher);
    pusher.on('close', (code) => system.onError(new Error(`the peer pusher's socket closed (${code})`)));
    for (let receiver = 0; receiver < RECEIVERS; receiver++) {
      let updates = 0;
      let live = false;
      const socket = await peerClient(ready.url, documentName, (type, subtype, at) => {
        if (live && (type === SYNC || type === SYNC_REPLY) && subtype === SYNC_UPDATE) system.onBatch(receiver, updates++, at);
      });
      live = true;
      sockets.push(socket);
      socket.on('close', (code) => system.onError(new Error(`peer receiver ${receiver}'s socket closed (${code})`)));
    }
    return system;
  } catch (error) {
    for (const socket of sockets) socket.terminate();
    await child.stop();
    throw error;
  }
}

// ---- the figures --------------------------------------------------------------------------------

export async function measure(system: System, roundCount: number, params: Params): Promise<RoundResult> {
  // One unmeasured warm-up round (JIT, first document load), then the rounds.
  await runRound(system, { latencyPushes: 20, throughputEvents: 200 });
  const results: RoundResult[] = [];
  for (let round = 0; round < roundCount; round++) {
    results.push(await runRound(system, params));
    progress(`fan-out, ${system.name}: round ${round + 1}/${roundCount}`);
  }
  return {
    p50: median(results.map((r) => r.p50)),
    p99: median(results.map((r) => r.p99)),
    eventsPerSecond: median(results.map((r) => r.eventsPerSecond)),
  };
}

export async function fanoutBench(roundCount: number, options: { quick: boolean }): Promise<Figure[]> {
  const params: Params = options.quick ? { latencyPushes: 100, throughputEvents: 1000 } : { latencyPushes: 200, throughputEvents: 2000 };
  const dir = scratch('fanout');
  try {
    progress(`fan-out: our relay, 1 pusher -> ${RECEIVERS} receivers, ${params.latencyPushes} single pushes + ${params.throughputEvents} events in pushes of ${BATCH}`);
    const ours = await ourSystem(dir.path);
    let our: RoundResult;
    try {
      our = await measure(ours, roundCount, params);
    } finally {
      await ours.close();
    }
    progress(`fan-out: peer relay (Hocuspocus), same workload on one document`);
    const peer = await peerSystem();
    let their: RoundResult;
    try {
      their = await measure(peer, roundCount, params);
    } finally {
      await peer.close();
    }
    const workload = `${RECEIVERS} receivers`;
    return [
      { key: 'fanout_p50_ms', label: `fan-out push->receipt p50, ${workload}`, value: our.p50, unit: 'ms', note: 'single 1 KB events' },
      { key: 'fanout_p99_ms', label: `fan-out push->receipt p99, ${workload}`, value: our.p99, unit: 'ms', note: 'goal <= 5 ms' },
      { key: 'fanout_events_per_s', label: `fan-out delivered, ${workload}`, value: our.eventsPerSecond, unit: 'events/s', note: `pushes of ${BATCH}, ${WINDOW} in flight` },
      { key: 'peer_fanout_p50_ms', label: 'peer (Hocuspocus) push->receipt p50', value: their.p50, unit: 'ms', note: 'in-memory document, no persistence' },
      { key: 'peer_fanout_p99_ms', label: 'peer (Hocuspocus) push->receipt p99', value: their.p99, unit: 'ms' },
      { key: 'peer_fanout_events_per_s', label: 'peer (Hocuspocus) delivered', value: their.eventsPerSecond, unit: 'events/s' },
      { key: 'fanout_ratio_to_peer', label: 'fan-out throughput, ours / peer', value: our.eventsPerSecond / their.eventsPerSecond, unit: 'ratio', note: 'goal >= 2' },
      { key: 'fanout_p99_ratio_to_peer', label: 'fan-out p99, ours / peer', value: our.p99 / their.p99, unit: 'ratio', note: 'lower is better' },
    ];
  } finally {
    dir.remove();
  }
}
