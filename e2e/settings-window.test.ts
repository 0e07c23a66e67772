// The settings window end to end: Debian's Chromium (playwright-core) drives the built renderer served by
// the UI harness, whose AppController runs the real store, keyring, engine and relay connection against
// a real relay on 127.0.0.1; a second device is the real CLI in child processes. Screenshots of every
// screen land in test-output/e2e/.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { configPath } from '../main/config/home.ts';
import { ensureRendererBuilt } from '../main/harness/renderer-build.ts';
import { startHarness, type RunningHarness } from '../main/harness/server.ts';
import type { RunningRelay } from '../relay/server.ts';
import { KEYRING, Lab, eventually } from '../test/support/devices.ts';
import { startCli } from '../test/support/pair.ts';
import { HARNESS_SCRIPT, HAS_CHROMIUM, WAIT_MS, cli, launchChromium, screenshotPath } from './support.ts';

const NO_CHROMIUM = HAS_CHROMIUM ? '' : ' (skipped: /usr/bin/chromium is not installed)';

let lab: Lab;
let relay: RunningRelay;
let home: string;
let cliHome: string;
let harness: RunningHarness;
let browser: Browser | null = null;
let page: Page;

beforeAll(async () => {
  await ensureRendererBuilt();
  lab = new Lab();
  relay = await lab.relay();
  home = join(lab.dir, 'harness');
  cliHome = join(lab.dir, 'cli');
  harness = await startHarness({ home, keyring: KEYRING, keyringService: `motebit-e2e-${process.pid}`, env: {}, log: () => {} });
  if (HAS_CHROMIUM) {
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  }
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await harness?.close();
  await lab?.close();
});

/** A WebSocket to the harness bridge; resolves when open, rejects with the refusal's status. */
function openSocket(url: string, origin: string | undefined): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, origin === undefined ? {} : { origin });
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_request, response) => reject(new Error(`refused: ${response.statusCode}`)));
    ws.once('error', reject);
  });
}

function nextMessage(ws: WebSocket, accept: (message: Record<string, unknown>) => boolean = () => true): Promise<Record<string, unknown>> {
  return new Promise((resolve) => {
    const listener = (data: WebSocket.RawData) => {
      const message = JSON.parse(data.toString()) as Record<string, unknown>;
      if (!accept(message)) return;
      ws.off('message', listener);
      resolve(message);
    };
    ws.on('message', listener);
  });
}

const tab = (name: string) => page.locator(`nav button[data-tab="${name}"]`);

