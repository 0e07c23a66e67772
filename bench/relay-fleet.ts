// Relay instances behind one name: N relay children (bench/relay-child.ts) over one database, all with
// the same audience, as a load balancer would put them. Clients pick an instance by URL; tokens are good
// at every instance. The fleet's CPU is the sum of its children's process.cpuUsage().
import { LimitsSchema } from '../relay/context.ts';
import { BENCH_LIMITS } from './ingest.bench.ts';
import { Child } from './lib.ts';

/** The audience every instance of a fleet accepts (the public name a load balancer would answer to). */
export const FLEET_AUDIENCE = 'https://relay.bench.invalid';

/**
 * BENCH_LIMITS, and room for the fan-out workload: 101 sockets of one motebit, all authenticating at once
 * from 127.0.0.1 (per-motebit and per-address limits would measure the limiter). Only limits this relay
 * knows are passed (its schema refuses unknown ones).
 */
const FLEET_LIMITS: Record<string, number> = Object.fromEntries(
  Object.entries({
    ...BENCH_LIMITS,
    maxDevicesPerMotebit: 1000,
    maxSocketsPerMotebit: 1000,
    wsMaxUnauthenticatedPerAddress: 1000,
    wsAuthCapacity: 1_000_000,
    wsAuthPerSecond: 1_000_000,
  }).filter(([name]) => name in LimitsSchema.shape),
);

export interface Fleet {
  readonly urls: readonly string[];
  readonly audience: string;
  /** User + system CPU µs used so far by all instances. */
  cpuMicros(): Promise<number>;
  stop(): Promise<void>;
}

/** Starts `count` instances over `db` (a SQLite file or a postgres:// URL), one after another. */
export async function startFleet(db: string, count: number): Promise<Fleet> {
  const children: Child[] = [];
  const urls: string[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(children.map((child) => child.stop()));
  };
  try {
    for (let i = 0; i < count; i++) {
      const { child, ready } = await Child.start<{ url: string }>('./relay-child.ts', { db, audience: FLEET_AUDIENCE, limits: FLEET_LIMITS });
      children.push(child);
      urls.push(ready.url);
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    urls,
    audience: FLEET_AUDIENCE,
    cpuMicros: async () => (await Promise.all(children.map((child) => child.call<number>('cpu')))).reduce((a, b) => a + b, 0),
    stop,
  };
}
