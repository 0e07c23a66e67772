// npm run build:cli (and npm's `prepare`, so npm install and npm ci make it): the two command-line tools
// as plain JavaScript, which is what package.json "bin" points at:
//   dist/cli/main.js     motebit-sync   (cli/main.ts)    the launcher; the bundle is motebit-sync.js + chunks
//   dist/relay/bin.js    motebit-relay  (relay/bin.ts)   the launcher; the bundle is motebit-relay.js
// Why: a command is mostly start-up (a put itself is 2–3 ms). Run as .ts, motebit-sync has Node strip the
// types of ~45 files of ours and load ~270 module files in all on every start; built, it loads one bundle
// of ours (zod inside) and ~90 files in all, and reuses their compiled code from Node's compile cache
// (module.enableCompileCache(), under the OS temp folder; NODE_DISABLE_COMPILE_CACHE=1 turns it off).
// The .ts sources stay runnable as they are (node cli/main.ts, npm run relay, the tests).
//
// Same tooling as the Electron build (scripts/build.ts: Vite's SSR build, one ESM bundle per entry). Npm
// dependencies stay external (loaded from node_modules) except each target's `inline` list: plain
// JavaScript packages with no files of their own to find at run time, where being inside the bundle saves
// resolving, reading and (for CommonJS) wrapping their many module files: zod is ~100 files (bundled, only
// what we use of it is there), qrcode with pngjs ~40, ws ~15. Measured on motebit-sync put, 2 cores,
// quiet machine, median of 21: all external ~150 ms; zod, @noble/ed25519, canonicalize inlined ~108 ms;
// also qrcode and ws ~97 ms. The relay keeps ws external (its server may use the optional native
// bufferutil; bundled, ws would never find it). Native packages (better-sqlite3, the keyring) must stay out.
//
// Without Vite (an install that omits devDependencies, e.g. npm ci --omit=dev on a relay host, still runs
// prepare), the launchers are written without a bundle and run the .ts entries, as the bins did before.
//
// The launcher never runs stale code: it records the modification time and size of every source file in
// the bundle, and if any differs (an edit, a checkout) or is gone, it runs the .ts entry instead, as
// before this build existed, until the next npm run build:cli. Checking is one stat per source file
// (~45 for motebit-sync), well under a millisecond.
import { chmodSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { isAbsolute, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Rolldown } from 'vite';

const root = fileURLToPath(new URL('..', import.meta.url));
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };

const dependencies = Object.keys(pkg.dependencies ?? {});

/** Node built-ins and the runtime dependencies not inlined (with subpaths) stay imports. */
const externalExcept =
  (inline: readonly string[]) =>
  (id: string): boolean =>
    id.startsWith('node:') || builtinModules.includes(id) || dependencies.some((dep) => !inline.includes(dep) && (id === dep || id.startsWith(`${dep}/`)));

export interface CliTarget {
  /** The command (package.json "bin" key). */
  readonly name: string;
  /** The source entry, from the repository root. */
  readonly entry: string;
  /** The launcher package.json "bin" points at, from the repository root. */
  readonly bin: string;
  /** Runtime dependencies bundled instead of imported from node_modules (see above). */
  readonly inline: readonly string[];
}

const PURE = ['zod', '@noble/ed25519', 'canonicalize'];

export const CLIS: readonly CliTarget[] = [
  { name: 'motebit-sync', entry: 'cli/main.ts', bin: 'dist/cli/main.js', inline: [...PURE, 'qrcode', 'ws'] },
  { name: 'motebit-relay', entry: 'relay/bin.ts', bin: 'dist/relay/bin.js', inline: PURE },
];

/** A source file the bundle was built from, as the launcher checks it. */
type Source = readonly [path: string, mtimeMs: number, size: number];

const toPosix = (path: string): string => path.split(sep).join('/');

/** A repository path as an import specifier relative to `outDir`. */
function fromOut(outDir: string, path: string): string {
  const rel = toPosix(relative(outDir, join(root, path)));
  return rel.startsWith('.') ? rel : `./${rel}`;
}

/**
 * Builds one CLI: the bundle (<name>.js and its chunks) and the launcher, in the folder of `bin` under
 * `outRoot` (the repository by default; tests build elsewhere). Returns the launcher's path.
 */
