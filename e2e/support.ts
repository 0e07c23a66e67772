// Shared pieces of the browser tests: the CLI as a child process, Debian's Chromium, screenshots.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, LaunchOptions } from 'playwright-core';
import { KEYRING } from '../test/support/devices.ts';

export const CHROMIUM = '/usr/bin/chromium';
export const HAS_CHROMIUM = existsSync(CHROMIUM);
export const SCREENSHOTS = fileURLToPath(new URL('../test-output/e2e/', import.meta.url));
export const WAIT_MS = 20_000;

const CLI = fileURLToPath(new URL('../cli/main.ts', import.meta.url));
const HARNESS = fileURLToPath(new URL('../scripts/ui-harness.ts', import.meta.url));
export const HARNESS_SCRIPT = HARNESS;

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The real motebit-sync CLI in a child process (as test/cli.test.ts drives it). */
export function cli(home: string, args: string[]): Promise<Run> {
  const child = spawn(process.execPath, [CLI, '--home', home, ...args], { env: { ...process.env, MOTEBIT_KEYRING: KEYRING }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => (stdout += chunk));
  child.stderr.on('data', (chunk) => (stderr += chunk));
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, stdout, stderr })));
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
