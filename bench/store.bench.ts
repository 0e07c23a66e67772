// The local store's figures: durable single appends, batched local imports, applying verified remote
// batches, and rebuilding the state, each beside the raw better-sqlite3 batched insert of the same rows
// (the ceiling). Also what a signature per event would cost against one checkpoint seal per batch.
import { createHash } from 'node:crypto';
import Database from 'better-sqlite3';
import * as noble from '@noble/ed25519';
import { EventStore } from '../main/store/event-store.ts';
import { canonicalJson } from '../shared/encoding.ts';
import { randomSeed, signingKeyFromSeed, verifySignature } from '../shared/crypto.ts';
import { certifyDevice, hashEvent } from '../shared/event.ts';
import { type SealedEvent } from '../shared/portable/event.ts';
import { deviceIdFromDeviceKey, motebitIdFromIdentityKey } from '../shared/ids.ts';
import { progress, rounds, scratch, seconds, type Figure } from './support.ts';

const EVENTS = 100_000;
const BATCH = 1000;
const SINGLE_APPENDS = 2000;

function newDevice(dir: string, name: string, identity = signingKeyFromSeed(randomSeed())) {
  const motebitId = motebitIdFromIdentityKey(identity.publicKey);
  const deviceKey = signingKeyFromSeed(randomSeed());
  const deviceId = deviceIdFromDeviceKey(deviceKey.publicKey);
  const store = EventStore.open(`${dir}/${name}.db`, { motebitId, deviceId, identityPublicKey: identity.publicKey });
  return { identity, store, credentials: { deviceKey, cert: certifyDevice(identity, motebitId, deviceKey.publicKey) } };
}

const payload = (i: number) => ({ text: `memory ${i} `.padEnd(200, 'x'), n: i });

