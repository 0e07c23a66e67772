// Where a device keeps its files: <home>/.motebit/. Home is --home DIR, else MOTEBIT_HOME, else the OS
// home. Several homes on one machine are several devices (each with its own keyring entries).
import { homedir } from 'node:os';
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

export function configPath(home: string): string {
  return join(motebitDir(home), 'config.json');
}
