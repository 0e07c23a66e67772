// How times, devices and values read in the window.
import type { SyncStatus } from '../shared/portable/status.ts';

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

/** "about 20 s left", "about 3 min left"; empty when not known. */
export function timeLeft(remainingMs: number | null | undefined): string {
  if (remainingMs === null || remainingMs === undefined) return '';
  const seconds = Math.max(1, Math.round(remainingMs / 1000));
  return seconds < 60 ? `about ${seconds} s left` : `about ${Math.round(seconds / 60)} min left`;
}

/** What a sync is doing now, for the progress line: one direction per line, never sent and received in one figure. */
export function progressText(progress: NonNullable<SyncStatus['progress']>): string {
  const count = (noun: string) => `${progress.done.toLocaleString('en-US')}${progress.total !== null ? ` of ${progress.total.toLocaleString('en-US')}` : ''} ${noun}`;
  if (progress.phase === 'connect') return 'Connecting to the relay…';
  if (progress.phase === 'push') return `Sending ${count('changes')}…`;
  if (progress.phase === 'resend') return `Sending again what the relay lost: ${count('changes')}…`;
  const bytes = `${byteSize(progress.done)}${progress.total !== null ? ` of ${byteSize(progress.total)}` : ''}`;
  if (progress.phase === 'snapshot_download') return `Downloading a snapshot of your motebit: ${bytes}…`;
  if (progress.phase === 'snapshot_upload') return `Saving a snapshot to the relay: ${bytes}…`;
  const left = progress.done < (progress.total ?? 0) ? timeLeft(progress.remainingMs) : '';
  return `Receiving ${count('changes')}…${left ? ` ${left}` : ''}`;
}

/** "12.3 MB", "840 kB", "512 bytes". */
export function byteSize(bytes: number): string {
  if (bytes < 1000) return `${bytes} bytes`;
  if (bytes < 1_000_000) return `${Math.round(bytes / 1000)} kB`;
  if (bytes < 1_000_000_000) return `${(bytes / 1_000_000).toFixed(1)} MB`;
  return `${(bytes / 1_000_000_000).toFixed(2)} GB`;
}

/** "120 changes received just now", "1 change received 3 min ago". */
export function arrivalText(arrival: { count: number; at: number }, now: number): string {
  const when = now - arrival.at < 10_000 ? 'just now' : ago(arrival.at, now);
  return `${arrival.count.toLocaleString('en-US')} change${arrival.count === 1 ? '' : 's'} received ${when}`;
}

/** A JSON value as people read it: strings plain, everything else as indented JSON. */
export function showValue(value: unknown, op: 'set' | 'delete' | null): string {
  if (op === null) return '(no longer kept: the entity was deleted and its old history dropped)';
  if (op === 'delete') return '(deleted)';
  if (typeof value === 'string') return value;
  return JSON.stringify(value, null, 2);
}

export function shortId(id: string): string {
  return id.length > 12 ? `${id.slice(0, 10)}…` : id;
}


/** The lists of the Conflicts tab (the contract's filters the window offers). */
export type ConflictFilter = 'open' | 'reviewed' | 'settled' | 'all';

const FILTER_LABELS: Record<ConflictFilter, string> = { open: 'Open', reviewed: 'Reviewed', settled: 'Settled', all: 'All' };

/** "Open (200)"; the count is left out when unknown. */
export function conflictFilterLabel(filter: ConflictFilter, count: number | null): string {
  return count === null ? FILTER_LABELS[filter] : `${FILTER_LABELS[filter]} (${count})`;
}

/** A device by its name, else by its shortened id. */
export function deviceLabel(deviceId: string, name: string | null): string {
  return name ?? shortId(deviceId);
}
