// Status, progress, devices and relay, end to end in Debian's Chromium: two windows (two UI harnesses, the
// real main-process services of two devices) and a third device made with the real CLI, on a real relay
// reached through a loopback proxy the test can freeze, cut or refuse. Screenshots: test-output/e2e/b-*.png.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureRendererBuilt } from '../main/harness/renderer-build.ts';
import { startHarness, type RunningHarness } from '../main/harness/server.ts';
import { startCuttableProxy, type CuttableProxy } from '../test/support/cuttable-proxy.ts';
import { KEYRING, Lab, eventually, freePort } from '../test/support/devices.ts';
import { cliJoin, controllerJoin } from '../test/support/pair.ts';
import { HAS_CHROMIUM, WAIT_MS, cli, launchChromium, screenshotPath } from './support.ts';

const NO_CHROMIUM = HAS_CHROMIUM ? '' : ' (skipped: /usr/bin/chromium is not installed)';
const BULK = 10_000;

let lab: Lab;
let proxy: CuttableProxy;
let laptop: RunningHarness; // the window under test
let desktop: RunningHarness; // a second window: the move offer, and the revoked device
let laptopClosed = false;
let cliHome: string;
let browser: Browser | null = null;
let page: Page;
let page2: Page;

const harnessOptions = (name: string) => ({ home: join(lab.dir, name), keyring: KEYRING, keyringService: `motebit-e2e-status-${name}-${process.pid}`, env: {}, log: () => {} });

beforeAll(async () => {
  await ensureRendererBuilt();
  lab = new Lab();
  const port = await freePort();
  proxy = await startCuttableProxy(`http://127.0.0.1:${port}`);
  await lab.relay({ port, audience: proxy.url }); // every device knows the relay by the proxy's URL
  laptop = await startHarness(harnessOptions('laptop'));
  await laptop.controller.create(proxy.url, 'laptop');
  laptop.controller.takeRecoveryKey(); // shown once, and not by this test (e2e/pairing.test.ts checks that screen)
  await laptop.controller.setInterval(5);
  cliHome = join(lab.dir, 'cli');
  await cliJoin(cliHome, laptop.controller.current, 'phone-cli');
  desktop = await startHarness(harnessOptions('desktop'));
  await controllerJoin(desktop.controller, laptop.controller.current, 'desktop');
  await desktop.controller.setInterval(5);
  if (HAS_CHROMIUM) {
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1200, height: 1000 } });
    page2 = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    await page.goto(laptop.url);
    await page2.goto(desktop.url);
  }
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await desktop?.close();
  if (!laptopClosed) await laptop?.close();
  await proxy?.close();
  await lab?.close();
});

/** Horizontal overflow of the page (0 when nothing sticks out). */
const overflow = (p: Page) => p.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);

/** A screenshot at a 400 px wide window too, where nothing may stick out. */
async function narrowShot(p: Page, name: string): Promise<void> {
  const size = p.viewportSize()!;
  await p.setViewportSize({ width: 400, height: 900 });
  try {
    expect(await overflow(p)).toBeLessThanOrEqual(0);
    await p.screenshot({ path: screenshotPath(name), fullPage: true });
  } finally {
    await p.setViewportSize(size);
  }
}

const tab = (p: Page, name: string) => p.locator(`nav button[data-tab="${name}"]`);
const text = async (p: Page, testid: string) => (await p.getByTestId(testid).textContent()) ?? '';

/** Imports `count` values on the CLI device (one transaction) and syncs them to the relay. */
async function cliWrites(prefix: string, count: number, size = 0): Promise<void> {
  const file = join(lab.dir, `${prefix}.jsonl`);
  const pad = 'x'.repeat(size);
  writeFileSync(file, Array.from({ length: count }, (_, i) => JSON.stringify({ entity: `${prefix}/${i}`, value: { n: i, pad } })).join('\n'));
  expect((await cli(cliHome, ['import', file])).code).toBe(0);
  const synced = await cli(cliHome, ['sync']);
  expect(synced.code, synced.stderr).toBe(0);
}

