// A first run as a newcomer meets it, in Debian's Chromium against the real services: `npm start` (its
// headless path, scripts/start.ts) on a machine with no keyring prints one line and serves a window that
// explains and offers the choice; choosing the file shows a banner on every screen. The setup screen says
// what a relay is, shows the default device name, and can cancel a relay that does not answer. Errors keep
// their technical text behind "Details", long messages wrap in their card, and a stale "sync is paused"
// clears after Resume, also after a reload. Screenshots: test-output/e2e/a-*.png.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configPath, motebitDir } from '../main/config/home.ts';
import { DeviceNameSchema } from '../main/config/config.ts';
import { ensureRendererBuilt } from '../main/harness/renderer-build.ts';
import { startHarness, type RunningHarness } from '../main/harness/server.ts';
import type { RunningRelay } from '../relay/server.ts';
import { KEYRING, Lab, eventually } from '../test/support/devices.ts';
import { HAS_CHROMIUM, WAIT_MS, launchChromium, screenshotPath } from './support.ts';

const NO_CHROMIUM = HAS_CHROMIUM ? '' : ' (skipped: /usr/bin/chromium is not installed)';
const START = fileURLToPath(new URL('../scripts/start.ts', import.meta.url));

let lab: Lab;
let relay: RunningRelay;
let browser: Browser | null = null;
const children: ChildProcess[] = [];
const servers: (HttpServer | TcpServer)[] = [];
const sockets = new Set<Socket>();

beforeAll(async () => {
  await ensureRendererBuilt();
  lab = new Lab();
  relay = await lab.relay();
  if (HAS_CHROMIUM) browser = await launchChromium();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  for (const child of children) if (child.exitCode === null) child.kill('SIGTERM');
  for (const socket of sockets) socket.destroy();
  for (const server of servers) await new Promise((resolve) => server.close(resolve));
  await lab?.close();
});

async function newPage(width = 1100): Promise<Page> {
  return browser!.newPage({ viewport: { width, height: 900 } });
}

/** `npm start`'s headless path on a machine without a keyring: D-Bus points nowhere, no keyring chosen. */
async function startWithoutKeyring(home: string): Promise<{ url: string; stdout: string; stderr: () => string }> {
  const child = spawn(process.execPath, [START, '--no-build', '--headless', '--home', home], {
    env: { ...process.env, DBUS_SESSION_BUS_ADDRESS: 'unix:path=/nonexistent/motebit-e2e-bus', MOTEBIT_KEYRING: undefined, DISPLAY: undefined, WAYLAND_DISPLAY: undefined },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk) => (stdout += chunk));
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  await eventually(() => /open the settings window at \S+\n[^\n]*\n/.test(stdout) || child.exitCode !== null, 'npm start printed its URL and the line after it');
  expect(child.exitCode).toBeNull();
  return { url: /open the settings window at (\S+)/.exec(stdout)![1]!, stdout, stderr: () => stderr };
}

describe('first run without a keyring (npm start, headless)', () => {
  it.skipIf(!HAS_CHROMIUM)(`starts anyway: one terminal line with the command, a window that explains and offers the file; the file shows on every screen${NO_CHROMIUM}`, async () => {
    const home = join(lab.dir, 'fresh-machine');
    const started = await startWithoutKeyring(home);
    const keyringLines = started.stdout.split('\n').filter((line) => /keyring/i.test(line));
    expect(keyringLines).toHaveLength(1);
    expect(keyringLines[0]).toMatch(/^No OS keyring on this machine\. Start one with this app: dbus-run-session -- sh -c '.*gnome-keyring-daemon --unlock --components=secrets >\/dev\/null && npm start -- --no-build --headless --home .*'/);
    expect(started.stderr()).not.toMatch(/KeyringUnavailableError|\n\s+at /);

    const page = await newPage();
    await page.goto(started.url);
    await page.getByRole('heading', { name: 'No keyring on this machine' }).waitFor({ timeout: WAIT_MS });
    // the window gives the very command the terminal printed
    expect(keyringLines[0]).toContain((await page.getByTestId('keyring-command').textContent())!);
    expect(await page.locator('[data-card="file"]').textContent()).toMatch(/not encrypted: anyone who can read that file/);
    expect(await page.getByTestId('file-secrets-banner').count()).toBe(0);
    await page.screenshot({ path: screenshotPath('a-no-keyring'), fullPage: true });

    // Try again, with still no keyring: said so, nothing else changes
    await page.getByTestId('keyring-retry').click();
    await page.locator('[data-card="start-keyring"] .message.error', { hasText: 'Still no keyring here.' }).waitFor({ timeout: WAIT_MS });
    expect(existsSync(configPath(home))).toBe(false);

    // choosing the file: remembered in the config, the setup screen, and the banner
    await page.getByTestId('keyring-use-file').click();
    await page.getByRole('heading', { name: 'Set up Motebit Sync' }).waitFor({ timeout: WAIT_MS });
    expect(JSON.parse(readFileSync(configPath(home), 'utf8'))).toMatchObject({ secret_store: 'file' });
    const banner = page.getByTestId('file-secrets-banner');
    expect(await banner.textContent()).toContain(join(motebitDir(home), 'secrets.json'));
    await page.screenshot({ path: screenshotPath('a-file-keyring-banner'), fullPage: true });

    // a motebit made with the file store: the banner stays on every screen, and after a reload
    await page.getByLabel('Relay URL').fill(relay.url);
    await page.getByRole('button', { name: 'Create motebit' }).click();
    await page.getByRole('button', { name: 'I have written it down' }).click({ timeout: WAIT_MS }); // the recovery key, once
    await page.locator('[data-testid="last-sync"]', { hasText: /^Synced/ }).waitFor({ timeout: WAIT_MS });
    expect(existsSync(join(motebitDir(home), 'secrets.json'))).toBe(true);
    for (const tab of ['status', 'conflicts', 'settings']) {
      await page.locator(`nav button[data-tab="${tab}"]`).click();
      expect(await banner.isVisible()).toBe(true);
    }
    await page.reload();
    await page.locator('[data-testid="last-sync"]', { hasText: /^Synced/ }).waitFor({ timeout: WAIT_MS });
    expect(await banner.isVisible()).toBe(true);
    await page.screenshot({ path: screenshotPath('a-file-keyring-banner-ready'), fullPage: true });
    await page.close();
  });
});

