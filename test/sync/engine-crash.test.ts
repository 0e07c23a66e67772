// A device process killed with SIGKILL in the middle of a sync cycle, then restarted: every local event
// reaches the other device exactly once. The device is the real CLI in a child process.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { Device } from '../../main/app/device.ts';
import { KEYRING, Lab } from '../support/devices.ts';

const CLI = fileURLToPath(new URL('../../cli/main.ts', import.meta.url));
const EVENTS = 30_000;

let lab: Lab;
beforeEach(() => void (lab = new Lab()));
afterEach(() => lab.close());

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI; `killWhen` sees stderr as it comes and may ask for a SIGKILL. */
function cli(args: string[], options: { stdin?: string; killWhen?: (stderr: string) => boolean } = {}): Promise<Run> {
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, MOTEBIT_KEYRING: KEYRING }, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => (stdout += chunk));
  child.stderr.on('data', (chunk) => {
    stderr += chunk;
    if (options.killWhen?.(stderr) && !child.killed) child.kill('SIGKILL');
  });
  child.stdin.end(options.stdin ?? '');
  return new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal, stdout, stderr })));
}

it('every local event reaches the other device exactly once across a SIGKILL mid-cycle', async () => {
  const relay = await lab.relay();
  const home = join(lab.dir, 'a');
  expect((await cli(['--home', home, 'init', '--relay', relay.url, '--name', 'a', '--keys', 'master-token'])).code).toBe(0);
  const lines = Array.from({ length: EVENTS }, (_, i) => JSON.stringify({ entity: `bulk/${i}`, value: { i } })).join('\n');
  expect((await cli(['--home', home, 'import', '-'], { stdin: lines })).code).toBe(0);

  // Killed as soon as it reports pushing progress: in the middle of the cycle.
  const killed = await cli(['--home', home, 'sync'], { killWhen: (stderr) => /pushing [1-9]\d* of/.test(stderr) });
  expect(killed.signal).toBe('SIGKILL');
  const relayDb = new Database(join(lab.dir, 'relay.db'), { readonly: true });
  const storedBeforeRestart = relayDb.prepare('SELECT count(*) FROM events').pluck().get() as number;
  expect(storedBeforeRestart).toBeGreaterThan(0); // the cycle had started pushing…
  expect(storedBeforeRestart).toBeLessThan(EVENTS); // …and had not finished

  const restarted = await cli(['--home', home, 'sync', '--json']);
  expect(restarted.code).toBe(0);
  expect(JSON.parse(restarted.stdout)).toMatchObject({ state: 'idle', pending_out: 0, last_error: null });
  expect(relayDb.prepare('SELECT count(*) AS n, count(DISTINCT event_id) AS ids FROM events').get()).toEqual({ n: EVENTS, ids: EVENTS });
  relayDb.close();

  const pair = await cli(['--home', home, 'pair', '--json']);
  const b = lab.track(await Device.join({ ...lab.home('b'), pairingCode: JSON.parse(pair.stdout).pairing_code, deviceName: 'b' }));
  expect((await b.syncNow()).ok).toBe(true);
  expect(b.store.eventCount()).toBe(EVENTS);
  expect(b.state()).toHaveLength(EVENTS);
  expect(b.status().rejectedEvents).toBe(0);
});
