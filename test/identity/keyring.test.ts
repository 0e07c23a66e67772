import { Entry } from '@napi-rs/keyring';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { configPath } from '../../main/config/home.ts';
import { formatMasterToken, generateMasterToken, parseMasterToken } from '../../main/identity/master-token.ts';
import { createMotebit, forgetLocalIdentity, joinMotebit, createPairingCode, loadLocalIdentity, masterTokenIdentity } from '../../main/identity/local-identity.ts';
import { FileSecretStore } from '../../main/keyring/file-secret-store.ts';
import { SecretStoreChoiceError, chooseSecretStoreKind, openSecretStore } from '../../main/keyring/open.ts';
import { OsKeyring } from '../../main/keyring/os-keyring.ts';
import { KEYRING_SERVICE, SecretStoreError, deviceKeyAccount, masterTokenAccount } from '../../main/keyring/secret-store.ts';
import { filesUnder, keyringNote, noKeyringReason, tempHome } from './support.ts';

const homes: Array<{ remove(): void }> = [];
const cleanups: Array<() => Promise<unknown>> = [];
function newHome(): string {
  const home = tempHome('keyring');
  homes.push(home);
  return home.path;
}
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
  for (const home of homes.splice(0)) home.remove();
});

const noKeyring = noKeyringReason !== null;
const CHILD = join(import.meta.dirname, 'fixtures', 'init-child.ts');

interface ChildResult {
  ok: boolean;
  name?: string;
  message?: string;
  kind?: string;
  warning?: string | null;
  motebitId?: string;
}

function runInit(home: string, env: NodeJS.ProcessEnv, keyring?: string): Promise<ChildResult> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [CHILD, home, ...(keyring ? [keyring] : [])], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.on('error', fail);
    child.on('exit', (code) => {
      if (code !== 0) fail(new Error(`init child exited ${code}: ${err}`));
      else done(JSON.parse(out) as ChildResult);
    });
  });
}

/** An environment with no D-Bus session at all: no Secret Service can be reached. */
function noDbusEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, DBUS_SESSION_BUS_ADDRESS: 'unix:path=/nonexistent', ...extra };
  if (extra.MOTEBIT_KEYRING === undefined) delete env.MOTEBIT_KEYRING;
  return env;
}

