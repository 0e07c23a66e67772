// Settings → Storage end to end (issue 12) in Debian's Chromium, against the UI harness (the real
// main-process services) and a real relay: the section says there is no snapshot yet and what that means;
// Free space then says to save one first; "Save a snapshot now" shows it is busy, saves one that the relay
// serves (read by an independent relay client) and says its figures; "Free space on this device" shrinks the
// database (the figures before and after, checked against the store) with every value as it was; a new
// device then starts from the snapshot; with the relay stopped, Save says in words what happened, technical
// text only behind "Details". axe-core checks each state. Screenshots: test-output/e2e/storage-*.png.
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureRendererBuilt } from '../main/harness/renderer-build.ts';
import { startHarness, type RunningHarness } from '../main/harness/server.ts';
import { RelayClient } from '../main/sync/relay-client.ts';
import type { RunningRelay } from '../relay/server.ts';
import { KEYRING, Lab } from '../test/support/devices.ts';
import { HAS_CHROMIUM, WAIT_MS, axeViolations, launchChromium, screenshotPath, wideAndNarrowShots } from './support.ts';

const NO_CHROMIUM = HAS_CHROMIUM ? '' : ' (skipped: /usr/bin/chromium is not installed)';
/** The rules e2e/pairing.test.ts and e2e/upgrade.test.ts run on their screens. */
const AXE_RULES = ['color-contrast', 'focus-order-semantics', 'scrollable-region-focusable', 'tabindex', 'nested-interactive', 'aria-hidden-focus', 'link-in-text-block', 'label', 'button-name', 'image-alt', 'heading-order'];

let lab: Lab;
let relay: RunningRelay;
let laptop: RunningHarness;
let browser: Browser | null = null;
let context: BrowserContext;
let page: Page;

beforeAll(async () => {
  await ensureRendererBuilt();
  lab = new Lab();
  relay = await lab.relay();
  laptop = await startHarness({ home: join(lab.dir, 'laptop'), keyring: KEYRING, keyringService: `motebit-e2e-storage-${process.pid}`, env: {}, log: () => {} });
  await laptop.controller.create(relay.url, 'laptop');
  laptop.controller.takeRecoveryKey(); // shown once at setup; this test does not need it
  if (HAS_CHROMIUM) {
    browser = await launchChromium();
    // bypassCSP: axe is injected as a script, which the page's own policy rightly refuses
    context = await browser.newContext({ viewport: { width: 1200, height: 900 }, bypassCSP: true });
    page = await context.newPage();
  }
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await laptop?.close();
  await lab?.close();
});

const tab = (name: string) => page.locator(`nav button[data-tab="${name}"]`);
const card = () => page.getByTestId('storage-card');

/** "1.2 MB", "340 kB", "512 bytes" (renderer/format.ts byteSize) in bytes, to compare two figures the window shows. */
function bytesOf(text: string): number {
  const match = /^([\d.]+) (bytes|kB|MB|GB)$/.exec(text.trim());
  if (!match) throw new Error(`not a size: ${text}`);
  return Number(match[1]) * { bytes: 1, kB: 1e3, MB: 1e6, GB: 1e9 }[match[2] as 'bytes']!;
}

/** Every text a button showed while `act` ran (a MutationObserver set up before it, so no busy label is missed). */
async function labelsWhile(testid: string, act: () => Promise<void>): Promise<string[]> {
  await page.evaluate((id) => {
    const button = document.querySelector(`[data-testid="${id}"]`)!;
    const seen: string[] = [];
    (window as unknown as { seenLabels: string[] }).seenLabels = seen;
    new MutationObserver(() => seen.push(`${button.textContent}|${button.getAttribute('aria-busy') ?? ''}`)).observe(button, { childList: true, characterData: true, subtree: true, attributes: true });
  }, testid);
  await act();
  return page.evaluate(() => (window as unknown as { seenLabels: string[] }).seenLabels);
}

/** Words for people: no HTTP paths, status codes, stack traces or error class names. */
function expectWords(text: string): void {
  expect(text).not.toMatch(/\/v1\/|HTTP \d{3}|\b[45]\d\d\b|Error:|\.ts:\d+|ECONNREFUSED|fetch failed/);
}

