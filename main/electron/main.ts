// The Electron main process: thin glue between Electron and the plain-Node app (main/app/). One instance
// per device home, living in the tray with no window at start; the settings window opens on first run
// (setup), from the tray, from a notification, or when the app is launched again. Built into
// dist/main/main.js by scripts/build.ts.
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BrowserWindow, Menu, Notification, Tray, app, dialog, ipcMain, nativeImage, powerMonitor, protocol, session, shell } from 'electron';
import type { MenuItemConstructorOptions } from 'electron';
import { AppController, type PlatformHooks } from '../app/app-controller.ts';
import { errorWords, oneLine } from '../app/error-words.ts';
import { createDispatcher } from '../app/ipc-dispatch.ts';
import { trayIconFile, trayIconKind, type TrayIconKind } from '../app/tray-icon.ts';
import { MENU_REFRESH_MS, menuKey, menuTemplate, tooltip, type TrayAction, type TrayMenu } from '../app/tray-menu.ts';
import {
  APP_SCHEME,
  SETTINGS_URL,
  appResponseHeaders,
  isAllowedNavigation,
  isExternalLink,
  resolveAppFile,
  windowOptions,
} from '../app/window-options.ts';
import { motebitDir, resolveHome } from '../config/home.ts';
import { noKeyringLine, npmStartCommand } from '../keyring/help.ts';
import { parseAppArgs } from './args.ts';
import { forwardEvents, wireIpc } from './ipc.ts';
import { linuxLoginItem, type LoginItem } from './login-item.ts';

const distDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const PRELOAD = join(distDir, 'preload', 'preload.cjs');
const RENDERER_DIR = join(distDir, 'renderer');
const ICONS_DIR = join(distDir, 'icons');
const APP_ICON = join(ICONS_DIR, 'icon-256.png');

const args = parseAppArgs(process.argv);
const home = resolveHome({ home: args.home, env: process.env });
// Each device home is its own instance: a non-default home gets its own Electron profile (and so its own
// single-instance lock), so two homes on one machine can run side by side, as two devices.
if (args.home || process.env.MOTEBIT_HOME) app.setPath('userData', join(motebitDir(home), 'electron'));

// Must happen before ready: app:// is a standard, secure origin for 'self' in the CSP.
protocol.registerSchemesAsPrivileged([{ scheme: APP_SCHEME, privileges: { standard: true, secure: true, supportFetchAPI: true } }]);

if (!app.requestSingleInstanceLock()) {
  // The running instance gets 'second-instance' and opens Settings; this one leaves at once.
  app.quit();
} else {
  run();
}

