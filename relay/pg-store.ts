// RelayStore on PostgreSQL (node-postgres, pooled), for several relay instances on one database.
// - A batch is one transaction that first locks its motebit's row, so concurrent pushes to one motebit
//   from any instance are serialised: seqs stay gap-free and in order; other motebits do not wait.
// - Fan-out across instances: the append's transaction NOTIFYs the motebit and the seq range it stored
//   (never bodies); each instance with subscribers to that motebit reads those rows. The writing instance
//   tells its own subscribers directly. Revocations are NOTIFYed the same way.
// - The LISTEN connection is watched: when it drops, it is reopened and every subscriber is told it may
//   have missed news (`missed`), so each catches up from storage by its own cursor. Nothing is lost.
// - Nonces, devices and revocations live in the database, so every instance sees them at once.
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { newLogEpoch } from '../shared/ids.ts';
import type { WireEvent } from '../shared/portable/wire.ts';
import { planBatch } from './append-rule.ts';
import { beginConflict, chunkRefusal, coversText, hashChunks, newUpload } from './snapshot-rule.ts';
import type { Logger } from './log.ts';
import { migratePostgres } from './pg-schema.ts';
import {
  capPage,
  type AckRecord,
  type AppendQuota,
  type AppendResult,
  type ChunkPutOutcome,
  type CompactionResult,
  type CompactionState,
  type DeviceRecord,
  type EnrolInput,
  type EnrolOutcome,
  type LogFrontier,
  type MembershipAppend,
  type MembershipAppendOutcome,
  type Notification,
  type PairingRecord,
  type ReadResult,
  type RelayStore,
  type RevokeOutcome,
  type SnapshotBeginInput,
  type SnapshotBeginOutcome,
  type SnapshotCommitOutcome,
  type SnapshotRecord,
  type StoredEntry,
  type Sighting,
  type Usage,
} from './store.ts';
import { SNAPSHOT_COLUMNS, toAck, toDevice, toEvent, toSnapshot, type AckRow, type DeviceRow, type EventRow, type SnapshotRow } from './rows.ts';
import { Subscribers } from './subscribers.ts';

const CHANNEL = 'motebit_relay';
const INT8_OID = 20;
const RECONNECT_MIN_MS = 100;
const RECONNECT_MAX_MS = 5000;

/** A pool or one of its clients (inside a transaction). */
type Queryable = pg.Pool | pg.PoolClient;

export interface PgStoreOptions {
  /** postgres://user[:password]@host:port/database */
  url: string;
  /** Most pooled connections of this instance (default 10). */
  poolSize?: number;
  log?: Logger;
}

/** What a NOTIFY says: who sent it, which motebit, and either a stored seq range or a revoked device. */
type Heard = { i: string; m: string; k: 'e'; f: number; l: number } | { i: string; m: string; k: 'r'; d: string };

// bigint columns hold seqs, sizes and millisecond times, all far below 2^53: read them as numbers.
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') => (oid === INT8_OID ? (value: string) => Number(value) : pg.types.getTypeParser(oid, format))) as typeof pg.types.getTypeParser,
};