describe('UI harness security', () => {
  it('refuses files, the socket and /notifications without its token, and foreign origins on the socket', async () => {
    const base = harness.origin;
    expect((await fetch(`${base}/`)).status).toBe(403);
    expect((await fetch(`${base}/?token=wrong`)).status).toBe(403);
    expect((await fetch(`${base}/notifications`)).status).toBe(403);
    expect((await fetch(`${base}/index.html?token=${harness.token}x`)).status).toBe(403);
    const page = await fetch(harness.url);
    expect(page.status).toBe(200);
    const html = await page.text();
    const asset = /src="\.\/(assets\/[^"]+)"/.exec(html)?.[1];
    expect(asset).toMatch(/\?token=/); // every file the page loads carries the token
    expect((await fetch(`${base}/${asset}`)).status).toBe(200);
    expect((await fetch(`${base}/${asset!.replace(/\?token=.*/, '')}`)).status).toBe(403);
    expect((await fetch(`${base}/..%2f..%2fpackage.json?token=${harness.token}`)).status).toBe(404);

    const bridge = `ws://${new URL(base).host}/bridge`;
    await expect(openSocket(bridge, base)).rejects.toThrow(/403/);
    await expect(openSocket(`${bridge}?token=wrong`, base)).rejects.toThrow(/403/);
    await expect(openSocket(`${bridge}?token=${harness.token}`, 'http://127.0.0.1:1')).rejects.toThrow(/403/);
    await expect(openSocket(`${bridge}?token=${harness.token}`, undefined)).rejects.toThrow(/403/);
    const ws = await openSocket(`${bridge}?token=${harness.token}`, base);
    ws.close();
  });

  it('answers malformed socket messages with an error and keeps serving', async () => {
    const ws = await openSocket(`ws://${new URL(harness.origin).host}/bridge?token=${harness.token}`, harness.origin);
    const answers = (accept: (m: Record<string, unknown>) => boolean = (m) => 'result' in m) => nextMessage(ws, accept);
    const cases: [string, unknown][] = [
      ['not json', null],
      [JSON.stringify({ id: 1 }), 1],
      [JSON.stringify({ id: 'x', channel: 'app.state' }), null],
      [JSON.stringify({ id: 2, channel: 'app.state', input: {}, extra: true }), 2],
      [JSON.stringify([1, 2, 3]), null],
    ];
    for (const [text, id] of cases) {
      const answer = answers();
      ws.send(text);
      expect(await answer).toEqual({ id, result: { ok: false, error: { code: 'invalid_argument', message: expect.any(String) } } });
    }
    let answer = answers();
    ws.send(JSON.stringify({ id: 3, channel: 'no.such', input: {} }));
    expect(await answer).toMatchObject({ id: 3, result: { ok: false, error: { code: 'unknown_channel' } } });
    answer = answers();
    ws.send(JSON.stringify({ id: 4, channel: 'settings.setInterval', input: { seconds: 1 } }));
    expect(await answer).toMatchObject({ id: 4, result: { ok: false, error: { code: 'invalid_argument', field: 'seconds' } } });
    answer = answers();
    ws.send(JSON.stringify({ id: 5, channel: 'app.state', input: {} }));
    expect(await answer).toEqual({ id: 5, result: { ok: true, value: { phase: 'setup' } } });
    ws.close();
  });

  it('npm run ui:harness prints a URL with a token; without the token nothing is served', async () => {
    const child = spawn(process.execPath, [HARNESS_SCRIPT, '--home', join(lab.dir, 'script-home'), '--keyring', KEYRING], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (chunk) => (out += chunk));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      await eventually(() => /Open: (\S+)/.test(out), 'the harness printed its URL');
      const url = /Open: (\S+)/.exec(out)![1]!;
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/\?token=[\w-]{20,}$/);
      expect((await fetch(url)).status).toBe(200);
      expect((await fetch(new URL('/', url))).status).toBe(403);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  });
});

