// Joining an existing motebit by approval (per-device keys): the person gives the relay address (and a
// name); this device shows a one-time code (text and QR) and waits; when a member answers, both screens
// show the same six digits and the person approves on the member; then the device opens like any setup.
// Cancel stops waiting (nothing is written); an expired code gives words and "Get a new code".
import type { AppState, EnvironmentView, IpcError } from '../shared/portable/ipc-contract.ts';
import { h, replace } from './dom.ts';
import { codeStep, digitsStep } from './code-view.ts';
import { busy, field, isBusy, messageLine, onSubmit, type Call } from './ui.ts';

export interface ApprovalJoin {
  /** The form, then the code and the digits in its place. */
  readonly element: HTMLElement;
  /** Told when the code is shown (true) and when the form is back (false): the rest of the screen can step aside. */
  onWaiting(listener: (waiting: boolean) => void): void;
}

export function approvalJoin(call: Call, onReady: (state: AppState) => void, environment: EnvironmentView, nameHint: string): ApprovalJoin {
  let waitingListener: (waiting: boolean) => void = () => {};
  const relay = field({
    label: 'Address of your motebit’s relay',
    name: 'relayUrl',
    hint: 'The relay URL your other devices use: on one of them it is under Settings → Relay.',
    inputmode: 'url',
    autocomplete: 'url',
  });
  const name = field({ label: 'Name of this device', name: 'deviceName', hint: nameHint, value: environment.defaultDeviceName });
  const start = h('button', { type: 'submit', className: 'primary' }, 'Get a code');
  const message = messageLine();
  const form = h('form', { novalidate: true, 'data-form': 'join-approval' }, relay.wrap, name.wrap, h('div', { className: 'actions' }, start), message.element);
  const flow = h('div', { className: 'join-flow', hidden: true, 'data-testid': 'join-flow', 'aria-live': 'polite' });
  const element = h('div', {}, form, flow);

  /** Back to the form, with what happened. */
  function backToForm(said?: { ok?: string; error?: IpcError }): void {
    flow.hidden = true;
    replace(flow);
    form.hidden = false;
    waitingListener(false);
    if (said?.ok) message.ok(said.ok);
    if (said?.error) message.error(said.error.message, said.error.details);
    start.focus();
  }

  /** The cancel button of a waiting step: stops the wait in main; the step's own answer then says cancelled. */
  function cancelButton(): HTMLButtonElement {
    const cancel = h('button', { type: 'button', 'data-testid': 'cancel-approval-join' }, 'Cancel');
    cancel.addEventListener('click', () => {
      if (isBusy(cancel)) return;
      busy(cancel, 'Cancelling…');
      void call('setup.cancel', {});
    });
    return cancel;
  }

  /** A failed step: cancelled goes back to the form; anything else (expired, …) says so and offers a new code. */
  function failed(error: IpcError): void {
    if (error.code === 'cancelled') return backToForm({ ok: 'Stopped. Nothing was set up on this device.' });
    const again = h('button', { type: 'button', className: 'primary', 'data-testid': 'new-code' }, 'Get a new code');
    const back = h('button', { type: 'button' }, 'Back');
    again.addEventListener('click', () => {
      if (isBusy(again)) return;
      busy(again, 'Getting a code…');
      void run();
    });
    back.addEventListener('click', () => backToForm());
    const shown = messageLine();
    replace(flow, h('h3', { tabindex: '-1' }, 'This code can no longer be used'), shown.element, h('div', { className: 'actions' }, again, back));
    shown.error(error.message, error.details);
    again.focus();
  }

  async function run(): Promise<void> {
    relay.setError(null);
    name.setError(null);
    message.clear();
    const deviceName = name.input.value.trim();
    const started = await call('setup.joinStart', { relayUrl: relay.input.value, ...(deviceName ? { deviceName } : {}) });
    if (!started.ok) {
      const error = started.error;
      if (!flow.hidden) return failed(error);
      if (error.code === 'cancelled') return message.ok(error.message);
      const target = error.field === 'deviceName' ? name : error.field === 'relayUrl' || ['network', 'relay', 'auth'].includes(error.code) ? relay : null;
      if (target) {
        target.setError(error.message, error.details);
        target.input.focus();
      } else {
        message.error(error.message, error.details);
      }
      return;
    }
    const { code, qrSvg, expiresAt } = started.value;
    form.hidden = true;
    flow.hidden = false;
    waitingListener(true);
    const heading = h('h3', { tabindex: '-1' }, 'Your one-time code');
    const instruction = h('span', {}, h('strong', {}, 'On a device of your motebit choose Add a device and enter this code'), ' (in Settings, or run motebit-sync approve with it in a terminal).');
    replace(flow, heading, ...codeStep({ code, qrSvg, expiresAt }, 'join', instruction, cancelButton()));
    heading.focus();

    const digits = await call('setup.joinDigits', {});
    if (!digits.ok) return failed(digits.error);
    const digitsHeading = h('h3', { tabindex: '-1' }, 'Compare the digits');
    replace(flow, digitsHeading, ...digitsStep(digits.value.sas, 'join', cancelButton()));
    digitsHeading.focus();

    const done = await call('setup.joinFinish', {});
    if (!done.ok) return failed(done.error);
    onReady(done.value);
  }

  onSubmit(form, start, 'Getting a code…', run);
  return {
    element,
    onWaiting(listener) {
      waitingListener = listener;
    },
  };
}
