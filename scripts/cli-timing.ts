// npm run cli-timing [-- --runs N] [-- --json] [-- --keyring file|os] [-- --source] [-- --npx]
// The wall time of `motebit-sync put` as a person runs it: the "bin" of package.json (the built launcher,
// dist/cli/main.js) started through its own #!/usr/bin/env node line, with this Node first in PATH, as
// npm's bin links and npx run it. Each run is a fresh process from spawn to exit against a device home
// set up once (init against a real relay started here on 127.0.0.1, port 0). Prints the median of N runs
// with the spread; with --json, one JSON object on the last line (cli_put_ms = the median; bench/ reads it).
//
//   --keyring file  (default) secrets in the home's 0600 file, so no OS keyring is needed
//   --keyring os    the OS keyring (run inside scripts/with-keyring.sh); the entries are removed afterwards
//   --source        also time `node cli/main.ts put` (the .ts sources, as the tests run them)
//   --npx           also time `npx motebit-sync put` (npm's own start-up included; npx's cache in the temp folder)
//
// The children get a compile cache of their own in the temp folder (NODE_COMPILE_CACHE): the first run
// fills it and is reported apart ("cold"); the median is over the runs after it, which is what a person
// sees from their second command on. If the build is missing or older than the sources, it is rebuilt first.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { forgetLocalIdentity } from '../main/identity/local-identity.ts';
import { OsKeyring } from '../main/keyring/os-keyring.ts';
import { startRelay } from '../relay/server.ts';
import { CLIS, buildCli, isFresh } from './build-cli.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const USAGE = 'usage: node scripts/cli-timing.ts [--runs N (default 21)] [--json] [--keyring file|os] [--source] [--npx]';

export interface Spread {
  readonly median: number;
  readonly min: number;
  readonly p10: number;
  readonly p90: number;
  readonly max: number;
}

export interface CliTiming {
  /** The bin as package.json names it, from the repository root. */
  readonly bin: string;
  readonly keyring: 'file' | 'os';
  readonly runs: number;
  /** The first run, which fills the compile cache. */
  readonly coldMs: number;
  readonly put: Spread;
  /** node cli/main.ts put (--source). */
  readonly source?: Spread;
  /** npx motebit-sync put (--npx). */
  readonly npx?: Spread;
}

function spread(samples: readonly number[]): Spread {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number): number => round(sorted[Math.min(sorted.length - 1, Math.round(q * (sorted.length - 1)))]!);
  const mid = sorted.length / 2;
  const median = sorted.length % 2 === 1 ? sorted[Math.floor(mid)]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { median: round(median), min: at(0), p10: at(0.1), p90: at(0.9), max: at(1) };
}

const round = (ms: number): number => Math.round(ms * 10) / 10;

/** Runs one command to its exit; returns the wall time in ms (spawn to exit), or throws with its stderr. */
function timed(command: string, args: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(command, args, { cwd: ROOT, env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      const ms = performance.now() - started;
      if (code === 0) resolve(ms);
      else reject(new Error(`${command} ${args.join(' ')} exited with ${code ?? signal}: ${stderr.trim()}`));
    });
  });
}

