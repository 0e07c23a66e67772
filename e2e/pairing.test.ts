// Per-device keys in the settings window (issue 16), end to end in Debian's Chromium against two UI
// harnesses (the real main-process services of two devices), the real CLI in child processes and a real
// relay: creating shows the recovery key once; a new window joins by approval (code, the same six digits as
// the member, approved there); the window adds a device the CLI is joining, or declines it; a device removed
// from the window can no longer sync. axe-core checks each new screen. Screenshots: test-output/e2e/keys-*.png.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configPath } from '../main/config/home.ts';
import { ensureRendererBuilt } from '../main/harness/renderer-build.ts';
import { startHarness, type RunningHarness } from '../main/harness/server.ts';
import type { RunningRelay } from '../relay/server.ts';
import { KEYRING, Lab, eventually } from '../test/support/devices.ts';
import { POLL_MS, startCli } from '../test/support/pair.ts';
import { HAS_CHROMIUM, WAIT_MS, axeViolations, cli, launchChromium, screenshotPath, wideAndNarrowShots } from './support.ts';

const NO_CHROMIUM = HAS_CHROMIUM ? '' : ' (skipped: /usr/bin/chromium is not installed)';
/** The same axe rules as e2e/accessibility.test.ts, plus the ones about names and labels of new controls. */
const AXE_RULES = ['color-contrast', 'focus-order-semantics', 'scrollable-region-focusable', 'tabindex', 'nested-interactive', 'aria-hidden-focus', 'link-in-text-block', 'label', 'button-name', 'image-alt', 'heading-order'];
/** Long enough for an approval to go through; short enough for a declined code to expire within the test. */
const LIFETIME_SECONDS = 30;

let lab: Lab;
let relay: RunningRelay; // codes live LIFETIME_SECONDS
let quickRelay: RunningRelay; // codes live 3 s: the window's expiry
let laptop: RunningHarness; // the motebit's founding device, made in the window
let desk: RunningHarness; // a new device joining by approval in its window
let fresh: RunningHarness; // every device lost: a new one recovering with the recovery key
let recoveryText = ''; // as the person wrote it down in the first test
let browser: Browser | null = null;
let context: BrowserContext;
let page: Page;
let page2: Page;

beforeAll(async () => {
  await ensureRendererBuilt();
  lab = new Lab();
  relay = await lab.relay({ pairingLifetimeSeconds: LIFETIME_SECONDS });
  quickRelay = await lab.relay({ pairingLifetimeSeconds: 3, db: join(lab.dir, 'quick-relay.db') });
  laptop = await startHarness({ home: join(lab.dir, 'laptop'), keyring: KEYRING, keyringService: `motebit-e2e-keys-${process.pid}`, env: {}, log: () => {} });
  desk = await startHarness({ home: join(lab.dir, 'desk'), keyring: KEYRING, keyringService: `motebit-e2e-keys-${process.pid}`, env: {}, log: () => {} });
  fresh = await startHarness({ home: join(lab.dir, 'fresh'), keyring: KEYRING, keyringService: `motebit-e2e-keys-${process.pid}`, env: {}, log: () => {} });
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
  await fresh?.close();
  await desk?.close();
  await laptop?.close();
  await lab?.close();
});



function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name));
}

const tab = (p: Page, name: string) => p.locator(`nav button[data-tab="${name}"]`);
const listedNames = async () => (await laptop.controller.devices()).filter((d) => d.revokedAt === null).map((d) => d.name).sort();

