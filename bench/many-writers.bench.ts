// Many writers: 100 motebits x 2 devices, all 200 devices pushing at once against one relay with its
// DEFAULT limits, over WebSocket (devices' default transport) and over HTTP (their fallback), each on its
// own relay process and database, interleaved round by round. Per transport: pushes/s (first send to
// last ack), ack latency p50 and p99 (p99 from at least P99_MIN_SAMPLES acks per round), server CPU per
// push; medians of the rounds with their range.
//
// Default limits, and where the bench steps around them (never by raising one):
//   - new motebits per address (10, then 2 a minute): the motebits are seeded into the database, as every
//     other section does; enrolling 100 from 127.0.0.1 would take about 45 minutes.
//   - WebSocket auths per address (32 waiting, 100 at once then 10/s): sockets open at that pace, before
//     the clock (many-writers-ws.ts).
//   - per-device requests (burst 200, 50/s sustained): does not bind; a device makes at most
//     `pushes` + 1 requests a round (<= 51), and its bucket refills while the other transport runs.
import { availableParallelism, loadavg } from 'node:os';
import { Child, percentile, seedRelayDb } from './lib.ts';
import { measureCpu, serverCpuFigure, type CpuWindow } from './cpu-window.ts';
import { httpWriters } from './many-writers-http.ts';
import { wsWriters } from './many-writers-ws.ts';
import { DEVICES_PER_MOTEBIT, MOTEBITS, newWriterMotebits, writersOf, type Writers, type WritersRound } from './many-writers-workload.ts';
import { addNote, formatNumber, interleaved, progress, scratch, spread, type Figure } from './support.ts';

const P99_MIN_SAMPLES = 10_000;
const TRANSPORTS = ['ws', 'http'] as const;
type Transport = (typeof TRANSPORTS)[number];

interface Sample extends WritersRound {
  cpu: CpuWindow;
}

interface Target {
  child: Child;
  writers: Writers;
}

async function startTarget(transport: Transport, dbPath: string): Promise<Target> {
  const motebits = newWriterMotebits();
  seedRelayDb(dbPath, motebits);
  const { child, ready } = await Child.start<{ url: string; audience: string }>('./relay-child.ts', { dbPath }); // no limits given: the defaults
  try {
    const writers = writersOf(motebits);
    return { child, writers: transport === 'ws' ? await wsWriters(ready.url, ready.audience, writers) : await httpWriters(ready.url, ready.audience, writers) };
  } catch (error) {
    await child.stop();
    throw error;
  }
}

export async function manyWritersBench(roundCount: number, options: { quick: boolean }): Promise<Figure[]> {
  const pushes = options.quick ? 10 : 50;
  const devices = MOTEBITS * DEVICES_PER_MOTEBIT;
  const dir = scratch('many');
  const targets = new Map<Transport, Target>();
  try {
    progress(`many writers: ${MOTEBITS} motebits x ${DEVICES_PER_MOTEBIT} devices pushing at once, ${pushes} single-event pushes each per round, default relay limits`);
    for (const transport of TRANSPORTS) targets.set(transport, await startTarget(transport, `${dir.path}/relay-${transport}.db`));
    for (const target of targets.values()) await target.writers.round(2); // warm-up: JIT, first statements
    progress('many writers: warm-up done');
    addNote(
      `many writers: ${devices} devices (${MOTEBITS} motebits x ${DEVICES_PER_MOTEBIT}) on one relay with its default limits (load average ${loadavg()[0]!.toFixed(2)} on ${availableParallelism()} cores); ` +
        'each device has one push of one 1 KB event in flight; ack = the relay\'s answer once the append is committed (fsynced): WebSocket \'ack\' (sent after the event went out to both of the motebit\'s sockets, the sibling\'s and the writer\'s own), HTTP 200; ' +
        'an HTTP push commits twice (its token\'s nonce, then the append), a WebSocket push once. Motebits are seeded in the database (enrolling 100 from one address meets the new-motebit limit: 10, then 2 a minute); ' +
        'sockets open at the pace the per-address auth limits allow; the per-device limit (burst 200, 50/s) does not bind at these counts',
    );
    const results = await interleaved(roundCount, 'many writers', TRANSPORTS, async (transport): Promise<Sample> => {
      const { child, writers } = targets.get(transport as Transport)!;
      await writers.refresh();
      const { result, cpu } = await measureCpu({ relay: () => child.call<number>('cpu'), pg: () => 0 }, () => writers.round(pushes));
      return { ...result, cpu };
    });
    return TRANSPORTS.flatMap((transport) => figures(transport, results.get(transport)!));
  } finally {
    for (const target of targets.values()) target.writers.close();
    await Promise.allSettled([...targets.values()].map((target) => target.child.stop()));
    dir.remove();
  }
}

function figures(transport: Transport, samples: readonly Sample[]): Figure[] {
  const key = transport === 'ws' ? 'many_writers' : 'many_writers_http';
  const name = transport === 'ws' ? 'WebSocket' : 'HTTP';
  const rate = spread(samples.map((s) => s.pushes / s.seconds));
  const p50 = spread(samples.map((s) => percentile(s.ackMs, 50)));
  const n = Math.min(...samples.map((s) => s.ackMs.length));
  const out: Figure[] = [
    { key: `${key}_pushes_per_s`, label: `many writers (200 devices), ${name}: pushes`, value: rate.median, unit: 'pushes/s', note: `1 event each; ${rate.note}` },
    { key: `${key}_ack_p50_ms`, label: '  push ack p50', value: p50.median, unit: 'ms', note: `${p50.note}${n >= P99_MIN_SAMPLES ? '' : `; p99 n/a: ${n} acks per round, needs ${formatNumber(P99_MIN_SAMPLES)}`}` },
  ];
  if (n >= P99_MIN_SAMPLES) {
    const p99 = spread(samples.map((s) => percentile(s.ackMs, 99)));
    out.push({ key: `${key}_ack_p99_ms`, label: '  push ack p99', value: p99.median, unit: 'ms', note: `${formatNumber(n)} acks per round; ${p99.note}` });
  }
  out.push(
    serverCpuFigure(
      `${key}_cpu_us_per_push`,
      '  server CPU per push',
      samples.map((s) => s.cpu),
      samples.map((s) => s.pushes),
      'sqlite',
    ),
  );
  return out;
}