describe(`OS keyring ${keyringNote}`, () => {
  it.skipIf(noKeyring)(`sets, reads and deletes the master token in the real keyring ${keyringNote}`, async () => {
    const keyring = new OsKeyring();
    expect(keyring.service).toBe(KEYRING_SERVICE);
    const token = formatMasterToken(generateMasterToken());
    const account = masterTokenAccount('mb_' + 'T'.repeat(22), `dv_test${process.pid}`.padEnd(25, 'x'));
    cleanups.push(() => keyring.delete(account));
    expect(await keyring.get(account)).toBeNull();
    await keyring.set(account, token);
    // Read back through a separate entry of the platform library: it really is in the keyring, under
    // service "motebit" and our account name.
    expect(new Entry(KEYRING_SERVICE, account, { linux: { store: 'secret-service' } }).getPassword()).toBe(token);
    expect(await keyring.get(account)).toBe(token);
    expect(parseMasterToken((await keyring.get(account)) ?? '').byteLength).toBe(32);
    const replaced = formatMasterToken(generateMasterToken());
    await keyring.set(account, replaced);
    expect(await keyring.get(account)).toBe(replaced);
    expect(await keyring.delete(account)).toBe(true);
    expect(await keyring.get(account)).toBeNull();
    expect(await keyring.delete(account)).toBe(false);
  });

  it.skipIf(noKeyring)(`init keeps the secrets in the keyring and none on disk ${keyringNote}`, async () => {
    const home = newHome();
    const { store, warning } = await openSecretStore({ home, env: {} });
    expect(store.kind).toBe('os');
    expect(warning).toBeNull();
    const created = await createMotebit({ home, relayUrl: 'https://relay.example.com', secrets: store, deviceName: 'laptop' });
    cleanups.push(() => forgetLocalIdentity({ home, secrets: store }));
    const tokenText = await store.get(masterTokenAccount(created.motebitId, created.deviceId));
    const seedText = await store.get(deviceKeyAccount(created.motebitId, created.deviceId));
    expect(tokenText).toMatch(/^mbk1_/);
    expect(seedText).toMatch(/^dks1_/);
    const files = filesUnder(home);
    expect([...files.keys()]).toEqual([configPath(home)]);
    for (const content of files.values()) {
      expect(content).not.toContain(tokenText);
      expect(content).not.toContain(seedText?.slice(5));
    }
    const loaded = masterTokenIdentity(await loadLocalIdentity({ home, secrets: store }));
    expect(loaded.motebitId).toBe(created.motebitId);
    expect(loaded.deviceId).toBe(created.deviceId);
    expect(loaded.cert).toBe(created.cert);
    expect(loaded.encryptionKey.id).toBe(created.encryptionKey.id);
  });

  it.skipIf(noKeyring)(`two device homes on one machine never collide, even of one motebit ${keyringNote}`, async () => {
    const store = new OsKeyring();
    const [homeA, homeB, homeC] = [newHome(), newHome(), newHome()];
    const a = await createMotebit({ home: homeA, relayUrl: 'https://relay.example.com', secrets: store });
    cleanups.push(() => forgetLocalIdentity({ home: homeA, secrets: store }));
    const b = await createMotebit({ home: homeB, relayUrl: 'https://relay.example.com', secrets: store });
    cleanups.push(() => forgetLocalIdentity({ home: homeB, secrets: store }));
    // C is a second device of motebit A on the same machine (and in the same keyring).
    const c = await joinMotebit({ home: homeC, pairingCode: await createPairingCode({ home: homeA, secrets: store }), secrets: store });
    cleanups.push(() => forgetLocalIdentity({ home: homeC, secrets: store }));
    expect(b.motebitId).not.toBe(a.motebitId);
    expect(c.motebitId).toBe(a.motebitId);
    const accounts = [a, b, c].flatMap((id) => [masterTokenAccount(id.motebitId, id.deviceId), deviceKeyAccount(id.motebitId, id.deviceId)]);
    expect(new Set(accounts).size).toBe(6);

    // Forgetting A leaves B and C whole.
    expect(await forgetLocalIdentity({ home: homeA, secrets: store })).toHaveLength(2);
    await expect(loadLocalIdentity({ home: homeA, secrets: store })).rejects.toThrow(/no motebit is set up/);
    const loadedB = await loadLocalIdentity({ home: homeB, secrets: store });
    const loadedC = masterTokenIdentity(await loadLocalIdentity({ home: homeC, secrets: store }));
    expect([loadedB.motebitId, loadedB.deviceId]).toEqual([b.motebitId, b.deviceId]);
    expect([loadedC.motebitId, loadedC.deviceId]).toEqual([a.motebitId, c.deviceId]);
    expect(loadedC.encryptionKey.key.equals(a.encryptionKey.key)).toBe(true);
  });

  it.skipIf(noKeyring)(`a missing keyring entry is a clear error naming the entry and what to run ${keyringNote}`, async () => {
    const home = newHome();
    const store = new OsKeyring();
    const created = await createMotebit({ home, relayUrl: 'https://relay.example.com', secrets: store });
    cleanups.push(() => forgetLocalIdentity({ home, secrets: store }));
    await store.delete(masterTokenAccount(created.motebitId, created.deviceId));
    await expect(loadLocalIdentity({ home, secrets: store })).rejects.toThrow(
      new RegExp(`master token of motebit ${created.motebitId}, device ${created.deviceId} is not in the OS keyring.*motebit-sync init.*motebit-sync join`),
    );
  });
});

