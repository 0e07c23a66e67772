// Add a device to a motebit with per-device keys: the person enters the code the new device shows; this
// device answers it and, once the new device replied, shows its name and the six digits; Approve adds it,
// Don't approve changes nothing (and the code cannot be used again). Failures are words, details folded.
import { h, replace } from './dom.ts';
import { sasDigits } from './code-view.ts';
import { busy, field, isBusy, messageLine, onSubmit, type Call } from './ui.ts';

export function addDeviceView(call: Call, onAdded: () => void): HTMLElement {
  const code = field({ label: 'Code the new device shows', name: 'code', multiline: true, hint: 'On the new device choose “Join an existing motebit”: it shows a one-time code starting with MBP1. Type it here (dashes, spaces and case do not matter).' });
  code.input.classList.add('mono');
  (code.input as HTMLTextAreaElement).rows = 2;
  const next = h('button', { type: 'submit', className: 'primary' }, 'Continue');
  const stop = h('button', { type: 'button', hidden: true, 'data-testid': 'stop-check' }, 'Cancel');
  const message = messageLine();
  const form = h('form', { novalidate: true, 'data-form': 'add-device' }, code.wrap, h('div', { className: 'actions' }, next, stop));
  const decision = h('div', { className: 'approval', hidden: true, 'data-testid': 'approval' });
  stop.addEventListener('click', () => void call('pairing.decline', {}));
  // the whole code stays in view (two lines), and Enter still continues, as in a one-line field
  code.input.addEventListener('keydown', (event) => {
    if ((event as KeyboardEvent).key !== 'Enter' || (event as KeyboardEvent).shiftKey) return;
    event.preventDefault();
    form.requestSubmit();
  });

  function reset(): void {
    decision.hidden = true;
    replace(decision);
    form.hidden = false;
  }

  onSubmit(form, next, 'Waiting for the new device…', async () => {
    code.setError(null);
    message.clear();
    if (code.input.value.trim() === '') {
      code.setError('Enter the code the new device shows.');
      code.input.focus();
      return;
    }
    stop.hidden = false;
    const result = await call('pairing.check', { code: code.input.value });
    stop.hidden = true;
    if (!result.ok) {
      if (result.error.code === 'cancelled') return message.ok('Stopped. Nothing was changed; ask the new device for a new code to try again.');
      code.setError(result.error.message, result.error.details);
      code.input.focus();
      return;
    }
    const { deviceId, name, sas } = result.value;
    const approve = h('button', { type: 'button', className: 'primary', 'data-testid': 'approve' }, 'Approve');
    const decline = h('button', { type: 'button', 'data-testid': 'decline' }, 'Don’t approve');
    const heading = h('h4', { tabindex: '-1' }, 'New device: ', h('span', { 'data-testid': 'approval-name' }, name ?? '(no name)'));
    replace(
      decision,
      heading,
      h('p', { className: 'meta' }, h('span', { className: 'mono' }, deviceId)),
      h('p', {}, 'Both devices now show six digits:'),
      sasDigits(sas, 'approval-sas'),
      h('p', {}, h('strong', {}, 'Approve only if the new device shows the same digits.'), ' If they differ, do not approve: someone else may be answering.'),
      h('div', { className: 'actions' }, approve, decline),
    );
    form.hidden = true;
    decision.hidden = false;
    heading.focus();
    approve.addEventListener('click', () => {
      if (isBusy(approve)) return;
      void (async () => {
        const done = busy(approve, 'Approving…');
        const approved = await call('pairing.approve', { deviceId });
        done();
        reset();
        if (!approved.ok) return message.error(approved.error.message, approved.error.details);
        code.input.value = '';
        message.ok(`Approved: ${approved.value.name ?? 'the new device'} is now one of your devices and starts syncing.`);
        onAdded();
      })();
    });
    decline.addEventListener('click', () => {
      void (async () => {
        await call('pairing.decline', {});
        reset();
        code.input.value = '';
        message.ok('Not approved. Nothing was changed, and that code can no longer be used.');
        next.focus();
      })();
    });
  });

  return h('div', { 'data-testid': 'add-device' }, h('p', {}, 'Start on the new device: it shows a one-time code. Enter it here, compare the digits both devices show, and approve.'), form, decision, message.element);
}
