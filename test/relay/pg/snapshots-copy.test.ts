// Moving a relay from SQLite to PostgreSQL carries its snapshots (docs/operations.md): complete ones with
// their chunks, unfinished uploads, acknowledgements and compacted stubs. PostgreSQL project only.
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { RelayClient } from '../../../main/sync/relay-client.ts';
import { copySqliteToPostgres } from '../../../relay/copy.ts';
import { startRelay } from '../../../relay/server.ts';
import { postgresDatabase } from '../../support/test-db.ts';
import { deviceOptions, harnesses } from '../../sync/support.ts';
import { CHUNK, blob, publish, push } from '../snapshot-support.ts';
import { RelayClient as TestRelayClient, enrolledMotebit, tempDir, type TestDevice } from '../support.ts';

const h = harnesses();
afterEach(() => h.cleanup());

describe('moving a relay from SQLite to PostgreSQL', () => {
  it('carries snapshots with their chunks, unfinished uploads, acknowledgements and compacted stubs', async () => {
    const dir = tempDir();
    h.defer(() => dir.cleanup());
    const file = join(dir.dir, 'relay.db');
    const old = await startRelay({ host: '127.0.0.1', port: 0, db: file, logLevel: 'silent' });
    const { devices } = await enrolledMotebit(new TestRelayClient(old), 2);
    const [da, db] = devices as [TestDevice, TestDevice];
    const [a, b] = [new RelayClient(deviceOptions(old, da)), new RelayClient(deviceOptions(old, db))];
    const events = await push(a, da, 3);
    const snapshot = blob(CHUNK + 7, { [da.deviceId]: 2 });
    await publish(a, snapshot);
    await a.postAck({ [da.deviceId]: 3 });
    await b.postAck({ [da.deviceId]: 2 });
    const unfinished = blob(CHUNK + 1, { [db.deviceId]: 1 });
    await b.beginSnapshot(unfinished.begin);
    await b.putSnapshotChunk(unfinished.begin.snapshot_id, 0, unfinished.chunks[0]!);
    const before = { latest: await a.latestSnapshot(), frontier: await a.frontier(1), page: await a.pull(0) };
    expect(before.frontier.floors).toEqual({ [da.deviceId]: 2 });
    await old.close();

    const url = await postgresDatabase(join(dir.dir, 'copy-target'));
    await copySqliteToPostgres(file, url);
    const fresh = await startRelay({ host: '127.0.0.1', port: 0, db: url, audience: old.audience, logLevel: 'silent' });
    h.defer(() => fresh.close());
    const moved = { url: fresh.url, audience: old.audience };
    const [a2, b2] = [new RelayClient(deviceOptions(moved, da)), new RelayClient(deviceOptions(moved, db))];
    expect({ latest: await b2.latestSnapshot(), frontier: await b2.frontier(1), page: await b2.pull(0) }).toEqual(before);
    expect(Buffer.concat([await b2.snapshotChunk(snapshot.begin.snapshot_id, 0), await b2.snapshotChunk(snapshot.begin.snapshot_id, 1)]).equals(snapshot.bytes)).toBe(true);
    expect(await b2.beginSnapshot(unfinished.begin)).toMatchObject({ complete: false, received: [0] });
    expect((await a2.push(events.slice(0, 1))).results).toEqual([{ event_id: events[0]!.event_id, status: 'duplicate', seq: 1 }]);
  });
});