describe('no keyring service', () => {
  it('init fails with KeyringUnavailableError naming the opt-in, and writes nothing', async () => {
    const home = newHome();
    const result = await runInit(home, noDbusEnv());
    expect(result.ok).toBe(false);
    expect(result.name).toBe('KeyringUnavailableError');
    expect(result.message).toContain('--keyring file');
    expect(result.message).toContain('MOTEBIT_KEYRING=file');
    expect(result.message).toMatch(/D-?Bus/i);
    // No silent plaintext fallback: not a secrets file, not even a config.
    expect(filesUnder(home).size).toBe(0);
  });

  it('the OS keyring is refused in-process too, without a D-Bus session', async () => {
    const home = newHome();
    const result = await runInit(home, noDbusEnv({ MOTEBIT_KEYRING: 'os' }));
    expect(result).toMatchObject({ ok: false, name: 'KeyringUnavailableError' });
    expect(existsSync(join(home, '.motebit'))).toBe(false);
  });

  it.each([
    ['MOTEBIT_KEYRING=file', { MOTEBIT_KEYRING: 'file' }, undefined],
    ['--keyring file', {}, 'file'],
  ])('the file store works only when opted into (%s), is 0600 and warns', async (_how, extra, flag) => {
    const home = newHome();
    const result = await runInit(home, noDbusEnv(extra), flag);
    expect(result).toMatchObject({ ok: true, kind: 'file' });
    const secretsPath = join(home, '.motebit', 'secrets.json');
    expect(result.warning).toContain(secretsPath);
    expect(result.warning).toMatch(/not in the OS keyring/);
    expect(statSync(secretsPath).mode & 0o777).toBe(0o600);
    const content = JSON.parse(readFileSync(secretsPath, 'utf8')) as { secrets: Record<string, string> };
    expect(Object.keys(content.secrets).sort()).toEqual([
      deviceKeyAccount(result.motebitId ?? '', (await loadLocalIdentity({ home, secrets: new FileSecretStore(home) })).deviceId),
      masterTokenAccount(result.motebitId ?? '', (await loadLocalIdentity({ home, secrets: new FileSecretStore(home) })).deviceId),
    ]);
  });

  it('the choice of store is explicit and checked', () => {
    expect(chooseSecretStoreKind(undefined, {})).toBe('os');
    expect(chooseSecretStoreKind(undefined, { MOTEBIT_KEYRING: 'file' })).toBe('file');
    expect(chooseSecretStoreKind('os', { MOTEBIT_KEYRING: 'file' })).toBe('os');
    expect(() => chooseSecretStoreKind('plaintext', {})).toThrow(SecretStoreChoiceError);
    expect(() => chooseSecretStoreKind(undefined, { MOTEBIT_KEYRING: 'File' })).toThrow(/MOTEBIT_KEYRING must be one of os, file, not "File"/);
  });
});

describe('file secret store (opt-in)', () => {
  it('sets, reads and deletes, in a 0600 file with no temp files left', async () => {
    const home = newHome();
    const store = new FileSecretStore(home);
    expect(await store.get('a')).toBeNull();
    expect(await store.delete('a')).toBe(false);
    await Promise.all([store.set('a', 'one'), store.set('b', 'two'), store.set('__proto__', 'three')]);
    expect(await store.get('a')).toBe('one');
    expect(await store.get('b')).toBe('two');
    expect(await store.get('__proto__')).toBe('three');
    expect(await new FileSecretStore(home).get('b')).toBe('two');
    expect(statSync(store.path).mode & 0o777).toBe(0o600);
    expect(statSync(join(home, '.motebit')).mode & 0o777).toBe(0o700);
    expect(await store.delete('a')).toBe(true);
    expect(await store.get('a')).toBeNull();
    expect([...filesUnder(home).keys()]).toEqual([store.path]);
  });

  it('refuses a secrets file others can read, and a damaged one, leaving it as it is', async () => {
    const home = newHome();
    const store = new FileSecretStore(home);
    await store.set('a', 'one');
    chmodSync(store.path, 0o644);
    await expect(store.get('a')).rejects.toThrow(/readable by other users \(mode 644\).*chmod 600/);
    chmodSync(store.path, 0o600);
    writeFileSync(store.path, '{"version":1,"secrets":{"a":1}}');
    await expect(store.set('b', 'two')).rejects.toThrow(SecretStoreError);
    expect(readFileSync(store.path, 'utf8')).toBe('{"version":1,"secrets":{"a":1}}');
  });
});
