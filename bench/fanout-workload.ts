// The fan-out workload, the same for every system under test (each server in its own process, all clients
// in this one): one writer, RECEIVERS receivers of the same stream.
//   latency:    latencyPushes pushes of one 1 KB event, each sent once the previous one reached all
//               receivers and was acknowledged; latency = receipt at a receiver - send, every receiver.
//   throughput: throughputEvents events of 1 KB in pushes of BATCH events, at most WINDOW pushes
//               unacknowledged; events/s delivered = events x receivers / (last receipt - first send).
// What "acknowledged" means differs by system (each system's module says, and the table's notes).
import { randomBytes } from 'node:crypto';
import { toBase64Url } from '../shared/encoding.ts';
import { Signal, percentile } from './lib.ts';

export const RECEIVERS = 100;
export const BODY_BYTES = 1024;
export const BATCH = 10;
export const WINDOW = 4;
const WAIT_MS = 20_000;

export interface Params {
  latencyPushes: number;
  throughputEvents: number;
}

export const fanoutParams = (quick: boolean): Params => (quick ? { latencyPushes: 100, throughputEvents: 1000 } : { latencyPushes: 200, throughputEvents: 2000 });

/** Events delivered in one round of `params` (every event to every receiver). */
export const deliveriesPerRound = (params: Params): number => (params.latencyPushes + Math.ceil(params.throughputEvents / BATCH) * BATCH) * RECEIVERS;

/** One event's body as every system carries it: 1 KB of random bytes, base64url (what our relay stores). */
export const eventBody = (): string => toBase64Url(randomBytes(BODY_BYTES));

/** What the driver needs of a system under test. Batches are numbered 0, 1, ... in send order. */
export interface System {
  readonly name: string;
  /** Sends batch `index` of `size` events now. */
  push(index: number, size: number): void;
  /** Called by the system: receiver `receiver` has all of batch `index` at time `at`. */
  onBatch: (receiver: number, index: number, at: number) => void;
  /** Called by the system on each acknowledgement of a push. */
  onAck: () => void;
  /** Called by the system when something went wrong in a socket handler (a refused push, a closed socket). */
  onError: (error: Error) => void;
  /** Before a round, outside its measurement: renew what expires (our relay's socket tokens). */
  refresh?(): Promise<void>;
  close(): Promise<void>;
}

export interface RoundResult {
  p50: number;
  p99: number;
  /** Latency samples the percentiles come from (one per push and receiver). */
  samples: number;
  eventsPerSecond: number;
}

export async function runRound(system: System, params: Params): Promise<RoundResult> {
  const signal = new Signal();
  const sentAt: number[] = [];
  const receivedCount: number[] = [];
  const latencies: number[] = [];
  let acked = 0;
  let complete = 0;
  let lastReceipt = 0;
  let base = 0; // batch numbering continues across phases and rounds
  let measuring = true;
  system.onAck = () => {
    acked++;
    signal.poke();
  };
  system.onError = (error) => signal.fail(error);
  system.onBatch = (_receiver, index, at) => {
    const local = index - base;
    if (local < 0) return;
    receivedCount[local] = (receivedCount[local] ?? 0) + 1;
    if (receivedCount[local] === RECEIVERS) complete++;
    if (measuring) latencies.push(at - sentAt[local]!);
    lastReceipt = at;
    signal.poke();
  };

  // Latency: one event at a time.
  const first = (system as { nextIndex?: number }).nextIndex ?? 0;
  base = first;
  for (let i = 0; i < params.latencyPushes; i++) {
    const ackedBefore = acked;
    sentAt[i] = performance.now();
    system.push(first + i, 1);
    await signal.wait(() => (receivedCount[i] ?? 0) >= RECEIVERS && acked > ackedBefore, WAIT_MS, `${system.name} latency push ${i}`);
  }
  measuring = false;

  // Throughput: batches of BATCH, a window of WINDOW unacknowledged pushes.
  base = first + params.latencyPushes;
  const batches = Math.ceil(params.throughputEvents / BATCH);
  receivedCount.length = 0;
  sentAt.length = 0;
  complete = 0;
  const ackedBefore = acked;
  const start = performance.now();
  for (let i = 0; i < batches; i++) {
    await signal.wait(() => i - (acked - ackedBefore) < WINDOW, WAIT_MS, `${system.name} ack window`);
    sentAt[i] = performance.now();
    system.push(base + i, BATCH);
  }
  await signal.wait(() => complete === batches, WAIT_MS, `${system.name} throughput delivery`);
  await signal.wait(() => acked - ackedBefore >= batches, WAIT_MS, `${system.name} final acks`);
  (system as { nextIndex?: number }).nextIndex = base + batches;
  const elapsed = (lastReceipt - start) / 1000;
  return { p50: percentile(latencies, 50), p99: percentile(latencies, 99), samples: latencies.length, eventsPerSecond: (batches * BATCH * RECEIVERS) / elapsed };
}
