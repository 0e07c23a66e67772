// Shared pieces of the browser tests: the CLI as a child process, Debian's Chromium, screenshots.
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, LaunchOptions } from 'playwright-core';
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
