// The Electron adapter's logic, without Electron: the tray menu and icon, the window's security options
// and navigation policy, the preload bridge's filtering, the ipcMain wiring, argv parsing and the Linux
// login item. (The glue in main/electron/main.ts and preload/index.ts only hands these to Electron.)
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { CHANNELS, EVENT_NAMES, IPC_EVENT_CHANNEL, ipcChannelName, type AppState } from '../shared/portable/ipc-contract.ts';
import type { SyncStatus } from '../shared/portable/status.ts';
import { menuKey, menuTemplate, statusLine, tooltip, type TrayMenu } from '../main/app/tray-menu.ts';
import { TRAY_ICON_KINDS, allTrayIconFiles, trayIconFile, trayIconKind } from '../main/app/tray-icon.ts';
import {
  APP_ORIGIN,
  CONTENT_SECURITY_POLICY,
  SETTINGS_URL,
  appResponseHeaders,
  isAllowedNavigation,
  isExternalLink,
  isTrustedSenderUrl,
  resolveAppFile,
  windowOptions,
} from '../main/app/window-options.ts';
import { createDispatcher, type Handlers } from '../main/app/ipc-dispatch.ts';
import { createBridge, type IpcRendererLike } from '../preload/bridge.ts';
import { EVENT_CHANNEL, PRELOAD_CHANNELS, PRELOAD_EVENTS, invokeChannel } from '../preload/channels.ts';
import { forwardEvents, isTrustedSender, wireIpc, type IpcMainLike, type InvokeEventLike } from '../main/electron/ipc.ts';
import { parseAppArgs } from '../main/electron/args.ts';
import { autostartEntry, linuxLoginItem } from '../main/electron/login-item.ts';

const NOW = 1_750_000_000_000;
const READY: AppState = { phase: 'ready', motebitId: 'm', deviceId: 'd', deviceName: 'laptop', relayUrl: 'https://relay.example' } as AppState;
const SETUP: AppState = { phase: 'setup' };

function status(overrides: Partial<SyncStatus> = {}): SyncStatus {
  return {
    state: 'idle',
    transport: 'websocket',
    lastSuccessAt: NOW - 12_000,
    nextCycleAt: NOW + 18_000,
    pendingOut: 0,
    openConflicts: 0,
    rejectedEvents: 0,
    quarantinedEvents: 0,
    lastRecovery: null,
    lastError: null,
    progress: null,
    ...overrides,
  };
}

const item = (menu: TrayMenu, id: string) => {
  const found = menu.items.find((i) => i.type === 'normal' && i.id === id);
  if (!found || found.type !== 'normal') throw new Error(`no menu item ${id}`);
  return found;
};
const ids = (menu: TrayMenu) => menu.items.map((i) => (i.type === 'normal' ? i.id : '---'));

