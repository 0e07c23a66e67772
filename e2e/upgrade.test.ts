// Upgrading a master-token motebit from the settings window (issue 16: "one command and one button"), end to
// end in Debian's Chromium against two UI harnesses (the real main-process services of two devices) and a
// real relay: Settings shows the card only while the motebit shares one master key; the first device's
// "Upgrade this device" shows its recovery key once, then Settings say per-device and Status still counts
// every value; a second window's upgrade shows its code and the same six digits as the member, can be
// cancelled (nothing changes), and is approved on the member. axe-core checks each new screen.
// Screenshots: test-output/e2e/upgrade-*.png.
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Device } from '../main/app/device.ts';
import { ensureRendererBuilt } from '../main/harness/renderer-build.ts';
import { startHarness, type RunningHarness } from '../main/harness/server.ts';
import type { RunningRelay } from '../relay/server.ts';
import { KEYRING, Lab, eventually } from '../test/support/devices.ts';
import { HAS_CHROMIUM, WAIT_MS, axeViolations, launchChromium, screenshotPath, wideAndNarrowShots } from './support.ts';

const NO_CHROMIUM = HAS_CHROMIUM ? '' : ' (skipped: /usr/bin/chromium is not installed)';
/** The rules e2e/pairing.test.ts runs on its new screens. */
const AXE_RULES = ['color-contrast', 'focus-order-semantics', 'scrollable-region-focusable', 'tabindex', 'nested-interactive', 'aria-hidden-focus', 'link-in-text-block', 'label', 'button-name', 'image-alt', 'heading-order'];

let lab: Lab;
let relay: RunningRelay;
let laptop: RunningHarness; // upgraded first: founds the membership log
let phone: RunningHarness; // upgraded later, by approval on the laptop
let browser: Browser | null = null;
let context: BrowserContext;
let page: Page;
let page2: Page;

const harness = (name: string) => startHarness({ home: join(lab.dir, name), keyring: KEYRING, keyringService: `motebit-e2e-upgrade-${process.pid}`, env: {}, log: () => {} });

beforeAll(async () => {
  await ensureRendererBuilt();
  lab = new Lab();
  relay = await lab.relay();
  // a motebit made before per-device keys: the laptop's window controller makes it, the phone joins with a pairing code
  laptop = await harness('laptop');
  await laptop.controller.create(relay.url, 'laptop', 'shared');
  const old = await Device.join({ home: join(lab.dir, 'phone'), keyring: KEYRING, keyringService: `motebit-e2e-upgrade-${process.pid}`, env: {}, pairingCode: await laptop.controller.current.pairingCode(), deviceName: 'phone' });
  laptop.controller.current.put('note/laptop', 'from the laptop');
  laptop.controller.current.put('note/both', { n: 1 });
  old.put('note/phone', 'from the phone');
  expect((await old.syncNow()).ok).toBe(true);
  expect((await laptop.controller.current.syncNow()).ok).toBe(true);
  expect((await old.syncNow()).ok).toBe(true);
  await old.close();
  phone = await harness('phone');
  if (HAS_CHROMIUM) {
    browser = await launchChromium();
    // bypassCSP: axe is injected as a script, which the page's own policy rightly refuses
    context = await browser.newContext({ viewport: { width: 1200, height: 900 }, bypassCSP: true });
    page = await context.newPage();
    page2 = await context.newPage();
  }
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await phone?.close();
  await laptop?.close();
  await lab?.close();
});



const tab = (p: Page, name: string) => p.locator(`nav button[data-tab="${name}"]`);

/** The window is on Status with every value counted (3) after a sync. */
async function statusCountsEveryValue(p: Page): Promise<void> {
  await tab(p, 'status').click();
  await p.locator('[data-testid="last-sync"]', { hasText: /^Synced/ }).waitFor({ timeout: WAIT_MS });
  await p.locator('[data-testid="entities"]', { hasText: /^3$/ }).waitFor({ timeout: WAIT_MS });
}

