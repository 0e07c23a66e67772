// The OS keyring through @napi-rs/keyring: macOS Keychain, Windows Credential Manager, the Secret Service
// (gnome-keyring, KWallet) on Linux. On Linux the entry is pinned to the Secret Service: the library would
// otherwise fall back to the kernel keyring, which forgets everything at logout or reboot — a silent
// fallback we refuse as much as a plaintext one.
import { AsyncEntry, type EntryOptions } from '@napi-rs/keyring';
import { KEYRING_SERVICE, KeyringUnavailableError, SecretStoreError, type SecretStore } from './secret-store.ts';

const ENTRY_OPTIONS: EntryOptions = { linux: { store: 'secret-service' } };

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Maps a platform failure to our errors: ambiguity is the store's content, anything else is "unavailable". */
function translate(error: unknown, action: string, account: string): Error {
  const detail = describe(error);
  if (/ambiguous/i.test(detail)) {
    return new SecretStoreError(`keyring entry "${account}" is ambiguous (more than one credential matches): ${detail}`, { cause: error });
  }
  return new KeyringUnavailableError(`${action} "${account}" failed: ${detail}`, { cause: error });
}

export class OsKeyring implements SecretStore {
  readonly kind = 'os';
  readonly service: string;
  readonly location: string;

  constructor(service: string = KEYRING_SERVICE) {
    this.service = service;
    this.location = `OS keyring, service "${service}"`;
  }

  private entry(account: string): AsyncEntry {
    return new AsyncEntry(this.service, account, ENTRY_OPTIONS);
  }

  async get(account: string): Promise<string | null> {
    try {
      return await this.entry(account).getPassword();
    } catch (error) {
      throw translate(error, 'reading', account);
    }
  }

  async set(account: string, secret: string): Promise<void> {
    try {
      await this.entry(account).setPassword(secret);
    } catch (error) {
      throw translate(error, 'writing', account);
    }
  }

  async delete(account: string): Promise<boolean> {
    try {
      return await this.entry(account).deletePassword();
    } catch (error) {
      throw translate(error, 'deleting', account);
    }
  }
}
