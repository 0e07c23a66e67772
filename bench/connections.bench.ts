// Connections: many idle, authenticated WebSockets on one relay (its own process, so its memory is its
// alone); memory per connection = (relay RSS, heap after a full GC, with the sockets open - before) / N.
// Devices are spread as a real relay would see them: 10 devices per motebit. Kernel socket buffers are
// not in RSS and not counted.
import { BENCH_LIMITS } from './ingest.bench.ts';

// Every socket comes from 127.0.0.1 and they authenticate in blocks: the per-address limits are lifted so
// the bench measures what a socket costs, not the limiter.
const ONE_ADDRESS_LIMITS = { wsMaxUnauthenticatedPerAddress: 100_000, wsMaxUnauthenticated: 100_000, wsAuthCapacity: 1_000_000, wsAuthPerSecond: 1_000_000 };
import { Child, LeanSocket, inParallel, newMotebit, openFileLimit, seedRelayDb, sleep, type BenchDevice, type BenchMotebit } from './lib.ts';
import { median, progress, scratch, seconds, type Figure } from './support.ts';

const DEVICES_PER_MOTEBIT = 10;
const CONNECTING_AT_ONCE = 64;
/** Blocks the sockets open in; each block is one sample of memory per connection. */
const STEPS = 4;
/** File descriptors the processes need besides the sockets. */
const FD_MARGIN = 300;

interface Memory {
  rss: number;
  heapUsed: number;
  external: number;
}

export async function connectionsBench(roundCount: number, options: { quick: boolean }): Promise<Figure[]> {
  const wanted = options.quick ? 2000 : 10_000;
  const limit = openFileLimit();
  let count = wanted;
  if (limit && limit.soft < wanted + FD_MARGIN) {
    count = Math.max(100, Math.floor((limit.soft - FD_MARGIN) / 100) * 100);
    progress(`connections: WARNING: open-file limit is ${limit.soft}; measuring ${count} connections, not ${wanted} (run 'ulimit -n ${wanted + 2 * FD_MARGIN}' first)`);
  }
  const dir = scratch('connections');
  try {
    const motebits: BenchMotebit[] = Array.from({ length: Math.ceil(count / DEVICES_PER_MOTEBIT) }, () => newMotebit(DEVICES_PER_MOTEBIT));
    const targets: { motebit: BenchMotebit; device: BenchDevice }[] = motebits.flatMap((motebit) => motebit.devices.map((device) => ({ motebit, device }))).slice(0, count);
    progress(`connections: ${count} idle authenticated WebSockets (${motebits.length} motebits x ${DEVICES_PER_MOTEBIT} devices) in ${STEPS} blocks, ${roundCount} round(s)`);

    const samples: { rss: number; heap: number }[] = [];
    const totals: { rss: number; connectSeconds: number }[] = [];
    for (let round = 0; round < roundCount; round++) {
      const dbPath = `${dir.path}/relay-${round}.db`;
      seedRelayDb(dbPath, motebits);
      const { child, ready } = await Child.start<{ url: string; audience: string }>('./relay-child.ts', { dbPath, limits: { ...BENCH_LIMITS, ...ONE_ADDRESS_LIMITS, maxConnections: count + 100 } });
      const sockets: LeanSocket[] = [];
      try {
        // Warm-up: the first connections pay for code and caches that are not per connection.
        const warm = await Promise.all(targets.slice(0, 50).map(({ motebit, device }) => LeanSocket.connect(ready.url, motebit.motebitId, device, ready.audience)));
        for (const socket of warm) socket.close();
        await sleep(200);
        // The sockets open in STEPS blocks; each block's memory growth / its sockets is one sample.
        let previous = await child.call<Memory>('memory');
        const first = previous;
        let connectSeconds = 0;
        for (let step = 0; step < STEPS; step++) {
          const block = targets.slice((step * count) / STEPS, ((step + 1) * count) / STEPS);
          const start = performance.now();
          await inParallel(block, CONNECTING_AT_ONCE, async ({ motebit, device }) => {
            sockets.push(await LeanSocket.connect(ready.url, motebit.motebitId, device, ready.audience));
          });
          connectSeconds += seconds(start);
          await sleep(300); // let the sockets go idle
          const now = await child.call<Memory>('memory');
          samples.push({ rss: (now.rss - previous.rss) / block.length, heap: (now.heapUsed + now.external - previous.heapUsed - previous.external) / block.length });
          previous = now;
          progress(`connections: ${sockets.length}/${count} open, relay RSS +${((now.rss - first.rss) / 1024 / 1024).toFixed(0)} MB`);
        }
        const open = await child.call<number>('connections');
        if (open !== count) throw new Error(`the relay holds ${open} authenticated connections, expected ${count}`);
        totals.push({ rss: (previous.rss - first.rss) / count, connectSeconds });
      } finally {
        for (const socket of sockets) socket.close();
        await child.stop(15_000);
      }
    }
    const rss = median(samples.map((r) => r.rss));
    const heap = median(samples.map((r) => r.heap));
    const connectSeconds = median(totals.map((r) => r.connectSeconds));
    return [
      { key: 'bytes_per_idle_connection', label: `relay RSS per idle authenticated WebSocket (${count})`, value: rss, unit: 'bytes', note: `median of ${samples.length} blocks of ${count / STEPS}; overall ${(median(totals.map((t) => t.rss)) / 1024).toFixed(1)} KB; goal <= 30 KB` },
      { key: 'heap_bytes_per_idle_connection', label: 'relay JS heap + buffers per idle WebSocket', value: heap, unit: 'bytes', note: 'after a full GC' },
      { key: 'connections_open_per_s', label: `authenticated WebSockets opened per second`, value: count / connectSeconds, unit: 'conn/s', note: `${CONNECTING_AT_ONCE} connecting at once; each spends a token nonce (one fsync)` },
    ];
  } finally {
    dir.remove();
  }
}
