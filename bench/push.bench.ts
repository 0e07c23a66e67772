// A device pushing its backlog (events written offline) over WebSocket, through the real engine: with as
// many batches in flight as the relay's 'limits' message allows (4 by default, revision 5), against one at a
// time (the same relay with wsMaxPendingMessages 2, which says 1). The relay runs in its own process over a
// fresh SQLite file each round (synchronous=FULL, the same durability either way); the device (encrypted,
// the OS keyring replaced by its file store) in this one. Each is measured on loopback and through a proxy
// that adds a 40 ms round trip (bench/delay-proxy.ts), as across a network; rounds interleave all four. On
// loopback the gain is only the relay's commit and the device's work overlapping (none when both cores are
// busy); across a network each batch in flight also saves a round trip.
import { join } from 'node:path';
import { Device } from '../main/app/device.ts';
import { startDelayProxy } from './delay-proxy.ts';
import { Child } from './lib.ts';
import { progress, scratch, spread, type Figure } from './support.ts';

const ROUND_TRIP_MS = 40;
const SYSTEMS = [
  { key: 'pipelined', label: '4 batches in flight', pending: 8, rttMs: 0 },
  { key: 'one_at_a_time', label: 'one batch at a time', pending: 2, rttMs: 0 },
  { key: 'pipelined_rtt40', label: `4 batches in flight, ${ROUND_TRIP_MS} ms round trip`, pending: 8, rttMs: ROUND_TRIP_MS },
  { key: 'one_at_a_time_rtt40', label: `one batch at a time, ${ROUND_TRIP_MS} ms round trip`, pending: 2, rttMs: ROUND_TRIP_MS },
] as const;

interface Sample {
  seconds: number;
  deviceCpuMs: number;
  relayCpuMs: number;
}

async function round(count: number, pending: number, rttMs: number): Promise<Sample> {
  const dir = scratch('push');
  let relayUrl = '';
  // Through the proxy, the relay answers to the proxy's name (its audience): the device's tokens name it.
  const proxy = rttMs > 0 ? await startDelayProxy(() => relayUrl, rttMs / 2) : null;
  const { child, ready } = await Child.start<{ url: string }>('./relay-child.ts', { db: join(dir.path, 'relay.db'), limits: { wsMaxPendingMessages: pending }, ...(proxy ? { audience: proxy.url } : {}) });
  relayUrl = ready.url;
  try {
    const device = await Device.create({ home: join(dir.path, 'device'), keyring: 'file', env: {}, relayUrl: proxy?.url ?? ready.url, deviceName: 'bench', encryption: true, transport: 'websocket' });
    try {
      device.write(Array.from({ length: count }, (_, i) => ({ entity: `memory/${i}`, op: 'set' as const, payload: { text: 'x'.repeat(200), n: i } })));
      const relayBefore = await child.call<number>('cpu');
      const cpuBefore = process.cpuUsage();
      const start = performance.now();
      const result = await device.syncNow();
      const seconds = (performance.now() - start) / 1000;
      const cpu = process.cpuUsage(cpuBefore);
      if (!result.ok || result.pushed !== count) throw new Error(`the push failed: ${result.error?.message ?? `${result.pushed} of ${count} pushed`}`);
      return { seconds, deviceCpuMs: (cpu.user + cpu.system) / 1000, relayCpuMs: ((await child.call<number>('cpu')) - relayBefore) / 1000 };
    } finally {
      await device.close();
    }
  } finally {
    await proxy?.close();
    await child.stop();
    dir.remove();
  }
}

export async function pushBench(rounds: number, options: { count: number }): Promise<Figure[]> {
  const samples = new Map<string, Sample[]>(SYSTEMS.map((s) => [s.key, []]));
  for (let r = 1; r <= rounds; r++) {
    for (const system of SYSTEMS) {
      const sample = await round(options.count, system.pending, system.rttMs);
      samples.get(system.key)!.push(sample);
      progress(`push ${options.count}, ${system.label}: round ${r}/${rounds} ${sample.seconds.toFixed(2)} s`);
    }
  }
  const figures: Figure[] = [];
  for (const system of SYSTEMS) {
    const all = samples.get(system.key)!;
    const time = spread(all.map((s) => s.seconds));
    const device = spread(all.map((s) => (s.deviceCpuMs * 1000) / options.count));
    const relay = spread(all.map((s) => (s.relayCpuMs * 1000) / options.count));
    figures.push({
      key: `push_backlog_${system.key}_s`,
      label: `device pushes a ${options.count.toLocaleString('en')}-event backlog, ${system.label}`,
      value: time.median,
      unit: 's',
      note: `${Math.round(options.count / time.median).toLocaleString('en')} events/s; device CPU ${device.median.toFixed(1)} µs, relay CPU ${relay.median.toFixed(1)} µs per event; ${time.note}`,
    });
  }
  for (const [key, a, b, where] of [
    ['push_backlog_ratio', 'pipelined', 'one_at_a_time', 'loopback'],
    ['push_backlog_ratio_rtt40', 'pipelined_rtt40', 'one_at_a_time_rtt40', `${ROUND_TRIP_MS} ms round trip`],
  ] as const) {
    const ratios = spread(samples.get(a)!.map((s, i) => s.seconds / samples.get(b)![i]!.seconds));
    figures.push({ key, label: `backlog push time, in flight / one at a time, ${where}`, value: ratios.median, unit: 'ratio', note: `lower is better; per-round ratios, ${ratios.note}` });
  }
  return figures;
}
