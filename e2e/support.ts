// Shared pieces of the browser tests: the CLI as a child process, Debian's Chromium, screenshots.
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import type { Browser, LaunchOptions, Page } from 'playwright-core';
import { expect } from 'vitest';
import { runCli, type CliRun } from '../test/support/cli.ts';

export const CHROMIUM = '/usr/bin/chromium';
export const HAS_CHROMIUM = existsSync(CHROMIUM);
export const SCREENSHOTS = fileURLToPath(new URL('../test-output/e2e/', import.meta.url));
export const WAIT_MS = 20_000;

const HARNESS = fileURLToPath(new URL('../scripts/ui-harness.ts', import.meta.url));
export const HARNESS_SCRIPT = HARNESS;

export type Run = CliRun;

/** The real motebit-sync CLI in a child process (test/support/cli.ts), on the device home `home`. */
export function cli(home: string, args: string[]): Promise<Run> {
  return runCli(['--home', home, ...args]);
}

/** Debian's Chromium, headless; playwright-core never downloads a browser. */
export async function launchChromium(): Promise<Browser> {
  const { chromium } = await import('playwright-core');
  const options: LaunchOptions = {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  };
  return chromium.launch(options);
}

export function screenshotPath(name: string): string {
  mkdirSync(SCREENSHOTS, { recursive: true });
  return join(SCREENSHOTS, `${name}.png`);
}

const AXE = createRequire(import.meta.url).resolve('axe-core/axe.min.js');

interface AxeResult {
  violations: { id: string; nodes: { target: string[]; failureSummary?: string }[] }[];
}

/** axe-core's violations of `rules` on the page, one line each (axe is injected once; the context needs bypassCSP). */
export async function axeViolations(page: Page, rules: readonly string[]): Promise<string[]> {
  if (!(await page.evaluate(() => 'axe' in window))) await page.addScriptTag({ path: AXE });
  const result = (await page.evaluate(
    (ruleList) => (window as unknown as { axe: { run(context: Document, options: object): Promise<unknown> } }).axe.run(document, { runOnly: { type: 'rule', values: ruleList }, resultTypes: ['violations'] }),
    [...rules],
  )) as AxeResult;
  return result.violations.flatMap((v) => v.nodes.map((n) => `${v.id}: ${n.target.join(' ')} ${n.failureSummary ?? ''}`));
}

/** A screenshot at the page's width and one at 400 px wide, where nothing may stick out sideways. */
export async function wideAndNarrowShots(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: screenshotPath(name), fullPage: true });
  const size = page.viewportSize()!;
  await page.setViewportSize({ width: 400, height: 900 });
  try {
    expect(await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth)).toBeLessThanOrEqual(0);
    await page.screenshot({ path: screenshotPath(`${name}-400`), fullPage: true });
  } finally {
    await page.setViewportSize(size);
  }
}