describe('tray menu', () => {
  it('idle: "Synced 12 s ago", every action enabled, Pause offered', () => {
    const menu = menuTemplate(status(), READY, NOW);
    expect(menu.statusLine).toBe('Synced 12 s ago');
    expect(ids(menu)).toEqual(['status', '---', 'sync-now', 'pause-resume', '---', 'settings', 'quit']);
    expect(item(menu, 'status')).toMatchObject({ enabled: false, action: null });
    expect(item(menu, 'sync-now')).toMatchObject({ label: 'Sync now', enabled: true, action: 'sync-now' });
    expect(item(menu, 'pause-resume')).toMatchObject({ label: 'Pause sync', enabled: true, action: 'pause' });
    expect(item(menu, 'settings')).toMatchObject({ label: 'Settings…', enabled: true, action: 'open-settings' });
    expect(item(menu, 'quit')).toMatchObject({ label: 'Quit', enabled: true, action: 'quit' });
    expect(tooltip(menu)).toBe('Motebit Sync — Synced 12 s ago');
  });

  it('relative times: just now, seconds, minutes, hours, days, never', () => {
    expect(statusLine(status({ lastSuccessAt: NOW - 500 }), READY, NOW)).toBe('Synced just now');
    expect(statusLine(status({ lastSuccessAt: NOW - 59_000 }), READY, NOW)).toBe('Synced 59 s ago');
    expect(statusLine(status({ lastSuccessAt: NOW - 3 * 60_000 - 5_000 }), READY, NOW)).toBe('Synced 3 min ago');
    expect(statusLine(status({ lastSuccessAt: NOW - 2 * 3_600_000 }), READY, NOW)).toBe('Synced 2 h ago');
    expect(statusLine(status({ lastSuccessAt: NOW - 3 * 86_400_000 }), READY, NOW)).toBe('Synced 3 d ago');
    expect(statusLine(status({ lastSuccessAt: null }), READY, NOW)).toBe('Not synced yet');
  });

  it('a repair of the relay in the last day, and events set aside, each get a line; an old repair does not', () => {
    const recovery = { at: NOW - 180_000, reason: 'relay_replaced' as const, resent: 2438, message: 'The relay had lost data.' };
    const menu = menuTemplate(status({ lastRecovery: recovery, quarantinedEvents: 2 }), READY, NOW);
    expect(item(menu, 'recovered')).toMatchObject({ label: 'Relay lost data 3 min ago — 2,438 events sent again', enabled: false });
    expect(item(menu, 'quarantined').label).toBe('2 received events set aside (kept failing verification)');
    const later = menuTemplate(status({ lastRecovery: { ...recovery, at: NOW - 25 * 3600_000 } }), READY, NOW);
    expect(later.items.some((i) => i.type === 'normal' && (i.id === 'recovered' || i.id === 'quarantined'))).toBe(false);
  });

  it('offline: the retry countdown from nextCycleAt (rounded up), pending changes, actions still enabled', () => {
    const menu = menuTemplate(status({ state: 'offline', nextCycleAt: NOW + 19_200, pendingOut: 3 }), READY, NOW);
    expect(menu.statusLine).toBe('Offline — retrying in 20 s');
    expect(item(menu, 'pending').label).toBe('3 changes waiting to send');
    expect(item(menu, 'sync-now').enabled).toBe(true);
    expect(statusLine(status({ state: 'offline', nextCycleAt: NOW - 1 }), READY, NOW)).toBe('Offline — retrying now');
    expect(statusLine(status({ state: 'offline', nextCycleAt: null }), READY, NOW)).toBe('Offline');
    expect(statusLine(status({ state: 'offline', nextCycleAt: NOW + 125_000 }), READY, NOW)).toBe('Offline — retrying in 2 min');
  });

  it('conflicts: "2 conflicts to review" as a clickable line that opens Settings, and in the tooltip', () => {
    const menu = menuTemplate(status({ openConflicts: 2 }), READY, NOW);
    expect(item(menu, 'conflicts')).toMatchObject({ label: '2 conflicts to review…', enabled: true, action: 'open-settings' });
    expect(menu.statusLine).toBe('Synced 12 s ago · 2 conflicts to review');
    expect(item(menuTemplate(status({ openConflicts: 1 }), READY, NOW), 'conflicts').label).toBe('1 conflict to review…');
    expect(ids(menuTemplate(status({ openConflicts: 0 }), READY, NOW))).not.toContain('conflicts');
  });

  it('error: the message (shortened to one line) and the next step', () => {
    const lastError = { kind: 'auth' as const, message: 'the relay refused this device:\n  it was revoked from another device of this motebit', nextStep: 'Join again with a pairing code.', at: NOW };
    const menu = menuTemplate(status({ state: 'error', lastError }), READY, NOW);
    expect(menu.statusLine).toMatch(/^Sync failed: the relay refused this device: it was revoked/);
    expect(menu.statusLine.length).toBeLessThanOrEqual('Sync failed: '.length + 60);
    expect(menu.statusLine).not.toContain('\n');
    expect(item(menu, 'next-step')).toMatchObject({ label: 'Join again with a pairing code.', enabled: false });
    expect(item(menu, 'sync-now').enabled).toBe(true);
  });

  it('paused: Resume offered, Sync now disabled', () => {
    const menu = menuTemplate(status({ state: 'paused' }), READY, NOW);
    expect(menu.statusLine).toBe('Sync paused');
    expect(item(menu, 'pause-resume')).toMatchObject({ label: 'Resume sync', enabled: true, action: 'resume' });
    expect(item(menu, 'sync-now').enabled).toBe(false);
  });

  it('syncing: progress in the line, Sync now disabled while a cycle runs', () => {
    expect(statusLine(status({ state: 'syncing' }), READY, NOW)).toBe('Syncing…');
    expect(statusLine(status({ state: 'syncing', progress: { phase: 'push', done: 3, total: 10 } }), READY, NOW)).toBe('Syncing — sending 3/10');
    expect(statusLine(status({ state: 'syncing', progress: { phase: 'pull', done: 40, total: null } }), READY, NOW)).toBe('Syncing — receiving 40');
    expect(statusLine(status({ state: 'syncing', progress: { phase: 'connect', done: 0, total: null } }), READY, NOW)).toBe('Syncing — connecting…');
    const menu = menuTemplate(status({ state: 'syncing' }), READY, NOW);
    expect(item(menu, 'sync-now').enabled).toBe(false);
    expect(item(menu, 'pause-resume')).toMatchObject({ label: 'Pause sync', enabled: true });
  });

  it('setup: only Settings… and Quit do anything', () => {
    const menu = menuTemplate(null, SETUP, NOW);
    expect(menu.statusLine).toBe('Not set up — open Settings to start');
    expect(item(menu, 'sync-now').enabled).toBe(false);
    expect(item(menu, 'pause-resume').enabled).toBe(false);
    expect(item(menu, 'settings').enabled).toBe(true);
    expect(item(menu, 'quit').enabled).toBe(true);
  });

  it('menuKey changes exactly when a label does (the adapter rebuilds only then)', () => {
    const s = status({ lastSuccessAt: NOW - 12_000 });
    expect(menuKey(menuTemplate(s, READY, NOW))).toBe(menuKey(menuTemplate(s, READY, NOW + 400)));
    expect(menuKey(menuTemplate(s, READY, NOW))).not.toBe(menuKey(menuTemplate(s, READY, NOW + 5_000)));
  });
});

