// The tray menu as plain data: the status line(s), Sync now, Pause/Resume sync, Settings…, Quit. The
// Electron adapter turns it into a Menu; everything that decides what the menu says lives here, tested
// without Electron. `now` is a parameter so relative times ("Synced 12 s ago") are deterministic.
import type { AppState } from '../../shared/portable/ipc-contract.ts';
import type { SyncStatus } from '../../shared/portable/status.ts';
import { quarantineText } from './status-words.ts';

export type TrayAction = 'open-settings' | 'sync-now' | 'pause' | 'resume' | 'quit';

export type TrayMenuItem =
  | { readonly type: 'separator' }
  | {
      readonly type: 'normal';
      /** Stable id (tests, and the adapter's click routing). */
      readonly id: string;
      readonly label: string;
      readonly enabled: boolean;
      /** What a click does; null for a plain information line. */
      readonly action: TrayAction | null;
    };

export interface TrayMenu {
  /** The first line of the menu, also used as the tray tooltip. */
  readonly statusLine: string;
  readonly items: readonly TrayMenuItem[];
}

/** How often the adapter re-renders the menu so relative times stay fresh (and only when a label changed). */
export const MENU_REFRESH_MS = 5_000;

const MAX_MESSAGE = 60;

/** "just now", "12 s", "3 min", "2 h", "4 d" (whole units, rounded down). */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h`;
  return `${Math.floor(h / 24)} d`;
}

function ago(at: number, now: number): string {
  return now - at < 2_000 ? 'just now' : `${formatDuration(now - at)} ago`;
}

/** The countdown to the next cycle, rounded up so it never reads "0 s" while still waiting. */
function retryIn(nextCycleAt: number | null, now: number): string {
  if (nextCycleAt === null) return '';
  const wait = nextCycleAt - now;
  if (wait <= 500) return ' — retrying now';
  return ` — retrying in ${formatDuration(Math.ceil(wait / 1000) * 1000)}`;
}

function shorten(text: string): string {
  const oneLine = text.replace(/\s+/g, ' ').trim();
  return oneLine.length <= MAX_MESSAGE ? oneLine : `${oneLine.slice(0, MAX_MESSAGE - 1)}…`;
}

const PHASES = { connect: 'connecting', resend: 'sending again what the relay lost', push: 'sending', pull: 'receiving', snapshot_download: 'downloading a snapshot', snapshot_upload: 'saving a snapshot' } as const;

/** The one-line summary of the sync state. */
export function statusLine(status: SyncStatus | null, state: AppState, now: number): string {
  if (state.phase === 'setup' || status === null) return 'Not set up — open Settings to start';
  if (status.revoked) return 'This device was revoked — open Settings';
  switch (status.state) {
    case 'syncing': {
      const p = status.progress;
      if (!p) return 'Syncing…';
      return `Syncing — ${PHASES[p.phase]}${p.total !== null && p.total > 0 ? ` ${p.done}/${p.total}` : p.done > 0 ? ` ${p.done}` : '…'}`;
    }
    case 'offline':
      return `Offline${retryIn(status.nextCycleAt, now)}`;
    case 'error':
      return status.lastError ? `Sync failed: ${shorten(status.lastError.message)}` : 'Sync failed';
    case 'paused':
      return 'Sync paused';
    case 'idle':
      return status.lastSuccessAt === null ? 'Not synced yet' : `Synced ${ago(status.lastSuccessAt, now)}`;
  }
}

/** "1 conflict to review", "2 conflicts to review", or null when there are none. */
export function conflictsLine(status: SyncStatus | null): string | null {
  const n = status?.openConflicts ?? 0;
  if (n <= 0) return null;
  return n === 1 ? '1 conflict to review' : `${n} conflicts to review`;
}

/** A repair of the relay in the last day: "Relay lost data 3 min ago — 2,438 events sent again". */
function recoveryLine(status: SyncStatus | null, now: number): string | null {
  const recovery = status?.lastRecovery;
  if (!recovery || now - recovery.at > 24 * 60 * 60 * 1000) return null;
  return `Relay lost data ${ago(recovery.at, now)} — ${recovery.resent === 1 ? '1 event' : `${recovery.resent.toLocaleString('en-US')} events`} sent again`;
}

/** Local changes the relay has not acknowledged, worth a line only when sync is not working right now. */
function pendingLine(status: SyncStatus | null): string | null {
  if (!status || status.pendingOut === 0) return null;
  if (status.state !== 'offline' && status.state !== 'error' && status.state !== 'paused') return null;
  return status.pendingOut === 1 ? '1 change waiting to send' : `${status.pendingOut} changes waiting to send`;
}

export function menuTemplate(status: SyncStatus | null, state: AppState, now: number = Date.now()): TrayMenu {
  const ready = state.phase === 'ready' && status !== null;
  const paused = status?.state === 'paused';
  const line = statusLine(status, state, now);
  const conflicts = conflictsLine(ready ? status : null);
  const pending = pendingLine(ready ? status : null);
  const items: TrayMenuItem[] = [{ type: 'normal', id: 'status', label: line, enabled: false, action: null }];
  if (ready && status.state === 'error' && status.lastError) {
    items.push({ type: 'normal', id: 'next-step', label: shorten(status.lastError.nextStep), enabled: false, action: null });
  }
  if (pending) items.push({ type: 'normal', id: 'pending', label: pending, enabled: false, action: null });
  const quarantined = ready ? quarantineText(status.quarantinedEvents) : null;
  if (quarantined) items.push({ type: 'normal', id: 'quarantined', label: shorten(quarantined), enabled: false, action: null });
  const recovered = ready ? recoveryLine(status, now) : null;
  if (recovered) items.push({ type: 'normal', id: 'recovered', label: recovered, enabled: false, action: null });
  // The conflicts line is a shortcut: clicking it opens Settings, where they are reviewed.
  if (conflicts) items.push({ type: 'normal', id: 'conflicts', label: `${conflicts}…`, enabled: true, action: 'open-settings' });
  items.push(
    { type: 'separator' },
    { type: 'normal', id: 'sync-now', label: 'Sync now', enabled: ready && !paused && !status.revoked && status.state !== 'syncing', action: 'sync-now' },
    paused
      ? { type: 'normal', id: 'pause-resume', label: 'Resume sync', enabled: ready, action: 'resume' }
      : { type: 'normal', id: 'pause-resume', label: 'Pause sync', enabled: ready, action: 'pause' },
    { type: 'separator' },
    { type: 'normal', id: 'settings', label: 'Settings…', enabled: true, action: 'open-settings' },
    { type: 'normal', id: 'quit', label: 'Quit', enabled: true, action: 'quit' },
  );
  return { statusLine: conflicts && line.startsWith('Synced') ? `${line} · ${conflicts}` : line, items };
}

/** A key that changes exactly when the rendered menu would: the adapter rebuilds only then. */
export function menuKey(menu: TrayMenu): string {
  return JSON.stringify(menu);
}

/** The tray tooltip. */
export function tooltip(menu: TrayMenu): string {
  return `Motebit Sync — ${menu.statusLine}`;
}
