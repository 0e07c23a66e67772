// PostgreSQL only: the operator's commands, run as the real CLI. `migrate` applies the versioned schema
// once and refuses a newer one; `copy` moves a SQLite relay to PostgreSQL as it is, so devices carry on
// (same seqs, epoch, devices, revocations, spent nonces); MOTEBIT_RELAY_DB stands in for --db.
import { PG_SCHEMA_VERSION } from '../../../relay/pg-schema.ts';
import { SQLITE_SCHEMA_VERSION } from '../../../relay/sqlite-store.ts';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startRelay } from '../../../relay/server.ts';
import { postgresDatabase } from '../../support/test-db.ts';
import { RelayClient, enrolledMotebit, tempDir } from '../support.ts';
import { randomBytes } from 'node:crypto';
import { genesisEntry, memberFromSecret } from '../../../shared/membership/author.ts';
import { verifyLog } from '../../../shared/membership/log.ts';
import { mintToken } from '../../../shared/token.ts';

const BIN = join(import.meta.dirname, '../../../relay/bin.ts');
const AUDIENCE = 'http://relay.test';
let dir: ReturnType<typeof tempDir>;

beforeEach(() => {
  dir = tempDir();
});
afterEach(() => dir.cleanup());

function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: 'pipe', env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

async function sql<T extends pg.QueryResultRow>(url: string, text: string, values: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(text, values)).rows;
  } finally {
    await client.end();
  }
}

describe('motebit-relay migrate', () => {
  it('applies the schema once, says so in words, and refuses a database a newer relay migrated', async () => {
    const url = await postgresDatabase(join(dir.dir, 'migrate'));
    const first = await cli(['migrate', '--db', url]);
    const versions = (count: number) => Array.from({ length: count }, (_, i) => i + 1);
    expect(first).toMatchObject({ code: 0, stdout: expect.stringMatching(new RegExp(`applied schema versions ${versions(PG_SCHEMA_VERSION).join(', ')}\n$`)) as unknown });
    expect(first.stdout).not.toContain('postgres@'); // a URL's user (or password) is not echoed back
    const again = await cli(['migrate'], { MOTEBIT_RELAY_DB: url });
    expect(again).toMatchObject({ code: 0, stdout: expect.stringMatching(/schema already up to date\n$/) as unknown });
    expect(await sql(url, 'SELECT version FROM relay_schema ORDER BY version')).toEqual(versions(PG_SCHEMA_VERSION).map((version) => ({ version })));

    await sql(url, 'INSERT INTO relay_schema (version) VALUES (99)');
    const newer = await cli(['migrate', '--db', url]);
    expect(newer.code).toBe(1);
    expect(newer.stderr).toContain('newer than this relay');
    // And a relay will not serve it either.
    const serve = await cli(['--port', '0', '--db', url]);
    expect(serve.code).toBe(1);
    expect(serve.stderr).toContain('newer than this relay');

    const sqlite = await cli(['migrate', '--db', join(dir.dir, 'relay.db')]);
    expect(sqlite).toMatchObject({ code: 0, stdout: expect.stringMatching(new RegExp(`applied schema versions ${versions(SQLITE_SCHEMA_VERSION).join(', ')}\n$`)) as unknown });
  });

  it('says what is wrong, in words, for a database it cannot reach or arguments it cannot use', async () => {
    const unreachable = await cli(['migrate', '--db', 'postgres://someone:hunter2@127.0.0.1:1/nothing']);
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toContain('could not connect to PostgreSQL at 127.0.0.1:1/nothing');
    expect(unreachable.stderr).not.toContain('hunter2');
    const missing = await cli(['migrate'], { MOTEBIT_RELAY_DB: '' });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('--db is required');
    const backwards = await cli(['copy', '--from', 'postgres://x@127.0.0.1/a', '--to', './relay.db']);
    expect(backwards.code).toBe(1);
    expect(backwards.stderr).toContain('copy moves a relay from a SQLite file to PostgreSQL');
  });
});

