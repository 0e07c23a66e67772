// The one rule for what a pushed batch does to a motebit's log, shared by every RelayStore: idempotent by
// event id, each writer's events gap-free from 1, seqs assigned in batch order after the head, and a
// quota that refuses the whole batch rather than part of it. Stores only look things up and write the plan.
import type { PushResult } from '../shared/portable/relay-api.ts';
import type { StoredWireEvent, WireEvent } from '../shared/portable/wire.ts';
import type { AppendQuota, QuotaName } from './store.ts';

export interface BatchLookup {
  /** The stored event with this id (its seq and writer), if any. */
  existing(eventId: string): { seq: number; deviceId: string } | undefined;
  /** The writer's highest stored device_seq (0 when it has none). */
  writerHead(deviceId: string): number;
}

export interface LogUsage {
  head: number;
  events: number;
  bytes: number;
}

export interface BatchPlan {
  results: PushResult[];
  /** Events to insert, with their new seqs, in order. */
  stored: StoredWireEvent[];
  /** Each writer's new highest device_seq (only writers that stored something). */
  writerHeads: Map<string, number>;
  head: number;
  /** Bytes the stored events add to the motebit's usage. */
  bytes: number;
  /** Set when the batch would go over a quota: then nothing is stored. */
  refused?: QuotaName;
}

/** Bytes an event counts against the stored-bytes quota: its opaque body. */
export const storedBytes = (event: Pick<WireEvent, 'body'>): number => event.body.length;

export function planBatch(usage: LogUsage, events: WireEvent[], lookup: BatchLookup, quota?: AppendQuota): BatchPlan {
  let head = usage.head;
  let bytes = 0;
  const results: PushResult[] = [];
  const stored: StoredWireEvent[] = [];
  const writerHeads = new Map<string, number>();
  const placed = new Map<string, { seq: number; deviceId: string }>();
  for (const event of events) {
    const existing = placed.get(event.event_id) ?? lookup.existing(event.event_id);
    if (existing) {
      results.push(
        existing.deviceId === event.device_id
          ? { event_id: event.event_id, status: 'duplicate', seq: existing.seq }
          : { event_id: event.event_id, status: 'rejected', reason: 'event_id_taken' },
      );
      continue;
    }
    const writer = writerHeads.get(event.device_id) ?? lookup.writerHead(event.device_id);
    if (event.device_seq <= writer) {
      results.push({ event_id: event.event_id, status: 'rejected', reason: 'device_seq_conflict' });
      continue;
    }
    if (event.device_seq !== writer + 1) {
      results.push({ event_id: event.event_id, status: 'rejected', reason: 'device_seq_gap' });
      continue;
    }
    head += 1;
    writerHeads.set(event.device_id, event.device_seq);
    placed.set(event.event_id, { seq: head, deviceId: event.device_id });
    stored.push({ ...event, seq: head });
    bytes += storedBytes(event);
    results.push({ event_id: event.event_id, status: 'stored', seq: head });
  }
  const refused = quota === undefined ? undefined : overQuota(usage, stored.length, bytes, quota);
  if (refused) return { results: [], stored: [], writerHeads: new Map(), head: usage.head, bytes: 0, refused };
  return { results, stored, writerHeads, head, bytes };
}

function overQuota(usage: LogUsage, events: number, bytes: number, quota: AppendQuota): QuotaName | undefined {
  if (events === 0) return undefined;
  if (usage.events + events > quota.maxEvents) return 'stored_events';
  if (usage.bytes + bytes > quota.maxBytes) return 'stored_bytes';
  return undefined;
}
