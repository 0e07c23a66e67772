// Settings → Storage (issue 12): what this device holds, the relay's latest snapshot (or that there is
// none, and what that means for a new device), "Save a snapshot now" and "Free space on this device".
// Everything reads in words; a failure says what happened and what to do, its technical text behind "Details".
import type { StorageView } from '../shared/portable/ipc-contract.ts';
import { h, replace } from './dom.ts';
import { ago, byteSize } from './format.ts';
import { busy, detailsDisclosure, isBusy, messageLine, type Call } from './ui.ts';

const count = (n: number, noun: string): string => `${n.toLocaleString('en-US')} ${noun}${n === 1 ? '' : 's'}`;

/** "This device holds 3,000 changes in 1.2 MB." */
export function holdingsText(storage: Pick<StorageView, 'events' | 'databaseBytes'>): string {
  return `${count(storage.events, 'change')} in ${byteSize(storage.databaseBytes)}`;
}

/** The relay's latest snapshot in one sentence, or that there is none and what a new device then does. */
export function latestText(latest: StorageView['latest'], now: number): string {
  if (latest.kind === 'none') return 'None yet: a new device downloads the whole history.';
  if (latest.kind === 'unknown') return 'Not known: the relay could not be asked.';
  const who = latest.current ? 'this device' : (latest.deviceName ?? 'another device');
  const when = now - latest.createdAt < 10_000 ? 'just now' : ago(latest.createdAt, now);
  return `Covers ${count(latest.covered, 'change')}, saved ${when} by ${who}, ${byteSize(latest.bytes)}. New devices start from it.`;
}

export interface StoragePanel {
  readonly element: HTMLElement;
  load(): void;
}

export function storageCard(call: Call): StoragePanel {
  const holds = h('dd', { 'data-testid': 'storage-holds' }, 'Loading…');
  const latest = h('dd', { 'data-testid': 'storage-latest' }, 'Loading…');
  const latestProblem = h('div', { className: 'message error', role: 'alert', 'data-testid': 'storage-relay-problem', hidden: true });

  const saveButton = h('button', { type: 'button', className: 'primary', 'data-testid': 'save-snapshot', 'aria-describedby': 'save-snapshot-hint' }, 'Save a snapshot now');
  const saveMessage = messageLine();
  saveMessage.element.setAttribute('data-testid', 'save-snapshot-message');
  const freeButton = h('button', { type: 'button', 'data-testid': 'free-space', 'aria-describedby': 'free-space-hint' }, 'Free space on this device');
  const freeMessage = messageLine();
  freeMessage.element.setAttribute('data-testid', 'free-space-message');

  const element = h(
    'section',
    { className: 'card storage', 'aria-labelledby': 'storage-heading', 'data-testid': 'storage-card' },
    h('h3', { id: 'storage-heading' }, 'Storage'),
    h('dl', { className: 'facts' }, h('div', { className: 'fact' }, h('dt', {}, 'This device holds'), holds), h('div', { className: 'fact' }, h('dt', {}, 'Latest snapshot on the relay'), latest)),
    latestProblem,
    h('div', { className: 'storage-action' }, h('p', { id: 'save-snapshot-hint', className: 'hint' }, 'Syncs first, then saves a sealed, encrypted copy of your motebit on the relay, so a new device starts from it instead of downloading every change.'), h('div', { className: 'actions' }, saveButton), saveMessage.element),
    h('div', { className: 'storage-action' }, h('p', { id: 'free-space-hint', className: 'hint' }, 'Drops this device’s old history that no longer matters below the latest snapshot; the values you see stay.'), h('div', { className: 'actions' }, freeButton), freeMessage.element),
  );

  /** quiet: an action's failure is said beside its button already, so the relay's problem is not said twice. */
  function show(storage: StorageView, quiet = false): void {
    holds.textContent = holdingsText(storage);
    latest.textContent = latestText(storage.latest, Date.now());
    if (storage.latest.kind === 'unknown' && !quiet) {
      replace(latestProblem, `Could not ask the relay about its snapshot. ${storage.latest.message}`, detailsDisclosure(storage.latest.details, storage.latest.message));
      latestProblem.hidden = false;
    } else {
      replace(latestProblem);
      latestProblem.hidden = true;
    }
  }

  function load(quiet = false): void {
    void (async () => {
      const result = await call('snapshot.info', {});
      if (result.ok) return show(result.value, quiet);
      holds.textContent = 'Not known';
      latest.textContent = 'Not known';
      replace(latestProblem, `Could not read this device’s storage. ${result.error.message}`, detailsDisclosure(result.error.details, result.error.message));
      latestProblem.hidden = false;
    })();
  }

  saveButton.addEventListener('click', () => {
    if (isBusy(saveButton) || isBusy(freeButton)) return;
    void (async () => {
      saveMessage.clear();
      freeMessage.clear();
      const done = busy(saveButton, 'Saving a snapshot…');
      const result = await call('snapshot.make', {});
      done();
      if (!result.ok) {
        load(true);
        return saveMessage.error(result.error.message, result.error.details);
      }
      show(result.value.storage);
      saveMessage.ok(`Saved: ${count(result.value.covered, 'change')} in ${byteSize(result.value.bytes)}; new devices start from it.`);
    })();
  });

  freeButton.addEventListener('click', () => {
    if (isBusy(freeButton) || isBusy(saveButton)) return;
    void (async () => {
      saveMessage.clear();
      freeMessage.clear();
      const done = busy(freeButton, 'Freeing space…');
      const result = await call('snapshot.prune', {});
      done();
      if (!result.ok) {
        load(true);
        return freeMessage.error(`No space was freed. ${result.error.message}`, result.error.details);
      }
      show(result.value.storage);
      const { dropped, bytesBefore, bytesAfter } = result.value;
      freeMessage.ok(
        dropped === 0
          ? `Nothing to drop: this device keeps only history that still matters (its database is ${byteSize(bytesAfter)}).`
          : `Freed space: this device’s database went from ${byteSize(bytesBefore)} to ${byteSize(bytesAfter)} (${count(dropped, 'old change')} dropped); every value stays.`,
      );
    })();
  });

  return {
    element,
    // opened again: fresh figures, and what an earlier click said is gone (the figures say it now)
    load: () => {
      saveMessage.clear();
      freeMessage.clear();
      load();
    },
  };
}
