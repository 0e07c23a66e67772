// "Start at login". macOS and Windows: Electron's login item settings. Linux has no such API in Electron,
// so it is an XDG autostart entry (~/.config/autostart/<id>.desktop), which GNOME, KDE, Xfce and others
// honour. The Linux part is plain Node, tested without Electron.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export const AUTOSTART_ID = 'motebit-sync';

export function autostartFile(env: NodeJS.ProcessEnv = process.env): string {
  const config = env.XDG_CONFIG_HOME && env.XDG_CONFIG_HOME !== '' ? env.XDG_CONFIG_HOME : join(homedir(), '.config');
  return join(config, 'autostart', `${AUTOSTART_ID}.desktop`);
}

/** Quotes one Exec argument per the Desktop Entry spec. */
function quoteExecArg(arg: string): string {
  if (!/[\s"'\\$`<>|&;()*?#~=%]/.test(arg)) return arg;
  return `"${arg.replace(/\\/g, '\\\\\\\\').replace(/(["`$])/g, '\\\\$1').replace(/%/g, '%%')}"`;
}

export function autostartEntry(command: readonly string[]): string {
  return [
    '[Desktop Entry]',
    'Type=Application',
    'Name=Motebit Sync',
    'Comment=Keeps this device in step with your motebit',
    `Exec=${command.map(quoteExecArg).join(' ')}`,
    'Terminal=false',
    'X-GNOME-Autostart-enabled=true',
    '',
  ].join('\n');
}

export interface LoginItem {
  get(): boolean;
  set(enabled: boolean): void;
}

/** The Linux login item: the command is the AppImage when run from one, else the executable and its args. */
export function linuxLoginItem(command: readonly string[], env: NodeJS.ProcessEnv = process.env): LoginItem {
  const file = autostartFile(env);
  return {
    get: () => existsSync(file) && readFileSync(file, 'utf8').includes('X-GNOME-Autostart-enabled=true'),
    set: (enabled) => {
      if (!enabled) {
        rmSync(file, { force: true });
        return;
      }
      mkdirSync(join(file, '..'), { recursive: true });
      writeFileSync(file, autostartEntry(command), { mode: 0o644 });
    },
  };
}
