// PostgreSQL only: three relay processes (the real CLI) on one database behind a small TCP balancer, as
// an operator runs them behind nginx or HAProxy. Devices keep one relay URL — the balancer's — which is
// also the audience every instance checks tokens against: the relay is one service at one address, and a
// device should not have to know how many processes serve it. Real devices, real sockets, real SIGKILL.
import { join } from 'node:path';
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Lab, eventually } from '../../support/devices.ts';
import { startTcpBalancer, type TcpBalancer } from '../../support/tcp-balancer.ts';
import { postgresDatabase } from '../../support/test-db.ts';
import { RelayProcess } from '../fuzz/relay-process.ts';
import { RelayClient, WsClient, enrolledMotebit, tempDir } from '../support.ts';

let dir: ReturnType<typeof tempDir>;
let url: string;
let balancer: TcpBalancer;
let instances: RelayProcess[];

beforeEach(async () => {
  dir = tempDir();
  url = await postgresDatabase(join(dir.dir, 'instances'));
  balancer = await startTcpBalancer();
  instances = [];
  // One at a time: the first applies the schema, the others find it applied (they would wait on its lock).
  for (let i = 0; i < 3; i++) instances.push(await RelayProcess.start(url, ['--audience', balancer.url], 'warn'));
  balancer.setBackends(instances.map((instance) => instance.url));
});

afterEach(async () => {
  await balancer.close();
  for (const instance of instances) await instance.stop();
  dir.cleanup();
});

const client = (instance: RelayProcess): RelayClient => new RelayClient({ url: instance.url, audience: balancer.url });

async function logOf(motebitId: string): Promise<{ event_id: string; seq: number }[]> {
  const db = new pg.Client({ connectionString: url });
  await db.connect();
  try {
    return (await db.query<{ event_id: string; seq: number }>('SELECT event_id, seq::int AS seq FROM events WHERE motebit_id = $1 ORDER BY seq', [motebitId])).rows;
  } finally {
    await db.end();
  }
}

describe('three relay instances on one PostgreSQL', () => {
  it('devices on different instances receive each other’s events live; revoking on instance 1 closes the socket on instance 3', async () => {
    const [one, two, three] = instances as [RelayProcess, RelayProcess, RelayProcess];
    const { motebit, devices } = await enrolledMotebit(client(one), 4);
    const [writer, onTwo, onThree, doomed] = devices as [(typeof devices)[0], (typeof devices)[0], (typeof devices)[0], (typeof devices)[0]];
    const socketTwo = await WsClient.connect(two.url, onTwo, balancer.url);
    const socketThree = await WsClient.connect(three.url, onThree, balancer.url);
    const doomedOnThree = await WsClient.connect(three.url, doomed, balancer.url);
    const socketOne = await WsClient.connect(one.url, writer, balancer.url);

    // Pushed over WebSocket to instance 1 and over HTTP to instance 2.
    const first = writer.events(3);
    socketOne.sendJson({ type: 'push', id: 'p1', events: first });
    await socketOne.waitFor((m) => m.type === 'ack' && m.id === 'p1');
    const second = onTwo.events(2);
    expect((await client(two).push(onTwo, second)).body.stored).toBe(2);
    const expected = [...first, ...second].map((e) => e.event_id);
    for (const socket of [socketOne, socketTwo, socketThree]) {
      expect((await socket.waitForEvents(5)).map((e) => e.event_id)).toEqual(expected);
      expect(socket.events.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5]);
    }

    expect((await client(one).revoke(motebit, doomed.deviceId)).status).toBe(200);
    expect((await doomedOnThree.closed).code).toBe(4403);
    // And instance 2 refuses the revoked device at once: it reads the same database.
    expect((await client(two).pull(doomed, 0)).status).toBe(403);
    for (const socket of [socketOne, socketTwo, socketThree]) await socket.close();
  });

  it('a device whose instance is killed with SIGKILL mid-push moves to another through the balancer; nothing is lost or duplicated', async () => {
    const lab = new Lab();
    try {
      const a = await lab.create(balancer.url, { transport: 'websocket', name: 'a' });
      const b = await lab.join(a, { transport: 'websocket', name: 'b' });
      await a.syncNow();
      await b.syncNow();
      const total = 6000;
      a.write(Array.from({ length: total }, (_, i) => ({ entity: `note/${i}`, op: 'set' as const, payload: { i } })));
      const motebitId = a.identity.motebitId;
      const sync = a.syncNow();
      // Mid-push: some of a's batches are stored, not all. Then kill whichever instance holds a's sockets.
      await eventually(async () => (await logOf(motebitId)).length > 0, 'the first batch to be stored', 30_000);
      const stored = (await logOf(motebitId)).length;
      const held = balancer.openPerBackend();
      const victim = held.findIndex((count) => count > 0);
      expect(victim).toBeGreaterThanOrEqual(0);
      await instances[victim]!.kill();
      const first = await sync;
      // The cycle that lost its instance either finished on another or said it failed: never a false success.
      if (first.ok) expect(first.pushed).toBe(total);
      await eventually(async () => (await a.syncNow()).ok, 'a to sync through another instance', 30_000);
      await eventually(async () => (await b.syncNow()).ok && b.state().length === total, 'b to receive everything', 30_000);

      const log = await logOf(motebitId);
      const ids = log.map((e) => e.event_id);
      expect(new Set(ids).size).toBe(ids.length); // nothing twice
      expect(log.map((e) => e.seq)).toEqual(Array.from({ length: log.length }, (_, i) => i + 1)); // no gap
      expect(a.status().pendingOut).toBe(0);
      expect(b.state().map((e) => e.entity).sort()).toEqual(a.state().map((e) => e.entity).sort());
      expect(stored).toBeLessThan(total); // the kill really came before the push was done
    } finally {
      await lab.close();
    }
  });
});