describe('settings window', () => {
  it.skipIf(!HAS_CHROMIUM)(`on an empty home, the setup screen creates a motebit on the relay and then shows its status${NO_CHROMIUM}`, async () => {
    await page.goto(harness.url);
    const relayField = page.getByLabel('Relay URL');
    await relayField.waitFor({ timeout: WAIT_MS });
    await page.screenshot({ path: screenshotPath('1-setup'), fullPage: true });

    // an unreachable relay: main's error under the field, nothing written
    await relayField.fill('http://127.0.0.1:9');
    await page.getByRole('button', { name: 'Create motebit' }).click();
    const error = page.locator('form[data-form="create"] [data-error-for="relayUrl"]');
    await error.filter({ hasText: /relay|reach|connect/i }).waitFor({ timeout: WAIT_MS });
    expect(await relayField.getAttribute('aria-invalid')).toBe('true');
    expect(existsSync(configPath(home))).toBe(false);
    await page.screenshot({ path: screenshotPath('1-setup-unreachable-relay'), fullPage: true });

    await relayField.fill(relay.url);
    await page.locator('form[data-form="create"]').getByLabel('Name of this device').fill('harness-laptop');
    await page.getByRole('button', { name: 'Create motebit' }).click();
    await page.getByRole('button', { name: 'I have written it down' }).click({ timeout: WAIT_MS }); // the recovery key, once (e2e/pairing.test.ts)
    await page.locator('[data-testid="relay-url"]', { hasText: relay.url }).waitFor({ timeout: WAIT_MS });
    await page.locator('[data-testid="last-sync"]', { hasText: /^Synced \d+ s ago$/ }).waitFor({ timeout: WAIT_MS });
    expect(harness.controller.state()).toMatchObject({ phase: 'ready', deviceName: 'harness-laptop', relayUrl: relay.url });
    await page.screenshot({ path: screenshotPath('2-status'), fullPage: true });
  });

  it.skipIf(!HAS_CHROMIUM)(`a concurrent write on two devices shows as a conflict; "Keep the other value" converges both${NO_CHROMIUM}`, async () => {
    // pair the CLI device from the window: it shows a code, the window enters it and approves
    await tab('settings').click();
    const joiner = startCli(['--home', cliHome, 'join', '--relay', relay.url, '--name', 'cli-desktop', '--json']);
    const { join_code: code } = await joiner.json<{ join_code: string }>();
    await page.getByLabel('Code the new device shows').fill(code);
    await page.screenshot({ path: screenshotPath('4-settings'), fullPage: true });
    await page.getByRole('button', { name: 'Continue' }).click();
    const { sas } = await joiner.json<{ sas: string }>();
    expect(await page.getByTestId('approval-sas').textContent({ timeout: WAIT_MS })).toBe(sas);
    await page.getByRole('button', { name: 'Approve', exact: true }).click();
    expect(await joiner.exited, joiner.stderr()).toBe(0);
    const cliDevice = JSON.parse((await cli(cliHome, ['status', '--json'])).stdout).device_id as string;
    await page.getByRole('button', { name: 'Refresh list' }).click();
    await page.locator(`[data-testid="device-list"] li[data-device-id="${cliDevice}"]`, { hasText: 'cli-desktop' }).waitFor({ timeout: WAIT_MS });

    // the same entity written on both devices before either saw the other's write
    expect((await cli(cliHome, ['put', 'memory/topic', '"from the CLI"'])).code).toBe(0);
    const device = harness.controller.current;
    device.put('memory/topic', 'from the harness');
    expect((await device.syncNow()).ok).toBe(true);
    expect((await cli(cliHome, ['sync'])).code).toBe(0);
    await eventually(async () => (await device.syncNow()).ok && device.conflicts().length === 1, 'the harness device has the conflict');

    await tab('conflicts').click();
    const card = page.locator('article[data-entity="memory/topic"]');
    await card.waitFor({ timeout: WAIT_MS });
    const values = await card.locator('[data-testid="value"]').allTextContents();
    expect(new Set(values)).toEqual(new Set(['from the CLI', 'from the harness']));
    const writers = await card.locator('[data-testid="device"]').allTextContents();
    expect(writers).toContain('harness-laptop');
    expect(writers).toContain('cli-desktop');
    await card.getByText('wins now').waitFor({ timeout: WAIT_MS });
    await page.screenshot({ path: screenshotPath('3-conflicts'), fullPage: true });
    expect(harness.notifications.map((n) => n.title)).toContain('1 new conflict to review');

    const other = (await card.locator('[data-side="other"] [data-testid="value"]').textContent())!;
    await card.getByRole('button', { name: 'Keep the other value' }).click();
    await page.locator('[data-testid="conflicts-empty"]').waitFor({ timeout: WAIT_MS });
    await page.screenshot({ path: screenshotPath('3-conflicts-empty'), fullPage: true });

    // both devices converge on the kept value
    await eventually(async () => {
      await device.syncNow();
      await cli(cliHome, ['sync']);
      return (await cli(cliHome, ['get', 'memory/topic'])).stdout === `${JSON.stringify(other)}\n`;
    }, 'the CLI device holds the kept value');
    expect(device.get('memory/topic')?.value).toBe(other);
    expect(JSON.parse((await cli(cliHome, ['conflicts', '--json'])).stdout).conflicts).toEqual([]);
  });

  it.skipIf(!HAS_CHROMIUM)(`"Sync now" shows progress and then the new last-sync time${NO_CHROMIUM}`, async () => {
    await tab('status').click();
    harness.controller.current.put('memory/note', { text: 'something to send' });
    const lastSync = page.locator('[data-testid="last-sync"]');
    const before = Number(await lastSync.getAttribute('data-last-success'));
    // every text the progress line shows, however briefly
    await page.evaluate(() => {
      const line = document.querySelector('[data-testid="sync-progress"]')!;
      const seen: string[] = [];
      (window as unknown as { progressSeen: string[] }).progressSeen = seen;
      new MutationObserver(() => seen.push(line.textContent ?? '')).observe(line, { childList: true, characterData: true, subtree: true });
    });
    await page.getByTestId('sync-now').click();
    await page.locator('[data-testid="sync-progress"]', { hasText: /^Sync (complete|failed)/ }).waitFor({ timeout: WAIT_MS });
    expect(await page.getByTestId('sync-progress').textContent()).toMatch(/^Sync complete: sent [1-9]\d*, received \d+\.$/);
    const seen = await page.evaluate(() => (window as unknown as { progressSeen: string[] }).progressSeen);
    expect(seen.some((text) => /^(Connecting to the relay|Sending \d+|Receiving \d+)/.test(text))).toBe(true);
    const after = Number(await lastSync.getAttribute('data-last-success'));
    expect(after).toBeGreaterThan(before);
    expect(after).toBe(harness.controller.status().lastSuccessAt);
    expect(await lastSync.textContent()).toMatch(/^Synced \d+ s ago$/);
    expect(await page.getByTestId('pending').textContent()).toBe('Nothing');
  });

  it.skipIf(!HAS_CHROMIUM)(`an invalid relay URL shows an error under the field and changes nothing${NO_CHROMIUM}`, async () => {
    await tab('settings').click();
    const settingsBefore = harness.controller.settings();
    const configBefore = readFileSync(configPath(home), 'utf8');
    const field = page.locator('form[data-form="relay"]').getByLabel('Relay URL');
    await page.waitForFunction((url) => (document.querySelector('form[data-form="relay"] input') as HTMLInputElement | null)?.value === url, relay.url, { timeout: WAIT_MS });
    const error = page.locator('form[data-form="relay"] [data-error-for="relayUrl"]');
    for (const [bad, message] of [
      ['ftp://relay.example.com', /http:\/\/ or https:\/\//],
      ['https://relay.example.com/some/path', /no path/],
      ['not a url', /not a URL/],
    ] as const) {
      await field.fill(bad);
      await page.getByRole('button', { name: 'Save relay URL' }).click();
      await error.filter({ hasText: message }).waitFor({ timeout: WAIT_MS });
      expect(await field.getAttribute('aria-invalid')).toBe('true');
    }
    await page.screenshot({ path: screenshotPath('4-settings-invalid-relay-url'), fullPage: true });
    expect(harness.controller.settings()).toEqual(settingsBefore);
    expect(readFileSync(configPath(home), 'utf8')).toBe(configBefore);
    expect(await page.getByTestId('relay-url').textContent()).toBe(relay.url);
  });

  it.skipIf(!HAS_CHROMIUM)(`start at login, pause and resume work from the settings${NO_CHROMIUM}`, async () => {
    await tab('settings').click();
    await page.getByLabel('Start Motebit Sync when I log in').check();
    await eventually(() => harness.startAtLogin(), 'start at login is on');
    await page.getByRole('button', { name: 'Pause sync' }).click();
    await page.getByRole('button', { name: 'Resume sync' }).waitFor({ timeout: WAIT_MS });
    expect(harness.controller.status().state).toBe('paused');
    await page.getByRole('button', { name: 'Resume sync' }).click();
    await page.getByRole('button', { name: 'Pause sync' }).waitFor({ timeout: WAIT_MS });
    await eventually(() => harness.controller.status().state !== 'paused', 'sync resumed');
    expect(await page.getByTestId('encryption').textContent()).toMatch(/End-to-end encrypted/);
  });

  it.skipIf(!HAS_CHROMIUM)(`is usable by keyboard and at 200 % zoom${NO_CHROMIUM}`, async () => {
    // 200 % zoom of a 1200×900 window: half the CSS pixels, twice the device pixels
    const context = await browser!.newContext({ viewport: { width: 600, height: 450 }, deviceScaleFactor: 2 });
    const zoomed = await context.newPage();
    try {
      await zoomed.goto(harness.url);
      await zoomed.locator('[data-testid="last-sync"]', { hasText: /Synced/ }).waitFor({ timeout: WAIT_MS });
      const overflow = () => zoomed.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      expect(await overflow()).toBeLessThanOrEqual(0);
      await zoomed.screenshot({ path: screenshotPath('5-zoom-200-status'), fullPage: true });

      // tab order: the sections first, then the status panel's action; focus is visible
      const focused: string[] = [];
      for (let i = 0; i < 4; i++) {
        await zoomed.keyboard.press('Tab');
        focused.push(await zoomed.evaluate(() => document.activeElement?.textContent?.trim() ?? ''));
      }
      expect(focused).toEqual(['Status', 'Conflicts', 'Settings', 'Sync now']);
      const outline = await zoomed.evaluate(() => getComputedStyle(document.activeElement!).outlineStyle);
      expect(outline).not.toBe('none');
      await zoomed.keyboard.press('Shift+Tab');
      await zoomed.keyboard.press('Enter'); // Settings, by keyboard
      await zoomed.locator('#panel-settings').waitFor({ timeout: WAIT_MS });
      await zoomed.locator('form[data-form="relay"] input[name="relayUrl"]').waitFor({ timeout: WAIT_MS });
      expect(await overflow()).toBeLessThanOrEqual(0);
      await zoomed.screenshot({ path: screenshotPath('5-zoom-200-settings'), fullPage: true });
    } finally {
      await context.close();
    }
  });
});
