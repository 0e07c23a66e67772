// Crash safety: a process appending events is killed with SIGKILL mid-stream, several times; on reopen every
// acknowledged event is there, the log is a valid chain and the state is exactly the fold of the log.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { EventStore } from '../main/store/event-store.ts';
import { GENESIS_HASH } from '../shared/portable/event.ts';
import { hashEvent } from '../shared/event.ts';
import { newDeviceKey, newMotebit, tempDir } from './support/motebit.ts';

const WRITER = fileURLToPath(new URL('./support/crash-writer.ts', import.meta.url));

let dir: ReturnType<typeof tempDir>;
beforeEach(() => void (dir = tempDir('crash')));
afterEach(() => dir.remove());

/** Runs the writer until it has acknowledged at least `count` events, then SIGKILLs it mid-stream. */
async function writeThenKill(args: string[], count: number): Promise<string[]> {
  const child = spawn(process.execPath, [WRITER, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk) => (stderr += chunk));
  const acked: string[] = [];
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
  for await (const line of createInterface({ input: child.stdout })) {
    if (line.startsWith('ack ')) acked.push(line.slice(4));
    if (acked.length >= count && child.exitCode === null && !child.killed) child.kill('SIGKILL');
  }
  const signal = await exited;
  expect(signal, `the writer should have been killed, not exited: ${stderr}`).toBe('SIGKILL');
  return acked;
}

it('loses no acknowledged event when the writing process is killed with SIGKILL', async () => {
  const motebit = newMotebit();
  const { deviceId } = newDeviceKey(motebit);
  const path = `${dir.path}/device.db`;
  const args = [path, motebit.motebitId, deviceId, motebit.identity.publicKey.toString('hex')];

  const acked: string[] = [];
  for (const count of [200, 450, 700]) acked.push(...(await writeThenKill(args, count)));

  const raw = new Database(path);
  expect(raw.pragma('integrity_check', { simple: true })).toBe('ok');
  raw.close();

  const store = EventStore.open(path, { motebitId: motebit.motebitId, deviceId, identityPublicKey: motebit.identity.publicKey });
  try {
    const events = [...store.events()];
    const ids = new Set(events.map((e) => e.event_id));
    const missing = acked.filter((id) => !ids.has(id));
    expect(missing).toEqual([]);
    expect(events.length).toBeGreaterThanOrEqual(acked.length);

    // One unbroken chain: sequences 1..n, each linked to the hash of the one before.
    let prev = GENESIS_HASH;
    events.forEach((event, index) => {
      expect(event.device_seq).toBe(index + 1);
      expect(event.prev).toBe(prev);
      prev = hashEvent(event);
    });
    expect(store.frontier().heads[deviceId]).toBe(events.length);

    // The materialised state is exactly the fold of the log.
    const digest = store.stateDigest();
    store.rebuildState();
    expect(store.stateDigest()).toBe(digest);
    // And the store keeps working where it stopped.
    expect(store.put('after/crash', true).device_seq).toBe(events.length + 1);
  } finally {
    store.close();
  }
});
