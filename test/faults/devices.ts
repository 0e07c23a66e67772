// A device is a home folder driven only through the real CLI (node cli/main.ts) in child processes, with
// the file keyring. A device with a skewed clock runs its CLI under libfaketime (LD_PRELOAD + FAKETIME,
// what the `faketime` wrapper sets, without the wrapper's extra process so SIGKILL reaches node itself).
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLI_BIN, NODE, faketimeLibrary } from './paths.ts';
import { run, start, type ProcResult, type Running } from './procs.ts';

export type Transport = 'auto' | 'websocket' | 'http';

export class DeviceHome {
  readonly name: string;
  readonly home: string;
  transport: Transport = 'auto';
  deviceId = '';
  /** Seconds this device's clock is off while a clock-skew fault holds it (0: honest). */
  skewSeconds = 0;

  constructor(dir: string, name: string) {
    this.name = name;
    this.home = join(dir, name);
  }

  get dbPath(): string {
    return join(this.home, '.motebit', 'device.db');
  }

  get configPath(): string {
    return join(this.home, '.motebit', 'config.json');
  }

  /** Starts `motebit-sync --home HOME --keyring file ARGS` (with this device's clock skew, if any). */
  start(args: readonly string[], options: { stdin?: string; timeoutMs?: number; onStderrLine?: (line: string) => void; skewSeconds?: number } = {}): Running {
    const env: NodeJS.ProcessEnv = { ...process.env, MOTEBIT_KEYRING: 'file' };
    const skew = options.skewSeconds ?? this.skewSeconds;
    if (skew !== 0) {
      const lib = faketimeLibrary();
      if (!lib) throw new Error('libfaketime is not installed');
      env.LD_PRELOAD = lib;
      env.FAKETIME = `${skew > 0 ? '+' : ''}${skew}`;
      env.FAKETIME_DONT_FAKE_MONOTONIC = '1';
    }
    return start(NODE, [CLI_BIN, '--home', this.home, '--keyring', 'file', ...args], { env, ...options });
  }

  run(args: readonly string[], options: { stdin?: string; timeoutMs?: number } = {}): Promise<ProcResult> {
    return this.start(args, options).done;
  }

  /** Rewrites fields of config.json (only while no CLI runs on this home), atomically. */
  patchConfig(patch: Record<string, unknown>): void {
    const config = JSON.parse(readFileSync(this.configPath, 'utf8')) as Record<string, unknown>;
    const temp = `${this.configPath}.faults-tmp`;
    writeFileSync(temp, `${JSON.stringify({ ...config, ...patch }, null, 2)}\n`);
    renameSync(temp, this.configPath);
  }

  readConfig(): Record<string, unknown> {
    return JSON.parse(readFileSync(this.configPath, 'utf8')) as Record<string, unknown>;
  }
}

/** Parses the one JSON object a --json command prints last on stdout, or null. */
export function jsonOut(result: ProcResult): Record<string, unknown> | null {
  const line = result.stdout.trim().split('\n').at(-1);
  if (!line) return null;
  try {
    const value = JSON.parse(line) as unknown;
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** Does libfaketime move Date.now() of this Node? Returns null when it does, else the reason it cannot. */
export async function faketimeProblem(): Promise<string | null> {
  const lib = faketimeLibrary();
  if (!lib) return 'libfaketime is not installed (apt-get install -y faketime)';
  const result = await run(NODE, ['-e', 'process.stdout.write(String(Date.now()))'], {
    env: { ...process.env, LD_PRELOAD: lib, FAKETIME: '+1000', FAKETIME_DONT_FAKE_MONOTONIC: '1' },
    timeoutMs: 20_000,
  });
  const offset = Number(result.stdout) - Date.now();
  if (result.code !== 0 || !Number.isFinite(offset) || Math.abs(offset - 1_000_000) > 30_000) {
    return `libfaketime does not move Date.now() of ${NODE} (offset seen: ${Number.isFinite(offset) ? Math.round(offset / 1000) : '?'} s)`;
  }
  return null;
}
