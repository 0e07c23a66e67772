// What to tell a person whose machine has no usable OS keyring: the exact command that starts one here,
// and what the file store means. Plain functions of the platform and the PATH, so they are tested as is;
// the window, the terminal line of `npm start` and the CLI all say the same thing from here.
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';

export interface KeyringHelpOptions {
  readonly platform?: NodeJS.Platform;
  readonly env?: NodeJS.ProcessEnv;
  /** The command to run once the keyring is up (default: a shell, to run the command again in). */
  readonly then?: string;
  /** Finds a program on the PATH (tests pass their own). */
  readonly which?: (program: string) => string | null;
}

export interface KeyringHelp {
  /** One sentence: why there is no keyring here. */
  readonly why: string;
  /** The exact command that starts a keyring and then `then` (null where there is none to give). */
  readonly command: string | null;
  /** What to do when `command` is null, or what `command` needs first (installing a package). */
  readonly instead: string | null;
}

/** Finds `program` on env.PATH. */
export function whichOnPath(program: string, env: NodeJS.ProcessEnv = process.env): string | null {
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, program);
    if (existsSync(candidate)) return candidate;
  }
  return null;
}

/** The plain-file alternative, said once, the same everywhere. */
export const FILE_STORE_MEANING =
  'Secrets kept in a file (mode 0600 in the device home) are not encrypted: anyone who can read that file — another account with admin rights, a backup, a stolen disk — can read and change everything this motebit syncs.';

/**
 * On Linux a Secret Service needs a D-Bus session and a keyring daemon. The command starts both for the
 * one program that follows, asking for the keyring's password without echoing it (gnome-keyring keeps its
 * keyring under ~/.local/share/keyrings, so the same password opens it next time).
 */
export function keyringHelp({ platform = process.platform, env = process.env, then = '"${SHELL:-sh}"', which = (program) => whichOnPath(program, env) }: KeyringHelpOptions = {}): KeyringHelp {
  if (platform === 'darwin') {
    return { why: 'The macOS Keychain could not be used (it may be locked).', command: null, instead: 'Unlock your login keychain in Keychain Access, then try again.' };
  }
  if (platform === 'win32') {
    return { why: 'The Windows Credential Manager could not be used.', command: null, instead: 'Sign in to Windows with your own account (Credential Manager is per account), then try again.' };
  }
  const hasBus = Boolean(env.DBUS_SESSION_BUS_ADDRESS);
  const why = hasBus
    ? 'No keyring service (Secret Service) answers on this session, or it is locked.'
    : 'This session has no keyring service: there is no D-Bus session, so no Secret Service (usual on a server, a container or over SSH).';
  const unlock = `stty -echo 2>/dev/null; printf "Keyring password: "; read -r pw; stty echo 2>/dev/null; echo; printf %s "$pw" | gnome-keyring-daemon --unlock --components=secrets >/dev/null && ${then}`;
  const command = `dbus-run-session -- sh -c '${unlock.replace(/'/g, `'"'"'`)}'`;
  const missing = ['dbus-run-session', 'gnome-keyring-daemon'].filter((program) => which(program) === null);
  if (missing.length === 0) return { why, command, instead: null };
  const install = which('apt-get') ? 'sudo apt-get install gnome-keyring dbus' : which('dnf') ? 'sudo dnf install gnome-keyring dbus-daemon' : which('pacman') ? 'sudo pacman -S gnome-keyring dbus' : null;
  return { why, command, instead: install ? `First install a keyring: ${install}` : `First install gnome-keyring and D-Bus (${missing.join(' and ')} not found).` };
}

/** A word for a POSIX shell: quoted unless it is plainly safe. */
export function shellWord(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'"'"'`)}'`;
}

/**
 * The one terminal line for a start without a keyring: what is missing, the exact command, and the other
 * way (the window's choice of a file). Null when there is a keyring.
 */
export function noKeyringLine(secrets: { store: string; command: string | null; instead: string | null }): string | null {
  if (secrets.store !== 'unavailable') return null;
  const other = 'or choose "Keep secrets in a file" in the settings window';
  if (secrets.command === null) return `No OS keyring could be used: ${secrets.instead ?? 'start one'} — ${other}.`;
  return `No OS keyring on this machine. ${secrets.instead ? `${secrets.instead}; then start` : 'Start'} one with this app: ${secrets.command}   (${other})`;
}

/** `npm start` with these arguments, as a person types it: what runs once a keyring is started. */
export function npmStartCommand(args: readonly string[]): string {
  return `npm start${args.length > 0 ? ` -- ${args.map(shellWord).join(' ')}` : ''}`;
}
