// The fan-out ceiling, in its own process: a ws server on 127.0.0.1 port 0 that forwards every message it
// receives, the same buffer, to every other open socket. Nothing else: no parsing, no auth, no storage,
// no acknowledgement. Answers 'cpu' (process.cpuUsage: user + system µs).
import { WebSocketServer, type WebSocket } from 'ws';
import { childFailed, childReady, processCpuMicros, serveChild } from './lib.ts';

try {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
  wss.on('connection', (ws: WebSocket) => {
    ws.on('error', () => undefined);
    ws.on('message', (data, isBinary) => {
      for (const other of wss.clients) if (other !== ws && other.readyState === other.OPEN) other.send(data, { binary: isBinary });
    });
  });
  await new Promise<void>((resolve, reject) => {
    wss.once('listening', resolve);
    wss.once('error', reject);
  });
  const { port } = wss.address() as { port: number };
  serveChild({ cpu: () => processCpuMicros() }, () => new Promise<void>((resolve) => wss.close(() => resolve())));
  childReady({ url: `ws://127.0.0.1:${port}`, pid: process.pid });
} catch (error) {
  childFailed(error);
}
