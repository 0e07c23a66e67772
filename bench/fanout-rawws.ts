// Raw ws broadcast in the fan-out workload, the ceiling (bench/rawws-child.ts forwards each message to
// every other socket). A push is one binary message: the batch index (4 bytes), then `size` times the
// same base64url 1 KB body the other systems carry; a receiver reads the index and nothing else.
//
// "Acknowledged": there is no acknowledgement. The writer counts ws's send callback (the frame is written
// to its socket) as its ack, so the window of unacknowledged pushes never binds: only TCP holds the writer
// back. The figures are what one process forwarding buffers can deliver to these same clients.
import WebSocket from 'ws';
import { Child } from './lib.ts';
import { RECEIVERS, eventBody, type System } from './fanout-workload.ts';

async function connect(url: string): Promise<WebSocket> {
  const ws = new WebSocket(url, { perMessageDeflate: false });
  ws.binaryType = 'nodebuffer';
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  ws.on('error', () => undefined);
  return ws;
}

export async function rawWsSystem(name: string): Promise<{ system: System; cpuMicros: () => Promise<number> }> {
  const { child, ready } = await Child.start<{ url: string }>('./rawws-child.ts', {});
  const sockets: WebSocket[] = [];
  try {
    const body = Buffer.from(eventBody(), 'latin1');
    const system: System = {
      name,
      onBatch: () => undefined,
      onAck: () => undefined,
      onError: () => undefined,
      push(index, size) {
        const frame = Buffer.allocUnsafe(4 + size * body.length);
        frame.writeUInt32BE(index, 0);
        for (let i = 0; i < size; i++) body.copy(frame, 4 + i * body.length);
        pusher.send(frame, { binary: true }, (error) => (error ? system.onError(error) : system.onAck()));
      },
      async close() {
        for (const socket of sockets) socket.terminate();
        await child.stop();
      },
    };
    const pusher = await connect(ready.url);
    sockets.push(pusher);
    pusher.on('close', (code) => system.onError(new Error(`the ${name} pusher's socket closed (${code})`)));
    for (let receiver = 0; receiver < RECEIVERS; receiver++) {
      const socket = await connect(ready.url);
      socket.on('message', (data: Buffer) => system.onBatch(receiver, data.readUInt32BE(0), performance.now()));
      socket.on('close', (code) => system.onError(new Error(`${name} receiver ${receiver}'s socket closed (${code})`)));
      sockets.push(socket);
    }
    return { system, cpuMicros: () => child.call<number>('cpu') };
  } catch (error) {
    for (const socket of sockets) socket.terminate();
    await child.stop();
    throw error;
  }
}
