// Settings: relay URL (validated by main; a bad one changes nothing), sync interval, pause/resume,
// encryption (read-only), start at login, storage (snapshots: storage-view.ts), the motebit's devices
// (revoke) and pairing a new device.
import { MAX_INTERVAL_SECONDS, MIN_INTERVAL_SECONDS } from '../shared/portable/limits.ts';
import type { DeviceView, SettingsView } from '../shared/portable/ipc-contract.ts';
import type { SyncStatus } from '../shared/portable/status.ts';
import { h, replace } from './dom.ts';
import { ago, dateTime } from './format.ts';
import { busy, field, isBusy, messageLine, onSubmit, type Call } from './ui.ts';
import { addDeviceView } from './add-device-view.ts';
import { upgradeCard, type UpgradeStarted } from './upgrade-view.ts';
import { storageCard } from './storage-view.ts';

export interface SettingsPanel {
  readonly element: HTMLElement;
  load(): void;
  updateStatus(status: SyncStatus): void;
}

/** onUpgrade: the upgrade of a master-token motebit started here (the window takes it from there). */
export function settingsView(call: Call, onUpgrade: (started: UpgradeStarted) => void = () => {}): SettingsPanel {
  let settings: SettingsView | null = null;
  let paused = false;

  // ---- relay ----
  const relay = field({ label: 'Relay URL', name: 'relayUrl', hint: 'Changing it enrols this device on the new relay and sends it this device’s log.', inputmode: 'url', autocomplete: 'url' });
  const relayButton = h('button', { type: 'submit' }, 'Save relay URL');
  const relayMessage = messageLine();
  const tellBox = h('input', { type: 'checkbox', id: 'tell-others', name: 'tellOthers', checked: true, 'data-testid': 'tell-others' });
  // Shown as soon as the field names another relay than this device's: what moving does to the others.
  const relayWarning = h(
    'div',
    { className: 'warning-box', hidden: true, 'data-testid': 'relay-warning' },
    h('p', {}, h('strong', {}, 'Your other devices stay on the old relay.'), ' Until they move too, they stop seeing this device’s changes, and this device stops seeing theirs.'),
    h('div', { className: 'check' }, tellBox, h('label', { for: 'tell-others' }, 'Send them the new address through the old relay (each one asks its person before moving)')),
  );
  const relayForm = h(
    'form',
    { className: 'card', 'aria-labelledby': 'relay-heading', novalidate: true, 'data-form': 'relay' },
    h('h3', { id: 'relay-heading' }, 'Relay'),
    relay.wrap,
    relayWarning,
    h('div', { className: 'actions' }, relayButton),
    relayMessage.element,
  );
  const relayChanged = () => {
    relayWarning.hidden = settings === null || relay.input.value.trim() === '' || relay.input.value.trim().replace(/\/+$/, '') === (settings.relayUrl ?? '');
  };
  relay.input.addEventListener('input', relayChanged);
  onSubmit(relayForm, relayButton, 'Checking the relay…', async () => {
    relay.setError(null);
    relayMessage.clear();
    const result = await call('settings.moveRelay', { relayUrl: relay.input.value, tellOthers: tellBox.checked });
    if (!result.ok) {
      relay.setError(result.error.message);
      relay.input.focus();
      return;
    }
    show(result.value.settings);
    relayWarning.hidden = true;
    if (result.value.told === 'failed') {
      relayMessage.error(`Saved: this device now syncs through this relay. But the new address could not be sent through the old relay (${result.value.message ?? 'it did not answer'}), so move your other devices yourself.`);
    } else if (result.value.told === 'sent') {
      relayMessage.ok('Saved. This device now syncs through this relay, and your other devices were sent the new address: each will ask whether to move.');
    } else {
      relayMessage.ok('Saved. This device now syncs through this relay.');
    }
  });

  // ---- sync ----
  const interval = field({ label: 'Sync every (seconds)', name: 'seconds', type: 'number', inputmode: 'numeric', min: MIN_INTERVAL_SECONDS, max: MAX_INTERVAL_SECONDS, hint: `Between ${MIN_INTERVAL_SECONDS} and ${MAX_INTERVAL_SECONDS} seconds. Live changes arrive at once over WebSocket either way.` });
  const intervalButton = h('button', { type: 'submit' }, 'Save interval');
  const intervalMessage = messageLine();
  const pauseButton = h('button', { type: 'button', 'data-testid': 'pause-resume' }, 'Pause sync');
  const pauseMessage = messageLine();
  const intervalForm = h(
    'form',
    { className: 'card', 'aria-labelledby': 'sync-heading', novalidate: true, 'data-form': 'interval' },
    h('h3', { id: 'sync-heading' }, 'Sync'),
    interval.wrap,
    h('div', { className: 'actions' }, intervalButton),
    intervalMessage.element,
    h('div', { className: 'actions' }, pauseButton),
    pauseMessage.element,
  );
  onSubmit(intervalForm, intervalButton, 'Saving…', async () => {
    interval.setError(null);
    intervalMessage.clear();
    const seconds = Number(interval.input.value);
    if (interval.input.value.trim() === '' || !Number.isInteger(seconds)) {
      interval.setError('Enter a whole number of seconds.');
      return;
    }
    const result = await call('settings.setInterval', { seconds });
    if (!result.ok) {
      interval.setError(result.error.message);
      return;
    }
    show(result.value);
    intervalMessage.ok('Saved.');
  });
  pauseButton.addEventListener('click', () => {
    if (isBusy(pauseButton)) return;
    void (async () => {
      pauseMessage.clear();
      const done = busy(pauseButton, paused ? 'Resuming…' : 'Pausing…');
      const result = await call(paused ? 'sync.resume' : 'sync.pause', {});
      done();
      if (!result.ok) return pauseMessage.error(result.error.message);
      updateStatus(result.value);
    })();
  });

  // ---- this device ----
  const facts = h('dl', { className: 'facts' });
  const loginBox = h('input', { type: 'checkbox', id: 'start-at-login', name: 'startAtLogin' });
  const loginMessage = messageLine();
  loginBox.addEventListener('change', () => {
    void (async () => {
      loginMessage.clear();
      const wanted = loginBox.checked;
      const result = await call('settings.setStartAtLogin', { enabled: wanted });
      if (!result.ok) {
        loginBox.checked = !wanted;
        return loginMessage.error(result.error.message);
      }
      show(result.value);
    })();
  });
  const deviceCard = h(
    'section',
    { className: 'card', 'aria-labelledby': 'device-heading' },
    h('h3', { id: 'device-heading' }, 'This device'),
    facts,
    h('div', { className: 'check' }, loginBox, h('label', { for: 'start-at-login' }, 'Start Motebit Sync when I log in')),
    loginMessage.element,
  );

  // ---- devices ----
  const deviceList = h('div', { 'data-testid': 'device-list' }, h('p', {}, 'Loading…'));
  const refreshDevices = h('button', { type: 'button' }, 'Refresh list');
  refreshDevices.addEventListener('click', () => loadDevices());
  const devicesCard = h('section', { className: 'card', 'aria-labelledby': 'devices-heading' }, h('h3', { id: 'devices-heading' }, 'Devices'), deviceList, h('div', { className: 'actions' }, refreshDevices));

  // ---- pairing ----
  const pairButton = h('button', { type: 'button', className: 'primary' }, 'Create a pairing code');
  const pairOutput = h('div', { className: 'pairing', 'data-testid': 'pairing' });
  const pairMessage = messageLine();
  pairButton.addEventListener('click', () => {
    if (isBusy(pairButton)) return;
    void (async () => {
      pairMessage.clear();
      const done = busy(pairButton, 'Creating…');
      const result = await call('pairing.create', {});
      done();
      if (!result.ok) return pairMessage.error(result.error.message);
      const code = h('textarea', { id: 'pairing-code', readonly: true, rows: 4, spellcheck: 'false', 'data-testid': 'pairing-code' });
      code.value = result.value.code;
      // The SVG is shown as an image from a data: URL: an <img> never runs script, and nothing is parsed as markup here.
      const qr = h('img', { className: 'qr', alt: 'QR code of the pairing code', width: 220, height: 220, src: `data:image/svg+xml;charset=utf-8,${encodeURIComponent(result.value.qrSvg)}` });
      replace(
        pairOutput,
        h('label', { for: 'pairing-code' }, 'Pairing code'),
        code,
        qr,
        h('p', { className: 'hint' }, 'On the new device choose “Join an existing motebit” and paste this code or scan the QR code. Anyone with this code can join your motebit: share it only with your own devices.'),
      );
      code.focus();
      code.select();
    })();
  });
  // A motebit that shares one master token: a one-off code made here; per-device keys: by approval.
  const oneOffCode = h('div', {}, h('p', {}, 'Create a one-off code on this device, then enter it on the new one.'), h('div', { className: 'actions' }, pairButton), pairMessage.element, pairOutput);
  const pairBody = h('div', {});
  let pairKeys: SettingsView['keys'] | null = null;
  const pairCard = h('section', { className: 'card', 'aria-labelledby': 'pair-heading' }, h('h3', { id: 'pair-heading' }, 'Add a device'), pairBody);
  // ---- upgrade: a motebit that shares one master token gives each device its own keys ----
  const upgrade = upgradeCard(call, onUpgrade);
  upgrade.hidden = true;
  // ---- storage: snapshots on the relay, freeing space on this device ----
  const storage = storageCard(call);

  const element = h(
    'section',
    { id: 'panel-settings', className: 'panel', 'aria-labelledby': 'settings-heading' },
    h('h2', { id: 'settings-heading' }, 'Settings'),
    h('div', { className: 'cards' }, upgrade, relayForm, intervalForm, deviceCard, storage.element, devicesCard, pairCard),
  );

  function show(next: SettingsView): void {
    const first = settings === null;
    settings = next;
    if (first || document.activeElement !== relay.input) relay.input.value = next.relayUrl ?? '';
    if (first || document.activeElement !== interval.input) interval.input.value = String(next.intervalSeconds);
    loginBox.checked = next.startAtLogin;
    upgrade.hidden = next.keys !== 'shared';
    if (pairKeys !== next.keys) {
      pairKeys = next.keys;
      replace(pairBody, next.keys === 'per-device' ? addDeviceView(call, loadDevices) : oneOffCode);
    }
    const row = (label: string, value: string, mono = false, testid?: string) => h('div', { className: 'fact' }, h('dt', {}, label), h('dd', { className: mono ? 'mono' : '', 'data-testid': testid }, value));
    replace(
      facts,
      row('Encryption', next.encryption ? 'End-to-end encrypted: the relay cannot read your data' : 'Off: the relay can read what it carries', false, 'encryption'),
      row('Keys', next.keys === 'per-device' ? 'Each device has its own keys' : 'One master key shared by every device', false, 'keys'),
      row('Connection', next.transport === 'auto' ? 'Automatic (WebSocket, else HTTP)' : next.transport === 'websocket' ? 'WebSocket only' : 'HTTP only'),
      row('Device name', next.deviceName ?? '(no name)'),
      row('Device id', next.deviceId, true),
      row('Motebit id', next.motebitId, true),
    );
    relayChanged();
  }

  function updateStatus(status: SyncStatus): void {
    paused = status.state === 'paused';
    if (!isBusy(pauseButton)) pauseButton.textContent = paused ? 'Resume sync' : 'Pause sync';
  }

  function deviceRow(d: DeviceView): HTMLElement {
    const actions = h('div', { className: 'actions' });
    const status = h('p', { className: 'message', role: 'status', 'aria-live': 'polite' });
    const label = d.name ?? d.deviceId;
    const showRevoke = () => {
      const revoke = h('button', { type: 'button', className: 'danger', 'aria-label': `Revoke ${label}` }, 'Revoke');
      revoke.addEventListener('click', () => {
        // a second, explicit step that says first what revoking does and does not do
        const confirm = h('button', { type: 'button', className: 'danger', 'aria-label': `Confirm: revoke ${label}` }, 'Confirm revoke');
        const cancel = h('button', { type: 'button' }, 'Cancel');
        const explain = h(
          'div',
          { className: 'warning-box', 'data-testid': 'revoke-explanation' },
          h('p', {}, h('strong', {}, `Revoking ${label}:`)),
          ...(settings?.keys === 'per-device'
            ? [
                h('p', {}, 'Does: it is removed from your motebit, for good. It will no longer sync, and cannot read anything written from now on: your other devices switch to a new key it does not get. It cannot be undone; to use it again, add it as a new device.'),
                h('p', {}, 'Does not: erase what it already has. Everything it synced so far stays on it.'),
              ]
            : [
                h('p', {}, 'Does: it can no longer sync through this relay, for good. It stops receiving your changes and cannot send any. It cannot be undone; to use it again, it joins as a new device with a pairing code.'),
                h('p', {}, 'Does not: erase what it already has. Everything it synced so far stays on it.'),
                h('p', {}, 'Be aware: today it still knows your motebit’s secret. With it, whoever has that device can still read what it has, could read what you sync later, and could even join your motebit again as a new device. Revoking is enough for a device you retire; for a lost or stolen one it is not a full protection yet (the security notes explain why, under “Revoking a device”).'),
              ]),
        );
        cancel.addEventListener('click', () => {
          showRevoke();
          actions.querySelector('button')?.focus();
        });
        confirm.addEventListener('click', () => {
          if (isBusy(confirm)) return;
          void (async () => {
            const done = busy(confirm, 'Revoking…');
            const result = await call('devices.revoke', { deviceId: d.deviceId });
            done();
            if (!result.ok) {
              status.className = 'message error';
              status.setAttribute('role', 'alert');
              status.textContent = result.error.message;
              return;
            }
            loadDevices();
          })();
        });
        replace(actions, explain, h('div', { className: 'actions' }, confirm, cancel));
        confirm.focus();
      });
      replace(actions, revoke);
    };
    if (!d.current && d.revokedAt === null) showRevoke();
    return h(
      'li',
      { className: `device${d.revokedAt !== null ? ' revoked' : ''}`, 'data-device-id': d.deviceId },
      h('div', {}, h('strong', {}, d.name ?? '(no name)'), d.current ? h('span', { className: 'badge' }, 'this device') : null, d.revokedAt !== null ? h('span', { className: 'badge muted' }, `revoked ${dateTime(d.revokedAt)}`) : null),
      h('p', { className: 'meta' }, h('span', { className: 'mono' }, d.deviceId), ` · added ${dateTime(d.enrolledAt)}`),
      d.revokedAt === null ? h('p', { className: 'meta', 'data-testid': 'device-sync' }, syncWords(d, Date.now())) : null,
      actions,
      status,
    );
  }

  /** "last seen 12 s ago · up to date", "last seen 3 min ago · 312 changes behind", "never seen". */
  function syncWords(d: DeviceView, now: number): string {
    if (d.lastSeenAt === undefined && d.behind === undefined) return 'This relay does not say when devices were last seen';
    const seen = d.lastSeenAt === null || d.lastSeenAt === undefined ? 'Not seen yet' : `Last seen ${ago(d.lastSeenAt, now)}`;
    if (d.lastSeenAt === null || d.behind === null || d.behind === undefined) return seen;
    return `${seen} · ${d.behind === 0 ? 'up to date' : `${d.behind.toLocaleString('en-US')} change${d.behind === 1 ? '' : 's'} behind`}`;
  }

  function loadDevices(): void {
    void (async () => {
      const result = await call('devices.list', {});
      if (!result.ok) {
        replace(deviceList, h('p', { className: 'message error', role: 'alert' }, `Could not load the devices: ${result.error.message}`));
        return;
      }
      const focused = deviceList.contains(document.activeElement);
      replace(deviceList, h('ul', { className: 'devices' }, ...result.value.map(deviceRow)));
      if (focused) refreshDevices.focus();
    })();
  }

  return {
    element,
    load() {
      void (async () => {
        const result = await call('settings.get', {});
        if (result.ok) show(result.value);
        else relayMessage.error(`Could not load the settings: ${result.error.message}`);
        const status = await call('status.get', {});
        if (status.ok) updateStatus(status.value);
      })();
      loadDevices();
      storage.load();
    },
    updateStatus,
  };
}
