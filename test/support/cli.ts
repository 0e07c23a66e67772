// The real motebit-sync CLI in a child process, for the tests that drive it as a person would.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { KEYRING } from './devices.ts';

export const CLI = fileURLToPath(new URL('../../cli/main.ts', import.meta.url));

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `motebit-sync ARGS` with `stdin` (none by default). `env` is laid over this process's; by default
 * the test keyring (MOTEBIT_KEYRING=KEYRING), so pass MOTEBIT_KEYRING explicitly (or undefined) to test others.
 */
export function runCli(args: string[], options: { stdin?: string; env?: NodeJS.ProcessEnv } = {}): Promise<CliRun> {
  const env = { ...process.env, MOTEBIT_KEYRING: KEYRING, ...options.env };
  const child = spawn(process.execPath, [CLI, ...args], { env, stdio: [options.stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk) => (stdout += chunk));
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  if (options.stdin !== undefined) child.stdin!.end(options.stdin);
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, stdout, stderr })));
}
