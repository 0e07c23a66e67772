// Where the programs under test live. MOTEBIT_FAULTS_ROOT points the campaign at another checkout of the
// product (the same layout); by default it is the checkout this file is in. The programs run on the Node
// that runs the campaign (the project's Node 24).
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(process.env.MOTEBIT_FAULTS_ROOT || fileURLToPath(new URL('../..', import.meta.url)));
export const NODE = process.execPath;
export const RELAY_BIN = join(ROOT, 'relay', 'bin.ts');
export const CLI_BIN = join(ROOT, 'cli', 'main.ts');

/** libfaketime's preload library (Debian package "faketime"), or null. */
export function faketimeLibrary(): string | null {
  for (const path of ['/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1', '/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1', '/usr/lib/faketime/libfaketime.so.1']) {
    if (existsSync(path)) return path;
  }
  return null;
}
