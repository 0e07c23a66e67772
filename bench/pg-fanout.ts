// The pg section's fan-out comparison: fanout.bench.ts's workload (one pusher, RECEIVERS WebSocket
// receivers of one motebit; single-event pushes for latency, pushes of BATCH with WINDOW in flight for
// throughput) on SQLite with 1 relay and on PostgreSQL with 1, 2 and 3 instances. The pusher is on
// instance 1, receivers spread over the instances: the others hear of a commit by LISTEN/NOTIFY and read
// the rows back. Systems are interleaved round by round.
import { relaySystem } from './fanout-ours.ts';
import { BATCH, RECEIVERS, runRound, type Params, type RoundResult, type System } from './fanout-workload.ts';
import { newMotebit } from './lib.ts';
import { seedDb } from './pg-seed.ts';
import { startFleet, type Fleet } from './relay-fleet.ts';
import { formatNumber, interleaved, median, progress, spread, type Figure } from './support.ts';
import type { PgBenchContext } from './pg-context.ts';
import { measureCpu, serverCpuFigure, type CpuWindow } from './cpu-window.ts';

const P99_MIN_SAMPLES = 10_000;
const P99_RATIO_TARGET = 2;

interface Sample extends RoundResult {
  cpu: CpuWindow;
  deliveries: number;
}

const label = (system: string): string => (system === 'sqlite-1' ? 'SQLite, 1 relay' : `PostgreSQL, ${system.slice(3)} instance${system === 'pg-1' ? '' : 's'}`);

export async function pgFanout(context: PgBenchContext, roundCount: number, quick: boolean): Promise<Figure[]> {
  const params: Params = quick ? { latencyPushes: 100, throughputEvents: 1000 } : { latencyPushes: 200, throughputEvents: 2000 };
  progress(`pg fan-out: 1 pusher -> ${RECEIVERS} receivers, ${params.latencyPushes} single pushes + ${params.throughputEvents} events in pushes of ${BATCH} per round`);
  const motebit = newMotebit(RECEIVERS + 1);
  const fleets = new Map<string, Fleet>();
  const systems = new Map<string, System>();
  try {
    const dbs: Array<[string, string, number]> = [['sqlite-1', `${context.dir}/fanout-sqlite.db`, 1]];
    for (const n of [1, 2, 3]) dbs.push([`pg-${n}`, await context.cluster.database(`fanout_pg${n}`), n]);
    for (const [name, db, instances] of dbs) {
      await seedDb(db, [motebit]);
      const fleet = await startFleet(db, instances);
      fleets.set(name, fleet);
      systems.set(name, await relaySystem(name, fleet.urls, fleet.audience, motebit, async () => undefined));
    }
    // One unmeasured warm-up round each (JIT, first reads), as fanout.bench.ts does.
    for (const system of systems.values()) await runRound(system, { latencyPushes: 20, throughputEvents: 200 });
    progress('pg fan-out: warm-up done');
    const results = await interleaved(roundCount, 'pg fan-out', [...systems.keys()], async (name): Promise<Sample> => {
      const fleet = fleets.get(name)!;
      await systems.get(name)!.refresh?.(); // socket tokens expire; renewed outside the measurement
      const meters = { relay: () => fleet.cpuMicros(), pg: name === 'sqlite-1' ? () => 0 : () => context.pgCpu() };
      const { result, cpu } = await measureCpu(meters, () => runRound(systems.get(name)!, params));
      return { ...result, cpu, deliveries: (params.latencyPushes + params.throughputEvents) * RECEIVERS };
    });
    return figures(results, params.latencyPushes * RECEIVERS, context.pgCpuKnown);
  } finally {
    await Promise.all([...systems.values()].map((system) => system.close()));
    await Promise.all([...fleets.values()].map((fleet) => fleet.stop()));
  }
}

function figures(results: Map<string, Sample[]>, latencySamples: number, pgCpuKnown: boolean): Figure[] {
  const out: Figure[] = [];
  const hasP99 = latencySamples >= P99_MIN_SAMPLES;
  for (const [system, samples] of results) {
    const key = `pg_fanout_${system.replace('-', '')}`;
    const p50 = spread(samples.map((s) => s.p50));
    const p99 = spread(samples.map((s) => s.p99));
    const rate = spread(samples.map((s) => s.eventsPerSecond));
    const p99NA = hasP99 ? '' : `; p99 n/a: ${latencySamples} receipts per round, needs ${formatNumber(P99_MIN_SAMPLES)}`;
    out.push({ key: `${key}_p50_ms`, label: `fan-out push->receipt p50, ${label(system)}`, value: p50.median, unit: 'ms', note: `${p50.note}${p99NA}` });
    if (hasP99) out.push({ key: `${key}_p99_ms`, label: '  push->receipt p99', value: p99.median, unit: 'ms', note: `${latencySamples} receipts per round; ${p99.note}` });
    out.push({ key: `${key}_events_per_s`, label: '  delivered', value: rate.median, unit: 'events/s', note: rate.note });
    if (system !== 'sqlite-1' && !pgCpuKnown) continue;
    const store = system === 'sqlite-1' ? 'sqlite' : 'pg';
    out.push(serverCpuFigure(`${key}_cpu_us_per_delivery`, '  server CPU per delivered event', samples.map((s) => s.cpu), samples.map((s) => s.deliveries), store));
  }
  if (hasP99) {
    // Paired per round (the two systems ran back to back), then the median and range of those ratios.
    const p99Ratio = (a: string, b: string): ReturnType<typeof spread> => {
      const over = results.get(b)!;
      return spread(results.get(a)!.map((s, i) => s.p99 / over[i]!.p99));
    };
    const target = p99Ratio('pg-3', 'sqlite-1');
    const commit = p99Ratio('pg-1', 'sqlite-1');
    const across = p99Ratio('pg-3', 'pg-1');
    out.push(
      {
        key: 'pg_fanout_p99_ratio_pg3_to_sqlite',
        label: 'fan-out p99, PostgreSQL 3 instances / SQLite 1 relay',
        value: target.median,
        unit: 'ratio',
        note: `target <= ${P99_RATIO_TARGET} (reported, not asserted): ${target.median <= P99_RATIO_TARGET ? 'met' : 'NOT met'}; median of per-round ratios, ${target.note}; ratio of the medians ${formatNumber(median(results.get('pg-3')!.map((s) => s.p99)) / median(results.get('sqlite-1')!.map((s) => s.p99)))}`,
      },
      { key: 'pg_fanout_p99_ratio_pg1_to_sqlite', label: '  of which PostgreSQL 1 instance / SQLite', value: commit.median, unit: 'ratio', note: `the store alone, no other instance; ${commit.note}` },
      { key: 'pg_fanout_p99_ratio_pg3_to_pg1', label: '  of which 3 instances / 1 instance', value: across.median, unit: 'ratio', note: `LISTEN/NOTIFY, the read-back, 2 more processes on the same cores; ${across.note}` },
    );
  }
  return out;
}