describe('tray icon', () => {
  it('shows the state: problems first, then conflicts waiting, then syncing, paused, idle', () => {
    expect(trayIconKind(null, SETUP)).toBe('setup');
    expect(trayIconKind(status(), READY)).toBe('idle');
    expect(trayIconKind(status({ state: 'syncing' }), READY)).toBe('syncing');
    expect(trayIconKind(status({ state: 'offline' }), READY)).toBe('offline');
    expect(trayIconKind(status({ state: 'error' }), READY)).toBe('error');
    expect(trayIconKind(status({ state: 'paused' }), READY)).toBe('paused');
    expect(trayIconKind(status({ openConflicts: 2 }), READY)).toBe('conflicts');
    expect(trayIconKind(status({ openConflicts: 2, state: 'syncing' }), READY), 'a cycle does not hide conflicts').toBe('conflicts');
    expect(trayIconKind(status({ openConflicts: 2, state: 'offline' }), READY)).toBe('offline');
    expect(trayIconKind(status({ openConflicts: 2, state: 'error' }), READY)).toBe('error');
  });

  it('has a file per kind and platform, and every file exists in build/tray (made by npm run icons)', () => {
    expect(trayIconFile('idle', 'darwin')).toBe('tray-idle-16.png');
    expect(trayIconFile('error', 'win32')).toBe('tray-error-16.png');
    expect(trayIconFile('conflicts', 'linux')).toBe('tray-conflicts-32.png');
    const files = allTrayIconFiles();
    expect(files).toHaveLength(TRAY_ICON_KINDS.length * 4);
    for (const file of files) {
      const png = readFileSync(join(import.meta.dirname, '..', 'build', 'tray', file));
      expect(png.subarray(1, 4).toString()).toBe('PNG');
      const [width, height] = [png.readUInt32BE(16), png.readUInt32BE(20)];
      const size = Number(/-(\d+)(@2x)?\.png$/.exec(file)![1]) * (file.includes('@2x') ? 2 : 1);
      expect([width, height], file).toEqual([size, size]);
    }
  });
});

