// The many-writers workload: MOTEBITS motebits of DEVICES_PER_MOTEBIT devices, every device pushing at
// once, one push of one 1 KB event in flight per device (the next once the previous is acknowledged),
// `pushes` pushes per device per round. Each transport (many-writers-http.ts, many-writers-ws.ts) gives
// the same Writers; a round answers the pushes made, the wall time (first send to last ack) and every
// push's ack latency (send to answer read, in this process).
import { newEventId } from '../shared/ids.ts';
import type { WireEvent } from '../shared/portable/wire.ts';
import { eventBody } from './fanout-workload.ts';
import { newMotebit, type BenchDevice, type BenchMotebit } from './lib.ts';

export const MOTEBITS = 100;
export const DEVICES_PER_MOTEBIT = 2;

export interface Writer {
  readonly motebit: BenchMotebit;
  readonly device: BenchDevice;
  /** The device's last device_seq pushed (the relay wants them contiguous). */
  seq: number;
}

export interface WritersRound {
  pushes: number;
  seconds: number;
  ackMs: number[];
}

export interface Writers {
  /** Before a round, outside its measurement: renew what expires (socket tokens). */
  refresh(): Promise<void>;
  round(pushesPerWriter: number): Promise<WritersRound>;
  close(): void;
}

export function newWriterMotebits(): BenchMotebit[] {
  return Array.from({ length: MOTEBITS }, () => newMotebit(DEVICES_PER_MOTEBIT));
}

export const writersOf = (motebits: readonly BenchMotebit[]): Writer[] => motebits.flatMap((motebit) => motebit.devices.map((device) => ({ motebit, device, seq: 0 })));

const body = eventBody();

/** The writer's next event: one 1 KB body (the same bytes each time: the relay neither reads nor dedupes bodies). */
export const nextEvent = (writer: Writer): WireEvent => ({ event_id: newEventId(), device_id: writer.device.deviceId, device_seq: ++writer.seq, key_id: 'k1', body });

/** Runs `push` `pushesPerWriter` times for every writer, all writers at once, one push each in flight. */
export async function allAtOnce(writers: readonly Writer[], pushesPerWriter: number, push: (writer: Writer, index: number) => Promise<void>): Promise<WritersRound> {
  const ackMs: number[] = [];
  let last = 0;
  const start = performance.now();
  await Promise.all(
    writers.map(async (writer, index) => {
      for (let i = 0; i < pushesPerWriter; i++) {
        const sent = performance.now();
        await push(writer, index);
        last = performance.now();
        ackMs.push(last - sent);
      }
    }),
  );
  return { pushes: writers.length * pushesPerWriter, seconds: (last - start) / 1000, ackMs };
}