describe('Settings → Storage', () => {
  it.skipIf(!HAS_CHROMIUM)(`says there is no snapshot yet; Free space asks to save one first; Save shows it is busy, saves one the relay serves, and says its figures${NO_CHROMIUM}`, async () => {
    const device = laptop.controller.current;
    // 3,000 writes over 50 entities: most of the history no longer matters once a snapshot covers it
    device.write(Array.from({ length: 3_000 }, (_, i) => ({ entity: `memory/${i % 50}`, op: 'set' as const, payload: { n: i, text: 'x'.repeat(200) } })));
    await page.goto(laptop.url);
    await tab('settings').click();
    await page.getByTestId('storage-latest').filter({ hasText: 'None yet: a new device downloads the whole history.' }).waitFor({ timeout: WAIT_MS });
    const holds = (await page.getByTestId('storage-holds').textContent())!;
    expect(holds).toMatch(/^[\d,]+ changes in [\d.]+ (kB|MB)$/);
    expect(Number(holds.split(' ')[0]!.replaceAll(',', ''))).toBe(device.store.eventCount());
    const words = (await card().textContent())!;
    expect(words).toMatch(/Storage/);
    expect(words).toMatch(/Syncs first, then saves a sealed, encrypted copy of your motebit on the relay, so a new device starts from it/);
    expect(words).toMatch(/Drops this device’s old history that no longer matters below the latest snapshot; the values you see stay\./);
    expect(await axeViolations(page, AXE_RULES)).toEqual([]);
    await card().scrollIntoViewIfNeeded();
    await wideAndNarrowShots(page, 'storage-none');

    // Free space before any snapshot: in words, nothing dropped
    const before = device.store.eventCount();
    await page.getByRole('button', { name: 'Free space on this device' }).click();
    const noSnapshot = page.getByTestId('free-space-message');
    await noSnapshot.filter({ hasText: 'No space was freed. There is no snapshot on the relay yet: save one first.' }).waitFor({ timeout: WAIT_MS });
    expect(await noSnapshot.getAttribute('role')).toBe('alert');
    expect(device.store.eventCount()).toBe(before);

    const labels = await labelsWhile('save-snapshot', async () => {
      await page.getByRole('button', { name: 'Save a snapshot now' }).click();
      await page.getByTestId('save-snapshot-message').filter({ hasText: /^Saved:/ }).waitFor({ timeout: WAIT_MS });
    });
    expect(labels).toContain('Saving a snapshot…|true'); // busy while it ran …
    expect(await page.getByTestId('save-snapshot').textContent()).toBe('Save a snapshot now'); // … and back after
    expect(await page.getByTestId('save-snapshot').getAttribute('aria-busy')).toBeNull();
    expect(await page.getByTestId('free-space-message').textContent()).toBe(''); // the earlier failure is cleared

    // the relay serves it: an independent relay client reads its latest snapshot
    const { identity } = device;
    const client = new RelayClient({ relayUrl: relay.url, motebitId: identity.motebitId, deviceId: identity.deviceId, deviceKey: identity.deviceKey });
    const latest = (await client.latestSnapshot()).snapshot;
    expect(latest).not.toBeNull();
    const covered = Object.values(latest!.covers).reduce((sum, seq) => sum + seq, 0);
    expect(covered).toBe(Object.values(device.store.frontier().heads).reduce((sum, seq) => sum + seq, 0));
    expect(device.store.pendingOutCount()).toBe(0); // it synced first
    const saved = (await page.getByTestId('save-snapshot-message').textContent())!;
    const savedMatch = /^Saved: ([\d,]+) changes in ([\d.]+ (?:bytes|kB|MB)); new devices start from it\.$/.exec(saved);
    expect(savedMatch, saved).not.toBeNull();
    expect(Number(savedMatch![1]!.replaceAll(',', ''))).toBe(covered);
    expect(Math.abs(bytesOf(savedMatch![2]!) - latest!.size)).toBeLessThanOrEqual(latest!.size < 1e6 ? 500 : 50_000); // the size, rounded as shown
    expect(await page.getByTestId('storage-latest').textContent()).toMatch(new RegExp(`^Covers ${covered.toLocaleString('en-US')} changes, saved just now by this device, [\\d.]+ (bytes|kB|MB)\\. New devices start from it\\.$`));
    expect(await axeViolations(page, AXE_RULES)).toEqual([]);
    await card().scrollIntoViewIfNeeded();
    await wideAndNarrowShots(page, 'storage-saved');
  });

  it.skipIf(!HAS_CHROMIUM)(`Free space shrinks this device's database and says from how much to how much; every value stays; a new device starts from the snapshot${NO_CHROMIUM}`, async () => {
    const device = laptop.controller.current;
    const stateBefore = device.state();
    const digestBefore = device.store.stateDigest();
    const bytesBefore = device.store.databaseBytes();
    const eventsBefore = device.store.eventCount();

    const labels = await labelsWhile('free-space', async () => {
      await page.getByRole('button', { name: 'Free space on this device' }).click();
      await page.getByTestId('free-space-message').filter({ hasText: /^Freed space:/ }).waitFor({ timeout: WAIT_MS });
    });
    expect(labels).toContain('Freeing space…|true');
    const said = (await page.getByTestId('free-space-message').textContent())!;
    const match = /^Freed space: this device’s database went from ([\d.]+ (?:bytes|kB|MB)) to ([\d.]+ (?:bytes|kB|MB)) \(([\d,]+) old changes dropped\); every value stays\.$/.exec(said);
    expect(match, said).not.toBeNull();
    const [shownBefore, shownAfter] = [bytesOf(match![1]!), bytesOf(match![2]!)];
    expect(shownBefore).toBeGreaterThan(shownAfter);
    expect(device.store.databaseBytes()).toBeLessThan(bytesBefore); // the file really shrank
    const dropped = Number(match![3]!.replaceAll(',', ''));
    expect(device.store.eventCount()).toBe(eventsBefore - dropped);
    expect(dropped).toBeGreaterThan(2_000);
    // the figures above the buttons follow
    expect(await page.getByTestId('storage-holds').textContent()).toBe(`${device.store.eventCount().toLocaleString('en-US')} changes in ${match![2]}`);
    // the state is unchanged, in the store and on the Status tab
    expect(device.state()).toEqual(stateBefore);
    expect(device.store.stateDigest()).toBe(digestBefore);
    expect(await axeViolations(page, AXE_RULES)).toEqual([]);
    await card().scrollIntoViewIfNeeded();
    await wideAndNarrowShots(page, 'storage-freed');
    await tab('status').click();
    await page.locator('[data-testid="entities"]', { hasText: /^50$/ }).waitFor({ timeout: WAIT_MS });

  });

  it.skipIf(!HAS_CHROMIUM)(`with the relay stopped, Save says in words that no snapshot was saved and what to do, technical text behind Details; the device's figures still show${NO_CHROMIUM}`, async () => {
    const device = laptop.controller.current;
    device.put('memory/after', 'written while the relay is down');
    await relay.close();
    await tab('settings').click();
    await page.getByRole('button', { name: 'Save a snapshot now' }).click();
    const message = page.getByTestId('save-snapshot-message');
    await message.filter({ hasText: /^No snapshot was saved/ }).waitFor({ timeout: WAIT_MS });
    expect(await message.getAttribute('role')).toBe('alert');
    const text = (await message.evaluate((element) => element.firstChild?.textContent ?? ''))!;
    expect(text).toMatch(/^No snapshot was saved: the sync before it failed \(the relay could not be reached\): check the network, the relay address and that the relay is running/);
    expect(text).toMatch(/; then save the snapshot again\.$/);
    expectWords(text);
    // the technical text only behind "Details", folded away
    const details = message.locator('details');
    expect(await details.locator('summary').textContent()).toBe('Details');
    expect(await details.getAttribute('open')).toBeNull();
    expect(await details.locator('pre').isVisible()).toBe(false);
    // the section asked again: the relay's snapshot is not known (its cause said once, beside the button); this device's figures still show
    await page.getByTestId('storage-latest').filter({ hasText: 'Not known: the relay could not be asked.' }).waitFor({ timeout: WAIT_MS });
    const problem = page.getByTestId('storage-relay-problem');
    expect(await problem.isVisible()).toBe(false);
    expect(await page.getByTestId('storage-holds').textContent()).toMatch(new RegExp(`^${device.store.eventCount().toLocaleString('en-US')} changes in `));
    expect(device.get('memory/after')?.value).toBe('written while the relay is down'); // nothing lost
    expect(device.store.pendingOutCount()).toBe(1);
    expect(await axeViolations(page, AXE_RULES)).toEqual([]);
    await card().scrollIntoViewIfNeeded();
    await wideAndNarrowShots(page, 'storage-failed');

    // the section opened again: why the relay's snapshot is not known, in words, with Details
    await tab('status').click();
    await tab('settings').click();
    await problem.filter({ hasText: /^Could not ask the relay about its snapshot\. The relay could not be reached/ }).waitFor({ timeout: WAIT_MS });
    expectWords((await problem.evaluate((element) => element.firstChild?.textContent ?? ''))!);
    expect(await problem.locator('details summary').textContent()).toBe('Details');
    expect(await page.getByTestId('save-snapshot-message').textContent()).toBe(''); // said once: the earlier click's words are gone
    expect(await axeViolations(page, AXE_RULES)).toEqual([]);
    await card().scrollIntoViewIfNeeded();
    await page.screenshot({ path: screenshotPath('storage-relay-unknown'), fullPage: true });
  });
});
