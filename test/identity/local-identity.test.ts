// The identity flows the app and CLI call (init, join, load, pairing code), on the opt-in file store so
// they run on every machine; keyring.test.ts runs the same flows on the real OS keyring.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { toBase64Url } from '../../shared/encoding.ts';
import { sealEvent, checkSeal, hashEvent } from '../../shared/event.ts';
import { GENESIS_HASH, type SealedEvent } from '../../shared/portable/event.ts';
import { newEventId } from '../../shared/ids.ts';
import { verifyDeviceCert } from '../../shared/event.ts';
import { ConfigError, readConfig, updateConfig } from '../../main/config/config.ts';
import { configPath, motebitDir } from '../../main/config/home.ts';
import { formatMasterToken, generateMasterToken } from '../../main/identity/master-token.ts';
import { PairingCodeError, decodePairingCode } from '../../main/identity/pairing.ts';
import {
  IdentityExistsError,
  IdentityMismatchError,
  IdentityNotSetUpError,
  createMotebit,
  createPairingCode,
  forgetLocalIdentity,
  joinMotebit,
  loadLocalIdentity,
  masterTokenIdentity,
} from '../../main/identity/local-identity.ts';
import { FileSecretStore } from '../../main/keyring/file-secret-store.ts';
import { masterTokenAccount } from '../../main/keyring/secret-store.ts';
import { tempHome } from './support.ts';

const homes: Array<{ remove(): void }> = [];
function newHome(): string {
  const home = tempHome('local');
  homes.push(home);
  return home.path;
}
afterEach(() => {
  for (const home of homes.splice(0)) home.remove();
});

const RELAY = 'https://relay.example.com';

describe('createMotebit / loadLocalIdentity', () => {
  it('creates a motebit whose loaded identity can seal events the protocol accepts', async () => {
    const home = newHome();
    const secrets = new FileSecretStore(home);
    const created = await createMotebit({ home, relayUrl: `${RELAY}/`, secrets, deviceName: 'laptop' });
    expect(created.motebitId).toMatch(/^mb_/);
    expect(created.deviceId).toMatch(/^dv_/);
    expect(created.relayUrl).toBe(RELAY);
    expect(created.encryption).toBe(true);
    expect(await readConfig(home)).toEqual({
      sync_url: RELAY,
      interval_seconds: 30,
      encryption: true,
      transport: 'auto',
      motebit_id: created.motebitId,
      device_id: created.deviceId,
      device_name: 'laptop',
    });

    const loaded = masterTokenIdentity(await loadLocalIdentity({ home, secrets: new FileSecretStore(home) }));
    expect(loaded.motebitId).toBe(created.motebitId);
    expect(loaded.deviceId).toBe(created.deviceId);
    expect(loaded.deviceName).toBe('laptop');
    expect(loaded.cert).toBe(created.cert);
    expect(loaded.identityKey.publicKey.equals(created.identityKey.publicKey)).toBe(true);
    expect(loaded.encryptionKey).toEqual(created.encryptionKey);
    expect(verifyDeviceCert(loaded.identityKey.publicKey, loaded.motebitId, loaded.deviceId, toBase64Url(loaded.deviceKey.publicKey), loaded.cert)).toBe(true);

    const event: SealedEvent = {
      v: 1, motebit_id: loaded.motebitId, device_id: loaded.deviceId, event_id: newEventId(), device_seq: 1, prev: GENESIS_HASH,
      clock: { l: 1, v: { [loaded.deviceId]: 1 } }, entity: 'memory/1', op: 'set', payload: { hello: 'world' }, ts: 0,
    };
    const sealed = sealEvent(event, loaded.credentials);
    expect(checkSeal(sealed, hashEvent(sealed), loaded.identityKey.publicKey)).toBeNull();
  });

  it('two motebits are two identities', async () => {
    const [a, b] = [newHome(), newHome()];
    const first = await createMotebit({ home: a, relayUrl: RELAY, secrets: new FileSecretStore(a) });
    const second = await createMotebit({ home: b, relayUrl: RELAY, secrets: new FileSecretStore(b) });
    expect(second.motebitId).not.toBe(first.motebitId);
    expect(second.encryptionKey.id).not.toBe(first.encryptionKey.id);
  });

  it('keeps the settings of an existing config and can create without encryption', async () => {
    const home = newHome();
    await updateConfig(home, { sync_url: RELAY, interval_seconds: 7, transport: 'http' });
    const created = await createMotebit({ home, secrets: new FileSecretStore(home), encryption: false });
    expect(created.relayUrl).toBe(RELAY);
    expect(await readConfig(home)).toMatchObject({ interval_seconds: 7, transport: 'http', encryption: false, motebit_id: created.motebitId });
  });

  it('never replaces an existing motebit', async () => {
    const home = newHome();
    const secrets = new FileSecretStore(home);
    const created = await createMotebit({ home, relayUrl: RELAY, secrets });
    await expect(createMotebit({ home, relayUrl: RELAY, secrets })).rejects.toThrow(IdentityExistsError);
    await expect(joinMotebit({ home, pairingCode: await createPairingCode({ home, secrets }), secrets })).rejects.toThrow(/already holds motebit/);
    expect((await loadLocalIdentity({ home, secrets })).deviceId).toBe(created.deviceId);
  });

  it('refuses a bad relay URL, or none, before writing anything', async () => {
    const home = newHome();
    const secrets = new FileSecretStore(home);
    await expect(createMotebit({ home, relayUrl: 'https://relay.example.com/api', secrets })).rejects.toThrow(/no path/);
    await expect(createMotebit({ home, secrets })).rejects.toThrow(ConfigError);
    expect(existsSync(motebitDir(home))).toBe(false);
  });

  it('with an invalid config, fails without storing any secret', async () => {
    const home = newHome();
    mkdirSync(motebitDir(home));
    writeFileSync(configPath(home), '{"sync_url": "https://relay.example.com", "colour": "blue"}');
    await expect(createMotebit({ home, relayUrl: RELAY, secrets: new FileSecretStore(home) })).rejects.toThrow(/unknown field "colour"/);
    expect(existsSync(join(motebitDir(home), 'secrets.json'))).toBe(false);
  });

  it('says what to run when nothing is set up, and when the secrets are in another store', async () => {
    const home = newHome();
    const secrets = new FileSecretStore(home);
    await expect(loadLocalIdentity({ home, secrets })).rejects.toThrow(/no motebit is set up .*\(no .*config\.json\): run "motebit-sync init".*"motebit-sync join"/);
    await updateConfig(home, { sync_url: RELAY });
    await expect(loadLocalIdentity({ home, secrets })).rejects.toThrow(/has no motebit_id/);
    const created = await createMotebit({ home, secrets });
    // The same config in another home, whose store does not hold the secrets.
    const other = newHome();
    mkdirSync(motebitDir(other));
    writeFileSync(configPath(other), readFileSync(configPath(home)));
    const error = await loadLocalIdentity({ home: other, secrets: new FileSecretStore(other) }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IdentityNotSetUpError);
    expect((error as Error).message).toContain(`master token of motebit ${created.motebitId}, device ${created.deviceId} is not in the file`);
    expect((error as Error).message).toContain(`"${masterTokenAccount(created.motebitId, created.deviceId)}"`);
    expect((error as Error).message).toMatch(/--keyring \/ MOTEBIT_KEYRING/);
  });

  it('refuses a stored master token that belongs to another motebit', async () => {
    const home = newHome();
    const secrets = new FileSecretStore(home);
    const created = await createMotebit({ home, relayUrl: RELAY, secrets });
    await secrets.set(masterTokenAccount(created.motebitId, created.deviceId), formatMasterToken(generateMasterToken()));
    await expect(loadLocalIdentity({ home, secrets })).rejects.toThrow(IdentityMismatchError);
    await secrets.set(masterTokenAccount(created.motebitId, created.deviceId), 'mbk1_garbage');
    await expect(loadLocalIdentity({ home, secrets })).rejects.toThrow(/stored master token .* is damaged/);
  });
});

