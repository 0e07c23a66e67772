// A relay in its own process, for the benchmarks: started on 127.0.0.1 port 0 over a given SQLite file
// with given limits; answers 'memory' (after a full GC) and 'connections', and closes on 'stop'.
import { startRelay, type RelayOptions } from '../relay/server.ts';
import { childFailed, childInit, childReady, serveChild, settledMemory } from './lib.ts';

const init = childInit<{ dbPath: string; limits?: Partial<RelayOptions> }>();
try {
  const relay = await startRelay({ ...init.limits, host: '127.0.0.1', port: 0, db: init.dbPath, logLevel: 'silent' });
  serveChild(
    {
      memory: () => settledMemory(),
      connections: () => relay.stats().connections.filter((c) => c.deviceId !== null).length,
    },
    () => relay.close(),
  );
  childReady({ url: relay.url, audience: relay.audience, pid: process.pid });
} catch (error) {
  childFailed(error);
}
