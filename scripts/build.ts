// npm run build:main: compiles the Electron side into plain JavaScript under dist/ (Electron's Node does
// not run .ts files):
//   dist/main/main.js        the main process, one ESM file; npm dependencies (better-sqlite3, the keyring,
//                            zod, ws, …) and electron stay external and are loaded from node_modules
//   dist/preload/preload.cjs the sandboxed preload, ONE CommonJS file with nothing external but electron
//                            (a sandboxed preload cannot require our modules) and no zod
//   dist/icons/              the tray icons and the window icon (from build/, made by npm run icons)
// The settings window is built separately by npm run build:renderer into dist/renderer.
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'vite';

const root = fileURLToPath(new URL('..', import.meta.url));
const dist = join(root, 'dist');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
const dependencies = Object.keys(pkg.dependencies ?? {});

/** electron, Node built-ins and every runtime dependency (with subpaths) stay imports. */
const isExternal = (id: string): boolean =>
  id === 'electron' ||
  id.startsWith('electron/') ||
  id.startsWith('node:') ||
  builtinModules.includes(id) ||
  dependencies.some((dep) => id === dep || id.startsWith(`${dep}/`));

export async function buildMain(outDir: string = join(dist, 'main')): Promise<void> {
  await build({
    configFile: false,
    root,
    logLevel: 'warn',
    build: {
      ssr: join(root, 'main/electron/main.ts'),
      outDir,
      emptyOutDir: true,
      target: 'node22',
      minify: false,
      sourcemap: false,
      rolldownOptions: {
        external: isExternal,
        output: { format: 'es', entryFileNames: 'main.js' },
      },
    },
  });
}

export async function buildPreload(outDir: string = join(dist, 'preload')): Promise<void> {
  await build({
    configFile: false,
    root,
    logLevel: 'warn',
    build: {
      outDir,
      emptyOutDir: true,
      target: 'chrome140',
      minify: false,
      sourcemap: false,
      lib: { entry: join(root, 'preload/index.ts'), formats: ['cjs'], fileName: () => 'preload.cjs' },
      rolldownOptions: { external: ['electron'] },
    },
  });
  const bundle = readFileSync(join(outDir, 'preload.cjs'), 'utf8');
  // A sandboxed preload may require only electron (and a few built-ins): fail the build, not the window.
  const requires = [...bundle.matchAll(/require\(["']([^"']+)["']\)/g)].map((m) => m[1]);
  const unexpected = requires.filter((id) => id !== 'electron');
  if (unexpected.length > 0) throw new Error(`the preload bundle requires ${unexpected.join(', ')}: a sandboxed preload can only require electron`);
  if (/\bzod\b|ZodError/.test(bundle)) throw new Error('zod ended up in the preload bundle: import only types from shared/portable/ipc-contract.ts there');
}

export function copyIcons(out: string = join(dist, 'icons')): void {
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  const tray = join(root, 'build', 'tray');
  if (!existsSync(tray)) throw new Error('build/tray/ is missing: run npm run icons');
  for (const file of readdirSync(tray)) if (file.endsWith('.png')) copyFileSync(join(tray, file), join(out, file));
  copyFileSync(join(root, 'build', 'icons', '256x256.png'), join(out, 'icon-256.png'));
}

if (import.meta.main) {
  const started = Date.now();
  await buildMain();
  await buildPreload();
  copyIcons();
  console.log(`built dist/main/main.js, dist/preload/preload.cjs and dist/icons/ in ${Date.now() - started} ms`);
}
