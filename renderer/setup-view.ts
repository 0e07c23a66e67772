// First run: create a new motebit on a relay, or join an existing one with a pairing code. Main checks the
// URL and that the relay answers; its error is shown under the field it is about.
import type { AppState, IpcError } from '../shared/ipc-contract.ts';
import { h } from './dom.ts';
import { field, messageLine, onSubmit, type Call, type Field } from './ui.ts';

export function setupView(call: Call, onReady: (state: AppState) => void): HTMLElement {
  // ---- create ----
  const relay = field({ label: 'Relay URL', name: 'relayUrl', hint: 'The relay your devices sync through, e.g. https://relay.example.com', inputmode: 'url', autocomplete: 'url' });
  const createName = field({ label: 'Name of this device (optional)', name: 'deviceName', hint: 'Shown to your other devices, e.g. "Laptop".' });
  const createButton = h('button', { type: 'submit', className: 'primary' }, 'Create motebit');
  const createMessage = messageLine();
  const createForm = h(
    'form',
    { className: 'card', 'aria-labelledby': 'create-heading', novalidate: true, 'data-form': 'create' },
    h('h2', { id: 'create-heading' }, 'Create a new motebit'),
    h('p', {}, 'Start fresh on this device. You can add your other devices afterwards with a pairing code.'),
    relay.wrap,
    createName.wrap,
    h('div', { className: 'actions' }, createButton),
    createMessage.element,
  );
  onSubmit(createForm, createButton, 'Checking the relay…', async () => {
    relay.setError(null);
    createName.setError(null);
    createMessage.clear();
    const deviceName = createName.input.value.trim();
    const result = await call('setup.create', { relayUrl: relay.input.value, ...(deviceName ? { deviceName } : {}) });
    if (result.ok) return onReady(result.value);
    showError(result.error, { relayUrl: relay, deviceName: createName }, relay, (message) => createMessage.error(message));
  });

  // ---- join ----
  const code = field({ label: 'Pairing code', name: 'pairingCode', hint: 'On a device that already syncs, open Settings → Add a device and copy its code here.', multiline: true });
  const joinName = field({ label: 'Name of this device (optional)', name: 'deviceName' });
  const joinButton = h('button', { type: 'submit', className: 'primary' }, 'Join motebit');
  const joinMessage = messageLine();
  const joinForm = h(
    'form',
    { className: 'card', 'aria-labelledby': 'join-heading', novalidate: true, 'data-form': 'join' },
    h('h2', { id: 'join-heading' }, 'Join an existing motebit'),
    h('p', {}, 'Add this device to a motebit you already use on another device.'),
    code.wrap,
    joinName.wrap,
    h('div', { className: 'actions' }, joinButton),
    joinMessage.element,
  );
  onSubmit(joinForm, joinButton, 'Joining…', async () => {
    code.setError(null);
    joinName.setError(null);
    joinMessage.clear();
    const deviceName = joinName.input.value.trim();
    const result = await call('setup.join', { pairingCode: code.input.value, ...(deviceName ? { deviceName } : {}) });
    if (result.ok) return onReady(result.value);
    showError(result.error, { pairingCode: code, deviceName: joinName }, code, (message) => joinMessage.error(message));
  });

  return h(
    'main',
    { id: 'setup', className: 'setup' },
    h('h1', {}, 'Set up Motebit Sync'),
    h('p', { className: 'lead' }, 'Keep your motebit — one identity, one memory — in step on every device. The relay only ever carries encrypted data.'),
    h('div', { className: 'cards' }, createForm, joinForm),
  );
}

/** An error goes under the field it is about; a relay that cannot be reached is about the URL (or code). */
function showError(error: IpcError, fields: Record<string, Field>, networkField: Field, formError: (message: string) => void): void {
  const target = error.field !== undefined ? fields[error.field] : ['network', 'relay', 'auth'].includes(error.code) ? networkField : undefined;
  if (target) {
    target.setError(error.message);
    target.input.focus();
  } else {
    formError(error.message);
  }
}
