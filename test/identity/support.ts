// Helpers for the identity tests: throwaway homes, and whether a real Secret Service is here to test with.
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OsKeyring } from '../../main/keyring/os-keyring.ts';

export function tempHome(prefix = 'home'): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), `motebit-identity-${prefix}-`));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** Every file under a folder with its content, to check that no secret was written to disk. */
export function filesUnder(dir: string): Map<string, string> {
  const files = new Map<string, string>();
  for (const name of readdirSync(dir, { recursive: true, encoding: 'utf8' })) {
    const path = join(dir, name);
    if (statSync(path).isFile()) files.set(path, readFileSync(path, 'utf8'));
  }
  return files;
}

/**
 * Null when a real OS keyring can be written here (a D-Bus session with an unlocked Secret Service, as
 * scripts/with-keyring.sh provides); otherwise the reason the keyring tests are skipped.
 */
async function probeKeyring(): Promise<string | null> {
  if (process.platform === 'linux' && !process.env.DBUS_SESSION_BUS_ADDRESS) return 'no D-Bus session (run under scripts/with-keyring.sh)';
  const store = new OsKeyring();
  const account = `probe:test:${process.pid}`;
  try {
    await store.set(account, 'probe');
    const read = await store.get(account);
    await store.delete(account);
    return read === 'probe' ? null : 'the keyring did not return what was written';
  } catch (error) {
    return `keyring not usable: ${(error as Error).message.slice(0, 120)}`;
  }
}

export const noKeyringReason = await probeKeyring();
/** Appended to the names of tests that need the keyring, so a skip says why. */
export const keyringNote = noKeyringReason === null ? '(real OS keyring)' : `(SKIPPED: ${noKeyringReason})`;
