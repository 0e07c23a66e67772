// A new device doing its initial sync, alone in its own process so its peak memory is its own.
//   engine:  the real device path: transport (WebSocket or HTTP) -> EncryptedTransport (AES-256-GCM open)
//            -> SyncEngine.receive -> EventStore.applyRemote (validate, hash chain, seal, insert, state).
//   snapshot-make: the engine's initial sync, then a snapshot made and uploaded (SnapshotSync.make), then
//            this device's log pruned below it; answers the snapshot's figures and the database sizes.
//   snapshot-join: a new device that starts from the relay's latest snapshot (download, open, verify,
//            adopt) and then pulls only what lies after it, through the same engine (issue 12).
//   ceiling: the least any device must do with the same data: read the sealed rows (straight from the
//            relay's SQLite file), open each body, insert the plaintext in transactions of 1000.
// 'run' answers { seconds, events, maxRssBytes }; maxRSS is the process's peak resident size so far.
import { createSecretKey } from 'node:crypto';
import Database from 'better-sqlite3';
import { signingKeyFromSeed } from '../shared/crypto.ts';
import { fromBase64Url } from '../shared/encoding.ts';
import { envelopeAad, openBody } from '../shared/envelope-crypto.ts';
import { deviceIdFromDeviceKey } from '../shared/ids.ts';
import { EventStore } from '../main/store/event-store.ts';
import { EncryptedTransport } from '../main/sync/encrypted-transport.ts';
import { SyncEngine, type TransportPreference } from '../main/sync/engine.ts';
import { HttpTransport } from '../main/sync/http-transport.ts';
import { RelayClient } from '../main/sync/relay-client.ts';
import { WsTransport } from '../main/sync/ws-transport.ts';
import { SnapshotSync } from '../main/sync/snapshot-sync.ts';
import { identitySnapshotSigner } from '../shared/snapshot/signer.ts';
import { coveredEvents } from '../shared/snapshot/content.ts';
import { childFailed, childInit, childReady, serveChild } from './lib.ts';

export interface SyncChildInit {
  mode: 'engine' | 'ceiling' | 'snapshot-make' | 'snapshot-join';
  storePath: string;
  motebitId: string;
  /** base64url */
  identityPublicKey: string;
  deviceSeed: string;
  cert: string;
  bodyKeyId: string;
  bodyKey: string;
  relayUrl?: string;
  relayDbPath?: string;
  transport?: TransportPreference;
}

export interface SyncChildResult {
  seconds: number;
  events: number;
  maxRssBytes: number;
  /** CPU time (user + system) of the device process over the measured part, in seconds. */
  cpuSeconds?: number;
  /** snapshot-make: the snapshot's size, events kept, seconds to make and upload it, database bytes before and after pruning. */
  snapshot?: { bytes: number; kept: number; covered: number; makeSeconds: number; databaseBefore: number; databaseAfter: number };
  /** snapshot-join: the writers' heads the device holds after the join, summed (every event covered or applied). */
  applied?: number;
}

const init = childInit<SyncChildInit>();
const bodyKey = fromBase64Url(init.bodyKey);