export async function buildCli(target: CliTarget, outRoot: string = root): Promise<string> {
  const launcher = join(outRoot, target.bin);
  const outDir = join(launcher, '..');
  const vite = await import('vite').catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ERR_MODULE_NOT_FOUND') return null;
    throw error;
  });
  if (!vite) {
    rmSync(outDir, { recursive: true, force: true });
    mkdirSync(outDir, { recursive: true });
    writeFileSync(
      launcher,
      `#!/usr/bin/env node
// ${target.name}: written by scripts/build-cli.ts without a bundle (Vite is not installed), so it runs ${target.entry}.
import { enableCompileCache } from 'node:module';

enableCompileCache();
await import(${JSON.stringify(fromOut(outDir, target.entry))});
`,
    );
    chmodSync(launcher, 0o755);
    return launcher;
  }
  const started = Date.now();
  const result = (await vite.build({
    configFile: false,
    root,
    logLevel: 'warn',
    // Vite's SSR build leaves every node_modules import external by default; `inline` must be bundled.
    ssr: { noExternal: true, target: 'node' },
    build: {
      ssr: join(root, target.entry),
      outDir,
      emptyOutDir: true,
      target: 'node24',
      minify: false,
      sourcemap: false,
      reportCompressedSize: false,
      rolldownOptions: {
        external: externalExcept(target.inline),
        output: { format: 'es', entryFileNames: `${target.name}.js`, chunkFileNames: '[name]-[hash].js' },
      },
    },
  })) as Rolldown.RolldownOutput;

  const ids = new Set(result.output.flatMap((item) => (item.type === 'chunk' ? item.moduleIds : [])));
  const sources: Source[] = [...ids]
    .filter((id) => isAbsolute(id) && !id.includes(`${sep}node_modules${sep}`) && id.startsWith(root))
    .sort()
    .map((id) => {
      const stat = statSync(id);
      // Changed while being bundled: the bundle may hold either version, so it counts as stale from the start.
      return [toPosix(relative(root, id)), stat.mtimeMs >= started ? -1 : stat.mtimeMs, stat.size] as const;
    });
  if (!sources.some(([path]) => path === target.entry)) throw new Error(`the ${target.name} bundle does not contain ${target.entry}`);

  writeFileSync(
    launcher,
    `#!/usr/bin/env node
// ${target.name}: built by scripts/build-cli.ts from ${target.entry} (npm run build:cli; npm install runs it). Do not edit.
// Runs the bundle beside this file while the sources it was built from are unchanged, else ${target.entry} itself.
import { statSync } from 'node:fs';
import { enableCompileCache } from 'node:module';

enableCompileCache();
const root = new URL(${JSON.stringify(fromOut(outDir, '.').replace(/\/?$/, '/'))}, import.meta.url);
const sources = ${JSON.stringify(sources)};
const fresh = sources.every(([path, mtimeMs, size]) => {
  const stat = statSync(new URL(path, root), { throwIfNoEntry: false });
  return stat !== undefined && stat.mtimeMs === mtimeMs && stat.size === size;
});
await import(fresh ? './${target.name}.js' : ${JSON.stringify(fromOut(outDir, target.entry))});
`,
  );
  chmodSync(launcher, 0o755);
  return launcher;
}

/** Builds every CLI; returns the launchers' paths. */
export async function buildClis(outRoot: string = root): Promise<string[]> {
  const launchers = [];
  for (const target of CLIS) launchers.push(await buildCli(target, outRoot));
  return launchers;
}

/** Whether a launcher would run its bundle (built, and every source unchanged since). */
export function isFresh(launcher: string): boolean {
  const text = readFileSync(launcher, 'utf8');
  const rootMatch = /^const root = new URL\(("[^"]*"), import\.meta\.url\);$/m.exec(text);
  const sourcesMatch = /^const sources = (.*);$/m.exec(text);
  if (!rootMatch || !sourcesMatch) return false;
  const base = join(launcher, '..', JSON.parse(rootMatch[1]!) as string);
  return (JSON.parse(sourcesMatch[1]!) as Source[]).every(([path, mtimeMs, size]) => {
    const stat = statSync(join(base, path), { throwIfNoEntry: false });
    return stat !== undefined && stat.mtimeMs === mtimeMs && stat.size === size;
  });
}

if (import.meta.main) {
  const started = Date.now();
  const launchers = await buildClis();
  const names = launchers.map((path) => toPosix(relative(root, path))).join(' and ');
  if (!launchers.every((path) => readFileSync(path, 'utf8').includes('\nconst sources = '))) {
    console.log(`Vite is not installed (devDependencies omitted?): wrote ${names} to run the .ts sources`);
  } else {
    console.log(`built ${names} in ${Date.now() - started} ms`);
    if (!launchers.every(isFresh)) console.log('a source changed during the build, so the bins run the .ts sources: run npm run build:cli again');
  }
}
