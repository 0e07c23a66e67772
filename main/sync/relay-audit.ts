// Pure judgements about what a relay served, against what this device knows: whether the relay log is
// the one this device synced with, which writers it holds but did not send, and how to say so in words.
import type { FrontierResponse } from '../../shared/portable/relay-api.ts';
import type { Recovery, RecoveryReason, Repair } from '../store/relay-ledger.ts';

export interface KnownLog {
  /** The epoch of the log this device synced with (null before its first sync). */
  readonly epoch: string | null;
  readonly cursor: number;
  /** The last event received and its seq, when known. */
  readonly cursorEvent: { readonly seq: number; readonly eventId: string } | null;
}

/**
 * Whether the relay log is not the one this device synced with: another epoch (its storage was replaced),
 * a head behind the cursor, or another event where this device last received one (restored from an
 * older copy, perhaps grown again since). Null when it is the same log as far as can be told; what is
 * left (a writer the relay holds but did not send) is caught after the pull, by `undelivered`.
 */
export function judgeRelayLog(known: KnownLog, log: Pick<FrontierResponse, 'epoch' | 'head' | 'at'>): RecoveryReason | null {
  if (known.epoch !== null && known.epoch !== log.epoch) return 'relay_replaced';
  if (log.head < known.cursor) return 'relay_rolled_back';
  if (known.cursorEvent && log.at && log.at.seq === known.cursorEvent.seq && log.at.event_id !== known.cursorEvent.eventId) return 'relay_rolled_back';
  return null;
}

/** How many of the log's events were compacted: each writer's 1..floor are stubs that no pull returns. */
export function compactedEvents(log: Pick<FrontierResponse, 'floors'>): number {
  return Object.values(log.floors ?? {}).reduce((sum, floor) => sum + floor, 0);
}

export interface Gap {
  readonly deviceId: string;
  /** The writer's highest event held here. */
  readonly held: number;
  /** The highest the relay (or a writer's signed clock) says exists. */
  readonly claimed: number;
}

/**
 * Writers of which the relay's frontier (read before the pull) names more events than this device now
 * holds, after pulling everything: the relay did not send them. This device's own events, and writers
 * already being repaired, are left out.
 */
export function undelivered(log: Pick<FrontierResponse, 'devices'>, held: ReadonlyMap<string, number>, me: string, repairing: ReadonlySet<string>): Gap[] {
  return log.devices
    .filter((device) => device.device_id !== me && !repairing.has(device.device_id))
    .map((device) => ({ deviceId: device.device_id, held: held.get(device.device_id) ?? 0, claimed: device.seq }))
    .filter((gap) => gap.claimed > gap.held);
}

/** A device id short enough for a sentence, long enough to tell devices apart. */
export function shortDevice(deviceId: string): string {
  return deviceId.slice(0, 11);
}

/** "device dv_AbCdEfGh (this device has 90 of its 100 events)", for each gap. */
export function describeMissing(gaps: readonly Gap[]): string {
  return gaps.map((gap) => `device ${shortDevice(gap.deviceId)} (this device has ${gap.held} of its ${gap.claimed} events)`).join('; ');
}

export function describeRepairs(repairs: readonly Repair[]): string {
  const parts = repairs.map((repair) => `event ${repair.deviceSeq} of device ${shortDevice(repair.deviceId)} (${repair.code}: ${repair.message})`);
  return `the relay served events that failed verification and were not applied: ${parts.join('; ')}`;
}

const WHAT_HAPPENED: Record<RecoveryReason, string> = {
  relay_replaced: 'its storage was replaced by an empty one',
  relay_rolled_back: 'it was restored from an older copy',
  relay_missing_events: 'it had lost some events',
  relay_skipped_events: 'it had not sent some events, so the whole log was fetched again',
};

/** "The relay had lost data (its storage was replaced by an empty one); this device sent 2,438 events again." */
export function recoveryText(recovery: Pick<Recovery, 'reason' | 'resent'>): string {
  const n = recovery.resent;
  const sent = n > 0 ? `this device sent ${n.toLocaleString('en-US')} event${n === 1 ? '' : 's'} again` : 'another device had already sent everything again';
  return `The relay had lost data (${WHAT_HAPPENED[recovery.reason]}); ${sent}.`;
}
