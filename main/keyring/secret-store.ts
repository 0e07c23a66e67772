// Where secrets live. One small interface, two implementations: the OS keyring (the default) and a 0600
// file (opt-in only). Nothing falls back from one to the other: a keyring that cannot be used is an error.
export const KEYRING_SERVICE = 'motebit';

export type SecretStoreKind = 'os' | 'file';
export const SECRET_STORE_KINDS: readonly SecretStoreKind[] = ['os', 'file'];

export interface SecretStore {
  readonly kind: SecretStoreKind;
  /** A human description of where the secrets are, for status output. */
  readonly location: string;
  /** The secret stored under `account`, or null when there is none. */
  get(account: string): Promise<string | null>;
  set(account: string, secret: string): Promise<void>;
  /** True when a secret was deleted, false when there was none. */
  delete(account: string): Promise<boolean>;
}

export const OPT_IN_HINT = 'To keep secrets in a plain file instead (readable by anyone who can read your home folder), opt in with --keyring file or MOTEBIT_KEYRING=file.';

/** No usable OS keyring (no D-Bus session, no Secret Service, locked, ...). Names the opt-in alternative. */
export class KeyringUnavailableError extends Error {
  override readonly name = 'KeyringUnavailableError';
  /** What the platform said. */
  readonly detail: string;
  constructor(detail: string, options?: ErrorOptions) {
    super(`The OS keyring is not available (${detail}). Secrets are only kept in the OS keyring: start a session with a keyring service (e.g. gnome-keyring on Linux). ${OPT_IN_HINT}`, options);
    this.detail = detail;
  }
}

/** The secret store exists but an operation failed (damaged file, ambiguous entry, ...). */
export class SecretStoreError extends Error {
  override readonly name = 'SecretStoreError';
}

// Account names include the motebit id and the device id, so several device homes on one machine (even of
// the same motebit) never share an entry: removing one home never removes another's secrets.
export function masterTokenAccount(motebitId: string, deviceId: string): string {
  return `master-token:${motebitId}:${deviceId}`;
}

/** A device's own root secret (a motebit with a membership log): its signing and X25519 keys derive from it. */
export function rootSecretAccount(motebitId: string, deviceId: string): string {
  return `root-secret:${motebitId}:${deviceId}`;
}

export function deviceKeyAccount(motebitId: string, deviceId: string): string {
  return `device-key:${motebitId}:${deviceId}`;
}
