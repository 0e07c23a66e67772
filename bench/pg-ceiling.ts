// PostgreSQL's own commit ceiling for the ingest workload: the same rows into the relay's events table,
// in the same batches, one transaction per batch, through node-postgres from this process, one
// connection per writer in parallel (as many commits in flight as the relays' writers have). No relay,
// no HTTP, no append rule: what PostgreSQL itself commits on this machine with its default durability.
import pg from 'pg';
import type { WireEvent } from '../shared/portable/wire.ts';
import type { Writer } from './pg-workload.ts';

const INSERT = `INSERT INTO events (motebit_id, seq, event_id, device_id, device_seq, key_id, body)
  SELECT $1::text, * FROM unnest($2::bigint[], $3::text[], $4::text[], $5::bigint[], $6::text[], $7::text[])`;

export interface CeilingSample {
  events: number;
  seconds: number;
  /** One per transaction (BEGIN to COMMIT answered), ms. */
  commitMs: number[];
}

/** `url` is a database with the relay's schema; the writers' motebits need not be registered (events has no foreign key). */
export async function ceilingRound(url: string, writers: readonly Writer[], batches: WireEvent[][][]): Promise<CeilingSample> {
  const clients = writers.map(() => new pg.Client({ connectionString: url }));
  await Promise.all(clients.map((client) => client.connect()));
  try {
    const commitMs: number[] = [];
    let events = 0;
    const start = performance.now();
    await Promise.all(
      clients.map(async (client, i) => {
        const motebitId = writers[i]!.motebit.motebitId;
        let seq = 0;
        for (const batch of batches[i]!) {
          const began = performance.now();
          await client.query('BEGIN');
          await client.query(INSERT, [
            motebitId,
            batch.map(() => ++seq),
            batch.map((e) => e.event_id),
            batch.map((e) => e.device_id),
            batch.map((e) => e.device_seq),
            batch.map((e) => e.key_id),
            batch.map((e) => e.body),
          ]);
          await client.query('COMMIT');
          commitMs.push(performance.now() - began);
          events += batch.length;
        }
      }),
    );
    return { events, seconds: (performance.now() - start) / 1000, commitMs };
  } finally {
    await Promise.all(clients.map((client) => client.end()));
  }
}
