// The status panel: state, transport, last sync, pending changes, relay; Sync now with its progress (from
// the status.changed events main pushes during the cycle) and then the new last-sync time.
import type { SyncStatus } from '../shared/status.ts';
import { h, replace } from './dom.ts';
import { STATE_LABELS, ago, dateTime, inFuture, progressText, transportLabel } from './format.ts';
import { busy, isBusy, type Call } from './ui.ts';

export interface StatusView {
  readonly element: HTMLElement;
  update(status: SyncStatus): void;
  setRelayUrl(url: string): void;
  /** Re-renders the relative times ("12 s ago"). */
  tick(now: number): void;
}

export function statusView(call: Call, showConflicts: () => void): StatusView {
  let status: SyncStatus | null = null;
  let manual = false;
  let lineKind: 'progress' | 'result' | 'none' = 'none';
  let shownConflicts = -1;

  const state = h('span', { 'data-testid': 'state' }, '…');
  const lastSync = h('span', { 'data-testid': 'last-sync' }, '…');
  const nextSync = h('span', { 'data-testid': 'next-sync' }, '…');
  const transport = h('span', { 'data-testid': 'transport' }, '…');
  const pending = h('span', { 'data-testid': 'pending' }, '…');
  const conflicts = h('span', { 'data-testid': 'open-conflicts' }, '…');
  const rejected = h('span', { 'data-testid': 'rejected' }, '…');
  const repairs = h('span', { 'data-testid': 'relay-repairs' }, '…');
  const relay = h('span', { 'data-testid': 'relay-url', className: 'mono' }, '…');
  const errorBox = h('div', { className: 'error-box', role: 'alert', hidden: true });
  const syncButton = h('button', { type: 'button', className: 'primary', 'data-testid': 'sync-now' }, 'Sync now');
  const progressLine = h('p', { className: 'progress-line', role: 'status', 'aria-live': 'polite', 'data-testid': 'sync-progress' });
  const progressBar = h('progress', { className: 'progress-bar', hidden: true, 'aria-label': 'Sync progress' });

  const row = (label: string, value: HTMLElement) => h('div', { className: 'fact' }, h('dt', {}, label), h('dd', {}, value));
  const element = h(
    'section',
    { id: 'panel-status', className: 'panel', 'aria-labelledby': 'status-heading' },
    h('h2', { id: 'status-heading' }, 'Status'),
    h('dl', { className: 'facts' }, row('State', state), row('Last sync', lastSync), row('Next sync', nextSync), row('Connection', transport), row('Waiting to send', pending), row('Open conflicts', conflicts), row('Rejected events', rejected), row('Relay repairs', repairs), row('Relay', relay)),
    errorBox,
    h('div', { className: 'actions' }, syncButton),
    progressBar,
    progressLine,
  );

  function setLine(text: string, kind: typeof lineKind, isError = false): void {
    progressLine.textContent = text;
    progressLine.classList.toggle('error', isError);
    lineKind = kind;
  }

  function render(now: number): void {
    if (!status) return;
    state.textContent = STATE_LABELS[status.state];
    state.className = `state state-${status.state}`;
    if (status.lastSuccessAt === null) {
      lastSync.textContent = 'Never synced';
      lastSync.removeAttribute('data-last-success');
      lastSync.removeAttribute('title');
    } else {
      lastSync.textContent = `Synced ${ago(status.lastSuccessAt, now)}`;
      lastSync.setAttribute('data-last-success', String(status.lastSuccessAt));
      lastSync.title = dateTime(status.lastSuccessAt);
    }
    nextSync.textContent = status.state === 'paused' ? 'Paused' : status.nextCycleAt === null ? '—' : inFuture(status.nextCycleAt, now);
    transport.textContent = transportLabel(status.transport);
    pending.textContent = status.pendingOut === 0 ? 'Nothing' : `${status.pendingOut} change${status.pendingOut === 1 ? '' : 's'}`;
    if (status.openConflicts !== shownConflicts) {
      // rebuilt only when the count changes, so a focused button is not replaced every second
      shownConflicts = status.openConflicts;
      if (status.openConflicts === 0) replace(conflicts, 'None');
      else replace(conflicts, h('button', { type: 'button', className: 'link', onclick: showConflicts }, `${status.openConflicts} to review`));
    }
    rejected.textContent =
      status.rejectedEvents === 0 && status.quarantinedEvents === 0
        ? 'None'
        : `${status.rejectedEvents} (not applied: they failed verification)${status.quarantinedEvents > 0 ? `; ${status.quarantinedEvents} set aside after failing again and again` : ''}`;
    repairs.textContent = status.lastRecovery ? `${status.lastRecovery.message} (${ago(status.lastRecovery.at, now)})` : 'None needed';
  }

  function update(next: SyncStatus): void {
    status = next;
    render(Date.now());
    if (next.lastError && next.state !== 'syncing') {
      replace(errorBox, h('strong', {}, next.lastError.message), h('p', {}, next.lastError.nextStep));
      errorBox.hidden = false;
    } else if (!next.lastError) {
      errorBox.hidden = true;
    }
    if (next.progress) {
      setLine(progressText(next.progress), 'progress');
      progressBar.hidden = false;
      if (next.progress.total) {
        progressBar.max = next.progress.total;
        progressBar.value = next.progress.done;
      } else {
        progressBar.removeAttribute('value'); // indeterminate
      }
    } else {
      progressBar.hidden = !manual;
      if (!manual && lineKind === 'progress') setLine('', 'none');
    }
  }

  syncButton.addEventListener('click', () => {
    if (isBusy(syncButton)) return;
    void (async () => {
      manual = true;
      const done = busy(syncButton, 'Syncing…');
      setLine('Starting a sync…', 'progress');
      progressBar.hidden = false;
      progressBar.removeAttribute('value');
      const result = await call('sync.now', {});
      manual = false;
      done();
      progressBar.hidden = true;
      const fresh = await call('status.get', {});
      if (fresh.ok) update(fresh.value);
      if (!result.ok) setLine(result.error.message, 'result', true);
      else if (!result.value.ok) setLine(`Sync failed: ${result.value.error?.message ?? 'unknown error'}. ${result.value.error?.nextStep ?? ''}`.trim(), 'result', true);
      else setLine(`Sync complete: sent ${result.value.pushed}, received ${result.value.pulled}.`, 'result');
    })();
  });

  return {
    element,
    update,
    setRelayUrl(url) {
      relay.textContent = url || '—';
    },
    tick: render,
  };
}
