// The recovery key of a motebit just created here, shown once (main hands it to the window once and keeps
// it nowhere): the text in groups, its QR code, the motebit id beside it, what it is for, and one way on.
import type { RecoveryKeyView } from '../shared/portable/ipc-contract.ts';
import { h } from './dom.ts';
import { codeText, qrImage } from './code-view.ts';

export function recoveryKeyView(key: RecoveryKeyView, onDone: () => void): HTMLElement {
  const done = h('button', { type: 'button', className: 'primary', 'data-testid': 'recovery-done' }, 'I have written it down');
  done.addEventListener('click', onDone);
  return h(
    'main',
    { id: 'recovery-key', className: 'setup', 'aria-labelledby': 'recovery-heading' },
    h('h1', { id: 'recovery-heading', tabindex: '-1' }, 'Your recovery key'),
    h('p', { className: 'lead' }, 'This device now has its own keys. Before you go on, write down this recovery key (or print or photograph the QR code) and keep it away from your devices, somewhere safe.'),
    h(
      'section',
      { className: 'card recovery', 'aria-label': 'Recovery key' },
      h(
        'div',
        { className: 'recovery-grid' },
        qrImage(key.qrSvg, 'QR code of the recovery key'),
        h(
          'div',
          {},
          h('h2', {}, 'Recovery key'),
          codeText(key.recoveryKey, { 'data-testid': 'recovery-key' }),
          h('dl', { className: 'facts' }, h('div', { className: 'fact' }, h('dt', {}, 'Motebit'), h('dd', { className: 'mono', 'data-testid': 'recovery-motebit' }, key.motebitId))),
        ),
      ),
      h('p', {}, h('strong', {}, 'What it is for: '), 'with it you can get your motebit back on a new device if every device is lost, and remove any device — a lost or stolen one too. You will need the motebit id above with it.'),
      h('p', {}, h('strong', {}, 'Keep it secret: '), 'whoever has it can do the same. It is shown only now: Motebit Sync keeps it nowhere, not on this device and not on the relay.'),
      h('div', { className: 'actions' }, done),
    ),
  );
}
