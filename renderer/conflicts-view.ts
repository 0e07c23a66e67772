// Conflicts: two devices changed the same entity without seeing each other's change. Each shows both
// values side by side, who wrote each and when, which one the entity holds now and why it wins; the
// person can keep the current value or the other one (written again as a new event, which settles the
// conflict on every device), or mark it reviewed here. Hundreds stay workable: filters (list, entity
// prefix, the device that wrote the current value), a selection with bulk actions, and a list that is
// updated in place so the scroll position and the keyboard focus stay where they were.
import type { ConflictView } from '../shared/portable/ipc-contract.ts';
import { h, replace, uid } from './dom.ts';
import { ago, conflictFilterLabel, dateTime, deviceLabel, showValue, type ConflictFilter } from './format.ts';
import { busy, isBusy, type Call } from './ui.ts';

type Side = ConflictView['winner'];
type Keep = 'current' | 'other';

export interface ConflictsView {
  readonly element: HTMLElement;
  /** Reloads the list (coalesced: one load at a time, one more if asked meanwhile). */
  refresh(): void;
  tick(now: number): void;
}

interface Item {
  readonly li: HTMLLIElement;
  readonly article: HTMLElement;
  readonly key: string;
  readonly conflict: ConflictView;
  readonly select: HTMLInputElement | null;
  readonly times: { element: HTMLElement; at: number }[];
}

const FILTERS: ConflictFilter[] = ['open', 'reviewed', 'settled', 'all'];

/** The side the entity holds now (null when a later write superseded both) and the other one. */
function sidesOf(c: ConflictView): { current: Side | null; other: Side } {
  if (c.currentEventId === c.loser.eventId) return { current: c.loser, other: c.winner };
  return { current: c.currentEventId === c.winner.eventId ? c.winner : null, other: c.loser };
}

/** Whether keeping `keep` of `c` writes a delete (the current value is a delete, or the other side is). */
function keepsDelete(c: ConflictView, keep: Keep): boolean {
  const { current, other } = sidesOf(c);
  return keep === 'other' ? other.op === 'delete' : current?.op === 'delete';
}

