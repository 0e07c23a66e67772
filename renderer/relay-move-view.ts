// "Device X moved to relay URL — Move too?": shown when another device left word, through this relay, that
// it moved. Moving is this person's choice: the button moves this device (checked by main exactly like a
// relay URL typed in Settings); "Not now" hides this word until a device moves again.
import type { MoveOfferView } from '../shared/portable/ipc-contract.ts';
import type { SyncStatus } from '../shared/portable/status.ts';
import { h, replace } from './dom.ts';
import { dateTime } from './format.ts';
import { busy, isBusy, messageLine, type Call } from './ui.ts';

export interface MoveOfferPanel {
  readonly element: HTMLElement;
  /** Asks main again (after a sync or a live arrival may have brought word). */
  refresh(): void;
  statusChanged(status: SyncStatus): void;
}

export function moveOfferView(call: Call): MoveOfferPanel {
  const element = h('section', { className: 'notice', hidden: true, 'data-testid': 'move-offer', 'aria-labelledby': 'move-offer-heading' });
  const message = messageLine();
  let shown: MoveOfferView | null = null;
  let seen = '';

  function show(offer: MoveOfferView | null): void {
    if (offer && shown && offer.at === shown.at && offer.url === shown.url) return; // keep focus and messages
    shown = offer;
    if (!offer) {
      if (element.dataset['moved'] === 'true') return; // the outcome of a move stays until another offer comes
      element.hidden = true;
      replace(element);
      return;
    }
    delete element.dataset['moved'];
    const who = offer.deviceName ?? `Device ${offer.deviceId.slice(0, 10)}…`;
    const move = h('button', { type: 'button', className: 'primary' }, 'Move this device too');
    const later = h('button', { type: 'button' }, 'Not now');
    move.addEventListener('click', () => {
      if (isBusy(move)) return;
      void (async () => {
        message.clear();
        const done = busy(move, 'Moving…');
        const result = await call('settings.moveRelay', { relayUrl: offer.url, tellOthers: false });
        done();
        if (!result.ok) return message.error(`Could not move: ${result.error.message}`);
        shown = null;
        element.dataset['moved'] = 'true';
        const close = h('button', { type: 'button' }, 'Close');
        close.addEventListener('click', () => {
          delete element.dataset['moved'];
          show(null);
        });
        replace(element, h('p', { className: 'message ok', role: 'status' }, `Moved. This device now syncs through ${result.value.settings.relayUrl ?? offer.url}.`), h('div', { className: 'actions' }, close));
        close.focus();
      })();
    });
    later.addEventListener('click', () => {
      void (async () => {
        const result = await call('relay.dismissMove', { at: offer.at });
        if (!result.ok) return message.error(result.error.message);
        show(null);
      })();
    });
    replace(
      element,
      h('h2', { id: 'move-offer-heading' }, `${who} moved to another relay`),
      h('p', {}, `${who} now syncs through `, h('strong', { className: 'mono', 'data-testid': 'move-offer-url' }, offer.url), ` (since ${dateTime(offer.at)}). Devices on different relays do not see each other’s changes. Move this device too?`),
      h('p', { className: 'hint' }, 'Only move if you recognise this: it is your choice, nothing moves by itself.'),
      h('div', { className: 'actions' }, move, later),
      message.element,
    );
    element.hidden = false;
  }

  function refresh(): void {
    void (async () => {
      const result = await call('relay.moveOffer', {});
      if (result.ok) show(result.value);
    })();
  }

  refresh();
  return {
    element,
    refresh,
    statusChanged(status) {
      const key = `${status.lastSuccessAt}/${status.lastArrival?.at ?? 0}`;
      if (key === seen) return;
      seen = key;
      refresh();
    },
  };
}
