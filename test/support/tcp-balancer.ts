// A small TCP load balancer on 127.0.0.1 in front of several relay instances, as an operator runs nginx or
// HAProxy in front of them: each new connection goes to the next backend in turn; a backend that refuses
// the connection is skipped (the client never sees it), so killing an instance only costs the connections
// it held. Real sockets; the test can see which backend holds each connection.
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';

export interface TcpBalancer {
  /** http://127.0.0.1:PORT: the one address devices use. */
  url: string;
  /** Sets the backends (host:port URLs); the balancer can start before them. */
  setBackends(urls: string[]): void;
  /** How many connections each backend holds right now, by backend index. */
  openPerBackend(): number[];
  close(): Promise<void>;
}

export async function startTcpBalancer(): Promise<TcpBalancer> {
  let backends: { host: string; port: number }[] = [];
  let next = 0;
  const open = new Map<Socket, number>();
  const server = createServer((client) => {
    client.pause();
    client.on('error', () => client.destroy());
    const attempt = (tried: number): void => {
      if (tried >= backends.length || client.destroyed) {
        client.destroy();
        return;
      }
      const index = next++ % backends.length;
      const backend = backends[index];
      if (!backend) return;
      const upstream = connect(backend);
      let connected = false;
      upstream.once('connect', () => {
        connected = true;
        open.set(upstream, index);
        client.pipe(upstream);
        upstream.pipe(client);
        client.resume();
      });
      upstream.on('error', () => {
        upstream.destroy();
        if (!connected) attempt(tried + 1); // refused: try the next backend
      });
      upstream.on('close', () => {
        open.delete(upstream);
        if (connected) client.destroy();
      });
      client.on('close', () => upstream.destroy());
    };
    attempt(0);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    setBackends(urls: string[]): void {
      backends = urls.map((url) => {
        const parsed = new URL(url);
        return { host: parsed.hostname, port: Number(parsed.port) };
      });
    },
    openPerBackend(): number[] {
      const counts = backends.map(() => 0);
      for (const index of open.values()) counts[index] = (counts[index] ?? 0) + 1;
      return counts;
    },
    async close(): Promise<void> {
      for (const socket of open.keys()) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
