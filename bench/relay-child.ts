// A relay in its own process, for the benchmarks: started on 127.0.0.1 port 0 over a given SQLite file
// (dbPath) or any --db (db: a file or a postgres:// URL, so several instances can share one database),
// with given limits and, for instances behind one name, a shared audience; answers 'memory' (after a full
// GC), 'connections' and 'cpu' (process.cpuUsage: user + system µs), and closes on 'stop'.
import { startRelay, type RelayOptions } from '../relay/server.ts';
import { childFailed, childInit, childReady, processCpuMicros, serveChild, settledMemory } from './lib.ts';

const init = childInit<{ dbPath?: string; db?: string; audience?: string; limits?: Partial<RelayOptions> }>();
try {
  const db = init.db ?? init.dbPath;
  if (!db) throw new Error('relay-child needs db or dbPath');
  const relay = await startRelay({ ...init.limits, host: '127.0.0.1', port: 0, db, ...(init.audience ? { audience: init.audience } : {}), logLevel: 'silent' });
  serveChild(
    {
      memory: () => settledMemory(),
      connections: () => relay.stats().connections.filter((c) => c.deviceId !== null).length,
      cpu: () => processCpuMicros(),
    },
    () => relay.close(),
  );
  childReady({ url: relay.url, audience: relay.audience, pid: process.pid });
} catch (error) {
  childFailed(error);
}