describe('pairing and joinMotebit', () => {
  it('a new device joins the motebit of a pairing code: same identity and key, its own device', async () => {
    const [first, second] = [newHome(), newHome()];
    const existing = await createMotebit({ home: first, relayUrl: RELAY, secrets: new FileSecretStore(first), encryption: false });
    const code = await createPairingCode({ home: first, secrets: new FileSecretStore(first) });
    expect(decodePairingCode(code)).toMatchObject({ relayUrl: RELAY, encryption: false });

    const joined = await joinMotebit({ home: second, pairingCode: code, secrets: new FileSecretStore(second), deviceName: 'phone' });
    expect(joined.motebitId).toBe(existing.motebitId);
    expect(joined.deviceId).not.toBe(existing.deviceId);
    expect(joined.identityKey.publicKey.equals(existing.identityKey.publicKey)).toBe(true);
    expect(joined.encryptionKey).toEqual(existing.encryptionKey);
    expect(joined.relayUrl).toBe(RELAY);
    expect(joined.encryption).toBe(false);
    // The joining device certified its own key with the shared identity: the relay will accept it.
    expect(verifyDeviceCert(existing.identityKey.publicKey, existing.motebitId, joined.deviceId, toBase64Url(joined.deviceKey.publicKey), joined.cert)).toBe(true);
    const loaded = masterTokenIdentity(await loadLocalIdentity({ home: second, secrets: new FileSecretStore(second) }));
    expect([loaded.motebitId, loaded.deviceId, loaded.deviceName]).toEqual([existing.motebitId, joined.deviceId, 'phone']);
  });

  it('a mistyped pairing code fails clearly and writes nothing', async () => {
    const [first, second] = [newHome(), newHome()];
    await createMotebit({ home: first, relayUrl: RELAY, secrets: new FileSecretStore(first) });
    const code = await createPairingCode({ home: first, secrets: new FileSecretStore(first) });
    const typo = code.slice(0, 40) + (code[40] === 'x' ? 'y' : 'x') + code.slice(41);
    await expect(joinMotebit({ home: second, pairingCode: typo, secrets: new FileSecretStore(second) })).rejects.toThrow(PairingCodeError);
    await expect(joinMotebit({ home: second, pairingCode: 'hello', secrets: new FileSecretStore(second) })).rejects.toThrow(/not a pairing code/);
    expect(existsSync(motebitDir(second))).toBe(false);
  });

  it('forgetting one device leaves its settings and removes only its own secrets', async () => {
    const home = newHome();
    const secrets = new FileSecretStore(home);
    const created = await createMotebit({ home, relayUrl: RELAY, secrets, deviceName: 'laptop' });
    await secrets.set('unrelated', 'kept');
    expect(await forgetLocalIdentity({ home, secrets })).toHaveLength(2);
    expect(await readConfig(home)).toEqual({ sync_url: RELAY, interval_seconds: 30, encryption: true, transport: 'auto', device_name: 'laptop' });
    expect(await secrets.get(masterTokenAccount(created.motebitId, created.deviceId))).toBeNull();
    expect(await secrets.get('unrelated')).toBe('kept');
    expect(await forgetLocalIdentity({ home, secrets })).toEqual([]);
  });
});
