// Accessibility of the settings window, in Debian's Chromium against the UI harness: axe-core finds no
// colour-contrast or focus violations on any screen, light or dark; the keyboard focus ring is at least
// 3:1 against what is behind it and the dark-mode count badge at least 4.5:1 (measured in the page); and
// at 200 % zoom and in a 400 px wide window every action of the Conflicts and Settings tabs is reached
// with Tab and works with Enter or Space, with nothing wider than the window.
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Device } from '../main/app/device.ts';
import { ensureRendererBuilt } from '../main/harness/renderer-build.ts';
import { startHarness, type RunningHarness } from '../main/harness/server.ts';
import { KEYRING, Lab, eventually } from '../test/support/devices.ts';
import { cliJoin } from '../test/support/pair.ts';
import { HAS_CHROMIUM, WAIT_MS, axeViolations, cli, launchChromium, screenshotPath } from './support.ts';

const NO_CHROMIUM = HAS_CHROMIUM ? '' : ' (skipped: /usr/bin/chromium is not installed)';
/** axe rules about contrast and keyboard focus (every one of them must pass). */
const AXE_RULES = ['color-contrast', 'focus-order-semantics', 'scrollable-region-focusable', 'tabindex', 'nested-interactive', 'frame-focusable-content', 'aria-hidden-focus', 'link-in-text-block'];

let lab: Lab;
let harness: RunningHarness;
let relayUrl: string;
let cliHome: string;
let browser: Browser | null = null;

beforeAll(async () => {
  await ensureRendererBuilt();
  lab = new Lab();
  relayUrl = (await lab.relay()).url;
  harness = await startHarness({ home: join(lab.dir, 'harness'), keyring: KEYRING, keyringService: `motebit-e2e-a11y-${process.pid}`, env: {}, log: () => {} });
  cliHome = join(lab.dir, 'cli');
  if (HAS_CHROMIUM) browser = await launchChromium();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await harness?.close();
  await lab?.close();
});

type Scheme = 'light' | 'dark';

/** A page that may inject axe (bypassCSP: the page's own policy refuses inline scripts, rightly). */
async function openPage(options: { width: number; height: number; scale?: number; scheme?: Scheme }): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser!.newContext({ viewport: { width: options.width, height: options.height }, deviceScaleFactor: options.scale ?? 1, bypassCSP: true, colorScheme: options.scheme ?? 'light' });
  const page = await context.newPage();
  await page.goto(harness.url);
  return { context, page };
}


/**
 * Tabs through the page from the top: for each element focused, whether the ring is drawn and its contrast
 * against the background behind it (the nearest ancestor's opaque background).
 */
async function tabThrough(page: Page, limit = 150): Promise<{ key: string; label: string; ring: number; width: number }[]> {
  await page.evaluate(() => {
    (document.activeElement as HTMLElement | null)?.blur();
    window.scrollTo(0, 0);
  });
  const seen: { key: string; label: string; ring: number; width: number }[] = [];
  for (let i = 0; i < limit; i++) {
    await page.keyboard.press('Tab');
    const info = await page.evaluate(() => {
      const el = document.activeElement as HTMLElement | null;
      if (!el || el === document.body) return null;
      const parse = (color: string): [number, number, number, number] => {
        const m = /rgba?\(([\d.]+),?\s*([\d.]+),?\s*([\d.]+)(?:,?\s*\/?\s*([\d.]+))?\)/.exec(color);
        return m ? [Number(m[1]), Number(m[2]), Number(m[3]), m[4] === undefined ? 1 : Number(m[4])] : [0, 0, 0, 0];
      };
      const lum = ([r, g, b]: number[]) => {
        const f = (c: number) => ((c /= 255) <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4);
        return 0.2126 * f(r!) + 0.7152 * f(g!) + 0.0722 * f(b!);
      };
      let behind: HTMLElement | null = el.parentElement;
      let bg = [255, 255, 255, 0];
      while (behind) {
        bg = parse(getComputedStyle(behind).backgroundColor);
        if (bg[3]! > 0.9) break;
        behind = behind.parentElement;
      }
      if (!behind) bg = parse(getComputedStyle(document.documentElement).backgroundColor);
      const style = getComputedStyle(el);
      const ring = parse(style.outlineColor);
      const [hi, lo] = [lum(ring), lum(bg)].sort((a, b) => b - a);
      const drawn = style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0;
      const key = el.dataset.focusKey ?? (el.dataset.focusKey = String(Math.random()));
      return { key, label: `${el.tagName.toLowerCase()} ${(el.getAttribute('aria-label') ?? el.textContent ?? (el as HTMLInputElement).name ?? '').trim().slice(0, 40)}`, ring: drawn ? (hi! + 0.05) / (lo! + 0.05) : 0, width: drawn ? parseFloat(style.outlineWidth) : 0 };
    });
    if (!info) continue;
    if (seen.some((s) => s.key === info.key)) break; // wrapped around
    seen.push(info);
  }
  return seen;
}