export function conflictsView(call: Call, onCount: (count: number) => void): ConflictsView {
  const heading = h('h2', { id: 'conflicts-heading', tabindex: -1 }, 'Conflicts');
  const loadError = h('p', { className: 'message error', role: 'alert', hidden: true });

  // ---- filters ----
  const filterId = uid('conflict-filter');
  const filterSelect = h('select', { id: filterId, name: 'filter', 'data-testid': 'conflict-filter' }, ...FILTERS.map((f) => h('option', { value: f }, conflictFilterLabel(f, null))));
  const prefixId = uid('conflict-prefix');
  const prefixInput = h('input', { id: prefixId, name: 'entityPrefix', type: 'text', autocomplete: 'off', spellcheck: 'false', placeholder: 'e.g. memory/', 'data-testid': 'conflict-prefix' });
  const deviceId = uid('conflict-device');
  const deviceSelect = h('select', { id: deviceId, name: 'deviceId', 'data-testid': 'conflict-device' }, h('option', { value: '' }, 'Any device'));
  const filters = h(
    'form',
    { className: 'conflict-filters', role: 'search', 'aria-label': 'Filter conflicts' },
    h('div', { className: 'field' }, h('label', { for: filterId }, 'Show'), filterSelect),
    h('div', { className: 'field' }, h('label', { for: prefixId }, 'Entity starts with'), prefixInput),
    h('div', { className: 'field' }, h('label', { for: deviceId }, 'Current value written by'), deviceSelect),
  );
  filters.addEventListener('submit', (event) => event.preventDefault());

  // ---- selection and bulk actions ----
  const selectAll = h('input', { type: 'checkbox', id: uid('select-all'), 'data-testid': 'select-all' });
  const selectedLine = h('span', { className: 'selected-count', 'data-testid': 'selected-count' }, 'None selected');
  const bulkCurrent = h('button', { type: 'button', 'data-testid': 'bulk-keep-current' }, 'Keep current');
  const bulkOther = h('button', { type: 'button', 'data-testid': 'bulk-keep-other' }, "Keep the other device's");
  const bulkMessage = h('p', { className: 'message', role: 'status', 'aria-live': 'polite', 'data-testid': 'bulk-message' });
  const bulkBar = h(
    'div',
    { className: 'bulk-bar card', role: 'group', 'aria-label': 'Selected conflicts' },
    h('label', { className: 'check', for: selectAll.id }, selectAll, 'Select all shown'),
    selectedLine,
    h('div', { className: 'actions' }, bulkCurrent, bulkOther),
    bulkMessage,
  );

  const summary = h('p', { className: 'summary', role: 'status', 'data-testid': 'conflict-summary' });
  const ol = h('ol', { className: 'conflicts' });
  const list = h('div', { className: 'conflict-list', 'data-testid': 'conflict-list' }, ol);
  const confirm = confirmDialog();
  const element = h(
    'section',
    { id: 'panel-conflicts', className: 'panel', 'aria-labelledby': 'conflicts-heading' },
    heading,
    h('p', { className: 'lead' }, 'When two devices change the same thing before they sync, both changes are kept and one wins everywhere. Check the winner, or keep the other value instead.'),
    loadError,
    filters,
    bulkBar,
    summary,
    list,
    confirm.element,
  );

  let loading = false;
  let again = false;
  const items = new Map<number, Item>();
  const selected = new Set<number>();
  const devices = new Map<string, string | null>();
  let devicesLoaded = false;
  let emptyNote: HTMLElement | null = null;

  const query = () => {
    const prefix = prefixInput.value;
    return {
      filter: filterSelect.value as ConflictFilter,
      ...(prefix ? { entityPrefix: prefix } : {}),
      ...(deviceSelect.value ? { deviceId: deviceSelect.value } : {}),
    };
  };

  filterSelect.addEventListener('change', () => refresh());
  deviceSelect.addEventListener('change', () => refresh());
  prefixInput.addEventListener('input', () => refresh());

  function refresh(): void {
    if (loading) {
      again = true;
      return;
    }
    loading = true;
    void (async () => {
      const asked = query();
      const [result, counts] = await Promise.all([call('conflicts.list', asked), call('conflicts.counts', {})]);
      if (result.ok) await fillNames(result.value);
      loading = false;
      if (!result.ok) {
        loadError.textContent = `Could not load the conflicts: ${result.error.message}`;
        loadError.hidden = false;
      } else {
        loadError.hidden = true;
        if (counts.ok) {
          onCount(counts.value.open);
          FILTERS.forEach((f, i) => (filterSelect.options[i]!.textContent = conflictFilterLabel(f, f === 'all' ? null : counts.value[f])));
        }
        // a filter changed while this was loading: the next load shows the right list
        if (!again) render(result.value, asked);
      }
      if (again) {
        again = false;
        refresh();
      }
    })();
  }

  /** Main names the writers from a cached device list; a device that joined since is named from a fresh one. */
  async function fillNames(conflicts: ConflictView[]): Promise<void> {
    const sides = conflicts.flatMap((c) => [c.winner, c.loser]);
    if (!devicesLoaded || sides.some((s) => s.deviceName === null && !devices.has(s.deviceId))) {
      const result = await call('devices.list', {});
      if (result.ok) {
        devicesLoaded = true;
        for (const d of result.value) devices.set(d.deviceId, d.name);
      }
    }
    for (const side of sides) {
      if (side.deviceName === null) side.deviceName = devices.get(side.deviceId) ?? null;
      if (!devices.has(side.deviceId) || devices.get(side.deviceId) === null) devices.set(side.deviceId, side.deviceName);
    }
    fillDeviceOptions();
  }

  function fillDeviceOptions(): void {
    const have = new Set([...deviceSelect.options].map((o) => o.value));
    for (const [id, name] of devices) {
      if (have.has(id)) continue;
      deviceSelect.append(h('option', { value: id }, deviceLabel(id, name)));
    }
  }

  function render(conflicts: ConflictView[], asked: ReturnType<typeof query>): void {
    const active = document.activeElement;
    const focusWasIn = list.contains(active) ? items.get(Number((active as HTMLElement).closest('li')?.dataset.conflictId)) : undefined;
    const next = new Map<number, Item>();
    for (const c of conflicts) {
      const key = JSON.stringify(c);
      let item = items.get(c.id);
      if (!item || item.key !== key) {
        const fresh = conflictItem(c, key);
        item?.li.replaceWith(fresh.li);
        item = fresh;
      }
      next.set(c.id, item);
    }
    // the card that takes the place of the focused one, if it goes
    let successor: Item | undefined;
    if (focusWasIn && !next.has(focusWasIn.conflict.id)) {
      const before = [...items.keys()];
      const at = before.indexOf(focusWasIn.conflict.id);
      successor = before.slice(at + 1).map((id) => next.get(id)).find(Boolean) ?? before.slice(0, at).reverse().map((id) => next.get(id)).find(Boolean);
    }
    // update in place: only what changed is touched, so the page keeps its scroll position
    for (const [id, item] of items) if (!next.has(id)) item.li.remove();
    let cursor = ol.firstElementChild;
    for (const item of next.values()) {
      if (item.li === cursor) cursor = cursor.nextElementSibling;
      else ol.insertBefore(item.li, cursor);
    }
    items.clear();
    for (const [id, item] of next) items.set(id, item);
    for (const id of [...selected]) if (!items.has(id)) selected.delete(id);

    emptyNote?.remove();
    emptyNote = null;
    const filtered = asked.entityPrefix !== undefined || asked.deviceId !== undefined;
    if (conflicts.length === 0) {
      const text = filtered ? 'No conflicts match these filters.' : asked.filter === 'open' ? 'No conflicts. Every device agrees.' : `No ${asked.filter === 'all' ? '' : `${asked.filter} `}conflicts.`;
      emptyNote = h('p', { className: 'empty', 'data-testid': 'conflicts-empty' }, text);
      list.append(emptyNote);
    }
    const said = conflicts.length === 0 ? '' : `Showing ${conflicts.length} ${conflicts.length === 1 ? 'conflict' : 'conflicts'}${asked.filter === 'all' ? '' : ` (${asked.filter})`}${filtered ? ' that match the filters' : ''}.`;
    if (summary.textContent !== said) summary.textContent = said; // a status line is announced only when it changes
    bulkBar.hidden = actionable().length === 0 && bulkMessage.textContent === '';
    updateSelection();
    if (successor) successor.article.focus({ preventScroll: true });
    else if (focusWasIn && !next.has(focusWasIn.conflict.id)) heading.focus({ preventScroll: true });
  }

  function updateSelection(): void {
    const n = selected.size;
    selectedLine.textContent = n === 0 ? 'None selected' : `${n} selected`;
    selectAll.checked = n > 0 && n === actionable().length;
    selectAll.indeterminate = n > 0 && n < actionable().length;
    bulkCurrent.textContent = n > 0 ? `Keep current (${n})` : 'Keep current';
    bulkOther.textContent = n > 0 ? `Keep the other device's (${n})` : "Keep the other device's";
    for (const button of [bulkCurrent, bulkOther]) {
      if (n === 0) button.setAttribute('aria-disabled', 'true');
      else if (!button.hasAttribute('aria-busy')) button.removeAttribute('aria-disabled');
    }
  }

  const actionable = () => [...items.values()].filter((item) => item.select !== null);

  selectAll.addEventListener('change', () => {
    for (const item of actionable()) {
      item.select!.checked = selectAll.checked;
      if (selectAll.checked) selected.add(item.conflict.id);
      else selected.delete(item.conflict.id);
    }
    updateSelection();
  });

  function bulk(button: HTMLButtonElement, keep: Keep): void {
    button.addEventListener('click', () => {
      if (isBusy(button) || selected.size === 0) return;
      void (async () => {
        const chosen = [...selected].map((id) => items.get(id)!.conflict);
        const deletes = chosen.filter((c) => keepsDelete(c, keep));
        if (deletes.length > 0) {
          const names = deletes.slice(0, 5).map((c) => c.entity).join(', ') + (deletes.length > 5 ? ` and ${deletes.length - 5} more` : '');
          const sure = await confirm.ask(
            `Delete ${deletes.length === 1 ? '1 entity' : `${deletes.length} entities`}?`,
            `${deletes.length} of the ${chosen.length} selected conflicts keep a deleted value, so ${names} will be deleted on every device.`,
            deletes.length === 1 ? 'Keep the deleted value' : 'Keep the deleted values',
          );
          if (!sure) return button.focus();
        }
        const done = busy(button, 'Keeping…');
        bulkMessage.className = 'message';
        bulkMessage.textContent = '';
        const result = await call('conflicts.keepMany', { ids: chosen.map((c) => c.id), keep });
        done();
        if (!result.ok) {
          bulkMessage.className = 'message error';
          bulkMessage.setAttribute('role', 'alert');
          bulkMessage.textContent = `Nothing was changed: ${result.error.message}`;
          return;
        }
        selected.clear();
        bulkMessage.className = 'message ok';
        bulkMessage.setAttribute('role', 'status');
        bulkMessage.textContent = `Kept the ${keep === 'current' ? 'current' : "other device's"} value of ${chosen.length} ${chosen.length === 1 ? 'conflict' : 'conflicts'}; the other devices get it with the next sync.`;
        refresh();
      })();
    });
  }
  bulk(bulkCurrent, 'current');
  bulk(bulkOther, 'other');

  function sideCard(c: ConflictView, side: Side, current: boolean, times: Item['times']): HTMLElement {
    const who = side.deviceName ?? side.deviceId;
    let when: HTMLElement | null = null;
    if (side.writtenAt !== null) {
      when = h('time', { datetime: new Date(side.writtenAt).toISOString(), title: dateTime(side.writtenAt) }, ago(side.writtenAt, Date.now()));
      times.push({ element: when, at: side.writtenAt });
    }
    const winner = side.eventId === c.winner.eventId;
    return h(
      'section',
      { className: `side${current ? ' current' : ''}`, 'data-side': current ? 'current' : 'other', 'aria-label': `${current ? 'Current value' : 'Other value'} of ${c.entity}` },
      h('h4', {}, current ? 'Current value' : 'Other value', current ? h('span', { className: 'badge' }, 'wins now') : null),
      h('pre', { className: `value${side.op === 'delete' ? ' deleted' : ''}`, 'data-testid': 'value' }, showValue(side.value, side.op)),
      h('p', { className: 'meta' }, 'Written by ', h('strong', { className: side.deviceName ? '' : 'mono', 'data-testid': 'device' }, who), when ? ' ' : '', when),
      winner ? h('p', { className: 'why', 'data-testid': 'why' }, c.why) : null,
    );
  }

  function conflictItem(c: ConflictView, key: string): Item {
    const { current, other } = sidesOf(c);
    const times: Item['times'] = [];
    const headingId = `conflict-${c.id}`;
    const message = h('p', { className: 'message', role: 'status', 'aria-live': 'polite' });
    const fail = (text: string) => {
      message.className = 'message error';
      message.setAttribute('role', 'alert');
      message.textContent = text;
    };
    const act = (button: HTMLButtonElement, label: string, run: () => ReturnType<Call>, confirmText?: () => string | null) => {
      button.addEventListener('click', () => {
        if (isBusy(button)) return;
        void (async () => {
          const question = confirmText?.() ?? null;
          if (question && !(await confirm.ask(`Delete ${c.entity}?`, question, 'Keep the deleted value'))) return button.focus();
          const done = busy(button, label);
          const result = await run();
          done();
          if (!result.ok) return fail(`Nothing was changed: ${result.error.message}`);
          refresh();
        })();
      });
      return button;
    };
    const unsettled = c.resolvedBy === null;
    const deleteQuestion = (keep: Keep) => () => (keepsDelete(c, keep) ? `The value you keep is a delete: ${c.entity} will be deleted on every device.` : null);
    const keepCurrent = act(h('button', { type: 'button' }, 'Keep current value'), 'Keeping…', () => call('conflicts.keepMany', { ids: [c.id], keep: 'current' }), deleteQuestion('current'));
    const keepOther = act(h('button', { type: 'button', className: 'primary' }, 'Keep the other value'), 'Keeping…', () => call('conflicts.keep', { id: c.id, eventId: other.eventId }), deleteQuestion('other'));
    const review = act(h('button', { type: 'button' }, 'Mark reviewed'), 'Marking…', () => call('conflicts.markReviewed', { id: c.id }));
    const select = unsettled ? h('input', { type: 'checkbox', 'aria-label': `Select ${c.entity}`, 'data-testid': 'select' }) : null;
    if (select) {
      select.checked = selected.has(c.id);
      select.addEventListener('change', () => {
        if (select.checked) selected.add(c.id);
        else selected.delete(c.id);
        updateSelection();
      });
    }
    const detected = h('time', { datetime: new Date(c.detectedAt).toISOString(), title: dateTime(c.detectedAt) }, ago(c.detectedAt, Date.now()));
    times.push({ element: detected, at: c.detectedAt });
    const article = h(
      'article',
      { className: 'conflict card', tabindex: -1, 'aria-labelledby': headingId, 'data-entity': c.entity, 'data-conflict-id': c.id },
      h('div', { className: 'conflict-head' }, select, h('h3', { id: headingId, className: 'mono' }, c.entity)),
      h(
        'p',
        { className: 'meta' },
        'Found ',
        detected,
        c.reviewedAt !== null ? h('span', { className: 'badge muted' }, 'reviewed') : null,
        c.resolvedBy !== null ? h('span', { className: 'badge muted' }, 'settled') : null,
      ),
      current === null ? h('p', { className: 'meta', 'data-testid': 'superseded' }, 'A later write from another device holds this entity now; "Keep current value" keeps that.') : null,
      h('div', { className: 'sides' }, sideCard(c, current ?? c.winner, current !== null, times), sideCard(c, other, false, times)),
      unsettled ? h('div', { className: 'actions' }, keepCurrent, keepOther, c.reviewedAt === null ? review : null) : null,
      message,
    );
    const li = h('li', { 'data-conflict-id': c.id }, article);
    return { li, article, key, conflict: c, select, times };
  }

  return {
    element,
    refresh,
    tick(now) {
      for (const item of items.values()) {
        for (const t of item.times) {
          const text = ago(t.at, now);
          if (t.element.textContent !== text) t.element.textContent = text; // hundreds of cards: touch only what changed
        }
      }
    },
  };
}

