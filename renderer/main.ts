// The settings window: the setup screen on first run, then Status, Conflicts and Settings. It reaches main
// only through a MotebitBridge (window.motebit in Electron, the harness socket in a browser).
import type { AppState, EnvironmentView } from '../shared/portable/ipc-contract.ts';
import type { SyncStatus } from '../shared/portable/status.ts';
import { connectBridge } from './bridge.ts';
import { conflictsView } from './conflicts-view.ts';
import { h, replace } from './dom.ts';
import { fileSecretsBanner, keyringView } from './keyring-view.ts';
import { settingsView } from './settings-view.ts';
import { setupView } from './setup-view.ts';
import { recoveryKeyView } from './recovery-key-view.ts';
import { moveOfferView } from './relay-move-view.ts';
import { statusView } from './status-view.ts';
import { upgradeJoinView, type UpgradeStarted } from './upgrade-view.ts';
import { caller } from './ui.ts';

const root = document.getElementById('app');
if (!root) throw new Error('index.html has no #app');
const app: HTMLElement = root;
const { bridge, onDisconnect } = connectBridge();
const call = caller(bridge);

// recovery: the motebit is ready, and the window first shows its recovery key (once) or finds there is none
// upgrade: this device is getting its own keys (upgrade-view.ts); the window shows that until it is done
let phase: 'loading' | 'keyring' | 'setup' | 'recovery' | 'upgrade' | 'ready' = 'loading';
/** The latest ready state while the recovery key is shown. */
let readyState: Extract<AppState, { phase: 'ready' }> | null = null;
/** Where secrets are kept (or that there is no keyring) and the default device name; fetched at start. */
let environment: EnvironmentView = {
  secrets: { store: 'os', filePath: null, why: null, command: null, instead: null, fileMeaning: '', details: null },
  defaultDeviceName: '',
};
let onStatus: ((status: SyncStatus) => void) | null = null;
let onRelay: ((url: string) => void) | null = null;
let stopTicking: (() => void) | null = null;
let onGone: (() => void) | null = null;

const banner = h('div', { className: 'banner', role: 'alert', hidden: true });
document.body.prepend(banner);
// While secrets are in a plain file, every screen says so (below the connection banner).
const secretsSlot = h('div', { 'data-testid': 'secrets-slot' });
banner.after(secretsSlot);

function setEnvironment(next: EnvironmentView): void {
  environment = next;
  replace(secretsSlot, fileSecretsBanner(next));
}
onDisconnect(() => {
  banner.textContent = 'Lost the connection to Motebit Sync. Restart it, then reload this page.';
  banner.hidden = false;
  onGone?.();
});

function showState(state: AppState): void {
  if (state.phase === 'setup') {
    const wanted = environment.secrets.store === 'unavailable' ? 'keyring' : 'setup';
    if (phase === wanted) return;
    phase = wanted;
    stopTicking?.();
    onStatus = null;
    onRelay = null;
    if (wanted === 'keyring') {
      replace(
        app,
        keyringView(call, environment, (next) => {
          setEnvironment(next);
          void call('app.state', {}).then((result) => result.ok && showState(result.value));
        }),
      );
      document.title = 'Motebit Sync — no keyring';
      app.querySelector('h1')?.setAttribute('tabindex', '-1');
      return;
    }
    replace(app, setupView(call, showState, environment));
    document.title = 'Motebit Sync — set up';
    app.querySelector('input')?.focus();
    return;
  }
  if (phase === 'ready') {
    onRelay?.(state.relayUrl);
    return;
  }
  if (phase === 'upgrade') {
    readyState = state; // the same motebit and device: the upgrade screen leads back to it when done
    return;
  }
  readyState = state;
  if (phase === 'recovery') return;
  phase = 'recovery';
  // A motebit created here just now: its recovery key, which main hands out once, comes first.
  void call('recovery.take', {}).then(async (result) => {
    if (!result.ok || result.value === null) {
      // a window opened again while this device's upgrade waits for a member: its code and digits again
      const waiting = await call('keys.upgradeWaiting', {});
      if (!waiting.ok || waiting.value === null) return enterReady();
      phase = 'ready';
      return showUpgrade(waiting.value);
    }
    replace(app, recoveryKeyView(result.value, () => enterReady()));
    document.title = 'Motebit Sync — your recovery key';
    (app.querySelector('h1') as HTMLElement | null)?.focus();
  });
}

function enterReady(tab: Tab = 'status'): void {
  if (phase === 'ready' || readyState === null) return;
  phase = 'ready';
  document.title = 'Motebit Sync';
  showReady(readyState, tab);
}

