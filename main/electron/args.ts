// The app's own command-line options, picked out of Electron's argv (which also holds the binary, the app
// path in development, and Chromium switches): --home DIR and --keyring os|file, as `--x v` or `--x=v`.
// The environment (MOTEBIT_HOME, MOTEBIT_KEYRING) is applied later by resolveHome / openSecretStore.
export interface AppArgs {
  home?: string;
  keyring?: string;
}

const OPTIONS = ['home', 'keyring'] as const;

export function parseAppArgs(argv: readonly string[]): AppArgs {
  const result: AppArgs = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    for (const name of OPTIONS) {
      if (arg === `--${name}`) {
        const value = argv[i + 1];
        if (value !== undefined && !value.startsWith('--')) {
          result[name] = value;
          i++;
        }
      } else if (arg.startsWith(`--${name}=`)) {
        result[name] = arg.slice(name.length + 3);
      }
    }
  }
  return result;
}
