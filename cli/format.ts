// What the CLI prints. Human text for people; --json output is stable (documented in README):
// field names and meanings only ever gain fields, never change.
import type { ConflictRecord, EntityState } from '../main/store/event-store.ts';
import type { DeviceInfo } from '../shared/portable/relay-api.ts';
import type { SyncProgress, SyncStatus } from '../shared/portable/status.ts';
import { quarantineText } from '../main/app/status-words.ts';

// Terminal escape sequences: CSI (ESC [ or the C1 byte 0x9b, parameters, a final byte), OSC/DCS/APC/PM/SOS
// strings (up to BEL or ST), and any other ESC + one character.
const ESCAPES = /(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?|(?:\x1b[\]PX^_]|[\x90\x98\x9d-\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?|\x1b[\s\S]?/g;
// What is left of C0 and C1 (but newline and tab), DEL, and the bidirectional overrides that reorder text.
const CONTROLS = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/g;

/**
 * Text from outside this process (device names, the relay's messages, error text) made safe to print to a
 * terminal: escape sequences removed, other control characters shown as U+FFFD. The one function the CLI
 * passes every such text through, so a device name cannot move the cursor, recolour or retitle the terminal.
 */
export function printable(text: string): string {
  return text.replace(ESCAPES, '\ufffd').replace(CONTROLS, '\ufffd');
}

/** printable() for one-line fields: newlines and tabs become spaces too. */
export function printableLine(text: string): string {
  return printable(text).replace(/[\n\t\r]/g, ' ');
}

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
    `device    ${who.deviceId}${who.deviceName ? ` (${printableLine(who.deviceName)})` : ''}`,
    `relay     ${who.relayUrl === null ? 'not set' : printableLine(who.relayUrl)}`,
    `state     ${status.state}${status.transport ? ` over ${status.transport === 'websocket' ? 'WebSocket' : 'HTTP'}` : ''}`,
    `last sync ${ago(status.lastSuccessAt)}`,
    `pending   ${status.pendingOut} to push`,
    `conflicts ${status.openConflicts} open`,
  ];
  if (status.rejectedEvents > 0) lines.push(`rejected  ${status.rejectedEvents} received events could not be applied`);
  const quarantined = quarantineText(status.quarantinedEvents);
  if (quarantined) lines.push(`set aside ${quarantined}`);
  if (status.lastRecovery) lines.push(`recovered ${ago(status.lastRecovery.at)}: ${printableLine(status.lastRecovery.message)}`);
  if (status.lastError) lines.push(`error     ${printableLine(status.lastError.message)}`, `next      ${printableLine(status.lastError.nextStep)}`);
  return lines.join('\n');
}

/** About how long is left, in words: "about 20 s left", "about 3 min left" (empty when not known). */
export function timeLeft(remainingMs: number | null | undefined): string {
  if (remainingMs === null || remainingMs === undefined) return '';
  const s = Math.max(1, Math.round(remainingMs / 1000));
  return s < 60 ? `about ${s} s left` : `about ${Math.round(s / 60)} min left`;
}

const megabytes = (bytes: number): string => (bytes / 1_000_000).toFixed(1);

/** One progress line: sending and receiving each count their own direction, never one figure for both. */
export function progressLine(progress: SyncProgress): string {
  const of = `${progress.done}${progress.total !== null ? ` of ${progress.total}` : ''}`;
  if (progress.phase === 'push') return `pushing ${of} events…`;
  if (progress.phase === 'resend') return `pushing again ${of} events the relay lost…`;
  if (progress.phase === 'snapshot_download') return `downloading a snapshot: ${megabytes(progress.done)}${progress.total !== null ? ` of ${megabytes(progress.total)}` : ''} MB…`;
  if (progress.phase === 'snapshot_upload') return `uploading a snapshot: ${megabytes(progress.done)}${progress.total !== null ? ` of ${megabytes(progress.total)}` : ''} MB…`;
  const left = timeLeft(progress.remainingMs);
  return `pulling ${of} events…${left ? ` ${left}` : ''}`;
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
    last_error: status.lastError && { kind: status.lastError.kind, message: status.lastError.message, next_step: status.lastError.nextStep, ...(status.lastError.details ? { details: status.lastError.details } : {}) },
  };
}

// JSON escapes C0 controls but not C1 or bidi overrides: printable for the terminal too.
const show = (value: unknown): string => printableLine(value === null ? 'null' : JSON.stringify(value));

/** "  dv_… at 2026-…: value", or that the value is no longer kept (a settled conflict of a deleted entity). */
function sideLine(side: ConflictRecord['winner'], mark: string): string {
  if (!side.kept || side.writtenAt === null) return `  ${side.deviceId}: no longer kept (the entity was deleted and its old history dropped)${mark}`;
  return `  ${side.deviceId} at ${new Date(side.writtenAt).toISOString()}: ${side.op === 'delete' ? 'deleted' : show(side.value)}${mark}`;
}

export function conflictsText(conflicts: readonly ConflictRecord[]): string {
  if (conflicts.length === 0) return 'no open conflicts';
  return conflicts
    .map((c) => {
      const mark = (side: ConflictRecord['winner']) => (side.eventId === c.currentEventId ? ' (current)' : '');
      return [
        `#${c.id} ${printableLine(c.entity)}${c.reviewedAt ? ' (reviewed)' : ''}${c.resolvedBy ? ' (resolved)' : ''}`,
        sideLine(c.winner, mark(c.winner)),
        sideLine(c.loser, mark(c.loser)),
      ].join('\n');
    })
    .join('\n');
}

export function conflictsJson(conflicts: readonly ConflictRecord[]): object {
  const side = (s: ConflictRecord['winner']) => ({ event_id: s.eventId, device_id: s.deviceId, op: s.op, value: s.value, written_at: s.writtenAt, kept: s.kept });
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
    .map((d) => `${printableLine(d.device_id)}${d.device_id === self ? ' (this device)' : ''}  ${printableLine(d.name ?? '')}  enrolled ${new Date(d.enrolled_at).toISOString()}${d.revoked_at ? `  REVOKED ${new Date(d.revoked_at).toISOString()}` : ''}`)
    .join('\n');
}
