// Hocuspocus in the fan-out workload: RECEIVERS clients on one Yjs document, one client sends updates.
// A push is one Yjs update (a transaction setting `size` map keys to the same 1 KB strings); receivers
// decode the message header only and count updates (they arrive in order).
//
// "Acknowledged" is Hocuspocus's SyncStatus message, which it sends the writer right after applying the
// update to its in-memory document and broadcasting it (MessageReceiver, messageYjsUpdate):
//   in memory: no extension; nothing is written anywhere before the ack (onStoreDocument, were there a
//              store, runs debounced, 2 s later).
//   durable:   a beforeHandleMessage hook (bench/hocuspocus-sqlite.ts) commits each update to SQLite
//              (WAL, synchronous=FULL) first; Hocuspocus awaits the hook before it applies, broadcasts
//              and acks the update, so an ack means what ours means: the update is on disk.
import WebSocket from 'ws';
import * as decoding from 'lib0/decoding';
import * as encoding from 'lib0/encoding';
import * as Y from 'yjs';
import { Child } from './lib.ts';
import { RECEIVERS, type System } from './fanout-workload.ts';
import { yjsWriter } from './yjs-writer.ts';

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

/** A Hocuspocus server (bench/peer-child.ts), in memory or with `sqlitePath` committing updates before acking. */
export async function hocuspocusSystem(name: string, options: { sqlitePath?: string } = {}): Promise<{ system: System; cpuMicros: () => Promise<number> }> {
  const { child, ready } = await Child.start<{ url: string }>('./peer-child.ts', options);
  const sockets: WebSocket[] = [];
  try {
    const documentName = 'fanout';
    const nextUpdate = yjsWriter();
    const system: System = {
      name,
      onBatch: () => undefined,
      onAck: () => undefined,
      onError: () => undefined,
      push(_index, size) {
        const update = nextUpdate(size);
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
    pusher.on('close', (code) => system.onError(new Error(`the ${name} pusher's socket closed (${code})`)));
    for (let receiver = 0; receiver < RECEIVERS; receiver++) {
      let updates = 0;
      let live = false;
      const socket = await peerClient(ready.url, documentName, (type, subtype, at) => {
        if (live && (type === SYNC || type === SYNC_REPLY) && subtype === SYNC_UPDATE) system.onBatch(receiver, updates++, at);
      });
      live = true;
      sockets.push(socket);
      socket.on('close', (code) => system.onError(new Error(`${name} receiver ${receiver}'s socket closed (${code})`)));
    }
    return { system, cpuMicros: () => child.call<number>('cpu') };
  } catch (error) {
    for (const socket of sockets) socket.terminate();
    await child.stop();
    throw error;
  }
}
