// The built settings window (dist/renderer) for the harness and the browser tests: built with Vite's JS
// API when it is missing or older than its sources. Vite is a dev dependency, loaded only when a build
// is needed.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const RENDERER_SOURCE = join(REPO_ROOT, 'renderer');
export const RENDERER_DIST = join(REPO_ROOT, 'dist', 'renderer');

function newestMtime(path: string): number {
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  let newest = stat.mtimeMs;
  for (const name of readdirSync(path)) newest = Math.max(newest, newestMtime(join(path, name)));
  return newest;
}

/** True when dist/renderer is missing or a source (renderer/, shared/ types, vite.config.ts) is newer. */
export function rendererIsStale(dist = RENDERER_DIST): boolean {
  const index = join(dist, 'index.html');
  if (!existsSync(index)) return true;
  const built = statSync(index).mtimeMs;
  const sources = [RENDERER_SOURCE, join(REPO_ROOT, 'shared'), join(REPO_ROOT, 'vite.config.ts')];
  return sources.some((source) => existsSync(source) && newestMtime(source) > built);
}

/** Builds the renderer with vite.config.ts (quietly), as `npm run build:renderer` does. */
export async function buildRenderer(): Promise<void> {
  const { build } = await import('vite');
  await build({ configFile: join(REPO_ROOT, 'vite.config.ts'), root: RENDERER_SOURCE, logLevel: 'warn' });
}

export async function ensureRendererBuilt(): Promise<boolean> {
  if (!rendererIsStale()) return false;
  await buildRenderer();
  return true;
}
