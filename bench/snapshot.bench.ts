// Snapshots and compaction (issue 12): how long a new device takes to become useful from a history of N
// encrypted events (100k; 1M with --full), starting from a snapshot beside pulling the whole history,
// interleaved round by round (A B A B); what the snapshot costs to make; the relay's stored bytes before
// and after compaction; and the making device's database before and after pruning.
//
// Data: the sync section's generator (one writer's hash chain, 20,000 entities rewritten, 200-character
// payloads, sealed per batch, AES-256-GCM encrypted) straight into the relay's SQLite file. A maker device
// (bench/sync-child.ts, mode snapshot-make) pulls all of it through the real engine, makes the snapshot
// and uploads it; joiners are fresh stores of the reader device (snapshot-join, or engine for the full
// history). Compaction is measured last: once the writer acknowledges too, the relay drops what the
// snapshot covers, and the full-history join is no longer possible.
import { randomBytes } from 'node:crypto';
import { statSync } from 'node:fs';
import Database from 'better-sqlite3';
import { RelayClient } from '../main/sync/relay-client.ts';
import { BENCH_LIMITS } from './ingest.bench.ts';
import { Child, newMotebit, seedRelayDb } from './lib.ts';
import { childInitFor, generate, runChild, type Dataset } from './sync.bench.ts';
import type { SyncChildResult } from './sync-child.ts';
import { progress, scratch, spread, type Figure } from './support.ts';

const MB = 1024 * 1024;

export interface SnapshotBenchOptions {
  count: number;
  /** Rounds of the joins (each: one from the snapshot, one of the whole history). */
  rounds: number;
  measured: string;
}

function storedBodyBytes(dbPath: string, motebitId: string): number {
  const db = new Database(dbPath, { readonly: true });
  try {
    return (db.prepare('SELECT coalesce(sum(length(body)), 0) AS n FROM events WHERE motebit_id = ?').get(motebitId) as { n: number }).n;
  } finally {
    db.close();
  }
}