describe('settings window', () => {
  it('is isolated, sandboxed, without Node, with web security, and starts hidden', () => {
    const options = windowOptions('/app/dist/preload/preload.cjs');
    expect(options.webPreferences).toMatchObject({
      preload: '/app/dist/preload/preload.cjs',
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      nodeIntegrationInWorker: false,
      nodeIntegrationInSubFrames: false,
      webSecurity: true,
      allowRunningInsecureContent: false,
      webviewTag: false,
      devTools: false,
    });
    expect(options.show).toBe(false);
  });

  it('has a strict CSP, sent with every app:// response', () => {
    const directives = new Map(CONTENT_SECURITY_POLICY.split('; ').map((d) => [d.split(' ')[0], d.split(' ').slice(1).join(' ')]));
    expect(directives.get('default-src')).toBe("'none'");
    expect(directives.get('script-src')).toBe("'self'");
    expect(directives.get('object-src')).toBe("'none'");
    expect(directives.get('frame-ancestors')).toBe("'none'");
    expect(CONTENT_SECURITY_POLICY).not.toMatch(/unsafe-inline|unsafe-eval|\*/);
    expect(appResponseHeaders('/x/index.html')).toMatchObject({ 'content-type': 'text/html; charset=utf-8', 'content-security-policy': CONTENT_SECURITY_POLICY, 'x-content-type-options': 'nosniff' });
    expect(appResponseHeaders('/x/assets/a.js')['content-type']).toBe('text/javascript; charset=utf-8');
  });

  it('navigates only to its own pages; only its own pages are trusted senders', () => {
    expect(SETTINGS_URL.startsWith(`${APP_ORIGIN}/`)).toBe(true);
    expect(isAllowedNavigation(SETTINGS_URL)).toBe(true);
    expect(isAllowedNavigation('app://motebit/index.html#conflicts')).toBe(true);
    for (const url of ['https://evil.example/', 'http://127.0.0.1:8787/', 'file:///etc/passwd', 'app://other/index.html', 'app://user@motebit/index.html', 'javascript:alert(1)', 'data:text/html,hi', 'not a url', '']) {
      expect(isAllowedNavigation(url), url).toBe(false);
      expect(isTrustedSenderUrl(url), url).toBe(false);
    }
    expect(isTrustedSenderUrl(SETTINGS_URL)).toBe(true);
    expect(isTrustedSenderUrl(undefined)).toBe(false);
    expect(isExternalLink('https://motebit.example/help')).toBe(true);
    expect(isExternalLink('file:///etc/passwd')).toBe(false);
    expect(isExternalLink('javascript:alert(1)')).toBe(false);
  });

  it('maps app:// URLs into the renderer folder and never out of it', () => {
    const root = '/app/dist/renderer';
    expect(resolveAppFile('app://motebit/', root)).toBe('/app/dist/renderer/index.html');
    expect(resolveAppFile('app://motebit/index.html?x=1#y', root)).toBe('/app/dist/renderer/index.html');
    expect(resolveAppFile('app://motebit/assets/index-1.js', root)).toBe('/app/dist/renderer/assets/index-1.js');
    // dot segments are folded by the URL parser itself: they stay inside the folder
    expect(resolveAppFile('app://motebit/../main/main.js', root)).toBe('/app/dist/renderer/main/main.js');
    expect(resolveAppFile('app://motebit/%2e%2e/main/main.js', root)).toBe('/app/dist/renderer/main/main.js');
    // encoded separators would escape after decoding: refused
    for (const url of ['app://motebit/assets/%2e%2e%2f%2e%2e%2fmain.js', 'app://motebit/%2e%2e%2f%2e%2e%2f%2e%2e%2fetc/passwd', 'app://motebit/a%5c..%5c..%5cx', 'app://motebit/%00', 'app://motebit/%E0%A4%A', 'app://other/index.html', 'file:///app/dist/renderer/index.html']) {
      expect(resolveAppFile(url, root), url).toBeNull();
    }
  });
});

