// The ingest workload of the pg section: writers (one device of its own motebit each: the case several
// instances can spread, since one motebit's pushes serialise on its row by design) and their batches of
// MAX_BATCH_EVENTS events with 1 KB random bodies, the rows ingest.bench.ts pushes.
import { randomBytes } from 'node:crypto';
import { toBase64Url } from '../shared/encoding.ts';
import { newEventId } from '../shared/ids.ts';
import { MAX_BATCH_EVENTS } from '../shared/portable/relay-api.ts';
import type { WireEvent } from '../shared/portable/wire.ts';
import { newMotebit, type BenchDevice, type BenchMotebit } from './lib.ts';

export const BATCH = MAX_BATCH_EVENTS;
export const BODY_BYTES = 1024;

export interface Writer {
  readonly motebit: BenchMotebit;
  readonly device: BenchDevice;
}

export function newWriters(count: number): Writer[] {
  return Array.from({ length: count }, () => {
    const motebit = newMotebit(1);
    return { motebit, device: motebit.devices[0]! };
  });
}

/** Per writer, `batches` batches of BATCH fresh events (device_seq from 1). */
export function makeBatches(writers: readonly Writer[], batches: number): WireEvent[][][] {
  return writers.map(({ device }) =>
    Array.from({ length: batches }, (_, b) =>
      Array.from({ length: BATCH }, (_, k) => ({
        event_id: newEventId(),
        device_id: device.deviceId,
        device_seq: b * BATCH + k + 1,
        key_id: 'k1',
        body: toBase64Url(randomBytes(BODY_BYTES)),
      })),
    ),
  );
}
