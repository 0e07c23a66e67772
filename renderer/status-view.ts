// The status panel: state, transport, last sync, pending changes, what this device holds, live arrivals,
// relay; Sync now with its progress (from the status.changed events main pushes during the cycle: a bar and
// the time left while receiving) and then the new last-sync time. It says so when the relay does not
// answer, when the app itself is gone, when sync is paused (Resume is here) and when this device was revoked.
import type { SyncStatus } from '../shared/portable/status.ts';
import { h, replace } from './dom.ts';
import { STATE_LABELS, ago, arrivalText, byteSize, dateTime, inFuture, progressText, transportLabel } from './format.ts';
import { busy, detailsDisclosure, isBusy, sentence, type Call } from './ui.ts';

export interface StatusView {
  readonly element: HTMLElement;
  update(status: SyncStatus): void;
  setRelayUrl(url: string): void;
  /** Re-renders the relative times ("12 s ago"). */
  tick(now: number): void;
  /** The app's main process is gone (the window lost its connection to it): nothing shown is current any more. */
  disconnected(): void;
}

export function statusView(call: Call, showConflicts: () => void): StatusView {
  let status: SyncStatus | null = null;
  let manual = false;
  let gone = false;
  let lineKind: 'progress' | 'result' | 'none' = 'none';
  let shownConflicts = -1;

  const state = h('span', { 'data-testid': 'state' }, '…');
  const lastSync = h('span', { 'data-testid': 'last-sync' }, '…');
  const nextSync = h('span', { 'data-testid': 'next-sync' }, '…');
  const transport = h('span', { 'data-testid': 'transport' }, '…');
  const pending = h('span', { 'data-testid': 'pending' }, '…');
  const conflicts = h('span', { 'data-testid': 'open-conflicts' }, '…');
  const entities = h('span', { 'data-testid': 'entities' }, '…');
  const dbSize = h('span', { 'data-testid': 'database-size' }, '…');
  const arrivals = h('span', { 'data-testid': 'arrivals' }, '…');
  const rejected = h('span', { 'data-testid': 'rejected' }, '…');
  const repairs = h('span', { 'data-testid': 'relay-repairs' }, '…');
  const relay = h('span', { 'data-testid': 'relay-url', className: 'mono' }, '…');
  const revokedBox = h(
    'section',
    { className: 'error-box revoked-box', role: 'alert', hidden: true, 'data-testid': 'revoked', 'aria-labelledby': 'revoked-heading' },
    h('h3', { id: 'revoked-heading' }, 'This device was removed from your motebit'),
    h('p', {}, 'Another of your devices revoked it, so the relay no longer lets it sync: changes made here are not sent, and changes made elsewhere do not arrive.'),
    h('p', {}, 'Everything this device already had is still here, and you can still read it.'),
    h('p', {}, 'What to do next: if you want this computer back, quit Motebit Sync here, move its folder (.motebit in your home folder) aside, start it again and choose “Join an existing motebit”: it shows a one-time code to approve on one of your other devices, under Settings → Add a device (a motebit that still shares one key gives a pairing code there instead). It joins as a new device: a revoked device never comes back as itself.'),
    h('p', {}, 'If you did not revoke it, someone with access to one of your other devices did: check them.'),
  );
  const errorBox = h('div', { className: 'error-box', role: 'alert', hidden: true, 'data-testid': 'status-error' });
  const syncButton = h('button', { type: 'button', className: 'primary', 'data-testid': 'sync-now' }, 'Sync now');
  const resumeButton = h('button', { type: 'button', hidden: true, 'data-testid': 'status-resume' }, 'Resume sync');
  const syncHint = h('p', { className: 'hint', 'data-testid': 'sync-hint', hidden: true });
  const progressLine = h('p', { className: 'progress-line', role: 'status', 'aria-live': 'polite', 'data-testid': 'sync-progress' });
  const progressBar = h('progress', { className: 'progress-bar', hidden: true, 'aria-label': 'Sync progress', 'data-testid': 'progress-bar' });

  const row = (label: string, value: HTMLElement) => h('div', { className: 'fact' }, h('dt', {}, label), h('dd', {}, value));
  const element = h(
    'section',
    { id: 'panel-status', className: 'panel', 'aria-labelledby': 'status-heading' },
    h('h2', { id: 'status-heading' }, 'Status'),
    revokedBox,
    h(
      'dl',
      { className: 'facts' },
      row('State', state),
      row('Last sync', lastSync),
      row('Next sync', nextSync),
      row('Connection', transport),
      row('Waiting to send', pending),
      row('Received live', arrivals),
      row('Open conflicts', conflicts),
      row('Entities on this device', entities),
      row('Local database', dbSize),
      row('Rejected events', rejected),
      row('Relay repairs', repairs),
      row('Relay', relay),
    ),
    errorBox,
    h('div', { className: 'actions' }, syncButton, resumeButton),
    syncHint,
    progressBar,
    progressLine,
  );

  function setLine(text: string, kind: typeof lineKind, isError = false): void {
    progressLine.textContent = text;
    progressLine.classList.toggle('error', isError);
    lineKind = kind;
  }

  /** Why Sync now cannot run (null when it can). */
  function blocked(): string | null {
    if (gone) return 'Motebit Sync is not running, so nothing can sync from this window.';
    if (status?.revoked) return 'This device was revoked: it can no longer sync through this relay.';
    if (status?.state === 'paused') return 'Sync is paused. Resume it to sync again.';
    return null;
  }

  function renderControls(): void {
    const reason = blocked();
    syncButton.disabled = reason !== null;
    syncHint.textContent = reason ?? '';
    syncHint.hidden = reason === null;
    resumeButton.hidden = gone || status?.state !== 'paused';
  }

  function render(now: number): void {
    if (!status || gone) return;
    const relayGone = status.state === 'offline' && status.lastError?.kind === 'network';
    state.textContent = status.revoked ? 'Revoked: not syncing' : relayGone ? 'Can’t reach the relay' : STATE_LABELS[status.state];
    state.className = `state state-${status.revoked ? 'error' : status.state}`;
    if (status.lastSuccessAt === null) {
      lastSync.textContent = 'Never synced';
      lastSync.removeAttribute('data-last-success');
      lastSync.removeAttribute('title');
    } else {
      lastSync.textContent = `Synced ${ago(status.lastSuccessAt, now)}`;
      lastSync.setAttribute('data-last-success', String(status.lastSuccessAt));
      lastSync.title = dateTime(status.lastSuccessAt);
    }
    nextSync.textContent = status.revoked ? 'None: this device was revoked' : status.state === 'paused' ? 'Paused' : status.nextCycleAt === null ? '—' : inFuture(status.nextCycleAt, now);
    transport.textContent = relayGone ? 'Not connected: the relay does not answer' : transportLabel(status.transport);
    pending.textContent = status.pendingOut === 0 ? 'Nothing' : `${status.pendingOut.toLocaleString('en-US')} change${status.pendingOut === 1 ? '' : 's'}`;
    arrivals.textContent = status.lastArrival ? arrivalText(status.lastArrival, now) : 'None yet';
    entities.textContent = status.entities === undefined ? '—' : status.entities.toLocaleString('en-US');
    dbSize.textContent = status.databaseBytes === undefined ? '—' : byteSize(status.databaseBytes);
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
    if (gone) return;
    status = next;
    render(Date.now());
    renderControls();
    revokedBox.hidden = !next.revoked;
    if (next.lastError && next.state !== 'syncing' && !next.revoked) {
      replace(errorBox, h('strong', {}, sentence(next.lastError.message)), h('p', {}, sentence(next.lastError.nextStep)), detailsDisclosure(next.lastError.details));
      errorBox.hidden = false;
    } else if (!next.lastError || next.revoked) {
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
    if (isBusy(syncButton) || blocked() !== null) return;
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
      if (gone) return;
      if (!result.ok) setLine(result.error.message, 'result', true);
      else if (!result.value.ok) setLine(`Sync failed: ${result.value.error?.message ?? 'unknown error'}. ${result.value.error?.nextStep ?? ''}`.trim(), 'result', true);
      else setLine(`Sync complete: sent ${result.value.pushed}, received ${result.value.pulled}.`, 'result');
    })();
  });

  resumeButton.addEventListener('click', () => {
    if (isBusy(resumeButton)) return;
    void (async () => {
      const done = busy(resumeButton, 'Resuming…');
      const result = await call('sync.resume', {});
      done();
      if (!result.ok) return setLine(result.error.message, 'result', true);
      if (lineKind === 'result' && progressLine.classList.contains('error')) setLine('', 'none'); // its cause (paused) is gone
      update(result.value);
      syncButton.focus();
    })();
  });

  return {
    element,
    update,
    setRelayUrl(url) {
      relay.textContent = url || '—';
    },
    tick: render,
    disconnected() {
      gone = true;
      state.textContent = 'Motebit Sync is not running';
      state.className = 'state state-error';
      transport.textContent = 'Not connected: this window lost Motebit Sync';
      nextSync.textContent = '—';
      // relative times would stop moving: say when, once
      if (status?.lastSuccessAt != null) lastSync.textContent = `Last known: synced ${dateTime(status.lastSuccessAt)}`;
      progressBar.hidden = true;
      errorBox.hidden = true;
      setLine('What this window shows is no longer current. Start Motebit Sync again, then reload this window.', 'result', true);
      renderControls();
    },
  };
}
