// Registers bench motebits and their devices in a relay database before its relays start: what enrolment
// writes, without thousands of signed requests. SQLite files go through lib.ts's seedRelayDb; PostgreSQL
// databases get the relay's own schema (its migrations) and the same rows in one transaction.
import pg from 'pg';
import { newLogEpoch } from '../shared/ids.ts';
import { isPostgresUrl } from '../relay/pg-store.ts';
import { migratePostgres } from '../relay/pg-schema.ts';
import { seedRelayDb, type BenchMotebit } from './lib.ts';

async function seedPostgres(url: string, motebits: readonly BenchMotebit[]): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await migratePostgres(client);
    const now = Date.now();
    await client.query('BEGIN');
    for (const m of motebits) {
      await client.query('INSERT INTO motebits (motebit_id, identity_key, epoch, head, created_at) VALUES ($1, $2, $3, 0, $4)', [m.motebitId, m.identity.publicKey, newLogEpoch(), now]);
      await client.query(
        'INSERT INTO devices (motebit_id, device_id, key, cert, name, enrolled_at, revoked_at) SELECT $1, d, k, c, NULL, $5, NULL FROM unnest($2::text[], $3::bytea[], $4::text[]) AS t(d, k, c)',
        [m.motebitId, m.devices.map((d) => d.deviceId), m.devices.map((d) => d.key.publicKey), m.devices.map((d) => d.cert), now],
      );
    }
    await client.query('COMMIT');
  } finally {
    await client.end();
  }
}

/** Seeds `db` (a SQLite file path or a postgres:// URL of an existing database). */
export async function seedDb(db: string, motebits: readonly BenchMotebit[]): Promise<void> {
  if (isPostgresUrl(db)) await seedPostgres(db, motebits);
  else seedRelayDb(db, motebits);
}