describe('upgrading a master-token motebit from the window', () => {
  it.skipIf(!HAS_CHROMIUM)(`the card says what changes and what stays; Upgrade this device shows the recovery key once; then Settings say per-device, without the card, and every value is still there${NO_CHROMIUM}`, async () => {
    await page.goto(laptop.url);
    await statusCountsEveryValue(page);
    await tab(page, 'settings').click();
    const card = page.getByTestId('upgrade-card');
    await card.waitFor({ timeout: WAIT_MS });
    const words = (await card.textContent())!;
    expect(words).toMatch(/Give each device its own keys/);
    expect(words).toMatch(/A device you remove is really locked out/);
    expect(words).toMatch(/Adding a device becomes an approval/);
    expect(words).toMatch(/A recovery key is made/);
    expect(words).toMatch(/Everything stays: every value, your motebit and this device/);
    expect(words).toMatch(/upgrade your other devices one by one .* approve on a device upgraded already/);
    expect(await page.getByTestId('keys').textContent()).toBe('One master key shared by every device');
    expect(await axeViolations(page, AXE_RULES)).toEqual([]);
    await card.scrollIntoViewIfNeeded();
    await wideAndNarrowShots(page, 'upgrade-card');

    const motebitId = laptop.controller.current.identity.motebitId;
    const deviceId = laptop.controller.current.identity.deviceId;
    await page.getByRole('button', { name: 'Upgrade this device' }).click();
    const key = page.getByTestId('recovery-key');
    await key.waitFor({ timeout: WAIT_MS });
    expect(await key.textContent()).toMatch(/^MBR1(-[0-9A-Z]{2,4})+$/);
    expect(await page.getByTestId('recovery-motebit').textContent()).toBe(motebitId); // the same motebit
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Your recovery key');
    expect(await axeViolations(page, AXE_RULES)).toEqual([]);
    await wideAndNarrowShots(page, 'upgrade-recovery-key');

    await page.getByRole('button', { name: 'I have written it down' }).click();
    await page.getByTestId('keys').filter({ hasText: 'Each device has its own keys' }).waitFor({ timeout: WAIT_MS });
    expect(await tab(page, 'settings').getAttribute('aria-current')).toBe('page'); // back where the button was
    expect(await page.getByTestId('upgrade-card').isVisible()).toBe(false);
    expect(await page.getByLabel('Code the new device shows').isVisible()).toBe(true); // adding a device is an approval now
    expect(laptop.controller.current.identity).toMatchObject({ kind: 'member', motebitId, deviceId });
    await page.screenshot({ path: screenshotPath('upgrade-done-settings'), fullPage: true });
    await statusCountsEveryValue(page);
    expect(laptop.controller.current.get('note/phone')?.value).toBe('from the phone');
    await page.screenshot({ path: screenshotPath('upgrade-done-status'), fullPage: true });

    // once: neither a reload nor main has it any more
    await page.reload();
    await page.locator('[data-testid="last-sync"]', { hasText: /^Synced/ }).waitFor({ timeout: WAIT_MS });
    expect(await page.getByTestId('recovery-key').count()).toBe(0);
    expect(laptop.controller.takeRecoveryKey()).toBeNull();
  });

  it.skipIf(!HAS_CHROMIUM)(`a later upgrade shows its code; Cancel changes nothing; again, the digits equal the member's, approved there, and both converge${NO_CHROMIUM}`, async () => {
    await page2.goto(phone.url);
    await statusCountsEveryValue(page2);
    await tab(page2, 'settings').click();
    const upgrade = page2.getByRole('button', { name: 'Upgrade this device' });
    await upgrade.click();
    const codeShown = page2.getByTestId('upgrade-code');
    await codeShown.waitFor({ timeout: WAIT_MS });
    expect(await codeShown.textContent()).toMatch(/^MBP1-/);
    expect(await page2.getByTestId('upgrade-flow').textContent()).toMatch(/that was upgraded already, choose Add a device in Settings and enter this code/);
    expect(await page2.evaluate(() => document.activeElement?.textContent)).toBe('Your one-time code');

    // Cancel: nothing changed, the device runs on with the master key
    await page2.getByTestId('cancel-upgrade').click();
    await page2.getByTestId('upgrade-outcome').filter({ hasText: 'Nothing was changed: this device runs on as before, with every value.' }).waitFor({ timeout: WAIT_MS });
    expect(phone.controller.current.identity.kind).toBe('master-token');
    expect(await axeViolations(page2, AXE_RULES)).toEqual([]);
    await page2.screenshot({ path: screenshotPath('upgrade-cancelled'), fullPage: true });
    await page2.getByTestId('upgrade-back').click();
    await page2.getByTestId('keys').filter({ hasText: 'One master key shared by every device' }).waitFor({ timeout: WAIT_MS });
    expect(await page2.getByTestId('upgrade-card').isVisible()).toBe(true);

    // again, approved on the laptop
    await upgrade.click();
    await codeShown.waitFor({ timeout: WAIT_MS });
    const code = (await codeShown.textContent())!;
    // the window opened again while the upgrade waits: the same code, still waiting
    await page2.reload();
    await page2.getByTestId('upgrade-code').filter({ hasText: code }).waitFor({ timeout: WAIT_MS });
    expect(await page2.getByRole('img', { name: 'QR code of the one-time code' }).getAttribute('src')).toMatch(/^data:image\/svg\+xml;/);
    expect(await axeViolations(page2, AXE_RULES)).toEqual([]);
    await wideAndNarrowShots(page2, 'upgrade-code');

    const approval = laptop.controller.checkApproval(code);
    const shown = await page2.getByTestId('upgrade-sas').textContent({ timeout: WAIT_MS });
    const pending = await approval;
    expect(shown).toBe(pending.sas);
    expect(pending).toMatchObject({ name: 'phone', deviceId: phone.controller.state().phase === 'ready' ? (phone.controller.state() as { deviceId: string }).deviceId : 'none' });
    expect(await page2.getByTestId('upgrade-flow').textContent()).toMatch(/Approve only if the other device shows the same digits/);
    expect(await axeViolations(page2, AXE_RULES)).toEqual([]);
    await wideAndNarrowShots(page2, 'upgrade-digits');

    await laptop.controller.approve(pending.deviceId);
    await page2.getByTestId('keys').filter({ hasText: 'Each device has its own keys' }).waitFor({ timeout: WAIT_MS });
    expect(await page2.getByTestId('upgrade-card').isVisible()).toBe(false);
    expect(phone.controller.current.identity).toMatchObject({ kind: 'member', deviceId: pending.deviceId });
    await page2.screenshot({ path: screenshotPath('upgrade-later-done'), fullPage: true });
    await statusCountsEveryValue(page2);

    // both converge: what each writes now reaches the other
    laptop.controller.current.put('after/laptop', 'a');
    phone.controller.current.put('after/phone', 'b');
    await eventually(async () => {
      await laptop.controller.current.syncNow();
      await phone.controller.current.syncNow();
      return [laptop, phone].every(({ controller }) => controller.current.get('after/laptop')?.value === 'a' && controller.current.get('after/phone')?.value === 'b');
    }, 'both upgraded devices have what the other wrote since');
    expect(phone.controller.current.store.stateDigest()).toBe(laptop.controller.current.store.stateDigest());
    await page2.locator('[data-testid="entities"]', { hasText: /^5$/ }).waitFor({ timeout: WAIT_MS });
  });

  it.skipIf(!HAS_CHROMIUM)(`an upgrade that cannot sync first says so in words beside the button; nothing changed, the device runs on${NO_CHROMIUM}`, async () => {
    const lonelyRelay = await lab.relay({ db: join(lab.dir, 'lonely-relay.db') });
    const solo = await harness('solo');
    try {
      await solo.controller.create(lonelyRelay.url, 'solo', 'shared');
      solo.controller.current.put('note/solo', 'kept');
      await lonelyRelay.close(); // the write cannot reach the relay
      const p = await context.newPage();
      try {
        await p.goto(solo.url);
        await tab(p, 'settings').click();
        await p.getByRole('button', { name: 'Upgrade this device' }).click();
        const said = p.getByTestId('upgrade-card').getByRole('alert');
        await said.waitFor({ timeout: WAIT_MS });
        const words = (await said.textContent())!;
        expect(words).toMatch(/^The upgrade did not happen\. This device has changes the relay has not taken yet .*nothing was changed/);
        expect(words).not.toMatch(/ECONNREFUSED|HTTP \d{3}|\.ts:\d+/);
        expect(await p.getByRole('button', { name: 'Upgrade this device' }).isVisible()).toBe(true);
        expect(await p.getByTestId('keys').textContent()).toBe('One master key shared by every device');
        expect(solo.controller.current.identity.kind).toBe('master-token');
        expect(solo.controller.current.get('note/solo')?.value).toBe('kept');
        expect(await axeViolations(p, AXE_RULES)).toEqual([]);
        await p.getByTestId('upgrade-card').scrollIntoViewIfNeeded();
        await p.screenshot({ path: screenshotPath('upgrade-failed'), fullPage: true });
        await tab(p, 'status').click();
        await p.locator('[data-testid="pending"]', { hasText: /1/ }).waitFor({ timeout: WAIT_MS }); // the status runs on: one change waiting to be sent
      } finally {
        await p.close();
      }
    } finally {
      await solo.close();
    }
  });
});