const noOverflow = (page: Page) => page.evaluate(() => document.scrollingElement!.scrollWidth <= document.scrollingElement!.clientWidth);

/** Interactive elements of a panel that are shown: each must be reached by Tab. */
const actionsIn = (page: Page, panel: string) =>
  page.evaluate((panel) => {
    const root = document.querySelector(panel)!;
    return [...root.querySelectorAll<HTMLElement>('button, input, select, textarea, a[href], summary')]
      .filter((el) => el.getClientRects().length > 0 && !el.closest('dialog:not([open])'))
      .map((el) => el.dataset.focusKey ?? (el.dataset.focusKey = String(Math.random())));
  }, panel);

/** Every shown interactive element lies inside the window's width (nothing cut off on the right). */
const clipped = (page: Page) =>
  page.evaluate(() => {
    const width = document.documentElement.clientWidth;
    return [...document.querySelectorAll<HTMLElement>('button, input, select, textarea, a[href], h1, h2, h3, p')]
      .filter((el) => el.getClientRects().length > 0 && !el.closest('dialog:not([open])'))
      .filter((el) => {
        const box = el.getBoundingClientRect();
        return box.right > width + 1 || box.left < -1;
      })
      .map((el) => `${el.tagName} ${el.textContent?.slice(0, 30)}`);
  });

