// Initial sync: a new device pulls 100k and 1M encrypted events from a relay and applies them through
// the real device path (bench/sync-child.ts), beside the raw decrypt + insert of the same data (the
// ceiling), both in a child process whose peak RSS is the device's memory figure.
//
// The relay's data is generated in bulk, straight into its SQLite file: one writer device's hash chain
// (the events a device would write: entity, 200-character payload, Lamport clock, prev hash), sealed by
// the writer every 256 events as the engine does per pushed batch, encoded and encrypted exactly as
// EncryptedTransport does (AES-256-GCM, envelope-bound AAD). That costs a fraction of pushing them.
import { createCipheriv, createSecretKey, randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';
import { sha256Hex } from '../shared/crypto.ts';
import { canonicalJson, toBase64Url } from '../shared/encoding.ts';
import { BODY_NONCE_BYTES, envelopeAad, openBody } from '../shared/envelope-crypto.ts';
import { GENESIS_HASH, PROTOCOL_VERSION, type SealedEvent } from '../shared/portable/event.ts';
import { sealEvent } from '../shared/event.ts';
import { newEventId } from '../shared/ids.ts';
import { MAX_BATCH_EVENTS } from '../shared/portable/relay-api.ts';
import type { TransportPreference } from '../main/sync/engine.ts';
import { BENCH_LIMITS } from './ingest.bench.ts';
import { Child, newMotebit, seedRelayDb, type BenchMotebit } from './lib.ts';
import type { SyncChildInit, SyncChildResult } from './sync-child.ts';
import { median, progress, scratch, seconds, spread, type Figure } from './support.ts';

const KEY_ID = 'k1';
const MB = 1024 * 1024;

export interface Dataset {
  motebit: BenchMotebit;
  bodyKey: Buffer;
  count: number;
}

/** Writes `count` sealed, encrypted events of the motebit's first device into the relay database. */
export function generate(db: Database.Database, dataset: Dataset): void {
  const { motebit, bodyKey, count } = dataset;
  const writer = motebit.devices[0]!;
  const credentials = { deviceKey: writer.key, cert: writer.cert };
  const insert = db.prepare('INSERT INTO events (motebit_id, seq, event_id, device_id, device_seq, key_id, body) VALUES (?, ?, ?, ?, ?, ?, ?)');
  const text = 'x'.repeat(200);
  // sealBody's format (nonce || ciphertext || tag) with the key imported once: generating is not measured.
  const secret = createSecretKey(bodyKey);
  const seal = (plaintext: Buffer, aad: Buffer): Buffer => {
    const nonce = randomBytes(BODY_NONCE_BYTES);
    const cipher = createCipheriv('aes-256-gcm', secret, nonce, { authTagLength: 16 });
    cipher.setAAD(aad);
    return Buffer.concat([nonce, cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
  };
  const ts = Date.now();
  let prev = GENESIS_HASH;
  const CHUNK = 20_000;
  for (let from = 1; from <= count; from += CHUNK) {
    db.transaction(() => {
      for (let seq = from; seq < Math.min(from + CHUNK, count + 1); seq++) {
        const event: SealedEvent = {
          v: PROTOCOL_VERSION,
          motebit_id: motebit.motebitId,
          device_id: writer.deviceId,
          event_id: newEventId(),
          device_seq: seq,
          prev,
          clock: { l: seq, v: { [writer.deviceId]: seq } },
          entity: `memory/${seq % 20_000}`,
          op: 'set',
          payload: { text, n: seq },
          ts: ts + seq,
        };
        const canonical = canonicalJson(event);
        prev = sha256Hex(canonical);
        const sealed = seq % MAX_BATCH_EVENTS === 0 || seq === count ? canonicalJson(sealEvent(event, credentials)) : canonical;
        const aad = envelopeAad({ motebit_id: motebit.motebitId, device_id: writer.deviceId, event_id: event.event_id, device_seq: seq, key_id: KEY_ID });
        const body = seal(Buffer.from(sealed, 'utf8'), aad);
        if (seq === 1 && !openBody(bodyKey, body, aad)) throw new Error('the generated body does not open with openBody');
        insert.run(motebit.motebitId, seq, event.event_id, writer.deviceId, seq, KEY_ID, toBase64Url(body));
      }
    })();
  }
  // What an append keeps beside the rows: the log's head, the writer's head (the frontier, the gap rule and
  // compaction read it), and the motebit's usage (its quotas).
  db.prepare('UPDATE motebits SET head = ?, stored_events = ?, stored_bytes = (SELECT coalesce(sum(length(body)), 0) FROM events WHERE motebit_id = ?) WHERE motebit_id = ?').run(count, count, motebit.motebitId, motebit.motebitId);
  db.prepare('INSERT OR REPLACE INTO device_heads (motebit_id, device_id, seq) VALUES (?, ?, ?)').run(motebit.motebitId, writer.deviceId, count);
}

export function childInitFor(dataset: Dataset, mode: SyncChildInit['mode'], storePath: string, relay: { url: string; dbPath: string }, transport: TransportPreference): SyncChildInit {
  const reader = dataset.motebit.devices[1]!;
  return {
    mode,
    storePath,
    motebitId: dataset.motebit.motebitId,
    identityPublicKey: toBase64Url(dataset.motebit.identity.publicKey),
    deviceSeed: toBase64Url(reader.seed),
    cert: reader.cert,
    bodyKeyId: KEY_ID,
    bodyKey: toBase64Url(dataset.bodyKey),
    relayUrl: relay.url,
    relayDbPath: relay.dbPath,
    transport,
  };
}

export async function runChild(init: SyncChildInit, expected: number): Promise<SyncChildResult> {
  const { child } = await Child.start('./sync-child.ts', init);
  try {
    // Bounded: generous for a loaded machine (about 1 ms per event), never unbounded.
    const result = await child.call<SyncChildResult>('run', null, Math.max(120_000, expected));
    if (result.events !== expected) throw new Error(`the device holds ${result.events} of ${expected} events after its initial sync`);
    return result;
  } finally {
    await child.stop();
  }
}

export interface SyncOptions {
  /** Events of the measured initial sync (100k by default). */
  smallCount: number;
  /** Events of the big one (1M with --full), measured in `bigRounds` rounds; 0: none (never extrapolated). */
  bigCount: number;
  bigRounds: number;
  transport: TransportPreference;
  /** Relay limits on top of the bench's (e.g. wsPageEvents, to see what the catch-up page size costs). */
  relayLimits?: Record<string, number>;
}

export async function syncBench(roundCount: number, options: SyncOptions): Promise<Figure[]> {
  const dir = scratch('sync');
  const relayDbPath = `${dir.path}/relay.db`;
  try {
    const small: Dataset = { motebit: newMotebit(2), bodyKey: randomBytes(32), count: options.smallCount };
    const big: Dataset | null = options.bigCount > 0 ? { motebit: newMotebit(2), bodyKey: randomBytes(32), count: options.bigCount } : null;
    const datasets = big ? [small, big] : [small];
    seedRelayDb(relayDbPath, datasets.map((d) => d.motebit));
    const generated = performance.now();
    {
      const db = new Database(relayDbPath);
      // Setting up the data set is not measured: no journal, no fsync, a big page cache (the relay turns
      // WAL back on when it opens the file).
      db.pragma('journal_mode = OFF');
      db.pragma('synchronous = OFF');
      db.pragma('cache_size = -262144');
      try {
        for (const dataset of datasets) {
          progress(`initial sync: generating ${dataset.count} sealed, encrypted events into the relay's database`);
          generate(db, dataset);
        }
        db.pragma('journal_mode = WAL');
      } finally {
        db.close();
      }
    }
    progress(`initial sync: data set ready in ${seconds(generated).toFixed(1)} s`);

    const { child: relay, ready } = await Child.start<{ url: string }>('./relay-child.ts', { dbPath: relayDbPath, limits: { ...BENCH_LIMITS, ...options.relayLimits } });
    const target = { url: ready.url, dbPath: relayDbPath };
    let run = 0;
    try {
      const name = (n: number) => (n >= 1e6 ? `${n / 1e6}M` : `${n / 1000}k`);
      // The device path and its ceiling in turns (A B A B ...), so a noisy stretch of the machine hits both.
      const measurePair = async (dataset: Dataset, rounds: number) => {
        const engine: SyncChildResult[] = [];
        const ceiling: SyncChildResult[] = [];
        for (let round = 0; round < rounds; round++) {
          for (const [mode, results] of [['engine', engine], ['ceiling', ceiling]] as const) {
            const result = await runChild(childInitFor(dataset, mode, `${dir.path}/device-${run++}.db`, target, options.transport), dataset.count);
            results.push(result);
            const label = mode === 'engine' ? `device path (${options.transport})` : 'raw decrypt+insert';
            progress(`initial sync ${name(dataset.count)}, ${label}: round ${round + 1}/${rounds} ${result.seconds.toFixed(1)} s, peak RSS ${(result.maxRssBytes / MB).toFixed(0)} MB`);
          }
        }
        return {
          engine: spread(engine.map((r) => r.seconds)),
          ceiling: spread(ceiling.map((r) => r.seconds)),
          ratio: spread(engine.map((r, i) => r.seconds / ceiling[i]!.seconds)),
          engineRss: median(engine.map((r) => r.maxRssBytes)),
          ceilingRss: median(ceiling.map((r) => r.maxRssBytes)),
        };
      };
      const figuresFor = (dataset: Dataset, m: Awaited<ReturnType<typeof measurePair>>, keys: { s: string; ceiling: string; rss: string; ratio: string }, measured: string): Figure[] => [
        { key: keys.s, label: `initial sync ${name(dataset.count)} events, device path`, value: m.engine.median, unit: 's', note: `${measured}${Math.round(dataset.count / m.engine.median)} events/s over ${options.transport}, E2E encrypted; ${m.engine.note}` },
        { key: keys.ceiling, label: `raw decrypt+insert ${name(dataset.count)} (ceiling)`, value: m.ceiling.median, unit: 's', note: `${Math.round(dataset.count / m.ceiling.median)} events/s; ${m.ceiling.note}` },
        { key: keys.ratio, label: `initial sync / ceiling, ${name(dataset.count)}`, value: m.ratio.median, unit: 'ratio', note: `goal <= 1.3 (the ceiling imports the key once); per-round ratios, ${m.ratio.note}` },
        { key: keys.rss, label: `device peak RSS, initial sync ${name(dataset.count)}`, value: m.engineRss / MB, unit: 'MB', note: `ceiling process: ${(m.ceilingRss / MB).toFixed(0)} MB` },
      ];
      const smallKeys = { s: 'initial_sync_100k_s', ceiling: 'initial_sync_100k_ceiling_s', rss: 'initial_sync_100k_peak_rss_mb', ratio: big ? 'initial_sync_100k_ratio_to_ceiling' : 'initial_sync_ratio_to_ceiling' };
      const figures = figuresFor(small, await measurePair(small, roundCount), smallKeys, '');
      if (big) {
        const rounds = options.bigRounds === 1 ? 'one round' : `${options.bigRounds} rounds`;
        const bigKeys = { s: 'initial_sync_1m_s', ceiling: 'initial_sync_1m_ceiling_s', rss: 'initial_sync_1m_peak_rss_mb', ratio: 'initial_sync_ratio_to_ceiling' };
        figures.push(...figuresFor(big, await measurePair(big, options.bigRounds), bigKeys, `MEASURED (--full), ${rounds}; `));
      }
      // Without --full there is no 1M figure: it is measured, never extrapolated.
      return figures;
    } finally {
      await relay.stop(30_000);
    }
  } finally {
    dir.remove();
  }
}
