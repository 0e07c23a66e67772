// Hocuspocus for the fan-out comparison, in its own process: a Hocuspocus server (Yjs documents over
// WebSocket) on 127.0.0.1 port 0. Without `sqlitePath`, no extensions (no persistence: documents live in
// memory only); with it, bench/hocuspocus-sqlite.ts commits every update before Hocuspocus acks it.
// Answers 'memory' and 'cpu' (process.cpuUsage: user + system µs).
//
// Why Hocuspocus: it is the production-grade Yjs relay (auth hooks, persistence extensions, many documents
// per process) and so the closest in role to our relay; the other candidate, @y/websocket-server, is a
// minimal demo server that depends on a yjs 14 prerelease and ws 6. @hocuspocus/server 3.x is pure JS on
// ws 8 (no native build, no download) and runs on Node 24; npm resolved ^3.4.4 (4.x asks for Node >= 22 in
// its engines and moved to crossws, and npm itself runs on the system Node 20 here).
import { Server } from '@hocuspocus/server';
import { sqliteDurability } from './hocuspocus-sqlite.ts';
import { childFailed, childInit, childReady, processCpuMicros, serveChild, settledMemory } from './lib.ts';

const init = childInit<{ sqlitePath?: string }>();
try {
  const durability = init.sqlitePath ? sqliteDurability(init.sqlitePath) : null;
  const server = new Server({ port: 0, address: '127.0.0.1', quiet: true, stopOnSignals: false, extensions: durability ? [durability.extension] : [] });
  await server.listen();
  serveChild({ memory: () => settledMemory(), cpu: () => processCpuMicros() }, async () => {
    await server.destroy();
    durability?.close();
  });
  childReady({ url: `ws://127.0.0.1:${server.address.port}`, pid: process.pid });
} catch (error) {
  childFailed(error);
}
