// Every device lost: the person types the relay address, the motebit id and the recovery key they wrote
// down when the motebit was created; this device is added with it and syncs the whole motebit. Folded away
// under the setup screen's cards (the rare way). The key is sent to main once and kept nowhere.
import type { AppState, EnvironmentView, IpcError } from '../shared/portable/ipc-contract.ts';
import { h } from './dom.ts';
import { field, messageLine, onSubmit, type Call, type Field } from './ui.ts';

const MOTEBIT_ID = /^mb_[A-Za-z0-9_-]{22}$/;

export function recoverView(call: Call, onReady: (state: AppState) => void, environment: EnvironmentView, nameHint: string): HTMLElement {
  const relay = field({ label: 'Relay of the motebit to recover', name: 'relayUrl', hint: 'The relay URL your devices used.', inputmode: 'url', autocomplete: 'url' });
  const motebit = field({ label: 'Motebit id', name: 'motebitId', hint: 'It starts with mb_ and was shown with the recovery key.' });
  motebit.input.classList.add('mono');
  const key = field({ label: 'Recovery key', name: 'recoveryKey', hint: 'It starts with MBR1. Dashes, spaces and case do not matter.', multiline: true });
  key.input.classList.add('mono');
  const name = field({ label: 'Name of this device', name: 'deviceName', hint: nameHint, value: environment.defaultDeviceName });
  const button = h('button', { type: 'submit', className: 'primary' }, 'Recover motebit');
  const message = messageLine();
  const form = h(
    'form',
    { novalidate: true, 'data-form': 'recover' },
    h('p', {}, 'This adds this device to your motebit with the recovery key, and it then syncs everything. Afterwards, remove the devices you lost under Settings → Devices: they will no longer sync, nor read anything written from then on.'),
    relay.wrap,
    motebit.wrap,
    key.wrap,
    name.wrap,
    h('div', { className: 'actions' }, button),
    message.element,
  );
  const fields: Record<string, Field> = { relayUrl: relay, motebitId: motebit, recoveryKey: key, deviceName: name };

  function show(error: IpcError): void {
    // a mistyped key is about the key; a relay that cannot be reached is about the address
    const target = error.field !== undefined ? fields[error.field] : error.code === 'invalid_argument' ? key : ['network', 'relay', 'auth'].includes(error.code) ? relay : undefined;
    if (target) {
      target.setError(error.message, error.details);
      target.input.focus();
    } else {
      message.error(error.message, error.details);
    }
  }

  onSubmit(form, button, 'Recovering…', async () => {
    for (const f of Object.values(fields)) f.setError(null);
    message.clear();
    const motebitId = motebit.input.value.trim();
    if (!MOTEBIT_ID.test(motebitId)) {
      motebit.setError('This is not a motebit id: it starts with mb_ and has 22 letters and digits after it, as shown with the recovery key.');
      motebit.input.focus();
      return;
    }
    const deviceName = name.input.value.trim();
    const result = await call('setup.recover', { relayUrl: relay.input.value, motebitId, recoveryKey: key.input.value, ...(deviceName ? { deviceName } : {}) });
    if (result.ok) {
      key.input.value = '';
      return onReady(result.value);
    }
    show(result.error);
  });

  return h('details', { className: 'card secondary-card', 'data-testid': 'recover' }, h('summary', {}, h('span', { className: 'summary-heading' }, 'Lost every device? Recover with your recovery key')), form);
}