export async function snapshotBench(options: SnapshotBenchOptions): Promise<Figure[]> {
  const dir = scratch('snapshot');
  const relayDbPath = `${dir.path}/relay.db`;
  const name = options.count >= 1e6 ? `${options.count / 1e6}M` : `${options.count / 1000}k`;
  try {
    const dataset: Dataset = { motebit: newMotebit(2), bodyKey: randomBytes(32), count: options.count };
    seedRelayDb(relayDbPath, [dataset.motebit]);
    {
      const db = new Database(relayDbPath);
      db.pragma('journal_mode = OFF');
      db.pragma('synchronous = OFF');
      db.pragma('cache_size = -262144');
      try {
        progress(`snapshots: generating ${options.count} sealed, encrypted events into the relay's database`);
        generate(db, dataset);
        db.pragma('journal_mode = WAL');
      } finally {
        db.close();
      }
    }
    const { child: relay, ready } = await Child.start<{ url: string }>('./relay-child.ts', { dbPath: relayDbPath, limits: BENCH_LIMITS });
    const target = { url: ready.url, dbPath: relayDbPath };
    let run = 0;
    const device = (mode: 'engine' | 'snapshot-make' | 'snapshot-join') => childInitFor(dataset, mode, `${dir.path}/device-${run++}.db`, target, 'auto');
    try {
      progress(`snapshots: a device pulls the ${name} history, makes a snapshot, uploads it and prunes its log`);
      const maker = await runChild(device('snapshot-make'), options.count);
      const made = maker.snapshot!;
      progress(`snapshots: ${(made.bytes / MB).toFixed(1)} MB, ${made.kept} events kept of ${made.covered}, made and uploaded in ${made.makeSeconds.toFixed(1)} s`);

      const withSnapshot: SyncChildResult[] = [];
      const fullHistory: SyncChildResult[] = [];
      for (let round = 0; round < options.rounds; round++) {
        for (const [mode, results] of [['snapshot-join', withSnapshot], ['engine', fullHistory]] as const) {
          const result = await runChild(device(mode), options.count);
          results.push(result);
          progress(`join ${name}, ${mode === 'engine' ? 'whole history' : 'from the snapshot'}: round ${round + 1}/${options.rounds} ${result.seconds.toFixed(2)} s, peak RSS ${(result.maxRssBytes / MB).toFixed(0)} MB`);
        }
      }

      // Compaction: the writer acknowledges what it wrote; every live device has then acknowledged the snapshot.
      const before = storedBodyBytes(relayDbPath, dataset.motebit.motebitId);
      const writer = dataset.motebit.devices[0]!;
      const client = new RelayClient({ relayUrl: ready.url, motebitId: dataset.motebit.motebitId, deviceId: writer.deviceId, deviceKey: writer.key });
      await client.postAck({ [writer.deviceId]: options.count });
      const frontier = await client.frontier();
      const after = storedBodyBytes(relayDbPath, dataset.motebit.motebitId);
      if (frontier.floors?.[writer.deviceId] !== options.count) throw new Error(`the relay did not compact (floors ${JSON.stringify(frontier.floors ?? {})})`);
      const relayFile = statSync(relayDbPath).size;

      const joined = spread(withSnapshot.map((r) => r.seconds));
      const cpu = (results: SyncChildResult[]) => spread(results.map((r) => r.cpuSeconds ?? Number.NaN)).median.toFixed(2);
      const full = spread(fullHistory.map((r) => r.seconds));
      const speedup = spread(fullHistory.map((r, i) => r.seconds / withSnapshot[i]!.seconds));
      const key = name.toLowerCase();
      return [
        { key: `snapshot_join_${key}_s`, label: `new device useful, ${name} history, from a snapshot`, value: joined.median, unit: 's', note: `${options.measured}aim < 5 s at 1M; download ${(made.bytes / MB).toFixed(1)} MB, open, verify, adopt ${made.kept} events; device CPU ${cpu(withSnapshot)} s (median); ${joined.note}` },
        { key: `snapshot_full_join_${key}_s`, label: `new device useful, ${name} history, whole history`, value: full.median, unit: 's', note: `interleaved with the line above; device CPU ${cpu(fullHistory)} s (median); ${full.note}` },
        { key: `snapshot_join_speedup_${key}`, label: `whole history / from a snapshot, ${name}`, value: speedup.median, unit: 'ratio', note: `per-round ratios, ${speedup.note}` },
        { key: `snapshot_bytes_${key}`, label: `snapshot size, ${name} history`, value: made.bytes / MB, unit: 'MB', note: `${made.kept} of ${made.covered} events kept (20,000 entities); made and uploaded in ${made.makeSeconds.toFixed(1)} s` },
        { key: `relay_body_mb_before_compaction_${key}`, label: `relay stored bodies before compaction, ${name}`, value: before / MB, unit: 'MB', note: 'sum of stored event bodies (the stored_bytes quota)' },
        { key: `relay_body_mb_after_compaction_${key}`, label: `relay stored bodies after compaction, ${name}`, value: after / MB, unit: 'MB', note: `every live device acknowledged the snapshot; each compacted event keeps a body-less row (seq, ids); relay file ${(relayFile / MB).toFixed(0)} MB before VACUUM` },
        { key: `device_db_mb_before_prune_${key}`, label: `device database before pruning, ${name}`, value: made.databaseBefore / MB, unit: 'MB', note: 'the maker, after pulling everything' },
        { key: `device_db_mb_after_prune_${key}`, label: `device database after pruning, ${name}`, value: made.databaseAfter / MB, unit: 'MB', note: 'pruned below its snapshot and vacuumed' },
      ];
    } finally {
      await relay.stop(30_000);
    }
  } finally {
    dir.remove();
  }
}
