// A TCP proxy on 127.0.0.1 that holds every chunk for `oneWayMs` in each direction, so a loopback relay
// behaves like one across a network with a round trip of twice that (bandwidth unlimited). Chunks keep
// their order: every one waits the same time, and timers of equal duration fire in the order they were set.
import { createServer, connect, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

export interface DelayProxy {
  readonly url: string;
  close(): Promise<void>;
}

/** `target` is read at each connection, so the proxy can be started before what it fronts (its URL is the audience). */
export async function startDelayProxy(target: () => string, oneWayMs: number): Promise<DelayProxy> {
  const sockets = new Set<Socket>();
  const relay = (from: Socket, to: Socket): void => {
    from.on('data', (chunk) => setTimeout(() => to.destroyed || to.write(chunk), oneWayMs));
    from.on('end', () => setTimeout(() => to.end(), oneWayMs));
    from.on('error', () => to.destroy());
    from.on('close', () => setTimeout(() => to.destroy(), oneWayMs));
  };
  const server = createServer((client) => {
    const upstream = new URL(target());
    const server = connect(Number(upstream.port), upstream.hostname);
    for (const socket of [client, server]) {
      socket.setNoDelay(true);
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    }
    relay(client, server);
    relay(server, client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
