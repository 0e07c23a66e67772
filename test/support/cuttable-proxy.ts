// A loopback TCP proxy in front of a relay that a test can cut (drop every connection at once), refuse
// (drop new connections as they come) or freeze (keep connections open but stop passing bytes, like a
// dead peer). Real sockets on 127.0.0.1, port 0.
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';

export interface CuttableProxy {
  /** http://127.0.0.1:PORT, to use in place of the target's URL. */
  url: string;
  /** Connections accepted so far (refused ones included). */
  readonly accepted: number;
  /** Connections open right now. */
  readonly open: number;
  /** Destroys every open connection (both sides). */
  cut(): void;
  /** While refusing, new connections are destroyed at once. */
  refuse(on: boolean): void;
  /** Stops passing bytes on the open connections, without closing them. */
  freeze(): void;
  close(): Promise<void>;
}

export async function startCuttableProxy(target: string): Promise<CuttableProxy> {
  const to = new URL(target);
  const pairs = new Set<[Socket, Socket]>();
  let refusing = false;
  let accepted = 0;
  const server = createServer((client) => {
    accepted++;
    client.on('error', () => client.destroy());
    if (refusing) {
      client.destroy();
      return;
    }
    const upstream = connect({ host: to.hostname, port: Number(to.port) });
    upstream.on('error', () => upstream.destroy());
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    const drop = (): void => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('close', drop);
    upstream.on('close', drop);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const cut = (): void => {
    for (const [client, upstream] of [...pairs]) {
      client.destroy();
      upstream.destroy();
    }
    pairs.clear();
  };
  return {
    url: `http://127.0.0.1:${port}`,
    get accepted() {
      return accepted;
    },
    get open() {
      return pairs.size;
    },
    cut,
    refuse(on) {
      refusing = on;
    },
    freeze() {
      for (const [client, upstream] of pairs) {
        client.unpipe(upstream);
        upstream.unpipe(client);
        client.pause();
        upstream.pause();
      }
    },
    close: () =>
      new Promise<void>((resolve) => {
        refusing = true;
        cut();
        server.close(() => resolve());
      }),
  };
}
