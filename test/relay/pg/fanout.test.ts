// PostgreSQL only: news crosses relay instances through LISTEN/NOTIFY, and an instance that loses its
// LISTEN connection reconnects and catches its sockets up from storage. Two relays in this process, each
// with its own PgStore (own pool, own LISTEN connection) on one database, real WebSockets.
import { join } from 'node:path';
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PgStore } from '../../../relay/pg-store.ts';
import { startRelay, type RunningRelay } from '../../../relay/server.ts';
import type { Notification } from '../../../relay/store.ts';
import { postgresDatabase } from '../../support/test-db.ts';
import { RelayClient, WsClient, enrolledMotebit, tempDir } from '../support.ts';

let dir: ReturnType<typeof tempDir>;
let url: string;
const opened: { close(): Promise<void> }[] = [];

beforeEach(async () => {
  dir = tempDir();
  url = await postgresDatabase(join(dir.dir, 'fanout'));
});

afterEach(async () => {
  for (const thing of opened.splice(0).reverse()) await thing.close();
  dir.cleanup();
});

async function instance(): Promise<{ store: PgStore; relay: RunningRelay; client: RelayClient }> {
  const store = await PgStore.open({ url });
  // One audience for every instance: they are one relay behind one address.
  const relay = await startRelay({ host: '127.0.0.1', port: 0, store, audience: 'http://relay.test', logLevel: 'silent' });
  opened.push(relay);
  return { store, relay, client: new RelayClient({ url: relay.url, audience: relay.audience }) };
}

async function until(check: () => boolean | Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('PostgreSQL fan-out across instances', () => {
  it('a subscriber on one store hears what another stored (once, in order) and its revocations', async () => {
    const one = await PgStore.open({ url });
    const two = await PgStore.open({ url });
    opened.push(one, two);
    const { motebit, devices } = await (async () => {
      const { TestMotebit } = await import('../support.ts');
      const m = new TestMotebit();
      const d = [m.device('a'), m.device('b')];
      for (const device of d) {
        await one.enrolDevice({ motebitId: m.motebitId, identityKey: m.identity.publicKey, deviceId: device.deviceId, deviceKey: device.key.publicKey, cert: device.cert, name: null, now: 1 });
      }
      return { motebit: m, devices: d };
    })();
    const heardByOne: Notification[] = [];
    const heardByTwo: Notification[] = [];
    one.subscribe(motebit.motebitId, (n) => heardByOne.push(n));
    two.subscribe(motebit.motebitId, (n) => heardByTwo.push(n));
    const events = devices[0]!.events(3);
    await one.appendBatch(motebit.motebitId, events.slice(0, 2));
    await one.appendBatch(motebit.motebitId, events.slice(2));
    await one.revokeDevice(motebit.motebitId, devices[1]!.deviceId, 5);
    await until(() => heardByTwo.length === 3, 'the other store to hear three notifications');
    const seqs = (list: Notification[]): number[] => list.flatMap((n) => (n.kind === 'events' ? n.events.map((e) => e.seq) : []));
    expect(seqs(heardByTwo)).toEqual([1, 2, 3]);
    expect(heardByTwo.at(-1)).toEqual({ kind: 'revoked', deviceId: devices[1]!.deviceId });
    expect(heardByTwo.flatMap((n) => (n.kind === 'events' ? n.events : []))).toEqual(events.map((e, i) => ({ ...e, seq: i + 1 })));
    // The writing store told its own subscribers directly and did not hear itself again.
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(seqs(heardByOne)).toEqual([1, 2, 3]);
    expect(heardByOne).toHaveLength(3);
  });

  it('devices on different instances get each other’s events live; a revocation on one closes the socket on the other', async () => {
    const a = await instance();
    const b = await instance();
    const { motebit, devices } = await enrolledMotebit(a.client, 3);
    const [writer, reader, doomed] = devices as [typeof devices[0], typeof devices[0], typeof devices[0]];
    const onB = await WsClient.connect(b.relay.url, reader, b.relay.audience);
    const doomedOnB = await WsClient.connect(b.relay.url, doomed, b.relay.audience);
    const events = writer.events(5);
    expect((await a.client.push(writer, events)).body.stored).toBe(5);
    expect((await onB.waitForEvents(5)).map((e) => e.event_id)).toEqual(events.map((e) => e.event_id));
    expect((await a.client.revoke(motebit, doomed.deviceId)).status).toBe(200);
    expect((await doomedOnB.closed).code).toBe(4403);
    await onB.close();
  });

  it('an instance that loses its LISTEN connection reconnects and catches its sockets up from storage', async () => {
    const a = await instance();
    const b = await instance();
    const { devices } = await enrolledMotebit(a.client, 2);
    const [writer, reader] = devices as [typeof devices[0], typeof devices[0]];
    const onB = await WsClient.connect(b.relay.url, reader, b.relay.audience);
    await a.client.push(writer, writer.events(2));
    await onB.waitForEvents(2);

    // Cut b's LISTEN connection from the server side, and push while it is gone.
    const pid = await b.store.listenerPid();
    expect(pid).not.toBeNull();
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    try {
      await admin.query('SELECT pg_terminate_backend($1)', [pid]);
    } finally {
      await admin.end();
    }
    await until(() => !b.store.listening, 'b to notice its LISTEN connection is gone');
    const missed = writer.events(3);
    expect((await a.client.push(writer, missed)).body.stored).toBe(3);

    await until(() => b.store.listening, 'b to listen again');
    const received = await onB.waitForEvents(5);
    expect(received.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(received.slice(2).map((e) => e.event_id)).toEqual(missed.map((e) => e.event_id));
    // And live delivery works again afterwards.
    await a.client.push(writer, writer.events(1));
    expect((await onB.waitForEvents(6)).map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6]);
    await onB.close();
  });
});