describe('preload bridge', () => {
  function fakeIpc() {
    const listeners = new Map<string, Set<(event: unknown, ...args: unknown[]) => void>>();
    const ipc = {
      invoke: vi.fn(async (channel: string, input: unknown) => ({ ok: true, value: { channel, input } })),
      on: vi.fn((channel: string, listener: (event: unknown, ...args: unknown[]) => void) => {
        if (!listeners.has(channel)) listeners.set(channel, new Set());
        listeners.get(channel)!.add(listener);
      }),
      removeListener: vi.fn((channel: string, listener: (event: unknown, ...args: unknown[]) => void) => listeners.get(channel)?.delete(listener)),
      emit: (channel: string, message: unknown) => {
        for (const listener of listeners.get(channel) ?? []) listener({ sender: 'the ipcRenderer itself' }, message);
      },
      count: (channel: string) => listeners.get(channel)?.size ?? 0,
    };
    return ipc;
  }

  it('knows exactly the contract\'s channels and events, on the contract\'s Electron channel names', () => {
    expect([...PRELOAD_CHANNELS].sort()).toEqual([...CHANNELS].sort());
    expect([...PRELOAD_EVENTS].sort()).toEqual([...EVENT_NAMES].sort());
    for (const channel of CHANNELS) expect(invokeChannel(channel)).toBe(ipcChannelName(channel));
    expect(EVENT_CHANNEL).toBe(IPC_EVENT_CHANNEL);
  });

  it('invokes contract channels and refuses anything else without touching ipcRenderer', async () => {
    const ipc = fakeIpc();
    const bridge = createBridge(ipc as IpcRendererLike);
    await expect(bridge.invoke('sync.now', {})).resolves.toEqual({ ok: true, value: { channel: 'motebit:sync.now', input: {} } });
    await bridge.invoke('conflicts.list', { includeResolved: true });
    expect(ipc.invoke).toHaveBeenLastCalledWith('motebit:conflicts.list', { includeResolved: true });
    expect(ipc.invoke).toHaveBeenCalledTimes(2);
    const loose = bridge as unknown as { invoke(channel: unknown, input?: unknown): Promise<unknown> };
    for (const channel of ['evil', 'motebit:sync.now', '__proto__', 'constructor', 'toString', '', 42, null]) {
      await expect(loose.invoke(channel, {})).resolves.toMatchObject({ ok: false, error: { code: 'unknown_channel' } });
    }
    expect(ipc.invoke).toHaveBeenCalledTimes(2);
  });

  it('delivers only the subscribed contract event, only its payload (never the IPC event), and unsubscribes', () => {
    const ipc = fakeIpc();
    const bridge = createBridge(ipc as IpcRendererLike);
    const seen: unknown[] = [];
    const off = bridge.on('status.changed', (payload) => seen.push(payload));
    ipc.emit('motebit:event', { event: 'status.changed', payload: { state: 'idle' } });
    ipc.emit('motebit:event', { event: 'app.changed', payload: { phase: 'setup' } });
    ipc.emit('motebit:event', 'garbage');
    ipc.emit('motebit:event', null);
    expect(seen).toEqual([{ state: 'idle' }]);
    off();
    off();
    expect(ipc.count('motebit:event')).toBe(0);
    expect(ipc.removeListener).toHaveBeenCalledTimes(1);
    const loose = bridge as unknown as { on(event: unknown, listener: unknown): () => void };
    expect(() => loose.on('motebit:sync.now', () => {})).toThrow(TypeError);
    expect(() => loose.on('status.changed', 'not a function')).toThrow(TypeError);
    expect(ipc.on).toHaveBeenCalledTimes(1);
  });

  it('exposes only invoke and on, frozen', () => {
    const bridge = createBridge(fakeIpc() as IpcRendererLike);
    expect(Object.keys(bridge).sort()).toEqual(['invoke', 'on']);
    expect(Object.isFrozen(bridge)).toBe(true);
  });
});

describe('ipcMain wiring', () => {
  function fakeIpcMain() {
    const handlers = new Map<string, (event: InvokeEventLike, ...args: unknown[]) => unknown>();
    const ipcMain: IpcMainLike = {
      handle: (channel, listener) => {
        if (handlers.has(channel)) throw new Error(`second handler for ${channel}`);
        handlers.set(channel, listener);
      },
      removeHandler: (channel) => handlers.delete(channel),
    };
    return { ipcMain, handlers };
  }
  const ours: InvokeEventLike = { senderFrame: { url: 'app://motebit/index.html', parent: null } };

  it('registers one handler per contract channel, dispatching our window\'s calls', async () => {
    const { ipcMain, handlers } = fakeIpcMain();
    const dispatch = vi.fn(async (channel: string, input: unknown) => ({ ok: true as const, value: { channel, input } }));
    const remove = wireIpc(ipcMain, dispatch);
    expect([...handlers.keys()].sort()).toEqual(CHANNELS.map(ipcChannelName).sort());
    await expect(handlers.get('motebit:sync.now')!(ours, {})).resolves.toEqual({ ok: true, value: { channel: 'sync.now', input: {} } });
    remove();
    expect(handlers.size).toBe(0);
  });

  it('rejects calls from anything but our top frame, before the dispatcher', async () => {
    const { ipcMain, handlers } = fakeIpcMain();
    const dispatch = vi.fn(async () => ({ ok: true as const, value: null }));
    wireIpc(ipcMain, dispatch);
    const strangers: InvokeEventLike[] = [
      { senderFrame: { url: 'https://evil.example/', parent: null } },
      { senderFrame: { url: 'file:///tmp/x.html', parent: null } },
      { senderFrame: { url: 'app://motebit/index.html', parent: {} } }, // an iframe inside our page
      { senderFrame: null },
      {},
    ];
    for (const event of strangers) {
      expect(isTrustedSender(event)).toBe(false);
      await expect(Promise.resolve(handlers.get('motebit:settings.get')!(event, {}))).rejects.toThrow(/not the settings window/);
    }
    expect(dispatch).not.toHaveBeenCalled();
  });

  it('goes through the real dispatcher: invalid input is a typed error and the handler never runs', async () => {
    const { ipcMain, handlers } = fakeIpcMain();
    const setInterval = vi.fn();
    const dispatch = createDispatcher({ 'settings.setInterval': setInterval } as unknown as Handlers);
    wireIpc(ipcMain, dispatch);
    await expect(handlers.get('motebit:settings.setInterval')!(ours, { seconds: 1 })).resolves.toMatchObject({ ok: false, error: { code: 'invalid_argument', field: 'seconds' } });
    expect(setInterval).not.toHaveBeenCalled();
  });

  it('forwards status and app-state changes as {event, payload} on the event channel', () => {
    let statusListener: ((s: SyncStatus) => void) | null = null;
    let stateListener: ((s: AppState) => void) | null = null;
    const source = {
      onStatus: (l: (s: SyncStatus) => void) => ((statusListener = l), () => (statusListener = null)),
      onState: (l: (s: AppState) => void) => ((stateListener = l), () => (stateListener = null)),
    };
    const sent: unknown[] = [];
    const off = forwardEvents(source, (channel, message) => sent.push([channel, message]));
    statusListener!(status());
    stateListener!(READY);
    expect(sent).toEqual([
      ['motebit:event', { event: 'status.changed', payload: status() }],
      ['motebit:event', { event: 'app.changed', payload: READY }],
    ]);
    off();
    expect(statusListener).toBeNull();
    expect(stateListener).toBeNull();
  });
});