async function runEngine(): Promise<SyncChildResult> {
  const deviceKey = signingKeyFromSeed(fromBase64Url(init.deviceSeed));
  const deviceId = deviceIdFromDeviceKey(deviceKey.publicKey);
  const relayUrl = init.relayUrl ?? '';
  const store = EventStore.open(init.storePath, { motebitId: init.motebitId, deviceId, identityPublicKey: fromBase64Url(init.identityPublicKey) });
  const keys = { current: { id: init.bodyKeyId, key: bodyKey }, byId: (id: string) => (id === init.bodyKeyId ? bodyKey : undefined) };
  const options = { relayUrl, motebitId: init.motebitId, deviceId, deviceKey };
  const control = new RelayClient(options);
  const credentials = { deviceKey, cert: init.cert };
  const identityKey = fromBase64Url(init.identityPublicKey);
  const snapshots = new SnapshotSync({
    store,
    relay: control,
    credentials,
    keys: () => keys,
    signer: () => identitySnapshotSigner(init.motebitId, identityKey),
    writers: async () => (await control.listDevices()).filter((d) => d.revoked_at === null).map((d) => ({ deviceId: d.device_id, key: fromBase64Url(d.key) })),
    every: 0,
  });
  const engine = new SyncEngine({
    ...(init.mode === 'snapshot-join' ? { snapshots: { join: (progress) => snapshots.join(progress), afterCycle: () => snapshots.acknowledge() } } : {}),
    store,
    relay: { frontier: (at) => control.frontier(at), reenrol: () => Promise.reject(new Error('the benchmark device is enrolled by the benchmark')) },
    credentials,
    connect: (kind) => new EncryptedTransport({ inner: kind === 'websocket' ? new WsTransport(options) : new HttpTransport(options), keys, motebitId: init.motebitId }),
    transport: init.transport ?? 'auto',
    intervalMs: 3_600_000,
  });
  try {
    const start = performance.now();
    const cpuStart = process.cpuUsage();
    const result = await engine.syncNow();
    const seconds = (performance.now() - start) / 1000;
    const cpu = process.cpuUsage(cpuStart);
    const cpuSeconds = (cpu.user + cpu.system) / 1e6;
    if (!result.ok) throw new Error(`initial sync failed: ${result.error?.message ?? 'unknown'}`);
    const status = engine.status();
    if (status.rejectedEvents > 0) throw new Error(`${status.rejectedEvents} events were rejected`);
    const applied = coveredEvents(store.frontier().heads);
    if (init.mode === 'snapshot-make') {
      await snapshots.acknowledge(); // this device holds everything: the relay may compact once the others say so too
      const made = performance.now();
      const snapshot = await snapshots.make();
      const makeSeconds = (performance.now() - made) / 1000;
      const pruned = await snapshots.prune(snapshot.covers);
      return { seconds, events: applied, maxRssBytes: process.resourceUsage().maxRSS * 1024, snapshot: { bytes: snapshot.bytes, kept: snapshot.kept, covered: snapshot.covered, makeSeconds, databaseBefore: pruned.bytesBefore, databaseAfter: pruned.bytesAfter } };
    }
    return { seconds, cpuSeconds, events: init.mode === 'snapshot-join' ? applied : store.eventCount(), maxRssBytes: process.resourceUsage().maxRSS * 1024, applied };
  } finally {
    await engine.stop();
    store.close();
  }
}

function runCeiling(): SyncChildResult {
  const source = new Database(init.relayDbPath ?? '', { readonly: true });
  const db = new Database(init.storePath);
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.exec('CREATE TABLE events (id INTEGER PRIMARY KEY, event_id TEXT NOT NULL UNIQUE, device_id TEXT NOT NULL, device_seq INTEGER NOT NULL, body TEXT NOT NULL)');
    const insert = db.prepare('INSERT INTO events (event_id, device_id, device_seq, body) VALUES (?, ?, ?, ?)');
    // Imported once, as a receiver's BodyKeyCache does: importing the raw bytes for every body would put
    // a cost in the ceiling that the device path does not pay.
    const key = createSecretKey(bodyKey);
    type Row = { event_id: string; device_id: string; device_seq: number; key_id: string; body: string };
    const insertPage = db.transaction((rows: Row[]) => {
      for (const row of rows) {
        const aad = envelopeAad({ motebit_id: init.motebitId, device_id: row.device_id, event_id: row.event_id, device_seq: row.device_seq, key_id: row.key_id });
        const plaintext = openBody(key, fromBase64Url(row.body), aad);
        if (!plaintext) throw new Error(`event ${row.event_id} does not open`);
        insert.run(row.event_id, row.device_id, row.device_seq, plaintext.toString('utf8'));
      }
    });
    const read = source.prepare<[string, number], Row>('SELECT event_id, device_id, device_seq, key_id, body FROM events WHERE motebit_id = ? AND seq > ? ORDER BY seq LIMIT 1000');
    const start = performance.now();
    let after = 0;
    let events = 0;
    for (;;) {
      const page = read.all(init.motebitId, after);
      if (page.length === 0) break;
      insertPage(page);
      events += page.length;
      after += page.length;
    }
    const seconds = (performance.now() - start) / 1000;
    return { seconds, events, maxRssBytes: process.resourceUsage().maxRSS * 1024 };
  } finally {
    db.close();
    source.close();
  }
}

try {
  serveChild({ run: () => (init.mode === 'ceiling' ? runCeiling() : runEngine()) });
  childReady({ pid: process.pid });
} catch (error) {
  childFailed(error);
}
