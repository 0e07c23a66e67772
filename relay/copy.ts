// `motebit-relay copy --from ./relay.db --to postgres://…`: moves a relay from SQLite to PostgreSQL as it
// is — same logs (compacted stubs included), seqs, epochs, devices (last seen included), membership logs,
// revocations, snapshots with their chunks, acknowledgements and unexpired nonces — so devices carry on without noticing (their cursors and epochs still hold, and no token can be
// replayed across the move).
// The source is read in one read transaction (a consistent snapshot even if a relay still runs on it);
// the destination is written in one transaction and must be empty, so a failed copy leaves nothing behind.
import Database from 'better-sqlite3';
import pg from 'pg';
import { migrateSqlite } from './sqlite-store.ts';
import { migratePostgres } from './pg-schema.ts';
import { describePostgres } from './pg-store.ts';

export interface CopyProgress {
  table: string;
  done: number;
  total: number;
}

export interface CopySummary {
  motebits: number;
  devices: number;
  membershipEntries: number;
  events: number;
  nonces: number;
}

/** Tables in the order their rows may be inserted, with their columns (the same names on both stores). */
const TABLES = [
  { name: 'motebits', key: 'motebit_id', columns: ['motebit_id', 'identity_key', 'epoch', 'head', 'stored_events', 'stored_bytes', 'created_at'], types: ['text', 'bytea', 'text', 'bigint', 'bigint', 'bigint', 'bigint'] },
  { name: 'devices', key: 'motebit_id, device_id', columns: ['motebit_id', 'device_id', 'key', 'cert', 'name', 'enrolled_at', 'revoked_at', 'last_seen_at', 'read_seq'], types: ['text', 'text', 'bytea', 'text', 'text', 'bigint', 'bigint', 'bigint', 'bigint'] },
  { name: 'membership', key: 'motebit_id, seq', columns: ['motebit_id', 'seq', 'hash', 'entry'], types: ['text', 'bigint', 'text', 'text'] },
  { name: 'device_heads', key: 'motebit_id, device_id', columns: ['motebit_id', 'device_id', 'seq', 'floor'], types: ['text', 'text', 'bigint', 'bigint'] },
  { name: 'events', key: 'motebit_id, seq', columns: ['motebit_id', 'seq', 'event_id', 'device_id', 'device_seq', 'key_id', 'body', 'compacted'], types: ['text', 'bigint', 'text', 'text', 'bigint', 'text', 'text', 'smallint'] },
  {
    name: 'snapshots',
    key: 'motebit_id, snapshot_id',
    columns: ['motebit_id', 'snapshot_id', 'device_id', 'size', 'sha256', 'chunk_bytes', 'chunks', 'covers', 'touched_at', 'completed_at', 'complete_order'],
    types: ['text', 'text', 'text', 'bigint', 'text', 'bigint', 'bigint', 'text', 'bigint', 'bigint', 'bigint'],
  },
  // Chunks are up to 1 MiB each: a few per page.
  { name: 'snapshot_chunks', key: 'motebit_id, snapshot_id, idx', columns: ['motebit_id', 'snapshot_id', 'idx', 'data'], types: ['text', 'text', 'bigint', 'bytea'], pageRows: 8 },
  { name: 'acks', key: 'motebit_id, device_id', columns: ['motebit_id', 'device_id', 'covers', 'at', 'sig'], types: ['text', 'text', 'text', 'bigint', 'text'] },
  { name: 'nonces', key: 'motebit_id, signer, nonce', columns: ['motebit_id', 'signer', 'nonce', 'expires_at'], types: ['text', 'text', 'text', 'bigint'] },
] as const;

const PAGE_ROWS = 2000;

export async function copySqliteToPostgres(from: string, to: string, onProgress: (progress: CopyProgress) => void = () => undefined, nowSeconds = Math.floor(Date.now() / 1000)): Promise<CopySummary> {
  const source = new Database(from, { readonly: false, fileMustExist: true });
  try {
    // Bring an older relay file to the current schema first (the copy reads current columns).
    migrateSqlite(source);
  } catch (error) {
    source.close();
    throw error;
  }
  const client = new pg.Client({ connectionString: to, application_name: 'motebit-relay-copy' });
  try {
    await client.connect();
  } catch (error) {
    source.close();
    throw new Error(`could not connect to PostgreSQL at ${describePostgres(to)}: ${error instanceof Error ? error.message : String(error)}`);
  }
  const summary: CopySummary = { motebits: 0, devices: 0, membershipEntries: 0, events: 0, nonces: 0 };
  try {
    await migratePostgres(client);
    source.exec('BEGIN'); // one snapshot of the source for the whole copy
    await client.query('BEGIN');
    const { rows } = await client.query<{ n: string }>('SELECT count(*) AS n FROM motebits');
    if (Number(rows[0]?.n ?? 0) > 0) throw new Error(`the destination ${describePostgres(to)} already holds motebits: copy only into an empty database`);
    for (const table of TABLES) {
      const where = table.name === 'nonces' ? `WHERE expires_at >= ${nowSeconds}` : '';
      const total = (source.prepare(`SELECT count(*) AS n FROM ${table.name} ${where}`).get() as { n: number }).n;
      const select = source.prepare(`SELECT ${table.columns.join(', ')} FROM ${table.name} ${where} ORDER BY ${table.key}`);
      const insert = `INSERT INTO ${table.name} (${table.columns.join(', ')}) SELECT * FROM unnest(${table.types.map((type, i) => `$${i + 1}::${type}[]`).join(', ')})`;
      const write = async (page: Record<string, unknown>[]): Promise<void> => {
        await client.query(
          insert,
          table.columns.map((column) => page.map((row) => row[column] ?? null)),
        );
      };
      let done = 0;
      onProgress({ table: table.name, done, total });
      let page: Record<string, unknown>[] = [];
      // One pass over the table (no OFFSET: that would rescan it for every page).
      for (const row of select.iterate() as Iterable<Record<string, unknown>>) {
        page.push(row);
        if (page.length < ('pageRows' in table ? table.pageRows : PAGE_ROWS)) continue;
        await write(page);
        done += page.length;
        page = [];
        onProgress({ table: table.name, done, total });
      }
      if (page.length > 0) {
        await write(page);
        done += page.length;
        onProgress({ table: table.name, done, total });
      }
      if (table.name === 'motebits') summary.motebits = done;
      if (table.name === 'devices') summary.devices = done;
      if (table.name === 'membership') summary.membershipEntries = done;
      if (table.name === 'events') summary.events = done;
      if (table.name === 'nonces') summary.nonces = done;
    }
    await client.query('COMMIT');
    return summary;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    if (source.inTransaction) source.exec('ROLLBACK');
    source.close();
    await client.end().catch(() => undefined);
  }
}
