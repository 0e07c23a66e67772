// npm start [-- --home DIR] [--keyring os|file] [--no-build] [--headless]
// Builds the app (npm run build) and launches the tray app with Electron. Where Electron cannot run (its
// binary was never downloaded, or Linux has no display) it says so in one line and starts the same
// services headless instead: the AppController (store, keyring, sync engine) with the settings window
// served by the UI harness on 127.0.0.1, whose URL it prints. Either way something real runs. A machine
// without an OS keyring starts too: one printed line gives the command that starts one, and the settings
// window explains and offers to keep the secrets in a file instead.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { resolveHome } from '../main/config/home.ts';
import { noKeyringLine, npmStartCommand } from '../main/keyring/help.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

const { values } = parseArgs({
  options: {
    home: { type: 'string' },
    keyring: { type: 'string' },
    'no-build': { type: 'boolean', default: false },
    headless: { type: 'boolean', default: false },
  },
  strict: true,
});

/** The Electron binary if it is really there; never triggers electron's download-on-require. */
export function electronBinary(root: string = ROOT, env: NodeJS.ProcessEnv = process.env): string | null {
  const pkg = join(root, 'node_modules', 'electron');
  const pathFile = join(pkg, 'path.txt');
  const relative = existsSync(pathFile) ? readFileSync(pathFile, 'utf8').trim() : null;
  if (env.ELECTRON_OVERRIDE_DIST_PATH) {
    const binary = join(env.ELECTRON_OVERRIDE_DIST_PATH, relative ?? (process.platform === 'win32' ? 'electron.exe' : 'electron'));
    return existsSync(binary) ? binary : null;
  }
  if (!relative) return null;
  const binary = join(pkg, 'dist', relative);
  return existsSync(binary) ? binary : null;
}

/** Why Electron cannot run here, or null when it can. */
function electronUnavailable(binary: string | null): string | null {
  if (values.headless) return 'headless by request (--headless)';
  if (!binary) return "Electron's binary is not installed (node_modules/electron/dist is missing; it is downloaded on first use)";
  if (process.platform === 'linux' && !process.env.DISPLAY && !process.env.WAYLAND_DISPLAY) return 'no display (neither DISPLAY nor WAYLAND_DISPLAY is set)';
  return null;
}

function build(): void {
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const result = spawnSync(npm, ['run', 'build'], { cwd: ROOT, stdio: 'inherit', shell: process.platform === 'win32' });
  if (result.status !== 0) {
    console.error('npm start: the build failed (see above); nothing was started');
    process.exit(result.status ?? 1);
  }
}

async function startHeadless(reason: string): Promise<void> {
  console.log(`Electron cannot run here: ${reason}; starting headless, with the settings window served by the UI harness.`);
  const { startHarness } = await import('../main/harness/server.ts');
  const home = resolveHome({ home: values.home, env: process.env });
  const harness = await startHarness({ home, keyring: values.keyring, env: process.env, rendererDir: join(ROOT, 'dist', 'renderer'), restartCommand: npmStartCommand(process.argv.slice(2)) });
  console.log(`Motebit Sync (headless) for ${home}: open the settings window at ${harness.url}`);
  const noKeyring = noKeyringLine(harness.controller.secrets);
  if (noKeyring) console.log(noKeyring); // one line; the window explains and offers the file instead
  let stopping = false;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      if (stopping) return;
      stopping = true;
      // The controller closes like on quit: a running cycle finishes or is abandoned, the store closes.
      void harness.close().then(
        () => process.exit(0),
        (error: unknown) => {
          console.error(error);
          process.exit(1);
        },
      );
    });
  }
}

function startElectron(binary: string): void {
  const args = [ROOT, ...(values.home ? ['--home', resolveHome({ home: values.home })] : []), ...(values.keyring ? ['--keyring', values.keyring] : [])];
  const child = spawn(binary, args, { stdio: 'inherit', env: { ...process.env, ELECTRON_RUN_AS_NODE: undefined } });
  let started = false;
  child.on('spawn', () => {
    started = true;
  });
  child.on('error', (error) => {
    if (started) throw error;
    void startHeadless(`the Electron binary did not start (${error.message})`);
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => child.kill(signal));
  child.on('exit', (code, signal) => {
    if (started) process.exit(code ?? (signal ? 1 : 0));
  });
}

if (import.meta.main) {
  if (!values['no-build']) build();
  const binary = electronBinary();
  const reason = electronUnavailable(binary);
  if (reason !== null || binary === null) await startHeadless(reason ?? 'no Electron binary');
  else startElectron(binary);
}