/**
 * The upgrade started in Settings: the first device's recovery key (once, as after create), or a later
 * device's code and digits; then Settings again, which now say which keys the device has.
 */
function showUpgrade(started: UpgradeStarted): void {
  if (phase !== 'ready') return;
  phase = 'upgrade';
  stopTicking?.();
  onStatus = null;
  onRelay = null;
  onGone = null;
  const back = () => enterReady('settings');
  if (started.kind === 'founded') {
    void call('recovery.take', {}).then((result) => {
      if (!result.ok || result.value === null) return back();
      replace(app, recoveryKeyView(result.value, back));
      document.title = 'Motebit Sync — your recovery key';
      (app.querySelector('h1') as HTMLElement | null)?.focus();
    });
    return;
  }
  const view = upgradeJoinView(call, started, back);
  replace(app, view.element);
  document.title = 'Motebit Sync — upgrade this device';
  view.start();
}

type Tab = 'status' | 'conflicts' | 'settings';

function showReady(state: Extract<AppState, { phase: 'ready' }>, first: Tab = 'status'): void {
  const conflictCount = h('span', { className: 'count', hidden: true, 'data-testid': 'conflict-count' });
  const status = statusView(call, () => select('conflicts'));
  const conflicts = conflictsView(call, (count) => {
    conflictCount.textContent = count === 0 ? '' : String(count); // hidden when 0, and not read as part of the tab name
    conflictCount.hidden = count === 0;
  });
  const settings = settingsView(call, showUpgrade);
  const moveOffer = moveOfferView(call);
  const panels: Record<Tab, HTMLElement> = { status: status.element, conflicts: conflicts.element, settings: settings.element };
  const tabButton = (tab: Tab, label: string, extra?: HTMLElement) =>
    h('button', { type: 'button', className: 'tab', 'aria-controls': `panel-${tab}`, 'data-tab': tab, onclick: () => select(tab) }, label, extra);
  const tabs: Record<Tab, HTMLButtonElement> = {
    status: tabButton('status', 'Status'),
    conflicts: tabButton('conflicts', 'Conflicts', conflictCount),
    settings: tabButton('settings', 'Settings'),
  };
  const who = h('p', { className: 'who' }, state.deviceName ?? 'This device', ' · ', h('span', { className: 'mono' }, state.motebitId));

  function select(tab: Tab): void {
    for (const [name, panel] of Object.entries(panels) as [Tab, HTMLElement][]) {
      panel.hidden = name !== tab;
      if (name === tab) tabs[name].setAttribute('aria-current', 'page');
      else tabs[name].removeAttribute('aria-current');
    }
    if (tab === 'conflicts') conflicts.refresh();
    if (tab === 'settings') settings.load();
  }

  replace(
    app,
    h('header', { className: 'topbar' }, h('h1', {}, 'Motebit Sync'), who),
    moveOffer.element,
    h('nav', { className: 'tabs', 'aria-label': 'Sections' }, tabs.status, tabs.conflicts, tabs.settings),
    h('main', { className: 'panels' }, status.element, conflicts.element, settings.element),
  );
  select(first);
  status.setRelayUrl(state.relayUrl);

  let lastConflicts = -1;
  let lastSuccess: number | null = null;
  onStatus = (next) => {
    status.update(next);
    settings.updateStatus(next);
    // a finished cycle or a live page may have brought or settled conflicts
    if (next.openConflicts !== lastConflicts || next.lastSuccessAt !== lastSuccess) conflicts.refresh();
    moveOffer.statusChanged(next);
    lastConflicts = next.openConflicts;
    lastSuccess = next.lastSuccessAt;
  };
  onRelay = (url) => {
    status.setRelayUrl(url);
    moveOffer.refresh();
  };
  onGone = () => status.disconnected();
  const timer = window.setInterval(() => {
    const now = Date.now();
    status.tick(now);
    conflicts.tick(now);
  }, 1000);
  stopTicking = () => window.clearInterval(timer);
  void call('status.get', {}).then((result) => {
    if (result.ok) onStatus?.(result.value);
  });
  conflicts.refresh();
}

bridge.on('app.changed', showState);
bridge.on('status.changed', (status) => onStatus?.(status));

void (async () => {
  const result = await call('app.state', {});
  if (!result.ok) {
    replace(app, h('main', { className: 'setup' }, h('h1', {}, 'Motebit Sync'), h('p', { className: 'message error', role: 'alert' }, `Could not start: ${result.error.message}`)));
    return;
  }
  const env = await call('app.environment', {});
  if (env.ok) setEnvironment(env.value);
  showState(result.value);
})();
