// Upgrading a motebit that shares one master token (issue 16): a Settings card says what changes and what
// stays, and its button upgrades this device. The first device to upgrade gets a recovery key (main.ts
// shows it once, as after create); a device upgraded later shows a one-time code and, once a member
// answers, the six digits to compare there, like the join screen. Cancel or a failure changes nothing.
import type { ChannelOutput, IpcError } from '../shared/portable/ipc-contract.ts';
import { h, replace } from './dom.ts';
import { codeStep, digitsStep } from './code-view.ts';
import { busy, isBusy, messageLine, type Call } from './ui.ts';

export type UpgradeStarted = ChannelOutput<'keys.upgrade'>;
type JoinStarted = Extract<UpgradeStarted, { kind: 'join' }>;

const NOTHING_CHANGED = 'Nothing was changed: this device runs on as before, with every value.';

/** Main's words, then that nothing changed unless they say so already. */
function withNothingChanged(message: string): string {
  return /nothing was changed/i.test(message) ? message : `${message} ${NOTHING_CHANGED}`;
}

/** The Settings card (shown for a master-token motebit only): what upgrading does, and the button. */
export function upgradeCard(call: Call, onStarted: (started: UpgradeStarted) => void): HTMLElement {
  const button = h('button', { type: 'button', className: 'primary', 'data-testid': 'upgrade-device' }, 'Upgrade this device');
  const message = messageLine();
  button.addEventListener('click', () => {
    if (isBusy(button)) return;
    void (async () => {
      message.clear();
      const done = busy(button, 'Upgrading…');
      const result = await call('keys.upgrade', {});
      done();
      if (!result.ok) return message.error(`The upgrade did not happen. ${withNothingChanged(result.error.message)}`, result.error.details);
      onStarted(result.value);
    })();
  });
  return h(
    'section',
    { className: 'card upgrade', 'aria-labelledby': 'upgrade-heading', 'data-testid': 'upgrade-card' },
    h('h3', { id: 'upgrade-heading' }, 'Give each device its own keys'),
    h('p', {}, 'Today every device of your motebit shares one master key. Upgrading gives this device its own keys:'),
    h(
      'ul',
      {},
      h('li', {}, h('strong', {}, 'A device you remove is really locked out: '), 'it can no longer sync, nor read anything written after.'),
      h('li', {}, h('strong', {}, 'Adding a device becomes an approval: '), 'the new device shows a code, and you approve it on one of yours after both show the same six digits.'),
      h('li', {}, h('strong', {}, 'A recovery key is made '), 'when the first device upgrades, to get your motebit back if every device is lost. It is shown once: have a pen ready.'),
    ),
    h('p', {}, h('strong', {}, 'Everything stays: '), 'every value, your motebit and this device. Nothing is set up again.'),
    h('p', {}, 'Then upgrade your other devices one by one (here in Settings, or with motebit-sync upgrade): each shows a code that you approve on a device upgraded already, after comparing six digits.'),
    h('div', { className: 'actions' }, button),
    message.element,
  );
}

export type UpgradeOutcome = 'upgraded' | 'back';

/**
 * A later upgrade: the one-time code, then the digits, then done (onDone('upgraded')). Cancel, or a code
 * that expired, says that nothing was changed and offers to try again or go back (onDone('back')).
 */
export function upgradeJoinView(call: Call, started: JoinStarted, onDone: (outcome: UpgradeOutcome) => void): { element: HTMLElement; start(): void } {
  const flow = h('div', { className: 'join-flow', 'data-testid': 'upgrade-flow', 'aria-live': 'polite' });
  const element = h(
    'main',
    { id: 'upgrade', className: 'setup', 'aria-labelledby': 'upgrade-title' },
    h('h1', { id: 'upgrade-title' }, 'Upgrade this device'),
    h('p', { className: 'lead' }, 'Another device of your motebit was upgraded already: approve this one there, and it gets its own keys, keeping every value.'),
    h('section', { className: 'card upgrade-flow' }, flow),
  );

  function cancelButton(): HTMLButtonElement {
    const cancel = h('button', { type: 'button', 'data-testid': 'cancel-upgrade' }, 'Cancel');
    cancel.addEventListener('click', () => {
      if (isBusy(cancel)) return;
      busy(cancel, 'Cancelling…');
      void call('keys.upgradeCancel', {}); // the step waiting then answers "cancelled"
    });
    return cancel;
  }

  function ended(error: IpcError): void {
    const back = h('button', { type: 'button', className: 'primary', 'data-testid': 'upgrade-back' }, 'Back to Motebit Sync');
    back.addEventListener('click', () => onDone('back'));
    const shown = messageLine();
    if (error.code === 'cancelled') {
      const heading = h('h2', { tabindex: '-1' }, 'Upgrade stopped');
      replace(flow, heading, h('p', { 'data-testid': 'upgrade-outcome' }, NOTHING_CHANGED), h('div', { className: 'actions' }, back));
      heading.focus();
      return;
    }
    const again = h('button', { type: 'button', 'data-testid': 'upgrade-again' }, 'Get a new code');
    again.addEventListener('click', () => {
      if (isBusy(again)) return;
      busy(again, 'Getting a code…');
      void (async () => {
        const result = await call('keys.upgrade', {});
        if (!result.ok) return ended(result.error);
        if (result.value.kind === 'founded') return onDone('upgraded'); // cannot happen once a log exists; said as done
        void run(result.value);
      })();
    });
    const heading = h('h2', { tabindex: '-1' }, 'The upgrade did not happen');
    replace(flow, heading, shown.element, h('div', { className: 'actions' }, again, back));
    shown.error(withNothingChanged(error.message), error.details);
    heading.focus();
  }

  async function run(join: JoinStarted): Promise<void> {
    const heading = h('h2', { tabindex: '-1' }, 'Your one-time code');
    const instruction = h('span', {}, h('strong', {}, 'On a device of your motebit that was upgraded already, choose Add a device in Settings and enter this code'), ' (or run motebit-sync approve with it in a terminal).');
    replace(flow, heading, ...codeStep(join, 'upgrade', instruction, cancelButton()));
    heading.focus();

    const digits = await call('keys.upgradeDigits', {});
    if (!digits.ok) return ended(digits.error);
    const digitsHeading = h('h2', { tabindex: '-1' }, 'Compare the digits');
    replace(flow, digitsHeading, ...digitsStep(digits.value.sas, 'upgrade', cancelButton()));
    digitsHeading.focus();

    const done = await call('keys.upgradeFinish', {});
    if (!done.ok) return ended(done.error);
    onDone('upgraded');
  }

  // started once the element is on screen, so that focus can move to each step's heading
  return { element, start: () => void run(started) };
}
