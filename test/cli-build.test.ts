// The built command-line tools (scripts/build-cli.ts): package.json "bin" names the files the build
// writes and npm's `prepare` makes them, so each bin exists and runs after npm install / npm ci (also
// through npx); the built motebit-sync answers exactly as the .ts sources do (same stdout, stderr and exit
// code, event ids and times aside) on a put + get round trip against a real relay, both ways, and on sync,
// pair, state, status and the failures; a launcher runs its bundle only while the sources are unchanged.
//
// The comparisons build into test-output/cli-build/ (never dist/, which a developer or npx may be running),
// and run the bundle itself there, so a stale build can never pass for a fresh one.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLIS, buildCli, isFresh } from '../scripts/build-cli.ts';
import { Lab } from './support/devices.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const OUT = join(ROOT, 'test-output', 'cli-build');
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string>; scripts: Record<string, string> };
// A bin runs through its #!/usr/bin/env node line, as npm's links run it: this Node comes first in PATH.
const ENV = { ...process.env, MOTEBIT_KEYRING: 'file', PATH: [dirname(process.execPath), join(ROOT, 'node_modules', '.bin'), process.env.PATH ?? ''].join(delimiter) };

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(command: string, args: readonly string[], env: NodeJS.ProcessEnv = ENV): Promise<Run> {
  const child = spawn(command, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => (stdout += chunk));
  child.stderr.on('data', (chunk) => (stderr += chunk));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

const sync = CLIS.find((cli) => cli.name === 'motebit-sync')!;
const relayCli = CLIS.find((cli) => cli.name === 'motebit-relay')!;

describe('package.json bin', () => {
  it('names exactly the launchers scripts/build-cli.ts writes, and npm install builds them (prepare)', () => {
    expect(pkg.bin).toEqual(Object.fromEntries(CLIS.map((cli) => [cli.name, cli.bin])));
    expect(pkg.scripts['build:cli']).toBe('node scripts/build-cli.ts');
    expect(pkg.scripts.prepare).toMatch(/\bbuild:cli\b/);
  });

  it.each(Object.entries(pkg.bin))('%s → %s exists, is executable and answers --help', async (name, bin) => {
    const path = join(ROOT, bin);
    expect(existsSync(path), `${bin} does not exist: npm install (its prepare script) or npm run build:cli builds it`).toBe(true);
    expect(statSync(path).mode & 0o111, `${bin} is not executable`).not.toBe(0);
    const help = await run(path, ['--help']);
    expect(help, help.stderr).toMatchObject({ code: 0, stdout: expect.stringMatching(new RegExp(`^usage: ${name} `)) });
  });

  // npx links this package into a cache of its own (a temp folder here); without ignore-scripts that link
  // would run our prepare, rebuilding dist/ under everyone's feet instead of running the bin as it is.
  it('npx motebit-sync --help runs the bin', async () => {
    const cache = mkdtempSync(join(tmpdir(), 'motebit-npx-'));
    try {
      const help = await run('npx', ['--offline', '--yes', 'motebit-sync', '--help'], { ...process.env, npm_config_cache: cache, npm_config_update_notifier: 'false', npm_config_ignore_scripts: 'true' });
      expect(help, help.stderr).toMatchObject({ code: 0, stdout: expect.stringMatching(/^usage: motebit-sync /) });
    } finally {
      rmSync(cache, { recursive: true, force: true });
    }
  });
});

describe('the built CLIs', () => {
  let lab: Lab;
  let relayUrl: string;
  let home: string;
  let launcher: string;
  let bundle: string;
  const source = join(ROOT, sync.entry);

  beforeAll(async () => {
    launcher = await buildCli(sync, OUT);
    await buildCli(relayCli, OUT);
    bundle = join(dirname(launcher), `${sync.name}.js`);
    lab = new Lab();
    relayUrl = (await lab.relay()).url;
    home = join(lab.dir, 'home');
    const init = await run(process.execPath, [source, '--home', home, 'init', '--relay', relayUrl, '--name', 'laptop', '--keys', 'master-token']);
    expect(init.code, init.stderr).toBe(0);
  });
  afterAll(() => lab?.close());

  /** Event ids and sequence numbers differ between two writes, "3 s ago" between two seconds; nothing else may. */
  const normal = (r: Run): Run => {
    const scrub = (text: string) =>
      text
        .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, '<event>')
        .replace(/"device_seq":\d+/g, '"device_seq":<n>')
        .replace(/"last_success_at":\d+/g, '"last_success_at":<t>')
        .replace(/\b\d+ (s|min|h) ago\b/g, '<n> $1 ago');
    return { code: r.code, stdout: scrub(r.stdout), stderr: scrub(r.stderr) };
  };
  const built = (...args: string[]) => run(process.execPath, [bundle, '--home', home, ...args]);
  const ts = (...args: string[]) => run(process.execPath, [source, '--home', home, ...args]);

  it('the launcher is fresh right after the build, and the bundle holds no source of ours as an import', () => {
    expect(isFresh(launcher)).toBe(true);
    const text = readFileSync(join(dirname(launcher), `${sync.name}.js`), 'utf8');
    expect(text).not.toMatch(/from ["']\.\.?\/.*\.ts["']/);
  });

  it('a put + get round trip gives the same output built and from the sources, both ways', async () => {
    const builtPut = await built('put', 'memory/1', '{"text":"hi","n":[1,2]}');
    const tsPut = await ts('put', 'memory/2', '{"text":"hi","n":[1,2]}');
    expect(builtPut.code, builtPut.stderr).toBe(0);
    expect(normal(builtPut)).toEqual(normal({ ...tsPut, stdout: tsPut.stdout.replace('memory/2', 'memory/1') }));

    for (const entity of ['memory/1', 'memory/2']) {
      const [a, b] = [await built('get', entity), await ts('get', entity)];
      expect(a).toEqual(b);
      expect(a.stdout).toBe('{"text":"hi","n":[1,2]}\n');
    }

    const [jsonA, jsonB] = [await built('put', 'memory/3', '"x"', '--json'), await ts('put', 'memory/3', '"y"', '--json')];
    expect(normal(jsonA)).toEqual(normal(jsonB));
    expect(await built('get', 'memory/3')).toEqual(await ts('get', 'memory/3'));
    expect((await ts('get', 'memory/3')).stdout).toBe('"y"\n');
  });

  it('syncs over the WebSocket and shows the pairing code and its QR like the sources (ws and qrcode are bundled)', async () => {
    const first = await built('sync', '--json'); // pushes what the tests above wrote
    expect(first.code, first.stderr).toBe(0);
    expect(JSON.parse(first.stdout)).toMatchObject({ state: 'idle', transport: 'websocket', pending_out: 0, last_error: null });
    // The same work each way: one write from the other side, pushed by one sync.
    expect((await ts('put', 'memory/4', '4')).code).toBe(0);
    const a = await built('sync', '--json');
    expect((await built('put', 'memory/5', '5')).code).toBe(0);
    const b = await ts('sync', '--json');
    expect(a.stderr).toMatch(/pushing 1 of 1 events/);
    expect(normal(a)).toEqual(normal(b));
    const [pairA, pairB] = [await built('pair'), await ts('pair')];
    expect(pairA.code, pairA.stderr).toBe(0);
    expect(pairA.stdout).toMatch(/█/);
    expect(pairA).toEqual(pairB);
  });

  it('the same answers for state, status, help and the failures (exit codes and messages)', async () => {
    for (const args of [['state', '--json'], ['status', '--json'], ['status'], ['--help'], ['get', 'nothing/here'], ['put', 'memory/1', 'not json'], ['put', '', '1'], ['frobnicate'], ['--bogus']]) {
      const [a, b] = [await built(...args), await ts(...args)];
      expect(normal(a), args.join(' ')).toEqual(normal(b));
    }
    const [a, b] = [await run(process.execPath, [bundle, '--home', join(lab.dir, 'empty'), 'status']), await run(process.execPath, [source, '--home', join(lab.dir, 'empty'), 'status'])];
    expect(a).toEqual(b);
    expect(a.code).toBe(1);
  });

  it('the built motebit-relay answers --help and a bad flag like relay/bin.ts', async () => {
    const relayLauncher = join(OUT, relayCli.bin);
    const relayBundle = join(dirname(relayLauncher), `${relayCli.name}.js`);
    for (const args of [['--help'], ['--port', 'x', '--db', 'x.db'], ['--nonsense']]) {
      const [a, b] = [await run(process.execPath, [relayBundle, ...args]), await run(process.execPath, [join(ROOT, relayCli.entry), ...args])];
      expect(a, args.join(' ')).toEqual(b);
    }
  });

  it('a launcher runs its bundle only while its sources are unchanged; else (one changed or went) the sources', async () => {
    // Copies of the launcher whose bundle is missing: one that runs it fails, one that runs the sources works.
    const original = readFileSync(launcher, 'utf8');
    const text = original.replace(`'./${sync.name}.js'`, "'./no-such-bundle.js'");
    expect(text).not.toBe(original);
    const copy = (name: string, edit: (t: string) => string): string => {
      const path = join(dirname(launcher), name);
      const edited = edit(text);
      if (name !== 'fresh.js') expect(edited, name).not.toBe(text);
      writeFileSync(path, edited);
      return path;
    };
    const fresh = copy('fresh.js', (t) => t);
    const changed = copy('changed.js', (t) => t.replace(/^(const sources = \[\["[^"]+",)[0-9.]+/m, '$10'));
    const gone = copy('gone.js', (t) => t.replace(/^const sources = \[/m, 'const sources = [["cli/no-such-file.ts",0,0],'));
    expect(isFresh(fresh)).toBe(true);
    expect(await run(process.execPath, [fresh, '--help'])).toMatchObject({ code: 1, stderr: expect.stringContaining('no-such-bundle.js') });
    for (const path of [changed, gone]) {
      expect(isFresh(path)).toBe(false);
      expect(await run(process.execPath, [path, '--home', home, 'get', 'memory/1'])).toMatchObject({ code: 0, stdout: '{"text":"hi","n":[1,2]}\n' });
    }
  });
});
