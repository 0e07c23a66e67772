// Packaging: runs electron-builder for real (the `dir` target: the unpacked app, as every installer
// target contains it) with the repository's electron-builder.yml, offline, and checks what lands in the
// app. The real Electron binary cannot be downloaded here, so electronDist points at a STAND-IN: a folder
// with a placeholder `electron` executable (a shell script that only says it is a stand-in) carrying the
// fuse sentinel and wire of a real Electron binary, which is all electron-builder reads from it. So the
// test also sees the release fuses flipped exactly as in a real build.
//
// What it checks: app.asar holds the built main (ESM), the one-file preload, the settings window and the
// tray icons, and package.json points at the main; the native modules are unpacked
// (app.asar.unpacked/**/*.node) for this platform and arch only, other platforms' prebuilds are pruned,
// better-sqlite3's C sources are not shipped; the fuses are set.
//
// The build output goes to test-output/packaging/ (main, preload and the renderer are built there, not in
// dist/, so the test never races a browser test or a developer's build over dist/).
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type * as Asar from '@electron/asar';
import type * as ElectronBuilder from 'electron-builder';
import { describe, expect, it } from 'vitest';
import { buildMain, buildPreload, copyIcons } from '../scripts/build.ts';
import { allTrayIconFiles } from '../main/app/tray-icon.ts';

const require = createRequire(import.meta.url);
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const WORK = join(ROOT, 'test-output', 'packaging');
const STAGED = join(WORK, 'app'); // main/, preload/, renderer/, icons/ as npm run build writes them into dist/
const STAND_IN = join(WORK, 'electron-stand-in');
const OUT = join(WORK, 'out');

// From @electron/fuses: the marker a real Electron binary carries before its fuse wire.
const SENTINEL = 'dL7pKGdnNz796PbbjQWNKmHXBZaB9tsX';
// Electron's own defaults, in FuseV1Options order: RunAsNode on, cookie encryption off, NODE_OPTIONS on,
// --inspect on, asar integrity off, only-from-asar off, browser V8 snapshot off, file:// privileges on.
const ELECTRON_DEFAULT_WIRE = '10110001';
// electron-builder.yml's electronFuses, in the same order.
const RELEASE_WIRE = '01001100';

const ARCH = process.arch;
const supported = process.platform === 'linux' && (ARCH === 'x64' || ARCH === 'arm64');

/** The stand-in Electron distribution: the minimum electron-builder copies for a Linux app. */
function makeStandIn(): void {
  rmSync(STAND_IN, { recursive: true, force: true });
  mkdirSync(STAND_IN, { recursive: true });
  const script = '#!/bin/sh\necho "this is a STAND-IN for the Electron binary (packaging test only); it cannot run the app" >&2\nexit 1\n';
  const wire = Buffer.concat([Buffer.from(`# ${SENTINEL}`, 'latin1'), Buffer.from([1, ELECTRON_DEFAULT_WIRE.length]), Buffer.from(ELECTRON_DEFAULT_WIRE, 'latin1'), Buffer.from('\n')]);
  writeFileSync(join(STAND_IN, 'electron'), Buffer.concat([Buffer.from(script), wire]));
  chmodSync(join(STAND_IN, 'electron'), 0o755);
  writeFileSync(join(STAND_IN, 'version'), require('electron/package.json').version);
  writeFileSync(join(STAND_IN, 'LICENSE'), 'stand-in for the Electron license file\n');
  mkdirSync(join(STAND_IN, 'resources'));
  mkdirSync(join(STAND_IN, 'locales'));
  writeFileSync(join(STAND_IN, 'locales', 'en-US.pak'), '');
}

function fuseWire(file: string): string {
  const bytes = readFileSync(file);
  const at = bytes.indexOf(SENTINEL, 0, 'latin1');
  if (at < 0) throw new Error(`no fuse sentinel in ${file}`);
  const length = bytes[at + SENTINEL.length + 1] ?? 0;
  return bytes.subarray(at + SENTINEL.length + 2, at + SENTINEL.length + 2 + length).toString('latin1');
}

/** electron-builder.yml as it is, except that the four dist/ folders come from the staged build. */
function testConfig(): string {
  const yaml = require('js-yaml') as { load(text: string): unknown; dump(value: unknown): string };
  const config = yaml.load(readFileSync(join(ROOT, 'electron-builder.yml'), 'utf8')) as Record<string, unknown> & { files: unknown[] };
  const staged = new Map(['main', 'preload', 'renderer', 'icons'].map((part) => [`dist/${part}/**`, part]));
  const missing = [...staged.keys()].filter((pattern) => !config.files.includes(pattern));
  if (missing.length > 0) throw new Error(`electron-builder.yml files no longer list ${missing.join(', ')}`);
  for (const platform of ['linux', 'mac', 'win']) {
    // with FileSets (below) or without, a platform-level list of excludes would make "**/*" the main pattern
    if ((config[platform] as { files?: unknown } | undefined)?.files) throw new Error(`keep ${platform}.files out of electron-builder.yml: put the excludes in the top-level files`);
  }
  // The patterns stay first (electron-builder folds them into the FileSet of the app folder, which must
  // lead the list); the staged folders follow as FileSets mapped to where npm run build puts them.
  config.files = [
    ...config.files.filter((entry) => !(typeof entry === 'string' && staged.has(entry))),
    ...[...staged.values()].map((part) => ({ from: join(STAGED, part), to: `dist/${part}`, filter: ['**/*'] })),
  ];
  config.directories = { ...(config.directories as object), output: OUT };
  config.electronDist = STAND_IN;
  config.electronVersion = require('electron/package.json').version;
  const file = join(WORK, 'electron-builder.test.yml');
  writeFileSync(file, yaml.dump(config));
  return file;
}

