// The pg section's ingest comparison: SQLite with 1 relay, PostgreSQL with 1, 2 and 3 relay instances
// (writers spread over them), and PostgreSQL's raw commit ceiling, interleaved round by round. Every
// round pushes the same writers' batches into each system's own database.
import { percentile } from './lib.ts';
import { BATCH, BODY_BYTES, makeBatches, newWriters, type Writer } from './pg-workload.ts';
import { ingestRound } from './ingest-round.ts';
import { ceilingRound } from './pg-ceiling.ts';
import { seedDb } from './pg-seed.ts';
import { startFleet, type Fleet } from './relay-fleet.ts';
import { formatNumber, interleaved, progress, spread, type Figure } from './support.ts';
import type { PgBenchContext } from './pg-context.ts';
import { measureCpu, serverCpuFigure, type CpuWindow } from './cpu-window.ts';

const WRITERS = 6;
const P99_MIN_SAMPLES = 10_000;
const INSTANCES = [1, 2, 3] as const;
const CEILING = 'pg-raw';

interface Sample {
  events: number;
  seconds: number;
  latencyMs: number[];
  cpu: CpuWindow;
}

const label = (system: string): string => (system === 'sqlite-1' ? 'SQLite, 1 relay' : system === CEILING ? 'raw pg insert (ceiling)' : `PostgreSQL, ${system.slice(3)} relay instance${system === 'pg-1' ? '' : 's'}`);

export async function pgIngest(context: PgBenchContext, roundCount: number, quick: boolean): Promise<Figure[]> {
  const batchesPerWriter = quick ? 8 : 40;
  const perRound = WRITERS * batchesPerWriter * BATCH;
  progress(`pg ingest: ${perRound} events of ${BODY_BYTES} B per system and round, HTTP pushes of ${BATCH} from ${WRITERS} writers at once`);
  // Writers for each round and one set for the warm-up; every database knows all of them.
  const writers = Array.from({ length: roundCount + 1 }, () => newWriters(WRITERS));
  const everyone = writers.flat().map((w) => w.motebit);
  const fleets = new Map<string, Fleet>();
  try {
    const sqlite = `${context.dir}/ingest-sqlite.db`;
    await seedDb(sqlite, everyone);
    fleets.set('sqlite-1', await startFleet(sqlite, 1));
    for (const n of INSTANCES) {
      const url = await context.cluster.database(`ingest_pg${n}`);
      await seedDb(url, everyone);
      fleets.set(`pg-${n}`, await startFleet(url, n));
    }
    const ceilingUrl = await context.cluster.database('ingest_raw');
    await seedDb(ceilingUrl, []);

    const run = async (system: string, roundWriters: readonly Writer[], batches: ReturnType<typeof makeBatches>): Promise<Sample> => {
      const fleet = fleets.get(system);
      const meters = { relay: fleet ? () => fleet.cpuMicros() : async () => 0, pg: system === 'sqlite-1' ? () => 0 : () => context.pgCpu() };
      const { result, cpu } = await measureCpu(meters, async () => {
        if (fleet) {
          const { events, seconds, ackMs } = await ingestRound(fleet, roundWriters, batches);
          return { events, seconds, latencyMs: ackMs };
        }
        const { events, seconds, commitMs } = await ceilingRound(ceilingUrl, roundWriters, batches);
        return { events, seconds, latencyMs: commitMs };
      });
      return { ...result, cpu };
    };

    const systems = [...fleets.keys(), CEILING];
    const warmBatches = makeBatches(writers[roundCount]!, 2);
    for (const system of systems) await run(system, writers[roundCount]!, warmBatches);
    progress('pg ingest: warm-up done');
    let batches: ReturnType<typeof makeBatches> = [];
    const results = await interleaved(roundCount, 'pg ingest', systems, async (system, round) => {
      if (system === systems[0]) batches = makeBatches(writers[round]!, batchesPerWriter); // the same rows for every system of a round
      return run(system, writers[round]!, batches);
    });
    const durability = `fsync=${context.settings.fsync}, synchronous_commit=${context.settings.synchronous_commit}`;
    return figures(results, context.pgCpuKnown, durability);
  } finally {
    await Promise.all([...fleets.values()].map((fleet) => fleet.stop()));
  }
}

function figures(results: Map<string, Sample[]>, pgCpuKnown: boolean, durability: string): Figure[] {
  const rate = (system: string): number[] => results.get(system)!.map((s) => s.events / s.seconds);
  const out: Figure[] = [];
  for (const [system, samples] of results) {
    const key = `pg_ingest_${system.replace('-', '')}`;
    const events = spread(rate(system));
    const isCeiling = system === CEILING;
    // Over HTTP each push commits twice: its single-use token's nonce, then the append.
    const how = isCeiling
      ? `${formatNumber(events.median / BATCH)} commits/s over ${WRITERS} connections, ${durability} (as SQLite synchronous=FULL); `
      : `${formatNumber(events.median / BATCH)} pushes/s (2 commits each: nonce, append); `;
    out.push({ key: `${key}_per_s`, label: `ingest, ${label(system)}`, value: events.median, unit: isCeiling ? 'rows/s' : 'events/s', note: `${how}${events.note}` });
    const p50 = spread(samples.map((s) => percentile(s.latencyMs, 50)));
    const n = Math.min(...samples.map((s) => s.latencyMs.length));
    const p99 = n >= P99_MIN_SAMPLES ? `p99 ${formatNumber(spread(samples.map((s) => percentile(s.latencyMs, 99))).median)} ms` : `p99 n/a: ${n} ${isCeiling ? 'commits' : 'acks'} per round, needs ${formatNumber(P99_MIN_SAMPLES)}`;
    out.push({ key: `${key}_${isCeiling ? 'commit' : 'ack'}_p50_ms`, label: `  ${isCeiling ? 'transaction (BEGIN..COMMIT)' : 'push ack'} latency p50`, value: p50.median, unit: 'ms', note: `${p50.note}; ${p99}` });
    if (system !== 'sqlite-1' && !pgCpuKnown) continue;
    const store = system === 'sqlite-1' ? 'sqlite' : isCeiling ? 'raw' : 'pg';
    out.push(serverCpuFigure(`${key}_cpu_us_per_event`, '  server CPU per event', samples.map((s) => s.cpu), samples.map((s) => s.events), store));
  }
  const ratio = (a: string, b: string): ReturnType<typeof spread> => {
    const ra = rate(a);
    const rb = rate(b);
    return spread(ra.map((value, i) => value / rb[i]!)); // paired per round: both ran back to back
  };
  const r31 = ratio('pg-3', 'pg-1');
  const r21 = ratio('pg-2', 'pg-1');
  const rs = ratio('pg-1', 'sqlite-1');
  const rc = ratio('pg-3', CEILING);
  out.push(
    { key: 'pg_ingest_ratio_3_to_1', label: 'ingest, PostgreSQL 3 instances / 1 instance', value: r31.median, unit: 'ratio', note: `2 / 1: ${formatNumber(r21.median)}; per-round pairs, ${r31.note}` },
    { key: 'pg_ingest_ratio_pg1_to_sqlite', label: 'ingest, PostgreSQL 1 instance / SQLite 1 relay', value: rs.median, unit: 'ratio', note: rs.note },
    { key: 'pg_ingest_ratio_pg3_to_ceiling', label: 'ingest, PostgreSQL 3 instances / raw pg insert', value: rc.median, unit: 'ratio', note: `near 1 = PostgreSQL's commits bind; ${rc.note}` },
  );
  return out;
}