function run(): void {
  let controller: AppController | null = null;
  let settings: BrowserWindow | null = null;
  let tray: Tray | null = null;
  let lastMenuKey = '';
  let lastIconKind: TrayIconKind | null = null;
  let refreshTimer: NodeJS.Timeout | null = null;
  let closing: Promise<void> | null = null;
  let closed = false;
  const notifications = new Set<Notification>(); // referenced until closed, so a click still arrives

  const loginItem: LoginItem =
    process.platform === 'linux'
      ? linuxLoginItem([process.env.APPIMAGE ?? process.execPath, ...(app.isPackaged ? [] : [app.getAppPath()]), ...forwardedArgs()])
      : {
          get: () => app.getLoginItemSettings({ args: forwardedArgs() }).openAtLogin,
          set: (enabled) => app.setLoginItemSettings({ openAtLogin: enabled, args: forwardedArgs() }),
        };

  const platform: PlatformHooks = {
    notify(title, body) {
      if (!Notification.isSupported()) return;
      const notification = new Notification({ title, body, icon: APP_ICON });
      notifications.add(notification);
      notification.on('click', () => openSettings());
      notification.on('close', () => notifications.delete(notification));
      notification.show();
    },
    getStartAtLogin: () => loginItem.get(),
    setStartAtLogin: (enabled) => loginItem.set(enabled),
  };

  function forwardedArgs(): string[] {
    return [...(args.home ? ['--home', home] : []), ...(args.keyring ? ['--keyring', args.keyring] : [])];
  }

  // ---- the settings window --------------------------------------------------------------------------

  function openSettings(): void {
    if (settings && !settings.isDestroyed()) {
      if (settings.isMinimized()) settings.restore();
      settings.show();
      settings.focus();
      return;
    }
    const win = new BrowserWindow(windowOptions(PRELOAD, { icon: APP_ICON, devTools: !app.isPackaged }));
    win.once('ready-to-show', () => win.show());
    win.on('closed', () => {
      if (settings === win) settings = null;
    });
    settings = win;
    void win.loadURL(SETTINGS_URL);
  }

  function send(channel: string, message: unknown): void {
    if (settings && !settings.isDestroyed()) settings.webContents.send(channel, message);
  }

  // Every web contents, present and future: no navigation away from our pages, no new windows (http(s)
  // links go to the OS browser), no <webview>.
  app.on('web-contents-created', (_event, contents) => {
    contents.setWindowOpenHandler(({ url }) => {
      if (isExternalLink(url)) void shell.openExternal(url);
      return { action: 'deny' };
    });
    contents.on('will-navigate', (event) => {
      if (!isAllowedNavigation(event.url)) event.preventDefault();
    });
    contents.on('will-redirect', (event) => {
      if (!isAllowedNavigation(event.url)) event.preventDefault();
    });
    contents.on('will-attach-webview', (event) => event.preventDefault());
  });

  // ---- the tray --------------------------------------------------------------------------------------

  function currentMenu(): { menu: TrayMenu; kind: TrayIconKind } {
    const state = controller ? controller.state() : ({ phase: 'setup' } as const);
    const status = controller?.isReady ? controller.status() : null;
    return { menu: menuTemplate(status, state, Date.now()), kind: trayIconKind(status, state) };
  }

  function refreshTray(): void {
    if (!tray || tray.isDestroyed()) return;
    const { menu, kind } = currentMenu();
    const key = menuKey(menu);
    if (key !== lastMenuKey) {
      lastMenuKey = key;
      tray.setContextMenu(Menu.buildFromTemplate(menu.items.map(toMenuItem)));
      tray.setToolTip(tooltip(menu));
    }
    if (kind !== lastIconKind) {
      lastIconKind = kind;
      tray.setImage(trayImage(kind));
    }
  }

  function toMenuItem(item: TrayMenu['items'][number]): MenuItemConstructorOptions {
    if (item.type === 'separator') return { type: 'separator' };
    const { action } = item;
    return { id: item.id, label: item.label, enabled: item.enabled, ...(action ? { click: () => void runAction(action) } : {}) };
  }

  function trayImage(kind: TrayIconKind): Electron.NativeImage {
    return nativeImage.createFromPath(join(ICONS_DIR, trayIconFile(kind, process.platform)));
  }

  async function runAction(action: TrayAction): Promise<void> {
    if (action === 'open-settings') return openSettings();
    if (action === 'quit') return app.quit();
    const channel = action === 'sync-now' ? 'sync.now' : action === 'pause' ? 'sync.pause' : 'sync.resume';
    const result = await dispatch(channel, {});
    if (!result.ok) console.error(`motebit: ${channel} failed: ${result.error.message}`);
    refreshTray();
  }

  let dispatch: ReturnType<typeof createDispatcher> = async () => ({ ok: false, error: { code: 'invalid_state', message: 'starting' } });

  // ---- quit: close the controller once (a running cycle finishes or is abandoned, the store closes) ----

  function closeThenQuit(): void {
    closing ??= (async () => {
      if (refreshTimer) clearInterval(refreshTimer);
      try {
        await controller?.close();
      } catch (error) {
        console.error('motebit: closing failed:', error);
      } finally {
        closed = true;
        if (tray && !tray.isDestroyed()) tray.destroy();
        app.quit();
      }
    })();
  }

  app.on('before-quit', (event) => {
    if (closed) return;
    event.preventDefault();
    closeThenQuit();
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => app.quit());

  // A tray app stays when its window closes.
  app.on('window-all-closed', () => {});
  app.on('second-instance', () => openSettings());
  // macOS: re-opening the running app (Finder, Spotlight) shows Settings; the activation at launch does not.
  let started = false;
  app.on('activate', (_event, hasVisibleWindows) => {
    if (started && !hasVisibleWindows) openSettings();
  });

  void app.whenReady().then(async () => {
    if (process.platform === 'darwin') app.dock?.hide();
    Menu.setApplicationMenu(null);

    // app:// serves dist/renderer only, with the CSP header on every response.
    session.defaultSession.protocol.handle(APP_SCHEME, async (request) => {
      const file = resolveAppFile(request.url, RENDERER_DIR);
      if (!file) return new Response('not found', { status: 404 });
      try {
        return new Response(new Uint8Array(await readFile(file)), { headers: appResponseHeaders(file) });
      } catch {
        return new Response('not found', { status: 404 });
      }
    });
    session.defaultSession.setPermissionRequestHandler((_contents, _permission, callback) => callback(false));
    session.defaultSession.setPermissionCheckHandler(() => false);
    // Only the app's own session is used: on shutdown or logoff, close the store like on quit.
    // (Electron passes an event to delay the shutdown; its typings say no arguments.)
    powerMonitor.on('shutdown', (...params: unknown[]) => {
      if (closed) return;
      (params[0] as Electron.Event | undefined)?.preventDefault();
      closeThenQuit();
    });

    const ctl = new AppController({ home, keyring: args.keyring, env: process.env, platform, restartCommand: npmStartCommand(forwardedArgs()) });
    controller = ctl;
    dispatch = createDispatcher(ctl.handlers(), (error, channel) => console.error(`motebit: ${channel} failed:`, error));
    wireIpc(ipcMain, (channel, input) => dispatch(channel, input));
    forwardEvents(ctl, send);
    ctl.onStatus(() => refreshTray());
    ctl.onState(() => refreshTray());

    tray = new Tray(trayImage('setup'));
    lastIconKind = 'setup';
    if (process.platform === 'win32') tray.on('click', () => openSettings());
    refreshTray();
    refreshTimer = setInterval(refreshTray, MENU_REFRESH_MS);
    refreshTimer.unref();

    let state;
    try {
      state = await ctl.start();
    } catch (error) {
      dialog.showErrorBox('Motebit Sync could not start', oneLine(errorWords(error)));
      closed = true;
      app.exit(1);
      return;
    }
    started = true;
    refreshTray();
    // No keyring: one line for the terminal; the window (setup phase) explains and offers the file instead.
    const noKeyring = noKeyringLine(ctl.secrets);
    if (noKeyring) console.log(noKeyring);
    if (state.phase === 'setup') openSettings(); // first run: the renderer shows the setup screen
  });
}