/** A modal question with a confirm and a Cancel button (Escape cancels); resolves true when confirmed. */
function confirmDialog(): { element: HTMLDialogElement; ask(title: string, text: string, yes: string): Promise<boolean> } {
  const titleId = uid('confirm-title');
  const textId = uid('confirm-text');
  const title = h('h3', { id: titleId });
  const text = h('p', { id: textId });
  const yes = h('button', { type: 'button', className: 'danger', 'data-testid': 'confirm-yes' });
  const no = h('button', { type: 'button', 'data-testid': 'confirm-no' }, 'Cancel');
  const element = h('dialog', { className: 'confirm card', 'aria-labelledby': titleId, 'aria-describedby': textId, 'data-testid': 'confirm' }, title, text, h('div', { className: 'actions' }, yes, no));
  let settle: ((answer: boolean) => void) | null = null;
  const finish = (answer: boolean) => {
    const done = settle;
    settle = null;
    if (element.open) element.close();
    done?.(answer);
  };
  yes.addEventListener('click', () => finish(true));
  no.addEventListener('click', () => finish(false));
  // Escape: answered in the keydown's own task ('cancel' comes before the dialog closes; 'close' is queued
  // after it), so whoever asked has put focus back before the next key or click can land anywhere.
  element.addEventListener('cancel', () => finish(false));
  element.addEventListener('close', () => finish(false));
  return {
    element,
    ask(titleText, body, yesText) {
      finish(false);
      replace(title, titleText);
      replace(text, body);
      replace(yes, yesText);
      element.showModal();
      no.focus();
      return new Promise((resolve) => (settle = resolve));
    },
  };
}
