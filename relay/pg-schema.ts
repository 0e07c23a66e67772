// The relay's PostgreSQL schema as versioned migrations. Each runs once, in order, inside one transaction
// holding an advisory lock, so several relay instances starting together migrate exactly once. A database
// migrated by a newer relay is refused. Ids use the "C" collation: byte order, as in SQLite, and faster.
import type pg from 'pg';

const MIGRATIONS: string[] = [
  `
  CREATE TABLE motebits (
    motebit_id    text COLLATE "C" PRIMARY KEY,
    identity_key  bytea NOT NULL,
    epoch         text NOT NULL,
    head          bigint NOT NULL DEFAULT 0,
    stored_events bigint NOT NULL DEFAULT 0,
    stored_bytes  bigint NOT NULL DEFAULT 0,
    created_at    bigint NOT NULL
  );
  CREATE TABLE devices (
    motebit_id  text COLLATE "C" NOT NULL REFERENCES motebits (motebit_id),
    device_id   text COLLATE "C" NOT NULL,
    key         bytea NOT NULL,
    cert        text NOT NULL,
    name        text,
    enrolled_at bigint NOT NULL,
    revoked_at  bigint,
    PRIMARY KEY (motebit_id, device_id)
  );
  CREATE TABLE events (
    motebit_id text COLLATE "C" NOT NULL,
    seq        bigint NOT NULL,
    event_id   text COLLATE "C" NOT NULL,
    device_id  text COLLATE "C" NOT NULL,
    device_seq bigint NOT NULL,
    key_id     text,
    body       text NOT NULL,
    PRIMARY KEY (motebit_id, seq),
    UNIQUE (motebit_id, event_id),
    UNIQUE (motebit_id, device_id, device_seq)
  );
  CREATE TABLE device_heads (
    motebit_id text COLLATE "C" NOT NULL,
    device_id  text COLLATE "C" NOT NULL,
    seq        bigint NOT NULL,
    PRIMARY KEY (motebit_id, device_id)
  );
  CREATE TABLE nonces (
    motebit_id text COLLATE "C" NOT NULL,
    signer     text COLLATE "C" NOT NULL,
    nonce      text COLLATE "C" NOT NULL,
    expires_at bigint NOT NULL,
    PRIMARY KEY (motebit_id, signer, nonce)
  );
  CREATE INDEX nonces_by_expiry ON nonces (expires_at);
  `,
  // 2: when each device was last seen and how far it has read the log, for the device list.
  `
  ALTER TABLE devices ADD COLUMN last_seen_at bigint;
  ALTER TABLE devices ADD COLUMN read_seq bigint NOT NULL DEFAULT 0;
  `,
  // 3: the membership log of each motebit (docs/keys.md), entries as checked JSON text.
  `
  CREATE TABLE membership (
    motebit_id text COLLATE "C" NOT NULL,
    seq        bigint NOT NULL,
    hash       text NOT NULL,
    entry      text NOT NULL,
    PRIMARY KEY (motebit_id, seq)
  );
  `,
  // 4: pairing rendezvous (docs/keys.md): short-lived, not scoped by motebit (the new device knows none yet).
  `
  CREATE TABLE pairings (
    id         text COLLATE "C" PRIMARY KEY,
    member     text NOT NULL,
    offer      text,
    reveal     text,
    expires_at bigint NOT NULL
  );
  `,
  // 5: snapshots (opaque sealed blobs in chunks), devices' signed acknowledgements, and compaction: a
  // compacted event keeps its row as a stub (body '', compacted 1), each writer's floor in device_heads.
  `
  ALTER TABLE events ADD COLUMN compacted smallint NOT NULL DEFAULT 0;
  ALTER TABLE device_heads ADD COLUMN floor bigint NOT NULL DEFAULT 0;
  CREATE TABLE snapshots (
    motebit_id     text COLLATE "C" NOT NULL,
    snapshot_id    text COLLATE "C" NOT NULL,
    device_id      text COLLATE "C" NOT NULL,
    size           bigint NOT NULL,
    sha256         text NOT NULL,
    chunk_bytes    bigint NOT NULL,
    chunks         bigint NOT NULL,
    covers         text NOT NULL,
    touched_at     bigint NOT NULL,
    completed_at   bigint,
    complete_order bigint,
    PRIMARY KEY (motebit_id, snapshot_id)
  );
  CREATE INDEX snapshots_by_order ON snapshots (motebit_id, complete_order);
  CREATE INDEX snapshots_unfinished ON snapshots (touched_at) WHERE completed_at IS NULL;
  CREATE TABLE snapshot_chunks (
    motebit_id  text COLLATE "C" NOT NULL,
    snapshot_id text COLLATE "C" NOT NULL,
    idx         bigint NOT NULL,
    data        bytea NOT NULL,
    PRIMARY KEY (motebit_id, snapshot_id, idx)
  );
  CREATE TABLE acks (
    motebit_id text COLLATE "C" NOT NULL,
    device_id  text COLLATE "C" NOT NULL,
    covers     text NOT NULL,
    at         bigint NOT NULL,
    sig        text NOT NULL,
    PRIMARY KEY (motebit_id, device_id)
  );
  `,
];
export const PG_SCHEMA_VERSION = MIGRATIONS.length;

// Any constant works: it only has to be the same for every relay instance.
const MIGRATION_LOCK = 0x6d6f7465; // "mote"

/** Brings the database to the current schema; returns the versions applied (empty when it already was). */
export async function migratePostgres(client: pg.ClientBase): Promise<number[]> {
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await client.query('CREATE TABLE IF NOT EXISTS relay_schema (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())');
    const { rows } = await client.query<{ version: number | null }>('SELECT max(version) AS version FROM relay_schema');
    const version = rows[0]?.version ?? 0;
    if (version > PG_SCHEMA_VERSION) throw new Error(`the database's schema (version ${version}) is newer than this relay's (${PG_SCHEMA_VERSION}): upgrade the relay`);
    const applied: number[] = [];
    for (let next = version + 1; next <= PG_SCHEMA_VERSION; next++) {
      await client.query(MIGRATIONS[next - 1] ?? '');
      await client.query('INSERT INTO relay_schema (version) VALUES ($1)', [next]);
      applied.push(next);
    }
    await client.query('COMMIT');
    return applied;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}
