// y-websocket's server for the fan-out comparison, in its own process: bin/server.js as y-websocket 1.5
// ships it (an http server, its own ws 6 WebSocket.Server, setupWSConnection from bin/utils.js), on
// 127.0.0.1 port 0, with y-leveldb persistence in `dir` (bench/ywebsocket-persistence.ts: y-websocket's
// own binding; `sync` adds LevelDB's fsync per write). Answers 'cpu' (process.cpuUsage, user + system µs,
// LevelDB's threads included) and 'drain' (resolves once y-leveldb has written everything queued).
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { childFailed, childInit, childReady, processCpuMicros, serveChild } from './lib.ts';
import { drained, leveldbPersistence } from './ywebsocket-persistence.ts';

interface Utils {
  setupWSConnection(conn: unknown, request: unknown): void;
  setPersistence(persistence: unknown): void;
}
interface WsServer {
  handleUpgrade(request: unknown, socket: Duplex, head: Buffer, callback: (ws: unknown) => void): void;
  emit(event: 'connection', ws: unknown, request: unknown): boolean;
  on(event: 'connection', listener: (ws: unknown, request: unknown) => void): void;
  close(): void;
}

const require = createRequire(import.meta.url);
const init = childInit<{ dir: string; sync: boolean }>();
try {
  const utils = require('y-websocket/bin/utils') as Utils;
  // The ws y-websocket's server requires (its own dependency, ws 6), as bin/server.js does.
  const WebSocket = createRequire(require.resolve('y-websocket/bin/utils'))('ws') as { Server: new (options: object) => WsServer };
  const persistence = leveldbPersistence(init.dir, { sync: init.sync });
  utils.setPersistence(persistence);
  const wss = new WebSocket.Server({ noServer: true });
  const server = createServer((_request, response) => {
    response.writeHead(200, { 'Content-Type': 'text/plain' });
    response.end('okay');
  });
  wss.on('connection', utils.setupWSConnection);
  server.on('upgrade', (request, socket, head) => wss.handleUpgrade(request, socket, head, (ws) => wss.emit('connection', ws, request)));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  serveChild(
    {
      cpu: () => processCpuMicros(),
      drain: async () => {
        const start = performance.now();
        await drained(persistence);
        return performance.now() - start;
      },
    },
    async () => {
      wss.close();
      server.close();
      await drained(persistence);
      await persistence.provider.destroy();
    },
  );
  childReady({ url: `ws://127.0.0.1:${(server.address() as AddressInfo).port}`, pid: process.pid });
} catch (error) {
  childFailed(error);
}