describe('status panel', () => {
  it.skipIf(!HAS_CHROMIUM)(`shows changes that arrive live from another device${NO_CHROMIUM}`, async () => {
    await eventually(() => laptop.controller.status().transport === 'websocket', 'the laptop is live over WebSocket');
    await page.locator('[data-testid="transport"]', { hasText: 'WebSocket (live)' }).waitFor({ timeout: WAIT_MS });
    expect(await text(page, 'arrivals')).toBe('None yet');
    await cliWrites('live', 120);
    await page.locator('[data-testid="arrivals"]', { hasText: '120 changes received just now' }).waitFor({ timeout: WAIT_MS });
    expect(laptop.controller.current.get('live/119')?.value).toEqual({ n: 119, pad: '' });
    await page.screenshot({ path: screenshotPath('b-live-arrivals'), fullPage: true });
  });

  it.skipIf(!HAS_CHROMIUM)(`counts what it sent and what it received apart; its own changes echoed back are not "received"${NO_CHROMIUM}`, async () => {
    const device = laptop.controller.current;
    device.write(Array.from({ length: 50 }, (_, i) => ({ entity: `mine/${i}`, op: 'set' as const, payload: i })));
    await page.getByTestId('sync-now').click();
    await page.locator('[data-testid="sync-progress"]', { hasText: /^Sync (complete|failed)/ }).waitFor({ timeout: WAIT_MS });
    expect(await text(page, 'sync-progress')).toBe('Sync complete: sent 50, received 0.');
  });

  it.skipIf(!HAS_CHROMIUM)(`shows how many entities this device holds and how large its database is${NO_CHROMIUM}`, async () => {
    const status = laptop.controller.status();
    expect(status.entities).toBe(170);
    await page.locator('[data-testid="entities"]', { hasText: /^170$/ }).waitFor({ timeout: WAIT_MS });
    expect(await text(page, 'database-size')).toMatch(/^\d+(\.\d)? (kB|MB)$/);
  });

  it.skipIf(!HAS_CHROMIUM)(`says so when the relay is gone, instead of "Up to date · WebSocket (live)"${NO_CHROMIUM}`, async () => {
    await eventually(() => laptop.controller.status().transport === 'websocket', 'the laptop is live again');
    proxy.refuse(true);
    proxy.cut();
    await page.locator('[data-testid="state"]', { hasText: 'Can’t reach the relay' }).waitFor({ timeout: WAIT_MS });
    expect(await text(page, 'transport')).toBe('Not connected: the relay does not answer');
    expect(await page.getByTestId('status-error').isVisible()).toBe(true);
    await page.screenshot({ path: screenshotPath('b-relay-gone'), fullPage: true });
    proxy.refuse(false);
    await page.getByTestId('sync-now').click();
    await page.locator('[data-testid="state"]', { hasText: /^Up to date$/ }).waitFor({ timeout: WAIT_MS });
    expect(await page.getByTestId('status-error').isVisible()).toBe(false);
  });

  it.skipIf(!HAS_CHROMIUM)(`while paused, Sync now is disabled and Resume is on the Status tab${NO_CHROMIUM}`, async () => {
    await tab(page, 'settings').click();
    await page.getByRole('button', { name: 'Pause sync' }).click();
    await page.getByRole('button', { name: 'Resume sync' }).waitFor({ timeout: WAIT_MS });
    await tab(page, 'status').click();
    const sync = page.getByTestId('sync-now');
    await page.getByTestId('status-resume').waitFor({ state: 'visible', timeout: WAIT_MS });
    expect(await sync.isDisabled()).toBe(true);
    expect(await text(page, 'sync-hint')).toBe('Sync is paused. Resume it to sync again.');
    expect(await text(page, 'state')).toBe('Paused');
    await page.screenshot({ path: screenshotPath('b-paused'), fullPage: true });
  });

  it.skipIf(!HAS_CHROMIUM)(`receiving a few thousand changes shows a total, a bar and the time left${NO_CHROMIUM}`, async () => {
    // While the laptop is paused, the CLI device writes 10,000 values of ~1 kB: the laptop's next cycle receives them.
    await cliWrites('bulk', BULK, 1000);
    // The moment the laptop has received part of them, the proxy stops passing bytes: receiving holds still for the screenshot.
    let froze = false;
    const stop = laptop.controller.onStatus((status) => {
      const p = status.progress;
      if (!froze && p?.phase === 'pull' && p.done > 0 && p.total !== null && p.done < p.total) {
        froze = true;
        proxy.freeze();
      }
    });
    try {
      await page.getByTestId('status-resume').click();
      const line = page.locator('[data-testid="sync-progress"]', { hasText: /^Receiving [\d,]+ of 10,000 changes… about \d+ (s|min) left$/ });
      await line.waitFor({ timeout: WAIT_MS });
      expect(froze).toBe(true);
      const bar = page.getByTestId('progress-bar');
      expect(await bar.isVisible()).toBe(true);
      expect(await bar.getAttribute('max')).toBe(String(BULK));
      const value = Number(await bar.evaluate((el) => (el as HTMLProgressElement).value));
      expect(value).toBeGreaterThan(0);
      expect(value).toBeLessThan(BULK);
      expect(await page.getByTestId('sync-now').isDisabled()).toBe(false);
      expect(await page.getByTestId('status-resume').isVisible()).toBe(false);
      await page.screenshot({ path: screenshotPath('b-receiving'), fullPage: true });
      await narrowShot(page, 'b-receiving-400');
    } finally {
      stop();
    }
    // Cut the frozen connection: that cycle fails; the next one finishes the job.
    proxy.cut();
    await eventually(() => laptop.controller.status().state !== 'syncing', 'the frozen cycle ended');
    await page.getByTestId('sync-now').click();
    await page.locator('[data-testid="sync-progress"]', { hasText: /^Sync complete: sent 0, received \d+\.$/ }).waitFor({ timeout: 60_000 });
    expect(laptop.controller.current.get(`bulk/${BULK - 1}`)?.value).toMatchObject({ n: BULK - 1 });
    await page.locator('[data-testid="entities"]', { hasText: (170 + BULK).toLocaleString('en-US') }).waitFor({ timeout: WAIT_MS });
  }, 120_000);
});