/** host:port/database of a connection URL, for messages: never the user's password. */
export function describePostgres(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.hostname || 'localhost'}:${parsed.port || '5432'}${parsed.pathname}`;
  } catch {
    return 'the PostgreSQL database';
  }
}

export const isPostgresUrl = (db: string): boolean => /^postgres(ql)?:\/\//i.test(db);

export class PgStore implements RelayStore {
  /** Each append is its own transaction on a pooled connection: two in flight may commit in either order. */
  readonly appendsInCallOrder = false;
  readonly #pool: pg.Pool;
  readonly #config: pg.ClientConfig;
  readonly #log: Logger | undefined;
  readonly #subscribers = new Subscribers();
  /** Tags this instance's NOTIFYs, so it does not read back what it already told its own subscribers. */
  readonly #instance = randomUUID();
  /** Per motebit, the reads of remote news in arrival order. */
  readonly #reading = new Map<string, Promise<void>>();
  #listener: pg.Client | undefined;
  #reconnectTimer: NodeJS.Timeout | undefined;
  #reconnectDelay = RECONNECT_MIN_MS;
  #closed = false;
  /** Resolves whenever the LISTEN connection is (re)established; for tests and health. */
  #listening = false;

  private constructor(options: PgStoreOptions) {
    this.#config = { connectionString: options.url, types, application_name: 'motebit-relay' };
    this.#log = options.log;
    // A request waits at most 10 s for a pooled connection, then fails (and the device retries) rather than hang.
    this.#pool = new pg.Pool({ ...this.#config, max: options.poolSize ?? 10, connectionTimeoutMillis: 10_000 });
    // An idle pooled connection that dies must not take the process with it; the next query reconnects.
    this.#pool.on('error', (error) => this.#log?.warn({ err: error.message }, 'postgres connection lost (idle)'));
  }

  /** Connects, applies migrations, and starts listening for other instances' news. */
  static async open(options: PgStoreOptions): Promise<PgStore> {
    const store = new PgStore(options);
    try {
      const client = await store.#pool.connect();
      try {
        const applied = await migratePostgres(client);
        if (applied.length > 0) options.log?.info({ versions: applied }, 'postgres schema migrated');
      } finally {
        client.release();
      }
      await store.#listen();
    } catch (error) {
      await store.close();
      throw new Error(`could not use PostgreSQL at ${describePostgres(options.url)}: ${error instanceof Error ? error.message : String(error)}`);
    }
    return store;
  }

  /** Whether this instance hears other instances' news right now. */
  get listening(): boolean {
    return this.#listening;
  }

  // ---- fan-out across instances ----

  async #listen(): Promise<void> {
    const client = new pg.Client({ ...this.#config, application_name: 'motebit-relay-listen' });
    const lost = (error?: Error): void => {
      if (this.#listener !== client) return;
      this.#listener = undefined;
      this.#listening = false;
      client.removeAllListeners('notification');
      client.end().catch(() => undefined);
      if (this.#closed) return;
      this.#log?.warn({ err: error?.message ?? 'connection ended' }, 'postgres LISTEN connection lost; reconnecting');
      this.#scheduleReconnect();
    };
    client.on('error', lost);
    client.on('end', () => lost());
    client.on('notification', (message) => {
      if (message.channel === CHANNEL && message.payload !== undefined) this.#heard(message.payload);
    });
    await client.connect();
    await client.query(`LISTEN ${CHANNEL}`);
    this.#listener = client;
    this.#listening = true;
    this.#reconnectDelay = RECONNECT_MIN_MS;
  }

  #scheduleReconnect(): void {
    clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = setTimeout(() => {
      this.#listen().then(
        () => {
          this.#log?.info({ motebits: this.#subscribers.motebits().length }, 'postgres LISTEN connection back; catching subscribers up from storage');
          // Whatever was NOTIFYed while nobody listened is in storage: every subscriber catches up from it.
          for (const motebitId of this.#subscribers.motebits()) this.#subscribers.notify(motebitId, { kind: 'missed' });
        },
        (error: unknown) => {
          this.#log?.warn({ err: error instanceof Error ? error.message : String(error) }, 'postgres LISTEN reconnect failed; retrying');
          this.#reconnectDelay = Math.min(this.#reconnectDelay * 2, RECONNECT_MAX_MS);
          if (!this.#closed) this.#scheduleReconnect();
        },
      );
    }, this.#reconnectDelay);
    this.#reconnectTimer.unref();
  }

  #heard(payload: string): void {
    let heard: Heard;
    try {
      heard = JSON.parse(payload) as Heard;
    } catch {
      return;
    }
    if (heard.i === this.#instance || !this.#subscribers.has(heard.m)) return;
    const motebitId = heard.m;
    // News of one motebit is handled in arrival order (= commit order), revocations included.
    const previous = this.#reading.get(motebitId) ?? Promise.resolve();
    const next = previous
      .then(async () => {
        if (this.#closed || !this.#subscribers.has(motebitId)) return;
        if (heard.k === 'r') {
          this.#subscribers.notify(motebitId, { kind: 'revoked', deviceId: heard.d });
          return;
        }
        const { rows } = await this.#pool.query<EventRow>(
          // A stub (compacted meanwhile) is never served; whoever needs what it held has acknowledged it.
          'SELECT seq, event_id, device_id, device_seq, key_id, body FROM events WHERE motebit_id = $1 AND seq >= $2 AND seq <= $3 AND compacted = 0 ORDER BY seq',
          [motebitId, heard.f, heard.l],
        );
        if (rows.length > 0) this.#subscribers.notify(motebitId, { kind: 'events', events: rows.map(toEvent) });
      })
      .catch((error: unknown) => {
        if (this.#closed) return;
        this.#log?.warn({ motebit_id: motebitId, err: error instanceof Error ? error.message : String(error) }, 'reading news from postgres failed; subscribers catch up from storage');
        this.#subscribers.notify(motebitId, { kind: 'missed' });
      })
      .finally(() => {
        if (this.#reading.get(motebitId) === next) this.#reading.delete(motebitId);
      });
    this.#reading.set(motebitId, next);
  }

  #payload(motebitId: string, news: { k: 'e'; f: number; l: number } | { k: 'r'; d: string }): string {
    return JSON.stringify({ i: this.#instance, m: motebitId, ...news });
  }

  // ---- transactions ----

  async #transaction<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.#pool.connect();
    try {
      await client.query('BEGIN');
      const result = await work(client);
      await client.query('COMMIT');
      client.release();
      return result;
    } catch (error) {
      try {
        await client.query('ROLLBACK');
        client.release();
      } catch (rollbackError) {
        client.release(rollbackError instanceof Error ? rollbackError : true); // a broken connection leaves the pool
      }
      throw error;
    }
  }

  // ---- RelayStore ----

  async identityKey(motebitId: string): Promise<Buffer | null> {
    const { rows } = await this.#pool.query<{ identity_key: Buffer }>('SELECT identity_key FROM motebits WHERE motebit_id = $1', [motebitId]);
    return rows[0]?.identity_key ?? null;
  }

  async enrolDevice(input: EnrolInput): Promise<EnrolOutcome> {
    return this.#transaction(async (client) => {
      await client.query('INSERT INTO motebits (motebit_id, identity_key, epoch, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (motebit_id) DO NOTHING', [
        input.motebitId,
        input.identityKey,
        newLogEpoch(),
        input.now,
      ]);
      // The motebit's row lock serialises enrolments (and the device quota) across instances.
      const { rows } = await client.query<{ identity_key: Buffer }>('SELECT identity_key FROM motebits WHERE motebit_id = $1 FOR UPDATE', [input.motebitId]);
      if (!rows[0]?.identity_key.equals(input.identityKey)) return { kind: 'wrong_identity' };
      const existing = (await client.query<DeviceRow>('SELECT * FROM devices WHERE motebit_id = $1 AND device_id = $2', [input.motebitId, input.deviceId])).rows[0];
      if (existing) {
        if (existing.revoked_at !== null) return { kind: 'revoked' };
        if (!existing.key.equals(input.deviceKey)) return { kind: 'key_mismatch' };
        return { kind: 'exists', device: toDevice(existing) };
      }
      if (input.maxDevices !== undefined) {
        const active = (await client.query<{ n: number }>('SELECT count(*)::bigint AS n FROM devices WHERE motebit_id = $1 AND revoked_at IS NULL', [input.motebitId])).rows[0]?.n ?? 0;
        if (active >= input.maxDevices) return { kind: 'quota_exceeded' };
      }
      const inserted = await client.query<DeviceRow>(
        'INSERT INTO devices (motebit_id, device_id, key, cert, name, enrolled_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, NULL) RETURNING *',
        [input.motebitId, input.deviceId, input.deviceKey, input.cert, input.name, input.now],
      );
      const row = inserted.rows[0];
      if (!row) throw new Error('the device row was not returned by its own insert');
      return { kind: 'created', device: toDevice(row) };
    });
  }

  async membership(motebitId: string, after: number): Promise<StoredEntry[]> {
    const { rows } = await this.#pool.query<{ seq: string; hash: string; entry: string }>('SELECT seq, hash, entry FROM membership WHERE motebit_id = $1 AND seq > $2 ORDER BY seq', [motebitId, after]);
    return rows.map((row) => ({ seq: Number(row.seq), hash: row.hash, text: row.entry }));
  }

  async appendMembership(motebitId: string, append: MembershipAppend): Promise<MembershipAppendOutcome> {
    const first = append.entries[0];
    const outcome = await this.#transaction(async (client): Promise<{ kind: 'appended' | 'conflict'; head: number; revoked: string[] }> => {
      // A genesis registers a new motebit (no identity key: its members' keys are in the log); an upgraded
      // protocol-2 motebit keeps its row. The motebit's row lock serialises appends across instances.
      if (first?.seq === 0) {
        await client.query('INSERT INTO motebits (motebit_id, identity_key, epoch, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (motebit_id) DO NOTHING', [motebitId, Buffer.alloc(0), newLogEpoch(), append.now]);
      }
      const locked = await client.query('SELECT 1 FROM motebits WHERE motebit_id = $1 FOR UPDATE', [motebitId]);
      const head = Number((await client.query<{ seq: string | null }>('SELECT max(seq) AS seq FROM membership WHERE motebit_id = $1', [motebitId])).rows[0]?.seq ?? -1);
      if (!first || locked.rowCount === 0 || first.seq !== head + 1) return { kind: 'conflict', head, revoked: [] };
      for (const entry of append.entries) await client.query('INSERT INTO membership (motebit_id, seq, hash, entry) VALUES ($1, $2, $3, $4)', [motebitId, entry.seq, entry.hash, entry.text]);
      for (const device of append.added) {
        await client.query(
          "INSERT INTO devices (motebit_id, device_id, key, cert, name, enrolled_at, revoked_at) VALUES ($1, $2, $3, '', $4, $5, NULL) ON CONFLICT (motebit_id, device_id) DO NOTHING",
          [motebitId, device.deviceId, device.key, device.name, append.now],
        );
      }
      const revoked: string[] = [];
      for (const deviceId of append.removed) {
        const done = await client.query('UPDATE devices SET revoked_at = $3 WHERE motebit_id = $1 AND device_id = $2 AND revoked_at IS NULL', [motebitId, deviceId, append.now]);
        if (done.rowCount === 1) {
          revoked.push(deviceId);
          await client.query('SELECT pg_notify($1, $2)', [CHANNEL, this.#payload(motebitId, { k: 'r', d: deviceId })]);
        }
      }
      return { kind: 'appended', head: append.entries.at(-1)!.seq, revoked };
    });
    for (const deviceId of outcome.revoked) this.#subscribers.notify(motebitId, { kind: 'revoked', deviceId });
    return { kind: outcome.kind, head: outcome.head };
  }

  async createPairing(id: string, member: string, expiresAt: number): Promise<boolean> {
    const done = await this.#pool.query('INSERT INTO pairings (id, member, expires_at) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING', [id, member, expiresAt]);
    return done.rowCount === 1;
  }

  async pairing(id: string, now: number): Promise<PairingRecord | null> {
    const { rows } = await this.#pool.query<{ id: string; member: string; offer: string | null; reveal: string | null; expires_at: string }>('SELECT * FROM pairings WHERE id = $1 AND expires_at >= $2', [id, now]);
    const row = rows[0];
    return row ? { id: row.id, member: row.member, offer: row.offer, reveal: row.reveal, expiresAt: Number(row.expires_at) } : null;
  }

  async setPairingOffer(id: string, offer: string, now: number): Promise<boolean> {
    return (await this.#pool.query('UPDATE pairings SET offer = $1 WHERE id = $2 AND expires_at >= $3 AND offer IS NULL', [offer, id, now])).rowCount === 1;
  }

  async setPairingReveal(id: string, reveal: string, now: number): Promise<boolean> {
    return (await this.#pool.query('UPDATE pairings SET reveal = $1 WHERE id = $2 AND expires_at >= $3 AND offer IS NOT NULL AND reveal IS NULL', [reveal, id, now])).rowCount === 1;
  }

  async prunePairings(now: number): Promise<void> {
    await this.#pool.query('DELETE FROM pairings WHERE expires_at < $1', [now]);
  }

  async device(motebitId: string, deviceId: string): Promise<DeviceRecord | null> {
    const { rows } = await this.#pool.query<DeviceRow>('SELECT * FROM devices WHERE motebit_id = $1 AND device_id = $2', [motebitId, deviceId]);
    return rows[0] ? toDevice(rows[0]) : null;
  }

  async devices(motebitId: string): Promise<DeviceRecord[]> {
    const { rows } = await this.#pool.query<DeviceRow>('SELECT * FROM devices WHERE motebit_id = $1 ORDER BY enrolled_at, device_id', [motebitId]);
    return rows.map(toDevice);
  }

  async revokeDevice(motebitId: string, deviceId: string, now: number): Promise<RevokeOutcome> {
    const outcome = await this.#transaction(async (client): Promise<RevokeOutcome> => {
      const existing = (await client.query<DeviceRow>('SELECT * FROM devices WHERE motebit_id = $1 AND device_id = $2 FOR UPDATE', [motebitId, deviceId])).rows[0];
      if (!existing) return { kind: 'unknown' };
      if (existing.revoked_at !== null) return { kind: 'already_revoked', device: toDevice(existing) };
      await client.query('UPDATE devices SET revoked_at = $3 WHERE motebit_id = $1 AND device_id = $2', [motebitId, deviceId, now]);
      await client.query('SELECT pg_notify($1, $2)', [CHANNEL, this.#payload(motebitId, { k: 'r', d: deviceId })]);
      return { kind: 'revoked', device: { ...toDevice(existing), revokedAt: now } };
    });
    if (outcome.kind === 'revoked') this.#subscribers.notify(motebitId, { kind: 'revoked', deviceId });
    return outcome;
  }

  async recordSeen(motebitId: string, sightings: readonly Sighting[]): Promise<void> {
    if (sightings.length === 0) return;
    // One statement for the whole batch; values only ever move forward, whatever instance wrote last.
    await this.#pool.query(
      `UPDATE devices d SET last_seen_at = greatest(coalesce(d.last_seen_at, 0), s.at), read_seq = greatest(d.read_seq, s.read_seq)
         FROM unnest($2::text[], $3::bigint[], $4::bigint[]) AS s (device_id, at, read_seq)
        WHERE d.motebit_id = $1 AND d.device_id = s.device_id`,
      [motebitId, sightings.map((s) => s.deviceId), sightings.map((s) => s.at), sightings.map((s) => s.readSeq ?? 0)],
    );
  }

  async useNonce(motebitId: string, signer: string, nonce: string, expiresAt: number): Promise<boolean> {
    const result = await this.#pool.query('INSERT INTO nonces (motebit_id, signer, nonce, expires_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING', [
      motebitId,
      signer,
      nonce,
      expiresAt,
    ]);
    return result.rowCount === 1;
  }

  async pruneNonces(now: number): Promise<void> {
    await this.#pool.query('DELETE FROM nonces WHERE expires_at < $1', [now]);
  }

  async appendBatch(motebitId: string, events: WireEvent[], quota?: AppendQuota): Promise<AppendResult> {
    const { plan, epoch } = await this.#transaction(async (client) => {
      const log = (
        await client.query<{ head: number; epoch: string; stored_events: number; stored_bytes: number }>(
          'SELECT head, epoch, stored_events, stored_bytes FROM motebits WHERE motebit_id = $1 FOR UPDATE',
          [motebitId],
        )
      ).rows[0];
      if (!log) throw new Error(`no motebit ${motebitId} on this relay`);
      // One round trip for what the rule needs to know: the batch's ids already stored, its writers' heads.
      const known = await client.query<{ kind: 'e' | 'd'; id: string; seq: number; device_id: string }>(
        `SELECT 'e' AS kind, event_id AS id, seq, device_id FROM events WHERE motebit_id = $1 AND event_id = ANY($2::text[])
         UNION ALL
         SELECT 'd', device_id, seq, device_id FROM device_heads WHERE motebit_id = $1 AND device_id = ANY($3::text[])`,
        [motebitId, events.map((e) => e.event_id), [...new Set(events.map((e) => e.device_id))]],
      );
      const existing = new Map<string, { seq: number; deviceId: string }>();
      const writerHeads = new Map<string, number>();
      for (const row of known.rows) {
        if (row.kind === 'e') existing.set(row.id, { seq: row.seq, deviceId: row.device_id });
        else writerHeads.set(row.id, row.seq);
      }
      const plan = planBatch(
        { head: log.head, events: log.stored_events, bytes: log.stored_bytes },
        events,
        { existing: (id) => existing.get(id), writerHead: (deviceId) => writerHeads.get(deviceId) ?? 0 },
        quota,
      );
      const first = plan.stored[0];
      if (first) {
        const heads = [...plan.writerHeads];
        await client.query(
          `WITH stored AS (
             INSERT INTO events (motebit_id, seq, event_id, device_id, device_seq, key_id, body)
             SELECT $1::text, * FROM unnest($2::bigint[], $3::text[], $4::text[], $5::bigint[], $6::text[], $7::text[])
           ), writers AS (
             INSERT INTO device_heads (motebit_id, device_id, seq) SELECT $1::text, * FROM unnest($8::text[], $9::bigint[])
             ON CONFLICT (motebit_id, device_id) DO UPDATE SET seq = excluded.seq
           ), log AS (
             UPDATE motebits SET head = $10, stored_events = stored_events + $11, stored_bytes = stored_bytes + $12 WHERE motebit_id = $1
           )
           SELECT pg_notify($13, $14)`,
          [
            motebitId,
            plan.stored.map((e) => e.seq),
            plan.stored.map((e) => e.event_id),
            plan.stored.map((e) => e.device_id),
            plan.stored.map((e) => e.device_seq),
            plan.stored.map((e) => e.key_id),
            plan.stored.map((e) => e.body),
            heads.map(([deviceId]) => deviceId),
            heads.map(([, seq]) => seq),
            plan.head,
            plan.stored.length,
            plan.bytes,
            CHANNEL,
            this.#payload(motebitId, { k: 'e', f: first.seq, l: plan.head }),
          ],
        );
      }
      return { plan, epoch: log.epoch };
    });
    if (plan.stored.length > 0) this.#subscribers.notify(motebitId, { kind: 'events', events: plan.stored });
    return { results: plan.results, head: plan.head, epoch, ...(plan.refused ? { refused: plan.refused } : {}) };
  }

  async readAfter(motebitId: string, after: number, limit: number, maxBytes: number): Promise<ReadResult> {
    // One statement is one snapshot: the page's head and epoch describe the log the page came from.
    const { rows } = await this.#pool.query<{ head: number; epoch: string } & ({ seq: number } & EventRow)>(
      `SELECT m.head, m.epoch, e.seq, e.event_id, e.device_id, e.device_seq, e.key_id, e.body
       FROM motebits m
       LEFT JOIN LATERAL (SELECT * FROM events WHERE motebit_id = m.motebit_id AND seq > $2 AND compacted = 0 ORDER BY seq LIMIT $3) e ON true
       WHERE m.motebit_id = $1
       ORDER BY e.seq`,
      [motebitId, after, limit + 1],
    );
    const log = rows[0];
    const page = capPage(
      rows.filter((row) => row.seq !== null).map(toEvent),
      limit,
      maxBytes,
      after,
      log?.head ?? 0,
    );
    return { ...page, head: log?.head ?? 0, epoch: log?.epoch ?? '' };
  }

  async head(motebitId: string): Promise<number> {
    const { rows } = await this.#pool.query<{ head: number }>('SELECT head FROM motebits WHERE motebit_id = $1', [motebitId]);
    return rows[0]?.head ?? 0;
  }

  async usage(motebitId: string): Promise<Usage> {
    const { rows } = await this.#pool.query<{ stored_events: number; stored_bytes: number; devices: number }>(
      `SELECT stored_events, stored_bytes,
              (SELECT count(*)::bigint FROM devices d WHERE d.motebit_id = m.motebit_id AND revoked_at IS NULL) AS devices
       FROM motebits m WHERE motebit_id = $1`,
      [motebitId],
    );
    const row = rows[0];
    return { events: row?.stored_events ?? 0, bytes: row?.stored_bytes ?? 0, devices: row?.devices ?? 0 };
  }

  async frontier(motebitId: string, at?: number): Promise<LogFrontier> {
    const { rows } = await this.#pool.query<{ head: number; epoch: string; devices: [string, number, number][]; at_event: string | null }>(
      `SELECT m.head, m.epoch,
              coalesce((SELECT json_agg(json_build_array(device_id, seq, floor) ORDER BY device_id) FROM device_heads d WHERE d.motebit_id = m.motebit_id), '[]') AS devices,
              (SELECT event_id FROM events e WHERE e.motebit_id = m.motebit_id AND e.seq = $2) AS at_event
       FROM motebits m WHERE motebit_id = $1`,
      [motebitId, at ?? -1],
    );
    const log = rows[0];
    return {
      epoch: log?.epoch ?? '',
      head: log?.head ?? 0,
      devices: (log?.devices ?? []).map(([deviceId, seq]) => ({ deviceId, seq })),
      at: at === undefined ? null : { seq: at, eventId: log?.at_event ?? null },
      floors: (log?.devices ?? []).filter(([, , floor]) => floor > 0).map(([deviceId, , floor]) => ({ deviceId, seq: floor })),
    };
  }

  // ---- snapshots, acknowledgements, compaction ----

  async #snapshot(client: Queryable, motebitId: string, snapshotId: string, lock = false): Promise<SnapshotRecord | null> {
    const { rows } = await client.query<SnapshotRow>(`SELECT ${SNAPSHOT_COLUMNS} FROM snapshots WHERE motebit_id = $1 AND snapshot_id = $2${lock ? ' FOR UPDATE' : ''}`, [motebitId, snapshotId]);
    return rows[0] ? toSnapshot(rows[0]) : null;
  }

  async #dropUploads(client: Queryable, motebitId: string, snapshotIds: string[]): Promise<void> {
    if (snapshotIds.length === 0) return;
    await client.query('DELETE FROM snapshot_chunks WHERE motebit_id = $1 AND snapshot_id = ANY($2::text[])', [motebitId, snapshotIds]);
    await client.query('DELETE FROM snapshots WHERE motebit_id = $1 AND snapshot_id = ANY($2::text[])', [motebitId, snapshotIds]);
  }

  async #chunkCount(client: Queryable, motebitId: string, snapshotId: string): Promise<number> {
    const { rows } = await client.query<{ n: number }>('SELECT count(*)::bigint AS n FROM snapshot_chunks WHERE motebit_id = $1 AND snapshot_id = $2', [motebitId, snapshotId]);
    return rows[0]?.n ?? 0;
  }

  async beginSnapshot(motebitId: string, input: SnapshotBeginInput): Promise<SnapshotBeginOutcome> {
    return this.#transaction(async (client): Promise<SnapshotBeginOutcome> => {
      // The motebit's row lock serialises a device's begins (one upload in progress each) across instances.
      await client.query('SELECT 1 FROM motebits WHERE motebit_id = $1 FOR UPDATE', [motebitId]);
      const stored = await this.#snapshot(client, motebitId, input.snapshotId);
      if (stored) {
        const conflict = beginConflict(stored, input);
        if (conflict) return { kind: 'conflict', reason: conflict };
        if (stored.completedAt !== null) return { kind: 'complete', chunks: stored.chunks };
        await client.query('UPDATE snapshots SET touched_at = greatest(touched_at, $3) WHERE motebit_id = $1 AND snapshot_id = $2', [motebitId, input.snapshotId, input.now]);
        const { rows } = await client.query<{ idx: number }>('SELECT idx FROM snapshot_chunks WHERE motebit_id = $1 AND snapshot_id = $2 ORDER BY idx', [motebitId, input.snapshotId]);
        return { kind: 'resumed', received: rows.map((row) => row.idx) };
      }
      const unfinished = await client.query<{ snapshot_id: string }>('SELECT snapshot_id FROM snapshots WHERE motebit_id = $1 AND device_id = $2 AND completed_at IS NULL', [motebitId, input.deviceId]);
      await this.#dropUploads(client, motebitId, unfinished.rows.map((row) => row.snapshot_id));
      const upload = newUpload(input);
      await client.query(
        'INSERT INTO snapshots (motebit_id, snapshot_id, device_id, size, sha256, chunk_bytes, chunks, covers, touched_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)',
        [motebitId, upload.snapshotId, upload.deviceId, upload.size, upload.sha256, upload.chunkBytes, upload.chunks, coversText(upload.covers), upload.touchedAt],
      );
      return { kind: 'begun', received: [] };
    });
  }

  async putSnapshotChunk(motebitId: string, snapshotId: string, deviceId: string, index: number, data: Buffer, now: number): Promise<ChunkPutOutcome> {
    return this.#transaction(async (client): Promise<ChunkPutOutcome> => {
      // Shared lock: chunks of one upload go in side by side, but not while it is replaced or committed.
      const { rows } = await client.query<SnapshotRow>(`SELECT ${SNAPSHOT_COLUMNS} FROM snapshots WHERE motebit_id = $1 AND snapshot_id = $2 FOR SHARE`, [motebitId, snapshotId]);
      const record = rows[0] ? toSnapshot(rows[0]) : null;
      const refusal = chunkRefusal(record, deviceId, index, data.byteLength);
      if (refusal) return refusal;
      const inserted = await client.query('INSERT INTO snapshot_chunks (motebit_id, snapshot_id, idx, data) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING', [motebitId, snapshotId, index, data]);
      if (inserted.rowCount === 0) {
        const held = await client.query<{ data: Buffer }>('SELECT data FROM snapshot_chunks WHERE motebit_id = $1 AND snapshot_id = $2 AND idx = $3', [motebitId, snapshotId, index]);
        if (!held.rows[0]?.data.equals(data)) return { kind: 'conflict' };
      }
      return { kind: 'stored', received: await this.#chunkCount(client, motebitId, snapshotId) };
    }).then(async (outcome) => {
      // Touched outside the chunk's transaction: chunks written side by side would wait on the row otherwise.
      if (outcome.kind === 'stored') await this.#pool.query('UPDATE snapshots SET touched_at = greatest(touched_at, $3) WHERE motebit_id = $1 AND snapshot_id = $2', [motebitId, snapshotId, now]);
      return outcome;
    });
  }

  async commitSnapshot(motebitId: string, snapshotId: string, deviceId: string, keep: number, now: number): Promise<SnapshotCommitOutcome> {
    const record = await this.#snapshot(this.#pool, motebitId, snapshotId);
    if (record && record.completedAt === null && record.deviceId === deviceId && (await this.#chunkCount(this.#pool, motebitId, snapshotId)) === record.chunks) {
      // Hashed a page at a time outside any transaction (chunks never change once stored; the commit below
      // checks the upload is still whole), so a large snapshot holds no connection or lock meanwhile.
      const hash = await hashChunks(record.chunks, async (from, count) => {
        const page = await this.#pool.query<{ idx: number; data: Buffer }>(
          'SELECT idx, data FROM snapshot_chunks WHERE motebit_id = $1 AND snapshot_id = $2 AND idx >= $3 AND idx < $4 ORDER BY idx',
          [motebitId, snapshotId, from, from + count],
        );
        return page.rows;
      });
      if (hash !== null && hash !== record.sha256) {
        await this.#transaction(async (client) => {
          const current = await this.#snapshot(client, motebitId, snapshotId, true);
          if (current && current.completedAt === null) await this.#dropUploads(client, motebitId, [snapshotId]);
        });
        return { kind: 'mismatch' };
      }
    }
    return this.#transaction(async (client): Promise<SnapshotCommitOutcome> => {
      // The motebit's row lock orders commits (and so "newest") across instances.
      await client.query('SELECT 1 FROM motebits WHERE motebit_id = $1 FOR UPDATE', [motebitId]);
      const current = await this.#snapshot(client, motebitId, snapshotId, true);
      if (!current) return { kind: 'not_found' };
      if (current.deviceId !== deviceId) return { kind: 'other_device' };
      if (current.completedAt !== null) return { kind: 'committed', snapshot: current, pruned: 0 };
      const missing = current.chunks - (await this.#chunkCount(client, motebitId, snapshotId));
      if (missing > 0) return { kind: 'incomplete', missing };
      await client.query(
        `UPDATE snapshots SET completed_at = $3, touched_at = $3,
                complete_order = (SELECT coalesce(max(complete_order), 0) + 1 FROM snapshots WHERE motebit_id = $1)
          WHERE motebit_id = $1 AND snapshot_id = $2`,
        [motebitId, snapshotId, now],
      );
      const older = await client.query<{ snapshot_id: string }>(
        'SELECT snapshot_id FROM snapshots WHERE motebit_id = $1 AND completed_at IS NOT NULL ORDER BY complete_order DESC OFFSET $2',
        [motebitId, keep],
      );
      await this.#dropUploads(client, motebitId, older.rows.map((row) => row.snapshot_id));
      return { kind: 'committed', snapshot: { ...current, completedAt: now, touchedAt: now }, pruned: older.rows.length };
    });
  }

  async latestSnapshot(motebitId: string): Promise<SnapshotRecord | null> {
    return this.#latestSnapshot(this.#pool, motebitId);
  }

  async snapshotChunk(motebitId: string, snapshotId: string, index: number): Promise<Buffer | null> {
    const { rows } = await this.#pool.query<{ data: Buffer }>(
      `SELECT c.data FROM snapshots s JOIN snapshot_chunks c ON c.motebit_id = s.motebit_id AND c.snapshot_id = s.snapshot_id
        WHERE s.motebit_id = $1 AND s.snapshot_id = $2 AND s.completed_at IS NOT NULL AND c.idx = $3 AND c.idx < s.chunks`,
      [motebitId, snapshotId, index],
    );
    return rows[0]?.data ?? null;
  }

  async pruneSnapshotUploads(before: number): Promise<void> {
    await this.#transaction(async (client) => {
      const stale = await client.query<{ motebit_id: string; snapshot_id: string }>('SELECT motebit_id, snapshot_id FROM snapshots WHERE completed_at IS NULL AND touched_at < $1 FOR UPDATE', [before]);
      for (const row of stale.rows) await this.#dropUploads(client, row.motebit_id, [row.snapshot_id]);
    });
  }

  async putAck(motebitId: string, ack: AckRecord): Promise<boolean> {
    const done = await this.#pool.query(
      `INSERT INTO acks (motebit_id, device_id, covers, at, sig) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (motebit_id, device_id) DO UPDATE SET covers = excluded.covers, at = excluded.at, sig = excluded.sig WHERE excluded.at > acks.at`,
      [motebitId, ack.deviceId, coversText(ack.covers), ack.at, ack.sig],
    );
    return done.rowCount === 1;
  }

  async acks(motebitId: string): Promise<AckRecord[]> {
    const { rows } = await this.#pool.query<AckRow>('SELECT device_id, covers, at, sig FROM acks WHERE motebit_id = $1 ORDER BY device_id', [motebitId]);
    return rows.map(toAck);
  }

  async compact(motebitId: string, decide: (state: CompactionState) => Map<string, number> | null): Promise<CompactionResult | null> {
    return this.#transaction(async (client): Promise<CompactionResult | null> => {
      // The motebit's row lock: no append, enrolment or membership change between the decision and the drop.
      const locked = await client.query('SELECT 1 FROM motebits WHERE motebit_id = $1 FOR UPDATE', [motebitId]);
      if (locked.rowCount === 0) return null;
      const [latest, devices, acks, writers] = [
        await this.#latestSnapshot(client, motebitId),
        (await client.query<DeviceRow>('SELECT * FROM devices WHERE motebit_id = $1 ORDER BY enrolled_at, device_id', [motebitId])).rows.map(toDevice),
        (await client.query<AckRow>('SELECT device_id, covers, at, sig FROM acks WHERE motebit_id = $1', [motebitId])).rows.map(toAck),
        (await client.query<{ device_id: string; seq: number; floor: number }>('SELECT device_id, seq, floor FROM device_heads WHERE motebit_id = $1', [motebitId])).rows,
      ];
      const floors = decide({ latest, devices, acks, writers: new Map(writers.map((row) => [row.device_id, { head: row.seq, floor: row.floor }])) });
      if (!floors || floors.size === 0) return null;
      const targets = [...floors];
      const { rows } = await client.query<{ n: number; bytes: number }>(
        `WITH targets AS (SELECT * FROM unnest($2::text[], $3::bigint[]) AS t (device_id, floor)),
              dropped AS (
                SELECT e.seq, length(e.body) AS bytes FROM events e JOIN targets t ON e.device_id = t.device_id
                 WHERE e.motebit_id = $1 AND e.device_seq <= t.floor AND e.compacted = 0
              ),
              stubbed AS (
                UPDATE events e SET body = '', compacted = 1 FROM dropped WHERE e.motebit_id = $1 AND e.seq = dropped.seq
              ),
              floors AS (
                UPDATE device_heads d SET floor = t.floor FROM targets t WHERE d.motebit_id = $1 AND d.device_id = t.device_id
              )
         SELECT count(*)::bigint AS n, coalesce(sum(bytes), 0)::bigint AS bytes FROM dropped`,
        [motebitId, targets.map(([deviceId]) => deviceId), targets.map(([, floor]) => floor)],
      );
      const events = rows[0]?.n ?? 0;
      const bytes = rows[0]?.bytes ?? 0;
      await client.query('UPDATE motebits SET stored_events = stored_events - $2, stored_bytes = stored_bytes - $3 WHERE motebit_id = $1', [motebitId, events, bytes]);
      return { events, bytes, floors };
    });
  }

  async #latestSnapshot(client: Queryable, motebitId: string): Promise<SnapshotRecord | null> {
    const { rows } = await client.query<SnapshotRow>(
      `SELECT ${SNAPSHOT_COLUMNS} FROM snapshots WHERE motebit_id = $1 AND completed_at IS NOT NULL ORDER BY complete_order DESC LIMIT 1`,
      [motebitId],
    );
    return rows[0] ? toSnapshot(rows[0]) : null;
  }

  subscribe(motebitId: string, listener: (notification: Notification) => void): () => void {
    return this.#subscribers.add(motebitId, listener);
  }

  /** For tests: the backend pid of the LISTEN connection (to cut it from the server side). */
  async listenerPid(): Promise<number | null> {
    const listener = this.#listener;
    if (!listener) return null;
    const { rows } = await listener.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    return rows[0]?.pid ?? null;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#reconnectTimer);
    this.#subscribers.clear();
    const listener = this.#listener;
    this.#listener = undefined;
    this.#listening = false;
    await listener?.end().catch(() => undefined);
    await Promise.allSettled([...this.#reading.values()]);
    await this.#pool.end();
  }
}