async function stageBuild(): Promise<void> {
  rmSync(STAGED, { recursive: true, force: true });
  await buildMain(join(STAGED, 'main'));
  await buildPreload(join(STAGED, 'preload'));
  copyIcons(join(STAGED, 'icons'));
  const { build } = await import('vite');
  await build({ configFile: join(ROOT, 'vite.config.ts'), root: join(ROOT, 'renderer'), logLevel: 'warn', build: { outDir: join(STAGED, 'renderer'), emptyOutDir: true } });
}

describe.skipIf(!supported)(`packaging: electron-builder dir target for linux-${ARCH} against a STAND-IN Electron binary (offline)`, () => {
  it('packs main, preload, renderer and icons into app.asar, unpacks only this platform\'s native modules, and flips the release fuses', { timeout: 240_000 }, async () => {
    mkdirSync(WORK, { recursive: true });
    rmSync(OUT, { recursive: true, force: true });
    makeStandIn();
    await stageBuild();
    const configPath = testConfig();

    const builder = require('electron-builder') as typeof ElectronBuilder;
    await builder.build({
      projectDir: ROOT,
      config: configPath,
      targets: builder.Platform.LINUX.createTarget('dir', ARCH === 'arm64' ? builder.Arch.arm64 : builder.Arch.x64),
      publish: 'never',
    });

    const appDir = join(OUT, ARCH === 'x64' ? 'linux-unpacked' : `linux-${ARCH}-unpacked`);
    const resources = join(appDir, 'resources');
    expect(existsSync(join(appDir, 'motebit-sync')), 'the executable is renamed to linux.executableName').toBe(true);

    // ---- app.asar ------------------------------------------------------------------------------------
    const asar = require('@electron/asar') as typeof Asar;
    const archive = join(resources, 'app.asar');
    const entries = asar.listPackage(archive, { isPack: false }).map((p) => p.replaceAll('\\', '/'));
    const has = (path: string): boolean => entries.includes(path);
    for (const path of ['/package.json', '/dist/main/main.js', '/dist/preload/preload.cjs', '/dist/renderer/index.html', '/dist/icons/icon-256.png']) {
      expect(has(path), `app.asar holds ${path}`).toBe(true);
    }
    for (const icon of allTrayIconFiles()) expect(has(`/dist/icons/${icon}`), `app.asar holds the tray icon ${icon}`).toBe(true);
    expect(entries.some((p) => /^\/dist\/renderer\/assets\/.+\.js$/.test(p)), 'the renderer bundle').toBe(true);
    expect(entries.filter((p) => p.endsWith('.ts') || p.endsWith('.map')), 'no TypeScript sources or source maps').toEqual([]);
    expect(entries.some((p) => p.startsWith('/node_modules/better-sqlite3/deps') || p.startsWith('/node_modules/better-sqlite3/src')), 'no SQLite sources').toBe(false);
    expect(entries.some((p) => p.startsWith('/node_modules/electron/')), 'electron itself is not in the app').toBe(false);
    for (const dep of ['zod', 'ws', 'qrcode', 'canonicalize', 'better-sqlite3', '@napi-rs/keyring']) {
      expect(has(`/node_modules/${dep}/package.json`), `the runtime dependency ${dep}`).toBe(true);
    }

    const pkg = JSON.parse(asar.extractFile(archive, 'package.json').toString()) as { main: string; type: string };
    expect(pkg.main).toBe('dist/main/main.js');
    expect(pkg.type).toBe('module');
    const main = asar.extractFile(archive, 'dist/main/main.js').toString();
    expect(main).toMatch(/from "electron"/);
    expect(main).not.toMatch(/import type|: string\)/); // JavaScript, not TypeScript
    const preload = asar.extractFile(archive, 'dist/preload/preload.cjs').toString();
    expect(preload).toContain('require("electron")');
    expect(preload).toContain('exposeInMainWorld("motebit"');
    expect(preload).not.toMatch(/zod/i);

    // ---- app.asar.unpacked: native modules for this platform only -------------------------------------
    const unpacked = entries.filter((p) => p.endsWith('.node'));
    const expected = [`/node_modules/better-sqlite3/prebuilds/linux-${ARCH}.node`, `/node_modules/@napi-rs/keyring-linux-${ARCH}-gnu/keyring.linux-${ARCH}-gnu.node`];
    expect(unpacked.sort()).toEqual(expected.sort());
    for (const path of expected) {
      expect(existsSync(join(resources, 'app.asar.unpacked', path)), `unpacked ${path}`).toBe(true);
    }
    expect(asar.statFile(archive, expected[0]!.slice(1)), 'marked unpacked in the asar header').toMatchObject({ unpacked: true });

    // ---- fuses -------------------------------------------------------------------------------------------
    expect(fuseWire(join(appDir, 'motebit-sync'))).toBe(RELEASE_WIRE);

    writeFileSync(join(WORK, 'asar-entries.txt'), `${entries.join('\n')}\n`);
  });
});
