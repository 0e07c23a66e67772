// Telling the other devices that this one moved to another relay. Devices on different relays stop seeing
// each other, so a device that moves can leave word through the old relay: an ordinary event of the log
// (sealed by this device, encrypted like every other when encryption is on) on one entity, holding the new
// address. Another device shows it as "Device X moved to relay URL — Move too?". Moving is always that
// person's choice: nothing here ever changes a device's relay by itself.
import { z } from 'zod';
import type { SealedEvent } from '../../shared/portable/event.ts';
import { parseRelayUrl } from '../config/relay-url.ts';
import type { EventStore } from '../store/event-store.ts';

/** The one entity the word is left on; the latest move wins, as for any entity. */
export const RELAY_MOVE_ENTITY = 'motebit-sync/relay-moved';
/** The store cursor holding the time (written_at) of the last move this device's person dismissed. */
const DISMISSED = 'relay_move_dismissed_at';

const MoveValueSchema = z.strictObject({
  url: z.string().max(2048),
  device_id: z.string().max(128),
  device_name: z.string().max(64).nullable(),
  at: z.int().min(0),
});

export interface MoveOffer {
  readonly url: string;
  readonly deviceId: string;
  readonly deviceName: string | null;
  readonly at: number;
}

/** Leaves word, in this device's log, that it moves to `url` (sent through the current relay on the next sync). */
export function announceMove(store: EventStore, move: { url: string; deviceName: string | null; at: number }): SealedEvent {
  return store.put(RELAY_MOVE_ENTITY, { url: move.url, device_id: store.identity.deviceId, device_name: move.deviceName, at: move.at });
}

/**
 * The move another device announced, when it points somewhere else than this device's relay and its person
 * has not dismissed it; null otherwise (also for a value that is not a valid announcement).
 */
export function moveOffer(store: EventStore, currentRelayUrl: string | null): MoveOffer | null {
  const entity = store.get(RELAY_MOVE_ENTITY);
  if (!entity || entity.deleted) return null;
  const parsed = MoveValueSchema.safeParse(entity.value);
  if (!parsed.success) return null;
  const move = parsed.data;
  if (entity.deviceId === store.identity.deviceId) return null;
  let url: string;
  try {
    url = parseRelayUrl(move.url);
  } catch {
    return null;
  }
  if (url === currentRelayUrl) return null;
  if (store.getCursor(DISMISSED) >= move.at) return null;
  return { url, deviceId: entity.deviceId, deviceName: move.device_name, at: move.at };
}

/** Stops offering the move announced at `at` (a later move is offered again). */
export function dismissMove(store: EventStore, at: number): void {
  store.setCursor(DISMISSED, Math.max(at, store.getCursor(DISMISSED)));
}