describe('accessibility', () => {
  it.skipIf(!HAS_CHROMIUM)(`the setup screen: no contrast or focus violations, light and dark; a visible 3:1 focus ring${NO_CHROMIUM}`, async () => {
    for (const scheme of ['light', 'dark'] as const) {
      const { context, page } = await openPage({ width: 1200, height: 900, scheme });
      try {
        await page.getByLabel('Relay URL').first().waitFor({ timeout: WAIT_MS });
        expect(await axeViolations(page, AXE_RULES)).toEqual([]);
        const focused = await tabThrough(page);
        expect(focused.length).toBeGreaterThan(2);
        for (const f of focused) expect(f.ring, `${scheme}: ${f.label}`).toBeGreaterThanOrEqual(3);
      } finally {
        await context.close();
      }
    }
    // set up for the other screens: this device, a CLI device, three conflicts (one of them a delete)
    await harness.controller.create(relayUrl, 'harness-laptop');
    harness.controller.takeRecoveryKey(); // shown once, and not by this test (e2e/pairing.test.ts checks that screen)
    const device: Device = harness.controller.current;
    await cliJoin(cliHome, device, 'cli-desktop');
    await eventually(async () => (await device.syncNow()).ok, 'the harness device synced');
    device.write([
      { entity: 'memory/colour', op: 'set', payload: 'teal' },
      { entity: 'memory/plan', op: 'set', payload: { steps: ['a', 'b'] } },
      { entity: 'memory/old', op: 'delete', payload: null },
      { entity: 'memory/spare', op: 'set', payload: 'harness' },
      { entity: 'notes/monday', op: 'set', payload: 'harness' },
      { entity: 'notes/tuesday', op: 'set', payload: 'harness' },
    ]);
    for (const [entity, value] of [['memory/colour', '"amber"'], ['memory/plan', '{"steps":["c"]}'], ['memory/old', '"kept on the CLI"'], ['memory/spare', '"cli"'], ['notes/monday', '"cli"'], ['notes/tuesday', '"cli"']] as const) {
      expect((await cli(cliHome, ['put', entity, value])).code).toBe(0);
    }
    expect((await device.syncNow()).ok).toBe(true);
    expect((await cli(cliHome, ['sync'])).code).toBe(0);
    await eventually(async () => (await device.syncNow()).ok && device.store.conflictCounts().open === 6, 'the harness device has six conflicts');
  });

  it.skipIf(!HAS_CHROMIUM)(`Status, Conflicts, Settings and the delete confirmation: no violations light or dark, a 3:1 focus ring, the dark badge at 4.5:1${NO_CHROMIUM}`, async () => {
    for (const scheme of ['light', 'dark'] as const) {
      const { context, page } = await openPage({ width: 1200, height: 900, scheme });
      try {
        await page.locator('nav button[data-tab="status"]').waitFor({ timeout: WAIT_MS });
        for (const tab of ['status', 'conflicts', 'settings'] as const) {
          await page.locator(`nav button[data-tab="${tab}"]`).click();
          await page.locator(`#panel-${tab}`).waitFor({ timeout: WAIT_MS });
          if (tab === 'conflicts') await page.locator('#panel-conflicts article.conflict').first().waitFor({ timeout: WAIT_MS });
          if (tab === 'settings') await page.locator('#panel-settings input').first().waitFor({ timeout: WAIT_MS });
          expect(await axeViolations(page, AXE_RULES), `${scheme} ${tab}`).toEqual([]);
          const focused = await tabThrough(page);
          expect(focused.length, `${scheme} ${tab}`).toBeGreaterThan(3);
          for (const f of focused) {
            expect(f.width, `${scheme} ${tab}: ${f.label}`).toBeGreaterThanOrEqual(2);
            expect(f.ring, `${scheme} ${tab}: ${f.label}`).toBeGreaterThanOrEqual(3);
          }
          if (tab === 'conflicts' && scheme === 'dark') await page.screenshot({ path: screenshotPath('c-dark'), fullPage: true });
        }
        // the count badge on the Conflicts tab
        const badge = await page.getByTestId('conflict-count').evaluate((el) => {
          const parse = (c: string) => (/rgba?\(([\d.]+),?\s*([\d.]+),?\s*([\d.]+)/.exec(c) ?? []).slice(1).map(Number);
          const lum = (rgb: number[]) => {
            const f = (c: number) => ((c /= 255) <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4);
            return 0.2126 * f(rgb[0]!) + 0.7152 * f(rgb[1]!) + 0.0722 * f(rgb[2]!);
          };
          const style = getComputedStyle(el);
          const [hi, lo] = [lum(parse(style.color)), lum(parse(style.backgroundColor))].sort((a, b) => b - a);
          return { text: el.textContent, ratio: (hi! + 0.05) / (lo! + 0.05) };
        });
        expect(badge.text).toBe('6');
        expect(badge.ratio, `${scheme} count badge`).toBeGreaterThanOrEqual(4.5);

        // the confirmation before keeping a delete
        await page.locator('nav button[data-tab="conflicts"]').click();
        const card = page.locator('article.conflict[data-entity="memory/old"]');
        const deleteIsCurrent = (await card.locator('[data-side="current"] [data-testid="value"]').textContent()) === '(deleted)';
        await card.getByRole('button', { name: deleteIsCurrent ? 'Keep current value' : 'Keep the other value' }).click();
        await page.getByRole('dialog').waitFor({ timeout: WAIT_MS });
        expect(await axeViolations(page, AXE_RULES), `${scheme} dialog`).toEqual([]);
        await page.keyboard.press('Escape');
        await page.getByRole('dialog').waitFor({ state: 'hidden', timeout: WAIT_MS });
      } finally {
        await context.close();
      }
    }
  });

  for (const size of [
    { name: '200 % zoom', shot: 'c-zoom-200', width: 600, height: 450, scale: 2 },
    { name: 'a 400 px window', shot: 'c-400px', width: 400, height: 800, scale: 1 },
  ]) {
    it.skipIf(!HAS_CHROMIUM)(`at ${size.name}: every action of Conflicts and Settings is reached with Tab and works by keyboard; nothing is wider than the window${NO_CHROMIUM}`, async () => {
      const { context, page } = await openPage(size);
      const device = harness.controller.current;
      try {
        await page.locator('nav button[data-tab="status"]').waitFor({ timeout: WAIT_MS });
        expect(await noOverflow(page)).toBe(true);
        // to the Conflicts tab by keyboard
        await page.locator('nav button[data-tab="conflicts"]').focus();
        await page.keyboard.press('Enter');
        await page.locator('#panel-conflicts article.conflict').first().waitFor({ timeout: WAIT_MS });
        expect(await noOverflow(page)).toBe(true);
        expect(await clipped(page)).toEqual([]);
        await page.screenshot({ path: screenshotPath(size.shot), fullPage: true });
        const actions = await actionsIn(page, '#panel-conflicts');
        const reached = new Set((await tabThrough(page, 400)).map((f) => f.key));
        expect(actions.filter((key) => !reached.has(key))).toEqual([]);

        // Space selects, Enter acts: keep the current value of the one selected conflict
        const open = device.store.conflicts({ filter: 'open' });
        const target = open.find((c) => c.entity !== 'memory/old')!;
        const card = page.locator(`article.conflict[data-entity="${target.entity}"]`);
        await card.getByTestId('select').focus();
        await page.keyboard.press('Space');
        await page.getByTestId('selected-count').filter({ hasText: '1 selected' }).waitFor({ timeout: WAIT_MS });
        await page.getByTestId('bulk-keep-current').focus();
        await page.keyboard.press('Enter');
        await card.waitFor({ state: 'detached', timeout: WAIT_MS });
        expect(device.store.conflict(target.id)?.resolvedBy).toEqual(expect.any(String));

        // Mark reviewed by keyboard (Space on a button)
        const next = device.store.conflicts({ filter: 'open' }).find((c) => c.entity !== 'memory/old')!;
        await page.locator(`article.conflict[data-entity="${next.entity}"]`).getByRole('button', { name: 'Mark reviewed' }).focus();
        await page.keyboard.press('Space');
        await page.locator(`article.conflict[data-entity="${next.entity}"]`).waitFor({ state: 'detached', timeout: WAIT_MS });
        expect(device.store.conflict(next.id)?.reviewedAt).toEqual(expect.any(Number));

        // the filters by keyboard: the Reviewed list, then back
        await page.getByTestId('conflict-filter').focus();
        await page.keyboard.press('ArrowDown'); // Open -> Reviewed
        await page.locator(`article.conflict[data-entity="${next.entity}"]`).waitFor({ timeout: WAIT_MS });
        await page.keyboard.press('ArrowUp');
        await page.locator(`article.conflict[data-entity="${next.entity}"]`).waitFor({ state: 'detached', timeout: WAIT_MS });

        // the delete confirmation: reached and answered by keyboard; Escape cancels and writes nothing
        const old = device.store.conflicts({ filter: 'open', entityPrefix: 'memory/old' })[0]!;
        const oldCard = page.locator('article.conflict[data-entity="memory/old"]');
        const deleteIsCurrent = (await oldCard.locator('[data-side="current"] [data-testid="value"]').textContent()) === '(deleted)';
        await oldCard.getByRole('button', { name: deleteIsCurrent ? 'Keep current value' : 'Keep the other value' }).focus();
        await page.keyboard.press('Enter');
        await page.getByRole('dialog').waitFor({ timeout: WAIT_MS });
        expect(await noOverflow(page)).toBe(true);
        expect(await clipped(page)).toEqual([]);
        await page.keyboard.press('Shift+Tab'); // from Cancel to the confirm button: both reachable
        expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Keep the deleted value');
        await page.keyboard.press('Escape');
        await page.getByRole('dialog').waitFor({ state: 'hidden', timeout: WAIT_MS });
        expect(device.store.conflict(old.id)?.resolvedBy).toBeNull();

        // Settings: every action reached with Tab; a checkbox toggled with Space
        await page.locator('nav button[data-tab="settings"]').focus();
        await page.keyboard.press('Enter');
        await page.locator('#panel-settings input').first().waitFor({ timeout: WAIT_MS });
        expect(await noOverflow(page)).toBe(true);
        expect(await clipped(page)).toEqual([]);
        const settingsActions = await actionsIn(page, '#panel-settings');
        expect(settingsActions.length).toBeGreaterThan(3);
        const reachedSettings = new Set((await tabThrough(page, 400)).map((f) => f.key));
        expect(settingsActions.filter((key) => !reachedSettings.has(key))).toEqual([]);
        const before = harness.startAtLogin();
        await page.getByLabel('Start Motebit Sync when I log in').focus();
        await page.keyboard.press('Space');
        await eventually(() => harness.startAtLogin() !== before, 'start at login toggled by keyboard');
        expect(device.store.conflict(old.id)?.resolvedBy).toBeNull(); // many calls later: Escape kept nothing
        await page.screenshot({ path: screenshotPath(`${size.shot}-settings`), fullPage: false });
      } finally {
        await context.close();
      }
    });
  }
});
