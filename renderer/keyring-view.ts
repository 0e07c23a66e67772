// No OS keyring on this machine (a server, a container, a session without D-Bus): the app still starts, and
// this screen says so in plain words and offers the two ways on: start a keyring (the exact command for
// this machine, then Try again), or keep the secrets in a plain file, with what that means.
import type { EnvironmentView } from '../shared/portable/ipc-contract.ts';
import { h } from './dom.ts';
import { busy, detailsDisclosure, isBusy, messageLine, type Call } from './ui.ts';

export function keyringView(call: Call, environment: EnvironmentView, onChanged: (environment: EnvironmentView) => void): HTMLElement {
  const { secrets } = environment;

  const retry = h('button', { type: 'button', className: 'primary', 'data-testid': 'keyring-retry' }, 'Try again');
  const retryMessage = messageLine();
  const command = secrets.command
    ? h('pre', { className: 'command', 'data-testid': 'keyring-command', tabindex: 0, 'aria-label': 'Command that starts a keyring' }, secrets.command)
    : null;
  const startCard = h(
    'section',
    { className: 'card', 'aria-labelledby': 'keyring-start-heading', 'data-card': 'start-keyring' },
    h('h2', { id: 'keyring-start-heading' }, 'Start a keyring (recommended)'),
    secrets.instead ? h('p', {}, secrets.instead) : null,
    command
      ? h('p', {}, 'Stop Motebit Sync, then run this in a terminal. It asks for a password for the keyring (the same one opens it next time) and starts Motebit Sync again with the keyring:')
      : null,
    command,
    h('p', { className: 'hint' }, 'If you started or unlocked a keyring for this session another way, try again.'),
    h('div', { className: 'actions' }, retry),
    retryMessage.element,
  );

  const useFile = h('button', { type: 'button', className: 'danger', 'data-testid': 'keyring-use-file' }, 'Keep secrets in a file');
  const fileMessage = messageLine();
  const fileCard = h(
    'section',
    { className: 'card warn', 'aria-labelledby': 'keyring-file-heading', 'data-card': 'file' },
    h('h2', { id: 'keyring-file-heading' }, 'Or keep secrets in a file'),
    h('p', {}, secrets.fileMeaning),
    h('p', {}, 'Choose this only on a machine where nobody else can read your files. This window will keep saying that the secrets are in a file.'),
    h('div', { className: 'actions' }, useFile),
    fileMessage.element,
  );

  retry.addEventListener('click', () => {
    if (isBusy(retry)) return;
    const done = busy(retry, 'Looking for a keyring…');
    retryMessage.clear();
    void call('secrets.retry', {}).then((result) => {
      done();
      if (!result.ok) return retryMessage.error(result.error.message, result.error.details);
      if (result.value.secrets.store === 'unavailable') return retryMessage.error('Still no keyring here.', result.value.secrets.details ?? undefined);
      onChanged(result.value);
    });
  });
  useFile.addEventListener('click', () => {
    if (isBusy(useFile)) return;
    const done = busy(useFile, 'Choosing the file…');
    fileMessage.clear();
    void call('secrets.useFile', {}).then((result) => {
      done();
      if (!result.ok) return fileMessage.error(result.error.message, result.error.details);
      onChanged(result.value);
    });
  });

  return h(
    'main',
    { id: 'no-keyring', className: 'setup' },
    h('h1', {}, 'No keyring on this machine'),
    h('p', { className: 'lead' }, 'Motebit Sync keeps the keys of your motebit in the system keyring, and this machine has none it can use. ', secrets.why ?? ''),
    detailsDisclosure(secrets.details),
    h('div', { className: 'cards' }, startCard, fileCard),
  );
}

/** The banner on every screen while secrets are in a plain file. */
export function fileSecretsBanner(environment: EnvironmentView): HTMLElement | null {
  const { secrets } = environment;
  if (secrets.store !== 'file') return null;
  return h(
    'div',
    { className: 'banner file-secrets', role: 'status', 'data-testid': 'file-secrets-banner' },
    'Secrets are kept in a plain file, not in a keyring',
    secrets.filePath ? h('span', {}, ' (', h('span', { className: 'mono' }, secrets.filePath), ')') : null,
    ': anyone who can read that file can use your motebit.',
  );
}
