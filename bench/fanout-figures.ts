// The fan-out section's figures from its interleaved rounds: per system delivered events/s, push->receipt
// p50 and p99 (p99 only from at least P99_MIN_SAMPLES receipts per round), server CPU per delivered event,
// each the median of the rounds with its range; then our relay against each peer, ratios paired per round.
import { serverCpuFigure, type CpuWindow } from './cpu-window.ts';
import type { RoundResult, System } from './fanout-workload.ts';
import { formatNumber, spread, type Figure } from './support.ts';

const P99_MIN_SAMPLES = 10_000;

export interface Contender {
  /** Figure keys start with it. */
  readonly key: string;
  readonly label: string;
  /** 'sqlite': our relay, its store inside its process; 'server': another server process. */
  readonly store: 'sqlite' | 'server';
  readonly system: System;
  cpuMicros(): Promise<number>;
  /** After a round: waits for writes the system queued and did not await (y-leveldb); answers ms. */
  settle?(): Promise<number>;
}

export interface FanoutSample extends RoundResult {
  cpu: CpuWindow;
  deliveries: number;
  settleMs: number;
}

function systemFigures(c: Contender, samples: readonly FanoutSample[]): Figure[] {
  const rate = spread(samples.map((s) => s.eventsPerSecond));
  const p50 = spread(samples.map((s) => s.p50));
  const n = Math.min(...samples.map((s) => s.samples));
  const hasP99 = n >= P99_MIN_SAMPLES;
  const drain = c.settle ? spread(samples.map((s) => s.settleMs)) : null;
  const out: Figure[] = [
    {
      key: `${c.key}_events_per_s`,
      label: `fan-out delivered, ${c.label}`,
      value: rate.median,
      unit: 'events/s',
      note: `${rate.note}${drain ? `; y-leveldb's queue drained ${formatNumber(drain.median)} ms after the round's last ack (${drain.note})` : ''}`,
    },
    { key: `${c.key}_p50_ms`, label: '  push->receipt p50', value: p50.median, unit: 'ms', note: `${p50.note}${hasP99 ? '' : `; p99 n/a: ${n} receipts per round, needs ${formatNumber(P99_MIN_SAMPLES)}`}` },
  ];
  if (hasP99) {
    const p99 = spread(samples.map((s) => s.p99));
    const goal = c.key === 'fanout' ? 'goal <= 5 ms; ' : '';
    out.push({ key: `${c.key}_p99_ms`, label: '  push->receipt p99', value: p99.median, unit: 'ms', note: `${goal}${formatNumber(n)} receipts per round; ${p99.note}` });
  }
  out.push(
    serverCpuFigure(
      `${c.key}_cpu_us_per_delivery`,
      '  server CPU per delivered event',
      samples.map((s) => s.cpu),
      samples.map((s) => s.deliveries),
      c.store,
    ),
  );
  return out;
}

export function fanoutFigures(contenders: readonly Contender[], results: Map<string, FanoutSample[]>): Figure[] {
  const out = contenders.flatMap((c) => systemFigures(c, results.get(c.key)!));
  const ours = results.get('fanout')!;
  // Paired per round (the systems ran back to back), then the median and range of those ratios.
  const ratio = (peer: string, pick: (s: FanoutSample) => number): ReturnType<typeof spread> => {
    const theirs = results.get(peer)!;
    return spread(ours.map((s, i) => pick(s) / pick(theirs[i]!)));
  };
  const rate = (s: FanoutSample): number => s.eventsPerSecond;
  const cpu = (s: FanoutSample): number => (s.cpu.relay + s.cpu.pg) / s.deliveries;
  const toPeer = ratio('peer_fanout', rate);
  const p99ToPeer = ratio('peer_fanout', (s) => s.p99);
  const toDurable = ratio('hocuspocus_durable', rate);
  const p99ToDurable = ratio('hocuspocus_durable', (s) => s.p99);
  const cpuToDurable = ratio('hocuspocus_durable', cpu);
  const toY = ratio('ywebsocket', rate);
  const toYSync = ratio('ywebsocket_sync', rate);
  const toRaw = ratio('raw_ws', rate);
  out.push(
    { key: 'fanout_ratio_to_peer', label: 'fan-out throughput, ours / Hocuspocus in memory', value: toPeer.median, unit: 'ratio', note: `goal >= 2; it stores nothing; ${toPeer.note}` },
    { key: 'fanout_p99_ratio_to_peer', label: 'fan-out p99, ours / Hocuspocus in memory', value: p99ToPeer.median, unit: 'ratio', note: `lower is better; ${p99ToPeer.note}` },
    { key: 'fanout_ratio_to_hocuspocus_durable', label: 'fan-out throughput, ours / Hocuspocus + SQLite', value: toDurable.median, unit: 'ratio', note: `same durability contract; ${toDurable.note}` },
    { key: 'fanout_p99_ratio_to_hocuspocus_durable', label: 'fan-out p99, ours / Hocuspocus + SQLite', value: p99ToDurable.median, unit: 'ratio', note: `lower is better; ${p99ToDurable.note}` },
    { key: 'fanout_cpu_ratio_to_hocuspocus_durable', label: 'server CPU per delivery, ours / Hocuspocus + SQLite', value: cpuToDurable.median, unit: 'ratio', note: `lower is better; ${cpuToDurable.note}` },
    { key: 'fanout_ratio_to_ywebsocket', label: 'fan-out throughput, ours / y-websocket + y-leveldb', value: toY.median, unit: 'ratio', note: `sync: ${formatNumber(toYSync.median)}; ${toY.note}` },
    { key: 'fanout_ratio_to_raw_ws', label: 'fan-out throughput, ours / raw ws (share of the ceiling)', value: toRaw.median, unit: 'ratio', note: toRaw.note },
  );
  return out;
}
