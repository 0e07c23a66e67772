// Liveness probes run between fuzz cases: /healthz on a fresh connection within a bound, and a real
// device round trip (HTTP push, HTTP pull, WebSocket delivery).
import { request } from 'node:http';
import { WsClient, type RelayClient, type TestDevice } from '../support.ts';

/** Rejects with `what` if `promise` does not settle within `ms`. */
export async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** GET /healthz on a NEW connection (no agent, no keep-alive); resolves with the status and body. */
export function healthz(port: number, ms: number): Promise<{ status: number; body: string }> {
  return within(
    ms,
    'GET /healthz',
    new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path: '/healthz', method: 'GET', agent: false, headers: { connection: 'close' } }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.setTimeout(ms, () => req.destroy(new Error('timeout')));
      req.end();
    }),
  );
}

/**
 * A real device still syncs: `pusher` pushes one event and pulls it back over HTTP, and `watcher`
 * authenticates a WebSocket from just before it and receives it. Returns the event's seq.
 */
export async function deviceRoundTrip(client: RelayClient, pusher: TestDevice, watcher: TestDevice, ms: number): Promise<number> {
  return within(ms, 'device round trip', (async () => {
    const [event] = pusher.events(1);
    const pushed = await client.push(pusher, [event!]);
    const result = pushed.body.results?.[0];
    if (pushed.status !== 200 || result?.status !== 'stored') throw new Error(`push failed: ${pushed.status} ${JSON.stringify(pushed.body)}`);
    const seq = result.seq;
    const pulled = await client.pull(pusher, seq - 1, 1);
    if (pulled.status !== 200 || pulled.body.events[0]?.event_id !== event!.event_id) throw new Error(`pull failed: ${pulled.status} ${JSON.stringify(pulled.body)}`);
    const socket = await WsClient.connect(client.url, watcher, client.audience, seq - 1);
    try {
      const [delivered] = await socket.waitForEvents(1);
      if (delivered?.event_id !== event!.event_id || delivered.seq !== seq) throw new Error(`the WebSocket delivered ${JSON.stringify(delivered)}, not seq ${seq}`);
    } finally {
      socket.ws.terminate();
    }
    return seq;
  })());
}
