// The settings window's security policy as plain data, tested without Electron: the BrowserWindow options
// (context isolation, sandbox, no Node), the Content-Security-Policy, which URLs the window may show and
// which senders the IPC handlers trust, and how an app:// URL maps onto a file of the built renderer.
//
// The window loads the renderer from a privileged custom scheme, app://motebit/, served by the adapter
// from dist/renderer (never file://): the page has a real origin for 'self' in the CSP, a navigation or
// IPC check is an exact origin comparison, and no other local file is reachable from the page.
import { isAbsolute, join, normalize, relative, sep } from 'node:path';

export const APP_SCHEME = 'app';
export const APP_HOST = 'motebit';
export const APP_ORIGIN = `${APP_SCHEME}://${APP_HOST}`;
export const SETTINGS_URL = `${APP_ORIGIN}/index.html`;

/** Header CSP for every app:// response. The renderer's own meta CSP applies as well (both must allow). */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-src 'none'",
  "frame-ancestors 'none'",
  "object-src 'none'",
].join('; ');

/** The subset of Electron's BrowserWindowConstructorOptions we set (kept structural: no electron import). */
export interface SettingsWindowOptions {
  width: number;
  height: number;
  minWidth: number;
  minHeight: number;
  title: string;
  show: boolean;
  autoHideMenuBar: boolean;
  backgroundColor: string;
  icon?: string;
  webPreferences: {
    preload: string;
    contextIsolation: true;
    sandbox: true;
    nodeIntegration: false;
    nodeIntegrationInWorker: false;
    nodeIntegrationInSubFrames: false;
    webSecurity: true;
    allowRunningInsecureContent: false;
    webviewTag: false;
    experimentalFeatures: false;
    navigateOnDragDrop: false;
    spellcheck: false;
    devTools: boolean;
  };
}

export function windowOptions(preloadPath: string, options: { icon?: string; devTools?: boolean } = {}): SettingsWindowOptions {
  return {
    width: 880,
    height: 640,
    minWidth: 560,
    minHeight: 420,
    title: 'Motebit Sync',
    show: false, // shown on ready-to-show: no white flash
    autoHideMenuBar: true,
    backgroundColor: '#f7f7f5',
    ...(options.icon ? { icon: options.icon } : {}),
    webPreferences: {
      preload: preloadPath,
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      nodeIntegrationInWorker: false,
      nodeIntegrationInSubFrames: false,
      webSecurity: true,
      allowRunningInsecureContent: false,
      webviewTag: false,
      experimentalFeatures: false,
      navigateOnDragDrop: false,
      spellcheck: false,
      devTools: options.devTools ?? false,
    },
  };
}

function parse(url: string): URL | null {
  try {
    return new URL(url);
  } catch {
    return null;
  }
}

/** Is this URL one of our own pages (app://motebit/…)? Everything else is refused. */
export function isOwnUrl(url: string): boolean {
  const parsed = parse(url);
  return parsed !== null && parsed.protocol === `${APP_SCHEME}:` && parsed.host === APP_HOST && parsed.username === '' && parsed.password === '';
}

/** will-navigate policy: only our own pages (e.g. a reload); every other destination is prevented. */
export function isAllowedNavigation(url: string): boolean {
  return isOwnUrl(url);
}

/** IPC policy: only a frame showing our own page may call the handlers. */
export function isTrustedSenderUrl(url: string | null | undefined): boolean {
  return typeof url === 'string' && isOwnUrl(url);
}

/** Links the window may hand to the OS browser (setWindowOpenHandler still denies the new window). */
export function isExternalLink(url: string): boolean {
  const parsed = parse(url);
  return parsed !== null && (parsed.protocol === 'https:' || parsed.protocol === 'http:') && parsed.username === '' && parsed.password === '';
}

/**
 * The file under rootDir that an app:// request names, or null when it is not ours or would leave rootDir
 * (`..`, encoded separators, absolute paths). "/" is index.html.
 */
export function resolveAppFile(url: string, rootDir: string): string | null {
  if (!isOwnUrl(url)) return null;
  const parsed = new URL(url);
  let pathname: string;
  try {
    pathname = decodeURIComponent(parsed.pathname);
  } catch {
    return null;
  }
  if (pathname.includes('\0') || pathname.includes('\\')) return null;
  if (pathname === '/' || pathname === '') pathname = '/index.html';
  const file = normalize(join(rootDir, pathname));
  const rel = relative(rootDir, file);
  if (rel === '' || rel.startsWith('..') || isAbsolute(rel) || rel.split(sep).includes('..')) return null;
  return file;
}

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.woff2': 'font/woff2',
  '.woff': 'font/woff',
  '.txt': 'text/plain; charset=utf-8',
};

export function mimeType(file: string): string {
  const dot = file.lastIndexOf('.');
  return (dot >= 0 && MIME[file.slice(dot).toLowerCase()]) || 'application/octet-stream';
}

/** The headers of every app:// response. */
export function appResponseHeaders(file: string): Record<string, string> {
  return {
    'content-type': mimeType(file),
    'content-security-policy': CONTENT_SECURITY_POLICY,
    'x-content-type-options': 'nosniff',
    'cross-origin-opener-policy': 'same-origin',
    'referrer-policy': 'no-referrer',
    'cache-control': 'no-store',
  };
}