describe('app arguments and start at login', () => {
  it('picks --home and --keyring out of Electron\'s argv', () => {
    expect(parseAppArgs(['/usr/bin/electron', '/repo', '--home', '/tmp/a', '--keyring=file', '--enable-logging'])).toEqual({ home: '/tmp/a', keyring: 'file' });
    expect(parseAppArgs(['/opt/Motebit Sync/motebit-sync', '--home=/h'])).toEqual({ home: '/h' });
    expect(parseAppArgs(['/opt/motebit-sync', '--home', '--keyring', 'os'])).toEqual({ keyring: 'os' });
    expect(parseAppArgs(['/opt/motebit-sync'])).toEqual({});
  });

  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it('on Linux, writes and removes an XDG autostart entry that runs the app with its home', () => {
    const config = mkdtempSync(join(tmpdir(), 'motebit-autostart-'));
    dirs.push(config);
    const item = linuxLoginItem(['/opt/Motebit Sync/motebit-sync', '--home', '/home/a b'], { XDG_CONFIG_HOME: config });
    expect(item.get()).toBe(false);
    item.set(true);
    expect(item.get()).toBe(true);
    const entry = readFileSync(join(config, 'autostart', 'motebit-sync.desktop'), 'utf8');
    expect(entry).toContain('[Desktop Entry]');
    expect(entry).toContain('Exec="/opt/Motebit Sync/motebit-sync" --home "/home/a b"');
    item.set(false);
    expect(item.get()).toBe(false);
    expect(autostartEntry(['/x/app%1'])).toContain('Exec="/x/app%%1"');
  });
});

