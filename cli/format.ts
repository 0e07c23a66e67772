// What the CLI prints. Human text for people; --json output is stable (documented in README):
// field names and meanings only ever gain fields, never change.
import type { ConflictRecord, EntityState } from '../main/store/event-store.ts';
import type { DeviceInfo } from '../shared/relay-api.ts';
import type { SyncStatus } from '../shared/status.ts';
import { quarantineText } from '../main/app/status-words.ts';

export function ago(then: number | null, now = Date.now()): string {
  if (then === null) return 'never';
  const s = Math.max(0, Math.round((now - then) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86_400) return `${Math.round(s / 3600)} h ago`;
  return new Date(then).toISOString();
}

export function statusText(status: SyncStatus, who: { motebitId: string; deviceId: string; deviceName: string | null; relayUrl: string | null }): string {
  const lines = [
    `motebit   ${who.motebitId}`,
    `device    ${who.deviceId}${who.deviceName ? ` (${who.deviceName})` : ''}`,
    `relay     ${who.relayUrl ?? 'not set'}`,
    `state     ${status.state}${status.transport ? ` over ${status.transport === 'websocket' ? 'WebSocket' : 'HTTP'}` : ''}`,
    `last sync ${ago(status.lastSuccessAt)}`,
    `pending   ${status.pendingOut} to push`,
    `conflicts ${status.openConflicts} open`,
  ];
  if (status.rejectedEvents > 0) lines.push(`rejected  ${status.rejectedEvents} received events could not be applied`);
  const quarantined = quarantineText(status.quarantinedEvents);
  if (quarantined) lines.push(`set aside ${quarantined}`);
  if (status.lastRecovery) lines.push(`recovered ${ago(status.lastRecovery.at)}: ${status.lastRecovery.message}`);
  if (status.lastError) lines.push(`error     ${status.lastError.message}`, `next      ${status.lastError.nextStep}`);
  return lines.join('\n');
}

export function statusJson(status: SyncStatus, who: { motebitId: string; deviceId: string }): object {
  return {
    motebit_id: who.motebitId,
    device_id: who.deviceId,
    state: status.state,
    transport: status.transport,
    last_success_at: status.lastSuccessAt,
    pending_out: status.pendingOut,
    open_conflicts: status.openConflicts,
    rejected_events: status.rejectedEvents,
    quarantined_events: status.quarantinedEvents,
    last_recovery: status.lastRecovery && { at: status.lastRecovery.at, reason: status.lastRecovery.reason, resent: status.lastRecovery.resent, message: status.lastRecovery.message },
    last_error: status.lastError && { kind: status.lastError.kind, message: status.lastError.message, next_step: status.lastError.nextStep },
  };
}

const show = (value: unknown): string => (value === null ? 'null' : JSON.stringify(value));

export function conflictsText(conflicts: readonly ConflictRecord[]): string {
  if (conflicts.length === 0) return 'no open conflicts';
  return conflicts
    .map((c) => {
      const mark = (side: ConflictRecord['winner']) => (side.eventId === c.currentEventId ? ' (current)' : '');
      return [
        `#${c.id} ${c.entity}${c.reviewedAt ? ' (reviewed)' : ''}${c.resolvedBy ? ' (resolved)' : ''}`,
        `  ${c.winner.deviceId} at ${new Date(c.winner.writtenAt).toISOString()}: ${c.winner.op === 'delete' ? 'deleted' : show(c.winner.value)}${mark(c.winner)}`,
        `  ${c.loser.deviceId} at ${new Date(c.loser.writtenAt).toISOString()}: ${c.loser.op === 'delete' ? 'deleted' : show(c.loser.value)}${mark(c.loser)}`,
      ].join('\n');
    })
    .join('\n');
}

export function conflictsJson(conflicts: readonly ConflictRecord[]): object {
  const side = (s: ConflictRecord['winner']) => ({ event_id: s.eventId, device_id: s.deviceId, op: s.op, value: s.value, written_at: s.writtenAt });
  return {
    conflicts: conflicts.map((c) => ({
      id: c.id,
      entity: c.entity,
      winner: side(c.winner),
      loser: side(c.loser),
      current_event_id: c.currentEventId,
      detected_at: c.detectedAt,
      reviewed_at: c.reviewedAt,
      resolved_by: c.resolvedBy,
    })),
  };
}

export function stateJson(state: readonly EntityState[]): object {
  return { entities: state.filter((s) => !s.deleted).map((s) => ({ entity: s.entity, value: s.value, event_id: s.eventId, device_id: s.deviceId })) };
}

export function devicesText(devices: readonly DeviceInfo[], self: string): string {
  return devices
    .map((d) => `${d.device_id}${d.device_id === self ? ' (this device)' : ''}  ${d.name ?? ''}  enrolled ${new Date(d.enrolled_at).toISOString()}${d.revoked_at ? `  REVOKED ${new Date(d.revoked_at).toISOString()}` : ''}`)
    .join('\n');
}