describe('devices and relay', () => {
  it.skipIf(!HAS_CHROMIUM)(`the device list shows when each device was last seen and how far behind it is${NO_CHROMIUM}`, async () => {
    const cliId = (await laptop.controller.devices()).find((d) => d.name === 'phone-cli')!.deviceId;
    const desktopId = desktop.controller.current.identity.deviceId;
    // the laptop writes 312 changes; the CLI device is not running, so it falls behind by exactly those
    const device = laptop.controller.current;
    device.write(Array.from({ length: 312 }, (_, i) => ({ entity: `later/${i}`, op: 'set' as const, payload: i })));
    expect((await device.syncNow()).ok).toBe(true);
    await eventually(async () => (await desktop.controller.current.syncNow()).ok && desktop.controller.current.get('later/311') !== undefined, 'the desktop received the 312 changes');
    await tab(page, 'settings').click();
    const row = (id: string) => page.locator(`[data-testid="device-list"] li[data-device-id="${id}"]`);
    await eventually(async () => {
      await page.getByRole('button', { name: 'Refresh list' }).click();
      const cliLine = (await row(cliId).getByTestId('device-sync').textContent({ timeout: WAIT_MS })) ?? '';
      const desktopLine = (await row(desktopId).getByTestId('device-sync').textContent({ timeout: WAIT_MS })) ?? '';
      return /^Last seen \d+ (s|min) ago · 312 changes behind$/.test(cliLine) && /^Last seen \d+ s ago · up to date$/.test(desktopLine);
    }, 'the list says the CLI device is 312 changes behind and the desktop is up to date');
    expect(await row(laptop.controller.current.identity.deviceId).getByTestId('device-sync').textContent()).toMatch(/^Last seen \d+ s ago · up to date$/);
    await row(cliId).scrollIntoViewIfNeeded();
    await page.screenshot({ path: screenshotPath('b-devices'), fullPage: true });

    // the CLI device syncs: up to date
    expect((await cli(cliHome, ['sync'])).code).toBe(0);
    await page.getByRole('button', { name: 'Refresh list' }).click();
    await row(cliId).getByTestId('device-sync').filter({ hasText: /^Last seen \d+ s ago · up to date$/ }).waitFor({ timeout: WAIT_MS });
  });

  it.skipIf(!HAS_CHROMIUM)(`changing the relay warns, sends the new address through the old one, and the other device is asked whether to move${NO_CHROMIUM}`, async () => {
    const relay2 = await lab.relay({ db: join(lab.dir, 'relay2.db') });
    await tab(page, 'settings').click();
    const field = page.locator('form[data-form="relay"]').getByLabel('Relay URL');
    const warning = page.getByTestId('relay-warning');
    expect(await warning.isVisible()).toBe(false);
    await field.fill(relay2.url);
    await warning.waitFor({ state: 'visible', timeout: WAIT_MS });
    expect(await warning.textContent()).toMatch(/Until they move too, they stop seeing this device’s changes/);
    expect(await page.getByTestId('tell-others').isChecked()).toBe(true);
    await warning.scrollIntoViewIfNeeded();
    await page.screenshot({ path: screenshotPath('b-relay-change'), fullPage: true });
    await page.getByRole('button', { name: 'Save relay URL' }).click();
    await page.locator('form[data-form="relay"] .message.ok', { hasText: 'your other devices were sent the new address' }).waitFor({ timeout: WAIT_MS });
    expect(laptop.controller.settings().relayUrl).toBe(relay2.url);
    expect(desktop.controller.settings().relayUrl).toBe(proxy.url); // nothing moved by itself

    // the desktop, still on the old relay, hears of it and asks
    const offer = page2.getByTestId('move-offer');
    await offer.waitFor({ state: 'visible', timeout: WAIT_MS });
    expect(await offer.textContent()).toMatch(/^laptop moved to another relay/);
    expect(await page2.getByTestId('move-offer-url').textContent()).toBe(relay2.url);
    expect(desktop.controller.settings().relayUrl).toBe(proxy.url);
    await page2.screenshot({ path: screenshotPath('b-move-offer'), fullPage: true });
    await narrowShot(page2, 'b-move-offer-400');
    await offer.getByRole('button', { name: 'Move this device too' }).click();
    await offer.getByText(`Moved. This device now syncs through ${relay2.url}.`).waitFor({ timeout: WAIT_MS });
    expect(desktop.controller.settings().relayUrl).toBe(relay2.url);
    // the laptop itself is never offered its own move
    expect(laptop.controller.moveOffer()).toBeNull();

    // both sync through the new relay
    laptop.controller.current.put('after-move', 'on the new relay');
    await eventually(async () => {
      await laptop.controller.current.syncNow();
      await desktop.controller.current.syncNow();
      return desktop.controller.current.get('after-move')?.value === 'on the new relay';
    }, 'the desktop receives what the laptop writes on the new relay');
    expect(desktop.controller.moveOffer()).toBeNull();
  });

  it.skipIf(!HAS_CHROMIUM)(`revoking explains first what it does and does not do; the revoked device's window says what happened${NO_CHROMIUM}`, async () => {
    const desktopId = desktop.controller.current.identity.deviceId;
    await tab(page, 'settings').click();
    await page.getByRole('button', { name: 'Refresh list' }).click();
    await page.getByRole('button', { name: 'Revoke desktop' }).click();
    const explain = page.getByTestId('revoke-explanation');
    await explain.waitFor({ timeout: WAIT_MS });
    const words = (await explain.textContent()) ?? '';
    // a motebit with per-device keys: removing it also shuts it out of what is written from now on
    expect(words).toMatch(/It will no longer sync, and cannot read anything written from now on/);
    expect(words).toMatch(/Does not: erase what it already has/);
    expect(words).not.toMatch(/still knows your motebit’s secret/);
    expect(desktop.controller.status().revoked).toBe(false); // nothing happened yet
    await explain.scrollIntoViewIfNeeded();
    await page.screenshot({ path: screenshotPath('b-revoke-explain'), fullPage: true });
    await narrowShot(page, 'b-revoke-explain-400');
    await page.getByRole('button', { name: 'Confirm: revoke desktop' }).click();
    await page.locator(`li[data-device-id="${desktopId}"] .badge.muted`, { hasText: /^revoked/ }).waitFor({ timeout: WAIT_MS });

    await eventually(async () => {
      if (!desktop.controller.status().revoked) await desktop.controller.current.syncNow();
      return desktop.controller.status().revoked === true;
    }, 'the desktop learns it was revoked');
    const box = page2.getByTestId('revoked');
    await tab(page2, 'status').click();
    await box.waitFor({ state: 'visible', timeout: WAIT_MS });
    expect(await box.textContent()).toMatch(/This device was removed from your motebit.*Everything this device already had is still here.*one-time code to approve/s);
    expect(await box.textContent()).toMatch(/choose “Join an existing motebit”/);
    expect(await text(page2, 'state')).toBe('Revoked: not syncing');
    expect(await text(page2, 'next-sync')).toBe('None: this device was revoked');
    expect(await page2.getByTestId('sync-now').isDisabled()).toBe(true);
    expect(await page2.getByTestId('status-error').isVisible()).toBe(false); // not a generic error
    expect(desktop.controller.current.get('after-move')?.value).toBe('on the new relay'); // it keeps what it had
    await page2.screenshot({ path: screenshotPath('b-revoked'), fullPage: true });
    await narrowShot(page2, 'b-revoked-400');
  });

  it.skipIf(!HAS_CHROMIUM)(`says so when the app itself is gone${NO_CHROMIUM}`, async () => {
    await tab(page, 'status').click();
    laptopClosed = true;
    await laptop.close();
    await page.locator('[data-testid="state"]', { hasText: 'Motebit Sync is not running' }).waitFor({ timeout: WAIT_MS });
    expect(await text(page, 'transport')).toBe('Not connected: this window lost Motebit Sync');
    expect(await page.getByTestId('sync-now').isDisabled()).toBe(true);
    expect(await text(page, 'sync-progress')).toMatch(/no longer current/);
    await page.screenshot({ path: screenshotPath('b-app-gone'), fullPage: true });
  });
});