describe('per-device keys in the window', () => {
  it.skipIf(!HAS_CHROMIUM)(`creating a motebit shows its recovery key once, with a QR code and the motebit id; then never again, and in no file${NO_CHROMIUM}`, async () => {
    await page.goto(laptop.url);
    await page.getByLabel('Relay URL').fill(relay.url);
    await page.locator('form[data-form="create"]').getByLabel('Name of this device').fill('laptop');
    await page.getByRole('button', { name: 'Create motebit' }).click();
    const key = page.getByTestId('recovery-key');
    await key.waitFor({ timeout: WAIT_MS });
    const text = (await key.textContent())!;
    recoveryText = text;
    expect(text).toMatch(/^MBR1(-[0-9A-Z]{2,4})+$/);
    const motebitId = laptop.controller.current.identity.motebitId;
    expect(await page.getByTestId('recovery-motebit').textContent()).toBe(motebitId);
    expect(await page.getByRole('img', { name: 'QR code of the recovery key' }).getAttribute('src')).toMatch(/^data:image\/svg\+xml;/);
    const words = (await page.locator('#recovery-key').textContent())!;
    expect(words).toMatch(/keep it away from your devices/);
    expect(words).toMatch(/get your motebit back on a new device if every device is lost, and remove any device/);
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Your recovery key'); // focus moved to the new screen
    expect(await axeViolations(page, AXE_RULES)).toEqual([]);
    await wideAndNarrowShots(page, 'keys-recovery-key');

    await page.getByRole('button', { name: 'I have written it down' }).click();
    await page.locator('[data-testid="last-sync"]', { hasText: /^Synced/ }).waitFor({ timeout: WAIT_MS });
    expect(await key.count()).toBe(0);
    await page.reload();
    await page.locator('[data-testid="last-sync"]', { hasText: /^Synced/ }).waitFor({ timeout: WAIT_MS });
    expect(await page.getByTestId('recovery-key').count()).toBe(0);
    expect(laptop.controller.takeRecoveryKey()).toBeNull();
    const body = text.replaceAll('-', '').slice(4, 24);
    for (const file of filesUnder(join(lab.dir, 'laptop'))) expect(readFileSync(file).includes(body), file).toBe(false);
  });

  it.skipIf(!HAS_CHROMIUM)(`the join screen leads with the approval path; Cancel stops waiting and writes nothing; an expired code says so and gets a new one${NO_CHROMIUM}`, async () => {
    await page2.goto(desk.url);
    const address = page2.getByLabel('Address of your motebit’s relay');
    await address.waitFor({ timeout: WAIT_MS });
    expect(await page2.getByTestId('join-with-code').locator('summary').textContent()).toBe('I have a code that starts with motebit-pair:');
    expect(await page2.locator('form[data-form="join"]').isVisible()).toBe(false); // the old way, folded away
    await page2.screenshot({ path: screenshotPath('keys-setup-join'), fullPage: true });

    // Cancel while waiting for the other device
    await address.fill(relay.url);
    await page2.getByRole('button', { name: 'Get a code' }).click();
    await page2.getByTestId('join-code').waitFor({ timeout: WAIT_MS });
    expect(await page2.locator('form[data-form="create"]').isVisible()).toBe(false); // the create card steps aside
    await page2.getByTestId('cancel-approval-join').click();
    await page2.locator('form[data-form="join-approval"] .message', { hasText: 'Stopped. Nothing was set up on this device.' }).waitFor({ timeout: WAIT_MS });
    expect(await page2.locator('form[data-form="create"]').isVisible()).toBe(true);
    expect(existsSync(configPath(join(lab.dir, 'desk')))).toBe(false);
    expect(desk.controller.state()).toEqual({ phase: 'setup' });

    // a code nobody answers, on a relay whose codes live 3 s
    await address.fill(quickRelay.url);
    await page2.getByRole('button', { name: 'Get a code' }).click();
    const first = (await page2.getByTestId('join-code').textContent({ timeout: WAIT_MS }))!;
    const expired = page2.getByTestId('join-flow').getByRole('alert');
    await expired.filter({ hasText: /The code expired before another device approved it[;:] get a new code and try again/ }).waitFor({ timeout: WAIT_MS });
    expect(await expired.textContent()).not.toMatch(/run join/);
    await page2.screenshot({ path: screenshotPath('keys-join-expired'), fullPage: true });
    await page2.getByRole('button', { name: 'Get a new code' }).click();
    await page2.locator('[data-testid="join-code"]').filter({ hasNotText: first }).waitFor({ timeout: WAIT_MS });
    await page2.getByTestId('cancel-approval-join').click();
    await page2.getByRole('button', { name: 'Get a code' }).waitFor({ timeout: WAIT_MS });
    expect(existsSync(configPath(join(lab.dir, 'desk')))).toBe(false);
  });

  it.skipIf(!HAS_CHROMIUM)(`a new window joins by approval: its code, the same digits as the member, approved there; then it syncs what the member wrote${NO_CHROMIUM}`, async () => {
    const member = laptop.controller.current;
    member.put('note/from-laptop', 'written before the desk joined');
    expect((await member.syncNow()).ok).toBe(true);
    await page2.getByLabel('Address of your motebit’s relay').fill(relay.url);
    await page2.locator('form[data-form="join-approval"]').getByLabel('Name of this device').fill('desk');
    await page2.getByRole('button', { name: 'Get a code' }).click();
    const code = (await page2.getByTestId('join-code').textContent({ timeout: WAIT_MS }))!;
    expect(code).toMatch(/^MBP1-/);
    expect(await page2.getByRole('img', { name: 'QR code of the one-time code' }).getAttribute('src')).toMatch(/^data:image\/svg\+xml;/);
    expect(await page2.getByTestId('join-flow').textContent()).toMatch(/On a device of your motebit choose Add a device and enter this code/);
    expect(await page2.getByTestId('join-expiry').textContent()).toMatch(/works once, until \d{1,2}:\d{2}.* \((less than a minute|about a minute)\)/);
    expect(await axeViolations(page2, AXE_RULES)).toEqual([]);
    await wideAndNarrowShots(page2, 'keys-join-code');

    const approval = member.approvalFor(code, { pollMs: POLL_MS });
    const shown = await page2.getByTestId('join-sas').textContent({ timeout: WAIT_MS });
    const pending = await approval;
    expect(shown).toBe(pending.sas);
    expect(pending.name).toBe('desk');
    expect(await page2.getByTestId('join-flow').textContent()).toMatch(/Approve only if the other device shows the same digits/);
    expect(await axeViolations(page2, AXE_RULES)).toEqual([]);
    await wideAndNarrowShots(page2, 'keys-join-digits');
    expect(existsSync(configPath(join(lab.dir, 'desk')))).toBe(false); // nothing written before the approval

    await pending.approve();
    await page2.locator('[data-testid="last-sync"]', { hasText: /^Synced/ }).waitFor({ timeout: WAIT_MS });
    expect(await page2.getByTestId('relay-url').textContent()).toBe(relay.url);
    expect(desk.controller.state()).toMatchObject({ phase: 'ready', motebitId: member.identity.motebitId, deviceName: 'desk' });
    await eventually(async () => (await desk.controller.current.syncNow()).ok && desk.controller.current.get('note/from-laptop')?.value === 'written before the desk joined', 'the desk holds what the laptop wrote');
    await page2.locator('[data-testid="entities"]', { hasText: /^1$/ }).waitFor({ timeout: WAIT_MS }); // the window counts it
    expect(await page2.getByTestId('recovery-key').count()).toBe(0); // only the founding device shows one
    await page2.screenshot({ path: screenshotPath('keys-join-done'), fullPage: true });
  });

  it.skipIf(!HAS_CHROMIUM)(`the window adds a device the CLI is joining: its name and the CLI's digits, Approve, and the CLI is in${NO_CHROMIUM}`, async () => {
    await tab(page, 'settings').click();
    const field = page.getByLabel('Code the new device shows');
    await field.waitFor({ timeout: WAIT_MS });
    // a wrong code: words under the field, nothing sent
    await field.fill('MBP1-AAAA-BBBB');
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.locator('form[data-form="add-device"] [data-error-for="code"]').filter({ hasText: /./ }).waitFor({ timeout: WAIT_MS });
    expect(await field.getAttribute('aria-invalid')).toBe('true');
    await page.screenshot({ path: screenshotPath('keys-add-device-typo'), fullPage: true });

    const joiner = startCli(['--home', join(lab.dir, 'cli-phone'), 'join', '--relay', relay.url, '--name', 'cli-phone', '--json']);
    const { join_code: code } = await joiner.json<{ join_code: string }>();
    await field.fill(code);
    await page.getByRole('button', { name: 'Continue' }).click();
    const { sas } = await joiner.json<{ sas: string }>();
    expect(await page.getByTestId('approval-sas').textContent({ timeout: WAIT_MS })).toBe(sas);
    expect(await page.getByTestId('approval-name').textContent()).toBe('cli-phone');
    expect(await axeViolations(page, AXE_RULES)).toEqual([]);
    await page.getByTestId('approval').scrollIntoViewIfNeeded();
    await wideAndNarrowShots(page, 'keys-add-device-digits');
    await page.getByRole('button', { name: 'Approve', exact: true }).click();
    expect(await joiner.exited, joiner.stderr()).toBe(0);
    await page.locator('[data-testid="add-device"] .message.ok', { hasText: 'Approved: cli-phone is now one of your devices' }).waitFor({ timeout: WAIT_MS });
    await page.locator('[data-testid="device-list"] li', { hasText: 'cli-phone' }).waitFor({ timeout: WAIT_MS });
    expect(await listedNames()).toEqual(['cli-phone', 'desk', 'laptop']);
    expect((await cli(join(lab.dir, 'cli-phone'), ['get', 'note/from-laptop'])).stdout.trim()).toBe('"written before the desk joined"');
    await page.getByTestId('add-device').scrollIntoViewIfNeeded();
    await page.screenshot({ path: screenshotPath('keys-add-device-approved'), fullPage: true });
  });

  it.skipIf(!HAS_CHROMIUM)(`"Don't approve" adds nothing; the code is used up and the CLI gives up when it expires${NO_CHROMIUM}`, async () => {
    const before = await listedNames();
    const joiner = startCli(['--home', join(lab.dir, 'cli-stranger'), 'join', '--relay', relay.url, '--name', 'stranger', '--json']);
    const { join_code: code } = await joiner.json<{ join_code: string }>();
    await page.getByLabel('Code the new device shows').fill(code);
    await page.getByLabel('Code the new device shows').press('Enter'); // Enter continues, as in a one-line field
    const { sas } = await joiner.json<{ sas: string }>();
    expect(await page.getByTestId('approval-sas').textContent({ timeout: WAIT_MS })).toBe(sas);
    await page.getByRole('button', { name: 'Don’t approve' }).click();
    await page.locator('[data-testid="add-device"] .message.ok', { hasText: 'Not approved. Nothing was changed, and that code can no longer be used.' }).waitFor({ timeout: WAIT_MS });
    await page.getByTestId('add-device').scrollIntoViewIfNeeded();
    await page.screenshot({ path: screenshotPath('keys-add-device-declined'), fullPage: true });
    expect(await joiner.exited).not.toBe(0); // after the code's lifetime
    expect(joiner.stderr()).toMatch(/expired before another device approved it/);
    expect(await listedNames()).toEqual(before);
    expect(existsSync(configPath(join(lab.dir, 'cli-stranger')))).toBe(false);
    // the same code again: used up, in words
    await page.getByLabel('Code the new device shows').fill(code);
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.locator('form[data-form="add-device"] [data-error-for="code"]', { hasText: /unknown, used or expired/ }).waitFor({ timeout: WAIT_MS });
  });

  it.skipIf(!HAS_CHROMIUM)(`removing a device says it will no longer sync nor read what is written from now on; its next sync fails${NO_CHROMIUM}`, async () => {
    const cliHome = join(lab.dir, 'cli-phone');
    const cliId = JSON.parse((await cli(cliHome, ['status', '--json'])).stdout).device_id as string;
    await page.getByRole('button', { name: 'Refresh list' }).click();
    await page.getByRole('button', { name: 'Revoke cli-phone' }).click();
    const explain = page.getByTestId('revoke-explanation');
    await explain.waitFor({ timeout: WAIT_MS });
    expect(await explain.textContent()).toMatch(/It will no longer sync, and cannot read anything written from now on/);
    expect(await axeViolations(page, AXE_RULES)).toEqual([]);
    await explain.scrollIntoViewIfNeeded();
    await page.screenshot({ path: screenshotPath('keys-remove-explain'), fullPage: true });
    await page.getByRole('button', { name: 'Confirm: revoke cli-phone' }).click();
    await page.locator(`li[data-device-id="${cliId}"] .badge.muted`, { hasText: /^revoked/ }).waitFor({ timeout: WAIT_MS });
    const sync = await cli(cliHome, ['sync']);
    expect(sync.code).not.toBe(0);
    expect(sync.stdout + sync.stderr).toMatch(/revoked|removed/);
    expect(await listedNames()).toEqual(['desk', 'laptop']);
  });

  it.skipIf(!HAS_CHROMIUM)(`every device lost: the recovery key typed in a new window brings the motebit back; a typo is refused in words${NO_CHROMIUM}`, async () => {
    const page3 = await context.newPage();
    try {
      await page3.goto(fresh.url);
      await page3.getByText('Lost every device? Recover with your recovery key').click();
      const form = page3.locator('form[data-form="recover"]');
      await form.getByLabel('Relay of the motebit to recover').fill(relay.url);
      await form.getByLabel('Motebit id').fill(laptop.controller.current.identity.motebitId);
      const last = recoveryText.at(-1) === 'X' ? 'Y' : 'X';
      await form.getByLabel('Recovery key').fill(`${recoveryText.slice(0, -1)}${last}`);
      await form.getByLabel('Name of this device').fill('fresh');
      await page3.getByRole('button', { name: 'Recover motebit' }).click();
      const error = form.locator('[data-error-for="recoveryKey"]');
      await error.filter({ hasText: /recovery key/i }).waitFor({ timeout: WAIT_MS });
      expect(existsSync(configPath(join(lab.dir, 'fresh')))).toBe(false);
      expect(await axeViolations(page3, AXE_RULES)).toEqual([]);
      await wideAndNarrowShots(page3, 'keys-recover-typo');

      await form.getByLabel('Recovery key').fill(recoveryText);
      await page3.getByRole('button', { name: 'Recover motebit' }).click();
      await page3.locator('[data-testid="last-sync"]', { hasText: /^Synced/ }).waitFor({ timeout: WAIT_MS });
      await page3.locator('[data-testid="entities"]', { hasText: /^1$/ }).waitFor({ timeout: WAIT_MS }); // what the laptop wrote
      expect(fresh.controller.current.get('note/from-laptop')?.value).toBe('written before the desk joined');
      expect(await listedNames()).toEqual(['desk', 'fresh', 'laptop']);
    } finally {
      await page3.close();
    }
  });
});