// ---- the built main process, driven through a fake 'electron' module ----------------------------------
// Not the real binary (absent here): dist/main/main.js as `npm run build:main` emits it, run by Node with
// the bare specifier 'electron' resolved to a recording fake. It checks the glue end to end: profile per
// home, app:// scheme, IPC handlers, tray, first-run window, navigation/new-window policy, the protocol
// handler's CSP and confinement, and quit (before-quit prevented once, the controller closed, then exit).
const FAKE_ELECTRON = String.raw`
const out = (type, data = {}) => process.stdout.write(JSON.stringify({ type, ...data }) + '\n');
class Emitter {
  #l = new Map();
  on(e, f) { (this.#l.get(e) ?? this.#l.set(e, []).get(e)).push(f); return this; }
  once(e, f) { const g = (...a) => { this.off(e, g); f(...a); }; return this.on(e, g); }
  off(e, f) { this.#l.set(e, (this.#l.get(e) ?? []).filter((x) => x !== f)); return this; }
  emit(e, ...a) { for (const f of [...(this.#l.get(e) ?? [])]) f(...a); }
}
const event = (extra = {}) => ({ defaultPrevented: false, preventDefault() { this.defaultPrevented = true; }, ...extra });
const handlers = new Map();
let protocolHandler = null;
let tray = null;
let win = null;
export const app = Object.assign(new Emitter(), {
  isPackaged: false,
  setPath: (name, value) => out('setPath', { name, value }),
  getAppPath: () => process.cwd(),
  requestSingleInstanceLock: () => true,
  whenReady: () => new Promise((resolve) => setTimeout(resolve, 5)),
  quit() { const e = event(); app.emit('before-quit', e); out('quit', { prevented: e.defaultPrevented }); if (!e.defaultPrevented) setTimeout(() => { out('exited'); process.exit(0); }, 5); },
  exit(code) { out('exit', { code }); process.exit(code); },
  getLoginItemSettings: () => ({ openAtLogin: false }),
  setLoginItemSettings: () => {},
});
export const ipcMain = { handle: (c, f) => handlers.set(c, f), removeHandler: (c) => handlers.delete(c) };
export const protocol = { registerSchemesAsPrivileged: (schemes) => out('schemes', { schemes }) };
export const session = { defaultSession: { protocol: { handle: (scheme, f) => { out('protocol', { scheme }); protocolHandler = f; } }, setPermissionRequestHandler: () => out('permissions'), setPermissionCheckHandler: () => {} } };
export const powerMonitor = new Emitter();
export const shell = { openExternal: async (url) => out('openExternal', { url }) };
export const dialog = { showErrorBox: (title, body) => out('errorBox', { title, body }) };
export const nativeImage = { createFromPath: (path) => ({ path }) };
export const Menu = { setApplicationMenu: () => {}, buildFromTemplate: (items) => ({ items }) };
export class Notification extends Emitter { static isSupported() { return true; } constructor(o) { super(); this.o = o; } show() { out('notification', this.o); } }
export class Tray extends Emitter {
  constructor(image) { super(); tray = this; this.menu = null; out('tray', { image: image.path }); }
  setContextMenu(menu) { this.menu = menu; out('menu', { labels: menu.items.map((i) => i.label ?? '---') }); }
  setToolTip(tip) { out('tooltip', { tip }); }
  setImage(image) { out('trayImage', { image: image.path }); }
  isDestroyed() { return false; }
  destroy() { out('trayDestroyed'); }
}
export class BrowserWindow extends Emitter {
  constructor(options) {
    super();
    win = this;
    this.webContents = Object.assign(new Emitter(), { send: (c, m) => out('send', { c, m }), setWindowOpenHandler: (f) => { this.openHandler = f; } });
    app.emit('web-contents-created', event(), this.webContents);
    out('window', { options });
  }
  async loadURL(url) { out('loadURL', { url }); setTimeout(() => { this.emit('ready-to-show'); void scenario(); }, 5); }
  show() { out('shown'); }
  focus() {}
  isDestroyed() { return false; }
  isMinimized() { return false; }
}
async function scenario() {
  const ours = { senderFrame: { url: 'app://motebit/index.html', parent: null } };
  out('handlers', { count: handlers.size });
  out('appState', { result: await handlers.get('motebit:app.state')(ours, {}) });
  try { await handlers.get('motebit:app.state')({ senderFrame: { url: 'https://evil.example/', parent: null } }, {}); out('untrusted', { refused: false }); }
  catch (e) { out('untrusted', { refused: true, message: e.message }); }
  for (const url of ['https://evil.example/', 'app://motebit/index.html']) {
    const e = event({ url }); win.webContents.emit('will-navigate', e); out('navigate', { url, prevented: e.defaultPrevented });
  }
  out('windowOpen', { result: win.openHandler({ url: 'https://motebit.example/help' }) });
  for (const url of ['app://motebit/index.html', 'app://motebit/assets/%2e%2e%2f%2e%2e%2fmain%2fmain.js']) {
    const res = await protocolHandler({ url });
    out('serve', { url, status: res.status, csp: res.headers.get('content-security-policy') });
  }
  tray.menu.items.find((i) => i.id === 'quit').click();
}
`;

