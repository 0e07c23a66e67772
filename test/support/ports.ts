// Loopback ports for tests and benches.
import { createServer } from 'node:net';

/** A port that was free a moment ago, for a server that must be started on a port chosen first. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
