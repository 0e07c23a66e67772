// How times, devices and values read in the window.
import type { SyncStatus } from '../shared/status.ts';

/** "12 s ago", "3 min ago", "2 h ago", else a date. `now` is passed in so the caller owns the clock. */
export function ago(at: number, now: number): string {
  const seconds = Math.max(0, Math.round((now - at) / 1000));
  if (seconds < 60) return `${seconds} s ago`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ago`;
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return `${hours} h ago`;
  return `on ${new Date(at).toLocaleDateString()}`;
}

export function inFuture(at: number, now: number): string {
  const seconds = Math.max(0, Math.round((at - now) / 1000));
  if (seconds < 60) return `in ${seconds} s`;
  return `in ${Math.round(seconds / 60)} min`;
}

export function dateTime(at: number): string {
  return new Date(at).toLocaleString();
}

export const STATE_LABELS: Record<SyncStatus['state'], string> = {
  idle: 'Up to date',
  syncing: 'Syncing…',
  offline: 'Offline',
  error: 'Error',
  paused: 'Paused',
};

export function transportLabel(transport: SyncStatus['transport']): string {
  if (transport === 'websocket') return 'WebSocket (live)';
  if (transport === 'http') return 'HTTP (polling)';
  return 'Not connected';
}

/** What a sync is doing now, for the progress line. */
export function progressText(progress: NonNullable<SyncStatus['progress']>): string {
  const count = (noun: string) => `${progress.done}${progress.total !== null ? ` of ${progress.total}` : ''} ${noun}`;
  if (progress.phase === 'connect') return 'Connecting to the relay…';
  if (progress.phase === 'push') return `Sending ${count('changes')}…`;
  if (progress.phase === 'resend') return `Sending again what the relay lost: ${count('changes')}…`;
  return `Receiving ${count('changes')}…`;
}

/** A JSON value as people read it: strings plain, everything else as indented JSON. */
export function showValue(value: unknown, op: 'set' | 'delete'): string {
  if (op === 'delete') return '(deleted)';
  if (typeof value === 'string') return value;
  return JSON.stringify(value, null, 2);
}

export function shortId(id: string): string {
  return id.length > 12 ? `${id.slice(0, 10)}…` : id;
}