describe('the setup screen and errors in the window', () => {
  let harness: RunningHarness;
  let home: string;
  let page: Page;

  beforeAll(async () => {
    home = join(lab.dir, 'setup');
    harness = await startHarness({ home, keyring: KEYRING, keyringService: `motebit-e2e-a-${process.pid}`, env: {}, log: () => {} });
    if (HAS_CHROMIUM) page = await newPage();
  });
  afterAll(async () => {
    await harness?.close();
  });

  it.skipIf(!HAS_CHROMIUM)(`says what a relay is and how to start one, and shows the device name it will use${NO_CHROMIUM}`, async () => {
    await page.goto(harness.url);
    await page.getByLabel('Relay URL').waitFor({ timeout: WAIT_MS });
    expect(await page.getByTestId('relay-explained').textContent()).toMatch(/sync through a relay: a small server .* npx motebit-relay/);
    const expected = DeviceNameSchema.safeParse(hostname());
    const name = page.locator('form[data-form="create"]').getByLabel('Name of this device');
    expect(await name.inputValue()).toBe(expected.success ? expected.data : 'device');
    expect(await name.isVisible()).toBe(true);
    await page.screenshot({ path: screenshotPath('a-setup'), fullPage: true });
  });

  it.skipIf(!HAS_CHROMIUM)(`Cancel abandons a setup waiting for a relay that never answers: the screen is usable again, nothing written${NO_CHROMIUM}`, async () => {
    // accepts connections and never answers a byte
    const silent = createTcpServer((socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    });
    servers.push(silent);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    await page.getByLabel('Relay URL').fill(`http://127.0.0.1:${(silent.address() as AddressInfo).port}`);
    const create = page.getByRole('button', { name: 'Create motebit' });
    await create.click();
    const cancel = page.getByTestId('cancel-create');
    await cancel.waitFor({ state: 'visible', timeout: WAIT_MS });
    await eventually(() => sockets.size > 0, 'the relay check reached the silent server');
    expect(await page.locator('form[data-form="create"] button[type="submit"]').textContent()).toBe('Checking the relay…');
    await page.screenshot({ path: screenshotPath('a-setup-cancel'), fullPage: true });
    await cancel.click();
    const message = page.locator('form[data-form="create"] .message', { hasText: 'Setup was cancelled before the relay answered: nothing was set up' });
    await message.waitFor({ timeout: WAIT_MS });
    expect(await create.getAttribute('aria-disabled')).toBeNull();
    expect(await cancel.isHidden()).toBe(true);
    expect(existsSync(configPath(home))).toBe(false);
    expect(existsSync(motebitDir(home))).toBe(false);
    expect(harness.controller.state()).toEqual({ phase: 'setup' });
  });

  it.skipIf(!HAS_CHROMIUM)(`an address that is not a relay: words under the field, "HTTP 403" only behind Details; a long message wraps in its card${NO_CHROMIUM}`, async () => {
    const forbidden = createHttpServer((_request, response) => {
      response.writeHead(403, { 'content-type': 'text/plain' });
      response.end('Forbidden');
    });
    servers.push(forbidden);
    await new Promise<void>((resolve) => forbidden.listen(0, '127.0.0.1', resolve));
    await page.getByLabel('Relay URL').fill(`http://127.0.0.1:${(forbidden.address() as AddressInfo).port}`);
    await page.getByRole('button', { name: 'Create motebit' }).click();
    const error = page.locator('form[data-form="create"] [data-error-for="relayUrl"]');
    await error.filter({ hasText: 'The address answered, but not as a motebit relay: check the relay address' }).waitFor({ timeout: WAIT_MS });
    const details = error.locator('details');
    expect(await details.locator('summary').textContent()).toBe('Details');
    expect(await details.getAttribute('open')).toBeNull();
    expect(await error.locator('pre').isVisible()).toBe(false); // folded away
    const shown = (await error.innerText()).trim();
    expect(shown).not.toMatch(/HTTP|\/healthz|403|refused:/);
    await details.locator('summary').click();
    expect(await error.locator('pre').textContent()).toMatch(/GET \/healthz: refused: HTTP 403/);
    await page.screenshot({ path: screenshotPath('a-error-details'), fullPage: true });

    // a long unbroken text wraps inside the card (no horizontal overflow), at a narrow width too
    await page.setViewportSize({ width: 420, height: 900 });
    await page.getByLabel('Relay URL').fill(`http://${'a'.repeat(240)}.example/${'b'.repeat(120)}`);
    await page.getByRole('button', { name: 'Create motebit' }).click();
    await error.filter({ hasText: 'no path, query or fragment' }).waitFor({ timeout: WAIT_MS });
    const fits = await page.evaluate(() => {
      const card = document.querySelector('form[data-form="create"]')!.getBoundingClientRect();
      const message = document.querySelector('form[data-form="create"] [data-error-for="relayUrl"]')!;
      const box = message.getBoundingClientRect();
      return { inside: box.left >= card.left && box.right <= card.right, scroll: message.scrollWidth <= message.clientWidth, page: document.documentElement.scrollWidth <= window.innerWidth };
    });
    expect(fits).toEqual({ inside: true, scroll: true, page: true });
    await page.screenshot({ path: screenshotPath('a-long-message'), fullPage: true });
    await page.setViewportSize({ width: 1100, height: 900 });
  });

  it.skipIf(!HAS_CHROMIUM)(`a stale "sync is paused" clears after Resume, also after a reload${NO_CHROMIUM}`, async () => {
    await page.getByLabel('Relay URL').fill(relay.url);
    await page.getByRole('button', { name: 'Create motebit' }).click();
    await page.getByRole('button', { name: 'I have written it down' }).click({ timeout: WAIT_MS }); // the recovery key, once
    await page.locator('[data-testid="last-sync"]', { hasText: /^Synced/ }).waitFor({ timeout: WAIT_MS });
    const box = page.getByTestId('status-error');
    await harness.controller.current.engine.pause();
    const refused = await harness.controller.current.syncNow(); // as the tray's "Sync now" does while paused
    expect(refused).toMatchObject({ ok: false, error: { message: 'sync is paused' } });
    await box.filter({ hasText: 'Sync is paused.' }).waitFor({ timeout: WAIT_MS });
    await page.reload();
    await box.filter({ hasText: 'Sync is paused.' }).waitFor({ timeout: WAIT_MS }); // still true: still shown
    await page.screenshot({ path: screenshotPath('a-paused-error'), fullPage: true });

    await page.getByTestId('status-resume').click();
    await box.waitFor({ state: 'hidden', timeout: WAIT_MS });
    await page.locator('[data-testid="last-sync"]', { hasText: /^Synced/ }).waitFor({ timeout: WAIT_MS });
    expect(harness.controller.status().lastError).toBeNull();
    await page.reload();
    await page.locator('[data-testid="last-sync"]', { hasText: /^Synced/ }).waitFor({ timeout: WAIT_MS });
    expect(await box.isHidden()).toBe(true);
    await page.screenshot({ path: screenshotPath('a-resumed'), fullPage: true });

    // what Resume answers at once (before its sync has run) no longer carries the paused error
    await harness.controller.current.engine.pause();
    await harness.controller.current.syncNow();
    expect(harness.controller.status().lastError).toMatchObject({ message: 'sync is paused' });
    const resumed = await harness.controller.handlers()['sync.resume']({});
    expect(resumed.lastError).toBeNull();
  });

  it.skipIf(!HAS_CHROMIUM)(`a sync error in the status: words in the box, the technical text only behind Details${NO_CHROMIUM}`, async () => {
    await eventually(async () => (await harness.controller.current.syncNow()).ok, 'the resumed device synced');
    await relay.close(); // the relay is gone (the last test of this file that needs it)
    const failed = await harness.controller.current.syncNow();
    expect(failed).toMatchObject({ ok: false, error: { kind: 'network', details: expect.stringMatching(/GET \/v1\/motebits\/.*cannot reach the relay|no answer/) } });
    const box = page.getByTestId('status-error');
    await box.filter({ hasText: 'The relay could not be reached.' }).waitFor({ timeout: WAIT_MS });
    const visible = await box.evaluate((element) => [...element.childNodes].filter((node) => node.nodeName !== 'DETAILS').map((node) => node.textContent).join(' '));
    expect(visible).toMatch(/Check the network, the relay address and that the relay is running/);
    expect(visible).not.toMatch(/\/v1\/|GET|ECONNREFUSED|HTTP/);
    await box.locator('details summary').click();
    expect(await box.locator('details pre').textContent()).toMatch(/GET \/v1\/motebits\//);
    await page.screenshot({ path: screenshotPath('a-status-error-details'), fullPage: true });
  });
});
