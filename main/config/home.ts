// Where a device keeps its files: <home>/.motebit/. Home is --home DIR, else MOTEBIT_HOME, else the OS
// home. Several homes on one machine are several devices (each with its own keyring entries).
import { homedir } from 'node:os';
import { chmod, mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';

export const MOTEBIT_DIR = '.motebit';

export interface HomeOptions {
  /** The --home flag, when given. */
  readonly home?: string | undefined;
  readonly env?: NodeJS.ProcessEnv;
}

/** An absolute home folder: --home, else MOTEBIT_HOME, else the OS home. Empty values count as unset. */
export function resolveHome({ home, env = process.env }: HomeOptions = {}): string {
  if (home !== undefined && home !== '') return resolve(home);
  const fromEnv = env.MOTEBIT_HOME;
  if (fromEnv !== undefined && fromEnv !== '') return resolve(fromEnv);
  return homedir();
}

export function motebitDir(home: string): string {
  return join(home, MOTEBIT_DIR);
}

/**
 * Makes the home's .motebit folder if needed and makes it private (0700), also when it already existed
 * with wider permissions (an older version, a copy, a umask): it holds the config, the database and,
 * opted in, the secrets file.
 */
export async function ensurePrivateDir(home: string): Promise<void> {
  const dir = motebitDir(home);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
}

export function configPath(home: string): string {
  return join(motebitDir(home), 'config.json');
}
