// Conflicts: two devices changed the same entity without seeing each other's change. Each shows both
// values side by side, who wrote each and when, and which one the entity holds now; the person can mark
// it reviewed (the current value stays) or keep the other value (written again as a new event).
import type { ConflictView } from '../shared/ipc-contract.ts';
import { h, replace } from './dom.ts';
import { ago, dateTime, showValue } from './format.ts';
import { busy, isBusy, type Call } from './ui.ts';

type Side = ConflictView['winner'];

export interface ConflictsView {
  readonly element: HTMLElement;
  /** Reloads the list (coalesced: one load at a time, one more if asked meanwhile). */
  refresh(): void;
  tick(now: number): void;
}

export function conflictsView(call: Call, onCount: (count: number) => void): ConflictsView {
  const list = h('div', { className: 'conflict-list', 'data-testid': 'conflict-list' });
  const heading = h('h2', { id: 'conflicts-heading', tabindex: -1 }, 'Conflicts');
  const loadError = h('p', { className: 'message error', role: 'alert', hidden: true });
  const element = h(
    'section',
    { id: 'panel-conflicts', className: 'panel', 'aria-labelledby': 'conflicts-heading' },
    heading,
    h('p', { className: 'lead' }, 'When two devices change the same thing before they sync, both changes are kept and one wins everywhere. Check the winner, or keep the other value instead.'),
    loadError,
    list,
  );
  let loading = false;
  let again = false;
  let shown: ConflictView[] = [];
  const times: { element: HTMLElement; at: number; prefix: string }[] = [];

  function refresh(): void {
    if (loading) {
      again = true;
      return;
    }
    loading = true;
    void (async () => {
      const result = await call('conflicts.list', {});
      if (result.ok) await fillNames(result.value);
      loading = false;
      if (!result.ok) {
        loadError.textContent = `Could not load the conflicts: ${result.error.message}`;
        loadError.hidden = false;
      } else {
        loadError.hidden = true;
        if (JSON.stringify(result.value) !== JSON.stringify(shown)) render(result.value);
      }
      if (again) {
        again = false;
        refresh();
      }
    })();
  }

  /** Main names the writers from a cached device list; a device that joined since is named from a fresh one. */
  async function fillNames(conflicts: ConflictView[]): Promise<void> {
    const sides = conflicts.flatMap((c) => [c.winner, c.loser]).filter((s) => s.deviceName === null);
    if (sides.length === 0) return;
    const devices = await call('devices.list', {});
    if (!devices.ok) return;
    const names = new Map(devices.value.map((d) => [d.deviceId, d.name]));
    for (const side of sides) side.deviceName = names.get(side.deviceId) ?? null;
  }

  function render(conflicts: ConflictView[]): void {
    const hadFocus = list.contains(document.activeElement);
    shown = conflicts;
    times.length = 0;
    onCount(conflicts.length);
    if (conflicts.length === 0) {
      replace(list, h('p', { className: 'empty', 'data-testid': 'conflicts-empty' }, 'No conflicts. Every device agrees.'));
    } else {
      replace(list, h('ol', { className: 'conflicts' }, ...conflicts.map((c) => h('li', {}, conflictCard(c)))));
    }
    if (hadFocus) heading.focus(); // the item acted on is gone: keep the keyboard in this panel
  }

  function sideCard(c: ConflictView, side: Side, current: boolean): HTMLElement {
    const who = side.deviceName ?? side.deviceId;
    const when = h('time', { datetime: new Date(side.writtenAt).toISOString(), title: dateTime(side.writtenAt) }, ago(side.writtenAt, Date.now()));
    times.push({ element: when, at: side.writtenAt, prefix: '' });
    return h(
      'section',
      { className: `side${current ? ' current' : ''}`, 'data-side': current ? 'current' : 'other', 'aria-label': `${current ? 'Current value' : 'Other value'} of ${c.entity}` },
      h('h4', {}, current ? 'Current value' : 'Other value', current ? h('span', { className: 'badge' }, 'wins now') : null),
      h('pre', { className: 'value', 'data-testid': 'value' }, showValue(side.value, side.op)),
      h('p', { className: 'meta' }, 'Written by ', h('strong', { className: side.deviceName ? '' : 'mono', 'data-testid': 'device' }, who), ' ', when),
    );
  }

  function conflictCard(c: ConflictView): HTMLElement {
    const currentIsWinner = c.currentEventId === c.winner.eventId;
    const currentIsLoser = c.currentEventId === c.loser.eventId;
    const current = currentIsLoser ? c.loser : c.winner;
    const other = currentIsLoser ? c.winner : c.loser;
    const headingId = `conflict-${c.id}`;
    const message = h('p', { className: 'message', role: 'status', 'aria-live': 'polite' });
    const fail = (text: string) => {
      message.className = 'message error';
      message.setAttribute('role', 'alert');
      message.textContent = text;
    };
    const reviewButton = h('button', { type: 'button' }, 'Mark reviewed');
    reviewButton.addEventListener('click', () => {
      if (isBusy(reviewButton)) return;
      void (async () => {
        const done = busy(reviewButton, 'Marking…');
        const result = await call('conflicts.markReviewed', { id: c.id });
        done();
        if (!result.ok) return fail(result.error.message);
        refresh();
      })();
    });
    const keepButton = h('button', { type: 'button', className: 'primary' }, 'Keep the other value');
    keepButton.addEventListener('click', () => {
      if (isBusy(keepButton)) return;
      void (async () => {
        const done = busy(keepButton, 'Keeping…');
        const result = await call('conflicts.keep', { id: c.id, eventId: other.eventId });
        done();
        if (!result.ok) return fail(result.error.message);
        refresh();
      })();
    });
    const detected = h('time', { datetime: new Date(c.detectedAt).toISOString(), title: dateTime(c.detectedAt) }, ago(c.detectedAt, Date.now()));
    times.push({ element: detected, at: c.detectedAt, prefix: '' });
    const known = currentIsWinner || currentIsLoser;
    return h(
      'article',
      { className: 'conflict card', 'aria-labelledby': headingId, 'data-entity': c.entity, 'data-conflict-id': c.id },
      h('h3', { id: headingId, className: 'mono' }, c.entity),
      h('p', { className: 'meta' }, 'Found ', detected, c.reviewedAt !== null ? h('span', { className: 'badge muted' }, 'reviewed') : null),
      h('div', { className: 'sides' }, sideCard(c, current, known), sideCard(c, other, false)),
      h('div', { className: 'actions' }, c.reviewedAt === null ? reviewButton : null, keepButton),
      message,
    );
  }

  return {
    element,
    refresh,
    tick(now) {
      for (const t of times) t.element.textContent = t.prefix + ago(t.at, now);
    },
  };
}
