// Chooses the secret store: --keyring (os | file), else MOTEBIT_KEYRING, else the home's config (secret_store,
// set when the person chose the file in the window), else the OS keyring. Before a
// home writes secrets (init, join) the OS keyring is probed (a write and a delete), so a machine without a
// usable one fails there with a clear KeyringUnavailableError instead of half-way through setting up;
// opening an existing home only reads, and a read fails just as clearly. The file store is only ever used
// when asked for by name. The OS keyring's native module is loaded only when it is the choice.
import { readConfig } from '../config/config.ts';
import { FileSecretStore } from './file-secret-store.ts';
import { SECRET_STORE_KINDS, type SecretStore, type SecretStoreKind } from './secret-store.ts';

export interface OpenSecretStoreOptions {
  /** The device home (the file store lives in <home>/.motebit/). */
  readonly home: string;
  /** The --keyring flag, when given. */
  readonly keyring?: string | undefined;
  readonly env?: NodeJS.ProcessEnv;
  /** The OS keyring service name (tests use their own). */
  readonly service?: string;
  /** Prove the OS keyring can keep a new secret (default true; false when only reading an existing home). */
  readonly probe?: boolean;
}

export interface OpenedSecretStore {
  readonly store: SecretStore;
  /** Set when secrets are kept outside the OS keyring: show it to the person, log it. */
  readonly warning: string | null;
}

export class SecretStoreChoiceError extends Error {
  override readonly name = 'SecretStoreChoiceError';
}

const PROBE_ACCOUNT = 'probe:availability';

export function chooseSecretStoreKind(keyring: string | undefined, env: NodeJS.ProcessEnv = process.env, configured?: SecretStoreKind): SecretStoreKind {
  const [source, value] = keyring !== undefined && keyring !== '' ? ['--keyring', keyring] : ['MOTEBIT_KEYRING', env.MOTEBIT_KEYRING ?? ''];
  if (value === '') return configured ?? 'os';
  if ((SECRET_STORE_KINDS as readonly string[]).includes(value)) return value as SecretStoreKind;
  throw new SecretStoreChoiceError(`${source} must be one of ${SECRET_STORE_KINDS.join(', ')}, not "${value}"`);
}

export async function openSecretStore({ home, keyring, env = process.env, service, probe = true }: OpenSecretStoreOptions): Promise<OpenedSecretStore> {
  const explicit = (keyring !== undefined && keyring !== '') || (env.MOTEBIT_KEYRING ?? '') !== '';
  const kind = chooseSecretStoreKind(keyring, env, explicit ? undefined : (await readConfig(home))?.secret_store);
  if (kind === 'file') {
    const store = new FileSecretStore(home);
    return { store, warning: store.warning };
  }
  const { OsKeyring } = await import('./os-keyring.ts');
  const store = new OsKeyring(service);
  if (probe) {
    // A write, not just a read: a locked keyring answers reads but cannot keep a new secret.
    await store.set(PROBE_ACCOUNT, 'ok'); // throws KeyringUnavailableError when there is no usable keyring
    await store.delete(PROBE_ACCOUNT);
  }
  return { store, warning: null };
}