describe('motebit-relay copy', () => {
  it('moves a SQLite relay to PostgreSQL as it is: devices carry on, revocations and spent tokens hold', async () => {
    const file = join(dir.dir, 'relay.db');
    const old = await startRelay({ host: '127.0.0.1', port: 0, db: file, audience: AUDIENCE, logLevel: 'silent' });
    const before = new RelayClient({ url: old.url, audience: AUDIENCE });
    const { motebit, devices } = await enrolledMotebit(before, 3);
    const [a, b, gone] = devices as [(typeof devices)[0], (typeof devices)[0], (typeof devices)[0]];
    for (const [device, count] of [[a, 700], [b, 300]] as const) {
      for (let left = count; left > 0; left -= 250) expect((await before.push(device, device.events(Math.min(250, left)))).body.stored).toBe(Math.min(250, left));
    }
    await before.revoke(motebit, gone.deviceId);
    // A request whose token was spent on the old relay: replaying it on the new one must be refused.
    const spentRequest = before.pushRequest(a, a.events(1));
    const spentToken = a.token(AUDIENCE, spentRequest);
    expect((await before.send(spentRequest, spentToken)).status).toBe(200);
    // A motebit with a membership log (docs/keys.md): its log and its members' rows move too.
    const founder = memberFromSecret('device', randomBytes(32), 'founder');
    const { entry: genesis } = await genesisEntry(founder, memberFromSecret('recovery', randomBytes(32), null).key, Date.now());
    const founded = verifyLog([genesis]).motebitId;
    expect((await before.send({ method: 'POST', path: `/v1/motebits/${founded}/membership`, body: JSON.stringify({ entries: [genesis] }) }, undefined)).status).toBe(200);
    const readLog = { method: 'GET', path: `/v1/motebits/${founded}/membership` };
    const founderToken = () => mintToken({ motebitId: founded, signer: founder.key.id, key: founder.signing, audience: AUDIENCE, request: readLog });
    const oldLog = await before.pullAll(a);
    const oldFrontier = await before.send<{ epoch: string; head: number }>({ method: 'GET', path: `/v1/motebits/${motebit.motebitId}/frontier` }, a.token(AUDIENCE, { method: 'GET', path: `/v1/motebits/${motebit.motebitId}/frontier` }));
    await old.close();

    const url = await postgresDatabase(join(dir.dir, 'copy-target'));
    const copied = await cli(['copy', '--from', file, '--to', url]);
    expect(copied.code).toBe(0);
    expect(copied.stdout).toContain('copied 2 motebits, 5 devices, 1 membership entries, 1001 events');
    expect(copied.stderr).toContain('copying events: 1001/1001');

    const fresh = await startRelay({ host: '127.0.0.1', port: 0, db: url, audience: AUDIENCE, logLevel: 'silent' });
    try {
      const after = new RelayClient({ url: fresh.url, audience: AUDIENCE });
      expect(await after.pullAll(b)).toEqual(oldLog);
      const frontier = await after.send<{ epoch: string; head: number }>({ method: 'GET', path: `/v1/motebits/${motebit.motebitId}/frontier` }, b.token(AUDIENCE, { method: 'GET', path: `/v1/motebits/${motebit.motebitId}/frontier` }));
      expect(frontier.body).toEqual(oldFrontier.body);
      expect((await after.send(spentRequest, spentToken)).body).toMatchObject({ error: { code: 'replayed_nonce' } });
      expect((await after.pull(gone, 0)).status).toBe(403);
      // Writers continue where they were: a's next device_seq is 702, stored at seq 1002.
      expect((await after.push(a, a.events(1))).body).toMatchObject({ stored: 1, head: 1002, epoch: oldFrontier.body.epoch });
      expect((await after.send<{ entries: unknown[] }>(readLog, founderToken())).body.entries).toEqual([genesis]);
    } finally {
      await fresh.close();
    }

    // Into a database that holds motebits already: refused, and nothing changes.
    const again = await cli(['copy', '--from', file, '--to', url]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('already holds motebits');
    expect(await sql(url, 'SELECT count(*)::int AS n FROM events')).toEqual([{ n: 1002 }]);
  });
});
