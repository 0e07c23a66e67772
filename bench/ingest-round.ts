// One ingest round through a fleet of relay instances: every writer pushes its batches over HTTP (the
// device's RelayClient, one push in flight per writer, as ingest.bench.ts does), writer i at instance
// i mod N. Measures events stored per second (first push to last acknowledgement) and each push's
// acknowledgement latency (request sent to answer parsed, in this process).
import type { WireEvent } from '../shared/portable/wire.ts';
import { RelayClient } from '../main/sync/relay-client.ts';
import type { Fleet } from './relay-fleet.ts';
import type { Writer } from './pg-workload.ts';

export interface IngestSample {
  events: number;
  seconds: number;
  /** One per push, ms. */
  ackMs: number[];
}

export async function ingestRound(fleet: Fleet, writers: readonly Writer[], batches: WireEvent[][][]): Promise<IngestSample> {
  const clients = writers.map(
    ({ motebit, device }, i) =>
      new RelayClient({ relayUrl: fleet.urls[i % fleet.urls.length]!, audience: fleet.audience, motebitId: motebit.motebitId, deviceId: device.deviceId, deviceKey: device.key, timeoutMs: 60_000 }),
  );
  // Open each writer's kept-alive connection before the clock starts.
  await Promise.all(clients.map((client) => client.health()));
  const expected = batches.reduce((sum, perWriter) => sum + perWriter.reduce((n, batch) => n + batch.length, 0), 0);
  const ackMs: number[] = [];
  let stored = 0;
  const start = performance.now();
  await Promise.all(
    clients.map(async (client, i) => {
      for (const batch of batches[i]!) {
        const sent = performance.now();
        const answer = await client.push(batch);
        ackMs.push(performance.now() - sent);
        stored += answer.stored;
      }
    }),
  );
  const seconds = (performance.now() - start) / 1000;
  if (stored !== expected) throw new Error(`the relay stored ${stored} of ${expected} events`);
  return { events: stored, seconds, ackMs };
}
