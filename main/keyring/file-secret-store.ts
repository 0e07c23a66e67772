// Opt-in only (--keyring file / MOTEBIT_KEYRING=file): secrets in <home>/.motebit/secrets.json, mode 0600,
// written atomically. It is plaintext on disk: anyone who can read the file owns the motebit. It exists
// for headless machines and CI without a keyring service; the app says so every time it is used.
import { mkdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from '../config/atomic-write.ts';
import { motebitDir } from '../config/home.ts';
import { SecretStoreError, type SecretStore } from './secret-store.ts';

export const SECRETS_FILE = 'secrets.json';

const SecretsFileSchema = z.strictObject({
  version: z.literal(1),
  secrets: z.record(z.string(), z.string()),
});

/** One line, said on every run that uses the file (the CLI prefixes "warning: "). */
export function fileStoreWarning(path: string): string {
  return `secrets are kept in a plain file (${path}, mode 0600), not in the OS keyring: anyone who can read this file can read and change everything this motebit syncs.`;
}

export class FileSecretStore implements SecretStore {
  readonly kind = 'file';
  readonly path: string;
  readonly location: string;
  readonly warning: string;
  private readonly dir: string;
  /** Serialises read-modify-write within this process. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(home: string) {
    this.dir = motebitDir(home);
    this.path = join(this.dir, SECRETS_FILE);
    this.location = `file ${this.path}`;
    this.warning = fileStoreWarning(this.path);
  }

  private async readAll(): Promise<Map<string, string>> {
    let text: string;
    try {
      if (process.platform !== 'win32') {
        const { mode } = await stat(this.path);
        if ((mode & 0o077) !== 0) {
          throw new SecretStoreError(`${this.path} is readable by other users (mode ${(mode & 0o777).toString(8)}); refusing to use it. Run: chmod 600 ${this.path}`);
        }
      }
      text = await readFile(this.path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
      throw error;
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (error) {
      throw new SecretStoreError(`${this.path} is damaged (not valid JSON); not touching it`, { cause: error });
    }
    const parsed = SecretsFileSchema.safeParse(json);
    if (!parsed.success) throw new SecretStoreError(`${this.path} is damaged: ${z.prettifyError(parsed.error)}`, { cause: parsed.error });
    // Entries from the raw JSON: JSON.parse keeps any key as an own property ("__proto__" included),
    // where a copy made by assignment would not.
    return new Map(Object.entries((json as { secrets: Record<string, string> }).secrets));
  }

  private async writeAll(secrets: Map<string, string>): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    await writeFileAtomic(this.path, JSON.stringify({ version: 1, secrets: Object.fromEntries(secrets) }, null, 2) + '\n', 0o600);
  }

  private serial<T>(task: () => Promise<T>): Promise<T> {
    const run = this.queue.then(task, task);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** True when the file holds no secret (or does not exist). */
  isEmpty(): Promise<boolean> {
    return this.serial(async () => (await this.readAll()).size === 0);
  }

  get(account: string): Promise<string | null> {
    return this.serial(async () => (await this.readAll()).get(account) ?? null);
  }

  set(account: string, secret: string): Promise<void> {
    return this.serial(async () => {
      const secrets = await this.readAll();
      secrets.set(account, secret);
      await this.writeAll(secrets);
    });
  }

  delete(account: string): Promise<boolean> {
    return this.serial(async () => {
      const secrets = await this.readAll();
      if (!secrets.delete(account)) return false;
      await this.writeAll(secrets);
      return true;
    });
  }
}
