// Compaction (docs/protocol.md §7, "Snapshots and compaction"): the relay's one policy for dropping events.
// With L the newest complete snapshot: once every live device (device rows not revoked; the recovery key's
// row is no device) has acknowledged at least L's covers for every writer L names, each such writer's
// events up to L.covers[writer] become stubs. A device with no acknowledgement blocks it: never drop what a
// live device may not have. Run after a commit and after an acknowledgement; the decision and the drop
// are one transaction in the store, so a device enrolled meanwhile is counted.
import { coversAll } from '../shared/ack.ts';
import type { Logger } from './log.ts';
import type { CompactionResult, CompactionState, RelayStore } from './store.ts';

/** Whether a device row is a device that must have acknowledged (not revoked, not the recovery key). */
const isLiveDevice = (device: { deviceId: string; revokedAt: number | null }): boolean => device.revokedAt === null && !device.deviceId.startsWith('rk_');

/** The live devices' newest acknowledgements, in the order of `state.devices`. */
export function liveAcks<T extends { deviceId: string }>(devices: readonly { deviceId: string; revokedAt: number | null }[], acks: readonly T[]): T[] {
  const byDevice = new Map(acks.map((ack) => [ack.deviceId, ack]));
  return devices.filter(isLiveDevice).flatMap((device) => byDevice.get(device.deviceId) ?? []);
}

/**
 * Each writer's new floor (its events 1..floor become stubs), or null when nothing may be dropped now. A
 * floor never passes what the writer has stored, and never moves back.
 */
export function compactionFloors(state: CompactionState): Map<string, number> | null {
  const latest = state.latest;
  if (!latest) return null;
  const live = state.devices.filter(isLiveDevice);
  // Nobody to have acknowledged anything: keep everything.
  if (live.length === 0) return null;
  const acks = new Map(state.acks.map((ack) => [ack.deviceId, ack]));
  for (const device of live) {
    const ack = acks.get(device.deviceId);
    if (!ack || !coversAll(ack.covers, latest.covers)) return null;
  }
  const floors = new Map<string, number>();
  for (const [writer, covered] of Object.entries(latest.covers)) {
    const stored = state.writers.get(writer);
    const floor = Math.min(covered, stored?.head ?? 0);
    if (floor > (stored?.floor ?? 0)) floors.set(writer, floor);
  }
  return floors.size > 0 ? floors : null;
}

/** Compacts the motebit if the policy allows, and logs what was dropped (counts only, never bodies). */
export async function compactMotebit(store: RelayStore, log: Logger, motebitId: string): Promise<CompactionResult | null> {
  const result = await store.compact(motebitId, compactionFloors);
  if (result) {
    log.info({ motebit_id: motebitId, dropped: result.events, bytes_freed: result.bytes, floors: Object.fromEntries(result.floors) }, 'log compacted');
  }
  return result;
}
