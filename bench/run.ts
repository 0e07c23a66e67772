// npm run bench [-- --json] [-- --rounds N] [-- --quick] [-- --full] [-- --only store,crypto,ingest,fanout,many,push,sync,snapshot,connections,pg,cli]
// Runs every benchmark on this machine (127.0.0.1 only; relays, the peer relay and syncing devices in
// child processes that are always stopped), prints progress on stderr, a table on stdout and, with
// --json, one JSON object of all figures on the last line. Notes a reader needs (the machine, skipped
// sections) are printed under the table.
//   --quick  smaller workloads (a smoke run, figures not comparable)
//   --full   also generates and measures the 1M-event initial sync and the 1M join from a snapshot (without
//            it there is no 1M figure)
// Sections: fanout = our relay beside Hocuspocus (in memory; with SQLite before ack), y-websocket + y-leveldb
// (default; sync) and a raw ws broadcast, interleaved; many = 200 devices pushing at once, default limits;
// push = a device's backlog over WebSocket, batches in flight against one at a time, interleaved;
// cli = scripts/cli-timing.ts's median of `motebit-sync put`, when that script exists.
import { spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { printNotes, printTable, progress, type Figure } from './support.ts';
import { storeBench } from './store.bench.ts';
import { connectionsBench } from './connections.bench.ts';
import { cliBench } from './cli.bench.ts';
import { cryptoBench } from './crypto.bench.ts';
import { fanoutBench } from './fanout.bench.ts';
import { ingestBench } from './ingest.bench.ts';
import { manyWritersBench } from './many-writers.bench.ts';
import { pgBench } from './pg.bench.ts';
import { pushBench } from './push.bench.ts';
import { openFileLimit } from './lib.ts';
import { syncBench } from './sync.bench.ts';
import { snapshotBench } from './snapshot.bench.ts';

const SECTIONS = ['store', 'crypto', 'ingest', 'fanout', 'many', 'push', 'sync', 'snapshot', 'connections', 'pg', 'cli'] as const;
type Section = (typeof SECTIONS)[number];
const USAGE = `usage: npm run bench -- [--json] [--rounds N] [--quick] [--full] [--only ${SECTIONS.join(',')}]`;

const Options = z.object({
  json: z.boolean(),
  rounds: z.coerce.number().int().min(1).max(15),
  quick: z.boolean(),
  full: z.boolean(),
  only: z
    .string()
    .transform((value) => value.split(',').filter(Boolean))
    .pipe(z.array(z.enum(SECTIONS)).min(1)),
});

const { values } = parseArgs({
  options: {
    json: { type: 'boolean', default: false },
    rounds: { type: 'string', default: '3' },
    quick: { type: 'boolean', default: false },
    full: { type: 'boolean', default: false },
    only: { type: 'string', default: SECTIONS.join(',') },
  },
});
const parsed = Options.safeParse(values);
if (!parsed.success) {
  console.error(`bench: ${z.prettifyError(parsed.error)}\n${USAGE}`);
  process.exit(2);
}
const { json, rounds, quick, full, only } = parsed.data;
const selected = new Set<Section>(only);

// 10k sockets need 10k descriptors in the relay and in this process. A soft limit below that is raised to
// the hard limit by running the bench again under `ulimit -n` (once); the connections bench says so if it
// still has to measure fewer sockets.
const NEEDED_FDS = 11_000;
const limit = openFileLimit();
if (selected.has('connections') && !quick && limit && limit.soft < NEEDED_FDS && limit.hard > limit.soft && !process.env.MOTEBIT_BENCH_ULIMIT) {
  const raised = Math.min(limit.hard, 65_536);
  progress(`the open-file limit is ${limit.soft}; 10k WebSockets need ${NEEDED_FDS}: running again under 'ulimit -n ${raised}'`);
  const result = spawnSync('sh', ['-c', `ulimit -n ${raised} && exec "$0" "$@"`, process.execPath, ...process.execArgv, process.argv[1]!, ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, MOTEBIT_BENCH_ULIMIT: '1' },
  });
  process.exit(result.status ?? 1);
}

const started = performance.now();
const figures: Figure[] = [];
const add = (more: Figure[]) => {
  for (const figure of more) {
    // A key measured twice (Ed25519 verify is in the store section too) keeps its first figure.
    if (figures.some((f) => f.key === figure.key)) continue;
    figures.push(figure);
  }
};
const section = async (name: Section, run: () => Promise<Figure[]>) => {
  if (!selected.has(name)) return;
  const sectionStart = performance.now();
  progress(`== ${name} ==`);
  add(await run());
  progress(`== ${name} done in ${((performance.now() - sectionStart) / 1000).toFixed(1)} s ==`);
};

await section('store', () => storeBench(rounds));
await section('crypto', () => cryptoBench(rounds));
await section('ingest', () => ingestBench(rounds, { quick }));
await section('fanout', () => fanoutBench(rounds, { quick }));
await section('many', () => manyWritersBench(rounds, { quick }));
await section('push', () => pushBench(rounds, { count: quick ? 5_000 : 20_000 }));
await section('sync', () =>
  syncBench(rounds, { smallCount: quick ? 20_000 : 100_000, bigCount: full ? 1_000_000 : 0, bigRounds: 1, transport: 'auto' }),
);
// A new device from a snapshot beside the whole history; compaction; pruning. 1M only with --full, one round.
await section('snapshot', async () => [
  ...(await snapshotBench({ count: quick ? 20_000 : 100_000, rounds, measured: '' })),
  ...(full ? await snapshotBench({ count: 1_000_000, rounds: 1, measured: 'MEASURED (--full), one round; ' }) : []),
]);
// 10k connections take a while to open (each spends a nonce, one fsync): one round, sampled in blocks.
await section('connections', () => connectionsBench(1, { quick }));
// SQLite against PostgreSQL with 1-3 relay instances (skipped, saying why, without PostgreSQL binaries).
await section('pg', () => pgBench(rounds, { quick }));
await section('cli', () => cliBench({ quick }));
const totalSeconds = (performance.now() - started) / 1000;
progress(`done in ${totalSeconds.toFixed(1)} s`);
figures.push({ key: 'bench_seconds', label: 'total bench time', value: totalSeconds, unit: 's', note: `${[...selected].join(',')}${quick ? ', --quick' : ''}${full ? ', --full' : ''}` });

printTable(figures);
printNotes();
if (json) console.log(JSON.stringify(Object.fromEntries(figures.map((f) => [f.key, Number(f.value.toPrecision(6))]))));