export async function storeBench(roundCount: number): Promise<Figure[]> {
  const dir = scratch('store');
  try {
    progress(`store: ${SINGLE_APPENDS} durable single appends`);
    const appendRate = await rounds(roundCount, 'durable single appends', (round) => {
      const { store } = newDevice(dir.path, `single-${round}`);
      const start = performance.now();
      for (let i = 0; i < SINGLE_APPENDS; i++) store.put(`memory/${i}`, payload(i));
      const rate = SINGLE_APPENDS / seconds(start);
      store.close();
      return rate;
    });

    // One writer with 100k events, pushed as sealed batches: the input of the apply figure.
    progress(`store: ${EVENTS} events in local batches of ${BATCH}`);
    let batches: SealedEvent[][] = [];
    let writerIdentity = signingKeyFromSeed(randomSeed());
    const importRate = await rounds(roundCount, 'batched local import', (round) => {
      const writer = newDevice(dir.path, `writer-${round}`);
      const start = performance.now();
      for (let b = 0; b < EVENTS / BATCH; b++) {
        writer.store.appendMany(Array.from({ length: BATCH }, (_, k) => ({ entity: `memory/${(b * BATCH + k) % 20_000}`, op: 'set' as const, payload: payload(k) })));
      }
      const rate = EVENTS / seconds(start);
      batches = [];
      for (let b = 0; b < EVENTS / BATCH; b++) {
        const batch = writer.store.outboxBatch(BATCH, writer.credentials);
        writer.store.markPushed(batch.at(-1)!.device_seq);
        batches.push(batch);
      }
      writerIdentity = writer.identity;
      writer.store.close();
      return rate;
    });

    progress(`store: applying ${EVENTS} remote events in verified batches of ${BATCH}`);
    let rebuildSeconds = 0;
    const applyRate = await rounds(roundCount, 'remote batch apply', (round) => {
      const reader = newDevice(dir.path, `reader-${round}`, writerIdentity);
      // Reparse as it would arrive: plain JSON from the wire.
      const wire = batches.map((batch) => JSON.parse(JSON.stringify(batch)) as unknown[]);
      const start = performance.now();
      for (const batch of wire) reader.store.applyRemote(batch);
      const rate = EVENTS / seconds(start);
      const rebuildStart = performance.now();
      reader.store.rebuildState();
      rebuildSeconds = Math.max(rebuildSeconds, seconds(rebuildStart));
      reader.store.close();
      return rate;
    });

    progress('store: raw better-sqlite3 batched insert of the same rows (ceiling)');
    const rows = batches.flat().map((event) => ({ event, body: canonicalJson(event), hash: hashEvent(event) }));
    const ceiling = await rounds(roundCount, 'raw insert ceiling', (round) => {
      const db = new Database(`${dir.path}/raw-${round}.db`);
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
      db.exec(`CREATE TABLE events (id INTEGER PRIMARY KEY, event_id TEXT NOT NULL UNIQUE, device_id TEXT NOT NULL, device_seq INTEGER NOT NULL,
               lamport INTEGER NOT NULL, entity TEXT NOT NULL, op TEXT NOT NULL, hash TEXT NOT NULL, ts INTEGER NOT NULL, body TEXT NOT NULL)`);
      const insert = db.prepare('INSERT INTO events (event_id, device_id, device_seq, lamport, entity, op, hash, ts, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)');
      const insertBatch = db.transaction((part: typeof rows) => {
        for (const { event, body, hash } of part) insert.run(event.event_id, event.device_id, event.device_seq, event.clock.l, event.entity, event.op, hash, event.ts, body);
      });
      const start = performance.now();
      for (let i = 0; i < rows.length; i += BATCH) insertBatch(rows.slice(i, i + BATCH));
      const rate = rows.length / seconds(start);
      db.close();
      return rate;
    });

    progress('crypto: Ed25519 per event against one checkpoint seal per batch');
    noble.hashes.sha512 = (m: Uint8Array) => new Uint8Array(createHash('sha512').update(m).digest());
    const key = signingKeyFromSeed(randomSeed());
    const message = Buffer.alloc(32, 7);
    const signature = key.sign(message);
    const nativeVerify = await rounds(roundCount, 'Ed25519 verify (node:crypto)', () => {
      const start = performance.now();
      for (let i = 0; i < 5000; i++) verifySignature(key.publicKey, message, signature);
      return 5000 / seconds(start);
    });
    const nobleVerify = await rounds(roundCount, 'Ed25519 verify (@noble/ed25519)', () => {
      const start = performance.now();
      for (let i = 0; i < 300; i++) noble.verify(signature, message, key.publicKey);
      return 300 / seconds(start);
    });

    return [
      { key: 'store_append_per_s', label: 'durable single append (fsync each)', value: appendRate, unit: 'events/s' },
      { key: 'store_import_per_s', label: `local import, batches of ${BATCH}`, value: importRate, unit: 'events/s' },
      { key: 'store_apply_per_s', label: `remote apply, verified batches of ${BATCH}`, value: applyRate, unit: 'events/s', note: `${((applyRate / ceiling) * 100).toFixed(0)}% of the raw insert ceiling` },
      { key: 'sqlite_insert_ceiling_per_s', label: 'raw better-sqlite3 batched insert (ceiling)', value: ceiling, unit: 'rows/s' },
      { key: 'store_apply_ratio_to_ceiling', label: 'remote apply / raw insert', value: applyRate / ceiling, unit: 'ratio' },
      { key: 'store_rebuild_100k_s', label: `state rebuild from ${EVENTS / 1000}k events`, value: rebuildSeconds, unit: 's' },
      { key: 'ed25519_verify_per_s', label: 'Ed25519 verify, node:crypto', value: nativeVerify, unit: 'verifies/s' },
      { key: 'ed25519_noble_verify_per_s', label: 'Ed25519 verify, @noble/ed25519', value: nobleVerify, unit: 'verifies/s' },
      {
        key: 'per_event_signature_cost_100k_s',
        label: `verifying a signature per event, ${EVENTS / 1000}k events`,
        value: EVENTS / nativeVerify,
        unit: 's',
        note: `vs ${((EVENTS / BATCH) * 2 / nativeVerify).toFixed(3)} s with one checkpoint seal per batch of ${BATCH}`,
      },
    ];
  } finally {
    dir.remove();
  }
}
