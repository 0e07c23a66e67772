// y-websocket (with y-leveldb persistence) in the fan-out workload: RECEIVERS clients on one Yjs
// document, one client sends updates (the same Yjs transactions as the Hocuspocus client sends).
// Messages are y-protocols' sync messages with no document name (the document is the URL path).
//
// "Acknowledged": y-websocket's protocol has no acknowledgement. Its server broadcasts every applied
// update to every connection of the document, the writer's own included; the writer counts that echo as
// its ack. It leaves when the update is applied in memory, before y-leveldb has written it (the write is
// queued and never awaited, bench/ywebsocket-persistence.ts). So the ack says "applied and broadcast",
// not "stored". After each round the bench waits for y-leveldb's queue to drain (`settle`), inside the CPU
// window (so the writes' CPU is counted) but outside the delivery figures; how long that took is noted.
import WebSocket from 'ws';
import * as decoding from 'lib0/decoding';
import * as encoding from 'lib0/encoding';
import * as Y from 'yjs';
import { Child } from './lib.ts';
import { RECEIVERS, type System } from './fanout-workload.ts';
import { yjsWriter } from './yjs-writer.ts';

const SYNC = 0;
const STEP_1 = 0;
const STEP_2 = 1;
const UPDATE = 2;
const DOCUMENT = 'fanout';

const message = (write: (encoder: encoding.Encoder) => void): Uint8Array => {
  const encoder = encoding.createEncoder();
  write(encoder);
  return encoding.toUint8Array(encoder);
};

/** A raw y-websocket client: asks for the document (sync step 1, empty state vector), then hears updates. */
async function yClient(url: string, onUpdate: (at: number) => void): Promise<WebSocket> {
  const ws = new WebSocket(`${url}/${DOCUMENT}`, { perMessageDeflate: false });
  ws.binaryType = 'nodebuffer';
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  ws.on('error', () => undefined);
  let synced: () => void = () => undefined;
  const ready = new Promise<void>((resolve, reject) => {
    synced = resolve;
    ws.once('close', (code) => reject(new Error(`y-websocket socket closed (${code}) before sync`)));
  });
  ws.on('message', (data: Buffer) => {
    const at = performance.now();
    const decoder = decoding.createDecoder(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    if (decoding.readVarUint(decoder) !== SYNC) return; // awareness
    const subtype = decoding.readVarUint(decoder);
    if (subtype === STEP_2) synced();
    else if (subtype === UPDATE) onUpdate(at);
  });
  ws.send(message((e) => (encoding.writeVarUint(e, SYNC), encoding.writeVarUint(e, STEP_1), encoding.writeVarUint8Array(e, Y.encodeStateVector(new Y.Doc())))));
  await ready;
  return ws;
}

export interface YWebsocketSystem {
  system: System;
  cpuMicros: () => Promise<number>;
  /** Waits for y-leveldb to write everything queued; answers how long that took (ms). */
  settle: () => Promise<number>;
}

/** y-websocket's server (bench/ywebsocket-child.ts) with y-leveldb in `dir`, LevelDB `sync` or not. */
export async function ywebsocketSystem(name: string, options: { dir: string; sync: boolean }): Promise<YWebsocketSystem> {
  const { child, ready } = await Child.start<{ url: string }>('./ywebsocket-child.ts', options);
  const sockets: WebSocket[] = [];
  try {
    const nextUpdate = yjsWriter();
    const system: System = {
      name,
      onBatch: () => undefined,
      onAck: () => undefined,
      onError: () => undefined,
      push(_index, size) {
        const update = nextUpdate(size);
        pusher.send(message((e) => (encoding.writeVarUint(e, SYNC), encoding.writeVarUint(e, UPDATE), encoding.writeVarUint8Array(e, update))));
      },
      async close() {
        for (const socket of sockets) socket.terminate();
        await child.stop();
      },
    };
    const pusher = await yClient(ready.url, () => system.onAck());
    sockets.push(pusher);
    pusher.on('close', (code) => system.onError(new Error(`the ${name} pusher's socket closed (${code})`)));
    for (let receiver = 0; receiver < RECEIVERS; receiver++) {
      let updates = 0;
      let live = false;
      const socket = await yClient(ready.url, (at) => {
        if (live) system.onBatch(receiver, updates++, at);
      });
      live = true;
      sockets.push(socket);
      socket.on('close', (code) => system.onError(new Error(`${name} receiver ${receiver}'s socket closed (${code})`)));
    }
    return { system, cpuMicros: () => child.call<number>('cpu'), settle: () => child.call<number>('drain') };
  } catch (error) {
    for (const socket of sockets) socket.terminate();
    await child.stop();
    throw error;
  }
}