export async function cliTiming(options: { runs?: number; keyring?: 'file' | 'os'; source?: boolean; npx?: boolean } = {}): Promise<CliTiming> {
  const runs = options.runs ?? 21;
  const keyring = options.keyring ?? 'file';
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { bin?: Record<string, string> };
  const target = CLIS.find((cli) => cli.name === 'motebit-sync')!;
  const bin = pkg.bin?.['motebit-sync'];
  if (bin !== target.bin) throw new Error(`package.json "bin" motebit-sync is ${bin}, but scripts/build-cli.ts builds ${target.bin}`);
  const launcher = join(ROOT, bin);
  if (!existsSync(launcher) || !isFresh(launcher)) {
    process.stderr.write(`cli-timing: ${bin} is ${existsSync(launcher) ? 'older than the sources' : 'not built'}; building it\n`);
    await buildCli(target);
  }

  const dir = mkdtempSync(join(tmpdir(), 'motebit-cli-timing-'));
  const home = join(dir, 'home');
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    MOTEBIT_KEYRING: keyring,
    NODE_COMPILE_CACHE: join(dir, 'compile-cache'),
    // #!/usr/bin/env node finds this Node, as it finds the project's Node 24 under npm and npx.
    PATH: [dirname(process.execPath), join(ROOT, 'node_modules', '.bin'), process.env.PATH ?? ''].join(delimiter),
  };
  delete env.NODE_DISABLE_COMPILE_CACHE;
  const relay = await startRelay({ host: '127.0.0.1', port: 0, db: join(dir, 'relay.db'), logLevel: 'silent' });
  let count = 0;
  const put = (): string[] => ['--home', home, 'put', `timing/${++count}`, JSON.stringify({ text: 'hello', n: count })];
  try {
    await timed(launcher, ['--home', home, 'init', '--relay', relay.url, '--name', 'cli-timing'], env);
    const coldMs = await timed(launcher, put(), env);
    const samples: number[] = [];
    for (let i = 0; i < runs; i++) samples.push(await timed(launcher, put(), env));
    const result: { -readonly [K in keyof CliTiming]: CliTiming[K] } = { bin, keyring, runs, coldMs: round(coldMs), put: spread(samples) };
    if (options.source) {
      const entry = join(ROOT, target.entry);
      await timed(process.execPath, [entry, ...put()], env); // fills the compile cache for the sources
      const source: number[] = [];
      for (let i = 0; i < runs; i++) source.push(await timed(process.execPath, [entry, ...put()], env));
      result.source = spread(source);
    }
    if (options.npx) {
      // npx links this package into a cache folder once (a fresh one here, so it links the current bins;
      // ignore-scripts: that link would otherwise run prepare, a rebuild); later runs reuse the link.
      const npxEnv = { ...env, npm_config_cache: join(dir, 'npm-cache'), npm_config_ignore_scripts: 'true', npm_config_update_notifier: 'false' };
      await timed('npx', ['--offline', '--yes', 'motebit-sync', ...put()], npxEnv);
      const viaNpx: number[] = [];
      for (let i = 0; i < runs; i++) viaNpx.push(await timed('npx', ['--offline', 'motebit-sync', ...put()], npxEnv));
      result.npx = spread(viaNpx);
    }
    return result;
  } finally {
    if (keyring === 'os') await forgetLocalIdentity({ home, secrets: new OsKeyring() }).catch(() => []);
    await relay.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const words = (s: Spread): string => `median ${s.median} ms (min ${s.min}, p10 ${s.p10}, p90 ${s.p90}, max ${s.max})`;

if (import.meta.main) {
  let values;
  try {
    ({ values } = parseArgs({
      options: { runs: { type: 'string', default: '21' }, json: { type: 'boolean', default: false }, keyring: { type: 'string', default: 'file' }, source: { type: 'boolean', default: false }, npx: { type: 'boolean', default: false } },
      strict: true,
    }));
  } catch (error) {
    process.stderr.write(`cli-timing: ${(error as Error).message}\n${USAGE}\n`);
    process.exit(2);
  }
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1 || (values.keyring !== 'file' && values.keyring !== 'os')) {
    process.stderr.write(`${USAGE}\n`);
    process.exit(2);
  }
  const loadBefore = loadavg()[0]!;
  const timing = await cliTiming({ runs, keyring: values.keyring, source: values.source, npx: values.npx });
  const load = [round(loadBefore), round(loadavg()[0]!)];
  const cores = availableParallelism();
  console.log(`motebit-sync put, ${timing.bin} run through its #!/usr/bin/env node line (Node ${process.versions.node}), --keyring ${timing.keyring}, ${cores} cores, load ${load[0]} → ${load[1]}:`);
  console.log(`  built bin:      ${words(timing.put)} over ${timing.runs} runs; first run (cold compile cache) ${timing.coldMs} ms`);
  if (timing.source) console.log(`  node cli/main.ts: ${words(timing.source)}`);
  if (timing.npx) console.log(`  npx motebit-sync: ${words(timing.npx)} (npm's start-up included)`);
  if (values.json) {
    console.log(
      JSON.stringify({
        cli_put_ms: timing.put.median,
        min_ms: timing.put.min,
        p10_ms: timing.put.p10,
        p90_ms: timing.put.p90,
        max_ms: timing.put.max,
        cold_ms: timing.coldMs,
        runs: timing.runs,
        keyring: timing.keyring,
        bin: timing.bin,
        node: process.versions.node,
        cores,
        load,
        ...(timing.source ? { source_put_ms: timing.source.median } : {}),
        ...(timing.npx ? { npx_put_ms: timing.npx.median } : {}),
      }),
    );
  }
}