describe('the built main process with a fake electron module', () => {
  const scratch: string[] = [];
  afterEach(() => {
    for (const dir of scratch.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it('first run: tray, setup window on app://, IPC for every channel (our page only), safe navigation, CSP, clean quit', { timeout: 60_000 }, async () => {
    const { buildMain, buildPreload, copyIcons } = await import('../scripts/build.ts');
    const { mkdirSync, writeFileSync } = await import('node:fs');
    const { spawnSync } = await import('node:child_process');
    const { pathToFileURL } = await import('node:url');
    // Inside the repository, so the bundle's npm imports resolve from its node_modules (as in the packaged app).
    const outputDir = join(import.meta.dirname, '..', 'test-output');
    mkdirSync(outputDir, { recursive: true });
    const dir = mkdtempSync(join(outputDir, 'main-smoke-'));
    const home = mkdtempSync(join(tmpdir(), 'motebit-home-'));
    scratch.push(dir, home);
    await buildMain(join(dir, 'main'));
    await buildPreload(join(dir, 'preload'));
    copyIcons(join(dir, 'icons'));
    mkdirSync(join(dir, 'renderer'));
    writeFileSync(join(dir, 'renderer', 'index.html'), '<!doctype html><title>stand-in renderer</title>');
    writeFileSync(join(dir, 'fake-electron.mjs'), FAKE_ELECTRON);
    const hooks = `export async function resolve(s, c, next) { return s === 'electron' ? { url: ${JSON.stringify(pathToFileURL(join(dir, 'fake-electron.mjs')).href)}, shortCircuit: true } : next(s, c); }`;
    writeFileSync(join(dir, 'register.mjs'), `import { register } from 'node:module'; register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(hooks)}));`);
    const entry = join(dir, 'entry.mjs');
    writeFileSync(entry, `process.argv.push('--home', ${JSON.stringify(home)}, '--keyring', 'file'); await import(${JSON.stringify(pathToFileURL(join(dir, 'main', 'main.js')).href)});`);
    const run = spawnSync(process.execPath, ['--import', pathToFileURL(join(dir, 'register.mjs')).href, entry], { encoding: 'utf8', timeout: 45_000, env: { ...process.env, MOTEBIT_HOME: '', MOTEBIT_KEYRING: '' } });
    const lines = run.stdout.split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, unknown> & { type: string });
    const first = (type: string) => lines.find((l) => l.type === type);
    expect(run.status, run.stderr).toBe(0);

    expect(first('setPath')).toMatchObject({ name: 'userData', value: join(home, '.motebit', 'electron') });
    expect(first('schemes')).toMatchObject({ schemes: [{ scheme: 'app', privileges: { standard: true, secure: true } }] });
    expect(first('protocol')).toMatchObject({ scheme: 'app' });
    expect(first('tray')!.image).toBe(join(dir, 'icons', process.platform === 'linux' ? 'tray-setup-32.png' : 'tray-setup-16.png'));
    expect(existsSync(first('tray')!.image as string)).toBe(true);
    expect((first('menu')!.labels as string[])[0]).toBe('Not set up — open Settings to start');
    expect(first('window')).toMatchObject({ options: { show: false, webPreferences: { preload: join(dir, 'preload', 'preload.cjs'), contextIsolation: true, sandbox: true, nodeIntegration: false, webSecurity: true } } });
    expect(first('loadURL')).toMatchObject({ url: SETTINGS_URL });
    expect(first('shown')).toBeTruthy();
    expect(first('handlers')).toMatchObject({ count: CHANNELS.length });
    expect(first('appState')).toMatchObject({ result: { ok: true, value: { phase: 'setup' } } });
    expect(first('untrusted')).toMatchObject({ refused: true });
    expect(lines.filter((l) => l.type === 'navigate')).toEqual([
      { type: 'navigate', url: 'https://evil.example/', prevented: true },
      { type: 'navigate', url: 'app://motebit/index.html', prevented: false },
    ]);
    expect(first('windowOpen')).toMatchObject({ result: { action: 'deny' } });
    expect(first('openExternal')).toMatchObject({ url: 'https://motebit.example/help' });
    const served = lines.filter((l) => l.type === 'serve');
    expect(served[0]).toMatchObject({ status: 200, csp: CONTENT_SECURITY_POLICY });
    expect(served[1]).toMatchObject({ status: 404 });
    // quit: the first before-quit is held while the controller closes, the second goes through
    expect(lines.filter((l) => l.type === 'quit').map((l) => l.prevented)).toEqual([true, false]);
    expect(first('trayDestroyed')).toBeTruthy();
    expect(lines.at(-1)!.type).toBe('exited');
  });
});
