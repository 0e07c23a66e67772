// First run: create a new motebit on a relay, or join an existing one: by approval (a one-time code this
// device shows, join-view.ts), or, for a motebit that still shares one master token, with the pairing code
// another device made (the secondary way, folded away). It says what a relay is and how to start one; the device name is filled in with the host name (visible, editable); a
// setup waiting for a relay that does not answer can be cancelled (nothing is written). Main checks the
// URL and that the relay answers; its error is shown under the field it is about, details folded away.
import type { AppState, EnvironmentView, IpcError } from '../shared/portable/ipc-contract.ts';
import { h } from './dom.ts';
import { approvalJoin } from './join-view.ts';
import { recoverView } from './recover-view.ts';
import { field, messageLine, onSubmit, type Call, type Field } from './ui.ts';

export function setupView(call: Call, onReady: (state: AppState) => void, environment: EnvironmentView): HTMLElement {
  const nameHint = 'Shown to your other devices. Filled in with this computer’s name; change it if you like.';

  // ---- create ----
  const relay = field({ label: 'Relay URL', name: 'relayUrl', hint: 'For example https://relay.example.com, or http://127.0.0.1:8787 for a relay on this computer.', inputmode: 'url', autocomplete: 'url' });
  const createName = field({ label: 'Name of this device', name: 'deviceName', hint: nameHint, value: environment.defaultDeviceName });
  const createButton = h('button', { type: 'submit', className: 'primary' }, 'Create motebit');
  const createCancel = cancelButton(call, 'create');
  const createMessage = messageLine();
  const createForm = h(
    'form',
    { className: 'card', 'aria-labelledby': 'create-heading', novalidate: true, 'data-form': 'create' },
    h('h2', { id: 'create-heading' }, 'Create a new motebit'),
    h('p', {}, 'Start fresh on this device. You can add your other devices afterwards from Settings → Add a device.'),
    relay.wrap,
    createName.wrap,
    h('div', { className: 'actions' }, createButton, createCancel.button),
    createMessage.element,
  );
  onSubmit(createForm, createButton, 'Checking the relay…', async () => {
    relay.setError(null);
    createName.setError(null);
    createMessage.clear();
    const deviceName = createName.input.value.trim();
    const result = await createCancel.around(() => call('setup.create', { relayUrl: relay.input.value, ...(deviceName ? { deviceName } : {}) }));
    if (result.ok) return onReady(result.value);
    showError(result.error, { relayUrl: relay, deviceName: createName }, relay, createMessage);
  });

  // ---- join by approval (the way) ----
  const approval = approvalJoin(call, onReady, environment, nameHint);

  // ---- join with a pairing code (a motebit that shares one master token) ----
  const code = field({ label: 'Pairing code', name: 'pairingCode', hint: 'On a device that already syncs, open Settings → Add a device, create a one-off code and copy it here.', multiline: true });
  const joinName = field({ label: 'Name of this device', name: 'deviceName', hint: nameHint, value: environment.defaultDeviceName });
  const joinButton = h('button', { type: 'submit', className: 'primary' }, 'Join motebit');
  const joinCancel = cancelButton(call, 'join');
  const joinMessage = messageLine();
  const joinForm = h('form', { novalidate: true, 'data-form': 'join' }, code.wrap, joinName.wrap, h('div', { className: 'actions' }, joinButton, joinCancel.button), joinMessage.element);
  const withCode = h('details', { className: 'secondary-way', 'data-testid': 'join-with-code' }, h('summary', {}, 'I have a code that starts with motebit-pair:'), joinForm);
  const joinCard = h(
    'section',
    { className: 'card', 'aria-labelledby': 'join-heading', 'data-card': 'join' },
    h('h2', { id: 'join-heading' }, 'Join an existing motebit'),
    h('p', {}, 'Add this device to a motebit you already use on another device. This device shows a one-time code; you approve it on the other device.'),
    approval.element,
    withCode,
  );
  const recover = recoverView(call, onReady, environment, nameHint);
  approval.onWaiting((waiting) => {
    createForm.hidden = waiting;
    withCode.hidden = waiting;
    recover.hidden = waiting;
  });
  onSubmit(joinForm, joinButton, 'Joining…', async () => {
    code.setError(null);
    joinName.setError(null);
    joinMessage.clear();
    const deviceName = joinName.input.value.trim();
    const result = await joinCancel.around(() => call('setup.join', { pairingCode: code.input.value, ...(deviceName ? { deviceName } : {}) }));
    if (result.ok) return onReady(result.value);
    showError(result.error, { pairingCode: code, deviceName: joinName }, code, joinMessage);
  });

  return h(
    'main',
    { id: 'setup', className: 'setup' },
    h('h1', {}, 'Set up Motebit Sync'),
    h('p', { className: 'lead' }, 'Keep your motebit — one identity, one memory — in step on every device.'),
    h(
      'p',
      { className: 'lead', 'data-testid': 'relay-explained' },
      'Your devices sync through a relay: a small server that passes encrypted changes between them and can never read them. To run your own, type ',
      h('code', {}, 'npx motebit-relay'),
      ' in a terminal on a computer your devices can reach; it prints the address to enter below.',
    ),
    h('div', { className: 'cards' }, createForm, joinCard),
    recover,
  );
}

/** A Cancel button shown while a setup waits for its relay; it abandons the wait (main writes nothing). */
function cancelButton(call: Call, form: string): { button: HTMLButtonElement; around<T>(run: () => Promise<T>): Promise<T> } {
  const button = h('button', { type: 'button', hidden: true, 'data-testid': `cancel-${form}` }, 'Cancel');
  button.addEventListener('click', () => {
    button.hidden = true;
    void call('setup.cancel', {});
  });
  return {
    button,
    async around(run) {
      button.hidden = false;
      try {
        return await run();
      } finally {
        button.hidden = true;
      }
    },
  };
}

/** An error goes under the field it is about; a relay that cannot be reached is about the URL (or code). */
function showError(error: IpcError, fields: Record<string, Field>, networkField: Field, message: ReturnType<typeof messageLine>): void {
  if (error.code === 'cancelled') {
    message.ok(error.message);
    return;
  }
  const target = error.field !== undefined ? fields[error.field] : ['network', 'relay', 'auth'].includes(error.code) ? networkField : undefined;
  if (target) {
    target.setError(error.message, error.details);
    target.input.focus();
  } else {
    message.error(error.message, error.details);
  }
}
