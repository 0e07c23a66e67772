// Fan-out: one writer, RECEIVERS WebSocket receivers, 1 KB events (bench/fanout-workload.ts), on our relay
// and on peers beside it, interleaved round by round (A B C D E F A B C D E F ...) so a shared machine's
// drift falls on all alike:
//   ours                 relay (SQLite WAL, synchronous=FULL; acks after commit and fan-out)
//   Hocuspocus           in memory, its defaults (no extension: nothing stored)
//   Hocuspocus + SQLite  our durability contract: each update committed (fsync) before it is applied,
//                        broadcast and acked
//   y-websocket          its server with y-leveldb persistence, LevelDB defaults (no fsync; write not awaited)
//   y-websocket, sync    the same with LevelDB sync=true (fsync per write; still not awaited)
//   raw ws               a server that forwards each buffer to every other socket: the ceiling
// Every server runs in its own process; all clients in this one. For each: delivered events/s, push->receipt
// p50 (and p99 from at least P99_MIN_SAMPLES receipts), server CPU µs per delivered event (the server
// process's process.cpuUsage over the round), medians of the rounds with their range.
import { availableParallelism, cpus, loadavg } from 'node:os';
import { measureCpu } from './cpu-window.ts';
import { fanoutFigures, type Contender, type FanoutSample } from './fanout-figures.ts';
import { hocuspocusSystem } from './fanout-hocuspocus.ts';
import { ourSystem } from './fanout-ours.ts';
import { rawWsSystem } from './fanout-rawws.ts';
import { BATCH, RECEIVERS, WINDOW, deliveriesPerRound, fanoutParams, runRound } from './fanout-workload.ts';
import { ywebsocketSystem } from './fanout-ywebsocket.ts';
import { addNote, interleaved, progress, scratch, type Figure } from './support.ts';

async function startContenders(dir: string): Promise<Contender[]> {
  const started: Contender[] = [];
  const start = async (make: () => Promise<Contender>): Promise<void> => {
    started.push(await make());
  };
  try {
    await start(async () => ({ key: 'fanout', label: 'our relay', store: 'sqlite', ...(await ourSystem(dir)) }));
    await start(async () => ({ key: 'peer_fanout', label: 'Hocuspocus, in memory', store: 'server', ...(await hocuspocusSystem('Hocuspocus')) }));
    await start(async () => ({
      key: 'hocuspocus_durable',
      label: 'Hocuspocus + SQLite before ack',
      store: 'server',
      ...(await hocuspocusSystem('Hocuspocus + SQLite', { sqlitePath: `${dir}/hocuspocus.db` })),
    }));
    await start(async () => ({ key: 'ywebsocket', label: 'y-websocket + y-leveldb', store: 'server', ...(await ywebsocketSystem('y-websocket', { dir: `${dir}/leveldb`, sync: false })) }));
    await start(async () => ({
      key: 'ywebsocket_sync',
      label: 'y-websocket + y-leveldb, sync',
      store: 'server',
      ...(await ywebsocketSystem('y-websocket, sync', { dir: `${dir}/leveldb-sync`, sync: true })),
    }));
    await start(async () => ({ key: 'raw_ws', label: 'raw ws broadcast (ceiling)', store: 'server', ...(await rawWsSystem('raw ws')) }));
    return started;
  } catch (error) {
    await Promise.allSettled(started.map((c) => c.system.close()));
    throw error;
  }
}

function describeRun(): void {
  addNote(
    `fan-out: ${availableParallelism()} cores (${cpus()[0]?.model.trim() ?? 'unknown CPU'}), shared (load average ${loadavg()[0]!.toFixed(2)} when the section began); ` +
      'every server, and all 600 client sockets in the bench process, share them: read the ranges, not only the medians',
  );
  addNote(
    'fan-out "ack" (what the writer waits for, at most ' +
      `${WINDOW} unacknowledged pushes of ${BATCH}): ours = 'ack' after the push is committed (SQLite WAL, synchronous=FULL: fsynced) and sent to every receiver; ` +
      'Hocuspocus = SyncStatus, sent once the update is applied in memory and broadcast, nothing stored; ' +
      'Hocuspocus + SQLite = the same SyncStatus, but a beforeHandleMessage hook commits the update to SQLite (WAL, synchronous=FULL) before Hocuspocus applies, broadcasts and acks it (our contract); ' +
      "y-websocket = none in its protocol: the writer counts the server's broadcast of its update back to it, sent once the update is applied in memory, before y-leveldb writes it; " +
      "raw ws = none: ws's send callback on the writer, so the window never binds",
  );
  addNote(
    "fan-out, y-leveldb: puts with LevelDB's default WriteOptions (sync=false): written to the OS, not fsynced (a process crash loses nothing, a power cut can lose the latest updates); " +
      'y-leveldb has no sync option; "sync" passes LevelDB\'s WriteOptions.sync=true through its level adapter option (fsync per write). Either way y-websocket never awaits the write: ' +
      'an acknowledged (echoed, delivered) update may not be stored yet. Each round waits for the queue to drain inside the CPU window, outside the delivery figures',
  );
  addNote('fan-out CPU per delivered event: the server process (process.cpuUsage, all its threads) over the round, divided by events x receivers; the bench clients not counted');
}

export async function fanoutBench(roundCount: number, options: { quick: boolean }): Promise<Figure[]> {
  const params = fanoutParams(options.quick);
  const dir = scratch('fanout');
  try {
    describeRun();
    progress(`fan-out: 1 writer -> ${RECEIVERS} receivers, ${params.latencyPushes} single pushes + ${params.throughputEvents} events in pushes of ${BATCH}, 6 systems interleaved`);
    const contenders = await startContenders(dir.path);
    try {
      // One unmeasured warm-up round each (JIT, first document load).
      for (const c of contenders) {
        await runRound(c.system, { latencyPushes: 20, throughputEvents: 200 });
        await c.settle?.();
      }
      progress('fan-out: warm-up done');
      const byKey = new Map(contenders.map((c) => [c.key, c]));
      const results = await interleaved(roundCount, 'fan-out', [...byKey.keys()], async (key): Promise<FanoutSample> => {
        const c = byKey.get(key)!;
        await c.system.refresh?.();
        const { result, cpu } = await measureCpu({ relay: c.cpuMicros, pg: () => 0 }, async () => {
          const round = await runRound(c.system, params);
          return { ...round, settleMs: c.settle ? await c.settle() : 0 };
        });
        return { ...result, cpu, deliveries: deliveriesPerRound(params) };
      });
      return fanoutFigures(contenders, results);
    } finally {
      await Promise.allSettled(contenders.map((c) => c.system.close()));
    }
  } finally {
    dir.remove();
  }
}
