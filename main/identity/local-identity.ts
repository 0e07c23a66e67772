// This device's identity, as the app and the CLI use it: set up a new motebit (init), join one with a
// pairing code (join), load it at start, and make a pairing code for the next device. Secrets go to the
// SecretStore (the OS keyring unless the file store was opted into); the config holds only public ids.
import { existsSync } from 'node:fs';
import { readFile, readdir, rm, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { hostname } from 'node:os';
import type { SigningKey } from '../../shared/crypto.ts';
import type { DeviceCredentials } from '../../shared/event.ts';
import { writeFileAtomic } from '../config/atomic-write.ts';
import { configPath, motebitDir } from '../config/home.ts';
import { FileSecretStore, SECRETS_FILE } from '../keyring/file-secret-store.ts';
import { parseRelayUrl } from '../config/relay-url.ts';
import { ConfigError, DeviceNameError, DeviceNameSchema, parseConfig, readConfig, saveConfig, type Config } from '../config/config.ts';
import { deviceKeyAccount, masterTokenAccount, type SecretStore } from '../keyring/secret-store.ts';
import { deriveIdentity, type EncryptionKey } from './derive.ts';
import { createDeviceKey, deviceCredentials, deviceKeyFromSeed, formatDeviceSeed, parseDeviceSeed, type DeviceKey } from './device-key.ts';
import { MasterTokenFormatError, formatMasterToken, generateMasterToken, parseMasterToken } from './master-token.ts';
import { decodePairingCode, encodePairingCode } from './pairing.ts';

export interface LocalIdentity {
  readonly motebitId: string;
  readonly deviceId: string;
  readonly deviceName: string | null;
  readonly identityKey: SigningKey;
  readonly deviceKey: SigningKey;
  /** certifyDevice(identityKey, motebitId, deviceKey.publicKey) */
  readonly cert: string;
  /** { deviceKey, cert }, what sealing takes. */
  readonly credentials: DeviceCredentials;
  readonly encryptionKey: EncryptionKey;
  /** Whether this device encrypts what it pushes (config `encryption`). */
  readonly encryption: boolean;
  readonly relayUrl: string | null;
}

/** This home has no motebit yet, or its secrets are not in this secret store. Says what to run. */
export class IdentityNotSetUpError extends Error {
  override readonly name = 'IdentityNotSetUpError';
}

/** The home already holds a motebit: init and join never replace one. */
export class IdentityExistsError extends Error {
  override readonly name = 'IdentityExistsError';
}

/** The keyring and the config disagree (a secret that derives another id than the config names). */
export class IdentityMismatchError extends Error {
  override readonly name = 'IdentityMismatchError';
}

const SET_UP_HINT = 'run "motebit-sync init" to create a motebit or "motebit-sync join" with a pairing code from another device';

interface IdentityParts {
  readonly masterToken: Buffer;
  readonly device: DeviceKey;
  readonly config: Config;
}

function assemble({ masterToken, device, config }: IdentityParts): LocalIdentity {
  const derived = deriveIdentity(masterToken);
  const credentials = deviceCredentials(derived.identityKey, derived.motebitId, device);
  return {
    motebitId: derived.motebitId,
    deviceId: device.deviceId,
    deviceName: config.device_name ?? null,
    identityKey: derived.identityKey,
    deviceKey: device.signingKey,
    cert: credentials.cert,
    credentials,
    encryptionKey: derived.encryptionKey,
    encryption: config.encryption,
    relayUrl: config.sync_url ?? null,
  };
}

async function configWithoutIdentity(home: string): Promise<Config | null> {
  const config = await readConfig(home); // an invalid config fails here, before any secret is written
  if (config?.motebit_id !== undefined) {
    throw new IdentityExistsError(`${configPath(home)} already holds motebit ${config.motebit_id} (device ${config.device_id}); use another --home for another device`);
  }
  return config;
}

/**
 * What each home's config was before this process installed an identity in it (null: there was none), so
 * that forgetting that identity (a setup whose enrolment failed) leaves the home exactly as it was, not a
 * config.json half-written with the relay and name of a setup that never happened.
 */
const beforeInstall = new Map<string, { text: string | null; dirExisted: boolean }>();

/** Stores the secrets, then writes the config; if anything fails, the secrets written are removed again. */
async function install(home: string, secrets: SecretStore, masterToken: Buffer, config: Config): Promise<LocalIdentity> {
  const dirExisted = existsSync(motebitDir(home));
  const previous = await readFile(configPath(home), 'utf8').catch(() => null); // the file as it was, byte for byte
  const device = createDeviceKey();
  const { motebitId } = deriveIdentity(masterToken);
  const accounts = [masterTokenAccount(motebitId, device.deviceId), deviceKeyAccount(motebitId, device.deviceId)] as const;
  const written: string[] = [];
  try {
    await secrets.set(accounts[0], formatMasterToken(masterToken));
    written.push(accounts[0]);
    await secrets.set(accounts[1], formatDeviceSeed(device.seed));
    written.push(accounts[1]);
    const saved = await saveConfig(home, { ...config, motebit_id: motebitId, device_id: device.deviceId });
    beforeInstall.set(configPath(home), { text: previous, dirExisted });
    return assemble({ masterToken, device, config: saved });
  } catch (error) {
    for (const account of written) await secrets.delete(account).catch(() => false);
    throw error;
  }
}

function defaultConfig(home: string): Config {
  return parseConfig({}, configPath(home));
}

/** The name a device gets when none is given: the host name, else "device" when that is not usable. */
export function defaultDeviceName(): string {
  const result = DeviceNameSchema.safeParse(hostname());
  return result.success ? result.data : 'device';
}

/** The given name, validated, else defaultDeviceName(). */
function deviceNameOrDefault(home: string, name: string | undefined): string {
  if (name === undefined) return defaultDeviceName();
  const result = DeviceNameSchema.safeParse(name);
  if (result.success) return result.data;
  throw new DeviceNameError(configPath(home), `invalid device name "${name}": ${result.error.issues[0]?.message ?? 'not valid'}`, ['device_name']);
}

export interface CreateMotebitOptions {
  readonly home: string;
  /** The relay; defaults to sync_url of an existing config. */
  readonly relayUrl?: string | undefined;
  readonly secrets: SecretStore;
  readonly deviceName?: string | undefined;
  /** Default true: new motebits encrypt end to end. */
  readonly encryption?: boolean | undefined;
}

/** A new motebit: new master token, new device key, secrets in the store, identity in the config. */
export async function createMotebit({ home, relayUrl, secrets, deviceName, encryption }: CreateMotebitOptions): Promise<LocalIdentity> {
  const existing = await configWithoutIdentity(home);
  const relay = relayUrl ?? existing?.sync_url;
  if (relay === undefined) throw new ConfigError(configPath(home), 'a relay URL is needed to create a motebit (e.g. https://relay.example.com)', ['sync_url']);
  const config: Config = {
    ...(existing ?? defaultConfig(home)),
    sync_url: parseRelayUrl(relay),
    encryption: encryption ?? true,
    device_name: deviceNameOrDefault(home, deviceName),
  };
  return install(home, secrets, generateMasterToken(), config);
}

export interface JoinMotebitOptions {
  readonly home: string;
  readonly pairingCode: string;
  readonly secrets: SecretStore;
  readonly deviceName?: string | undefined;
}

/**
 * Joins the motebit of a pairing code: stores its master token and a new device key, writes the config.
 * Enrolling the device on the relay (with the returned cert) is the caller's next step.
 */
export async function joinMotebit({ home, pairingCode, secrets, deviceName }: JoinMotebitOptions): Promise<LocalIdentity> {
  const pairing = decodePairingCode(pairingCode); // a bad code fails before anything is touched
  const existing = await configWithoutIdentity(home);
  const config: Config = {
    ...(existing ?? defaultConfig(home)),
    sync_url: pairing.relayUrl,
    encryption: pairing.encryption,
    device_name: deviceNameOrDefault(home, deviceName),
  };
  return install(home, secrets, pairing.masterToken, config);
}

export interface LocalIdentityOptions {
  readonly home: string;
  readonly secrets: SecretStore;
}

async function readParts({ home, secrets }: LocalIdentityOptions): Promise<IdentityParts> {
  const config = await readConfig(home);
  const path = configPath(home);
  if (config === null) throw new IdentityNotSetUpError(`no motebit is set up in ${home} (no ${path}): ${SET_UP_HINT}`);
  if (config.motebit_id === undefined || config.device_id === undefined) {
    throw new IdentityNotSetUpError(`no motebit is set up in ${home} (${path} has no motebit_id): ${SET_UP_HINT}`);
  }
  const { motebit_id: motebitId, device_id: deviceId } = config;
  const missing = (what: string, account: string) =>
    new IdentityNotSetUpError(
      `the ${what} of motebit ${motebitId}, device ${deviceId} is not in the ${secrets.location} (entry "${account}"). ` +
        `If this device was set up with another secret store, choose it again (--keyring / MOTEBIT_KEYRING); otherwise remove ${path} and ${SET_UP_HINT}`,
    );

  const tokenAccount = masterTokenAccount(motebitId, deviceId);
  const tokenText = await secrets.get(tokenAccount);
  if (tokenText === null) throw missing('master token', tokenAccount);
  let masterToken: Buffer;
  try {
    masterToken = parseMasterToken(tokenText);
  } catch (error) {
    if (error instanceof MasterTokenFormatError) throw new IdentityMismatchError(`the stored master token (entry "${tokenAccount}") is damaged: ${error.message}`, { cause: error });
    throw error;
  }
  const derivedId = deriveIdentity(masterToken).motebitId;
  if (derivedId !== motebitId) {
    throw new IdentityMismatchError(`the stored master token (entry "${tokenAccount}") belongs to motebit ${derivedId}, but ${path} names ${motebitId}`);
  }

  const keyAccount = deviceKeyAccount(motebitId, deviceId);
  const seedText = await secrets.get(keyAccount);
  if (seedText === null) throw missing('device key', keyAccount);
  const device = deviceKeyFromSeed(parseDeviceSeed(seedText));
  if (device.deviceId !== deviceId) {
    throw new IdentityMismatchError(`the stored device key (entry "${keyAccount}") belongs to device ${device.deviceId}, but ${path} names ${deviceId}`);
  }
  return { masterToken, device, config };
}

/** This device's identity, keys and relay, from the config and the secret store. */
export async function loadLocalIdentity(options: LocalIdentityOptions): Promise<LocalIdentity> {
  return assemble(await readParts(options));
}

/** A pairing code for adding another device to this motebit (carries the master token: show it only to its owner). */
export async function createPairingCode(options: LocalIdentityOptions): Promise<string> {
  const { masterToken, config } = await readParts(options);
  if (config.sync_url === undefined) throw new ConfigError(configPath(options.home), `${configPath(options.home)} has no sync_url: set the relay first`, ['sync_url']);
  return encodePairingCode({ masterToken, relayUrl: config.sync_url, encryption: config.encryption });
}

/**
 * Removes this device's secrets from the store and its identity from the config (settings stay). Other
 * homes, even of the same motebit, keep theirs. Returns the accounts that were deleted.
 */
export async function forgetLocalIdentity({ home, secrets }: LocalIdentityOptions): Promise<string[]> {
  const config = await readConfig(home);
  if (config?.motebit_id === undefined || config.device_id === undefined) return [];
  const deleted: string[] = [];
  for (const account of [masterTokenAccount(config.motebit_id, config.device_id), deviceKeyAccount(config.motebit_id, config.device_id)]) {
    if (await secrets.delete(account)) deleted.push(account);
  }
  const { motebit_id: _m, device_id: _d, ...rest } = config;
  await saveConfig(home, rest);
  return deleted;
}

/**
 * Undoes a setup (create or join) this process made, whose next step failed (enrolment): the secrets go,
 * and the config goes back to what it was before — removed when there was none — so a failed setup leaves
 * no half-written config.json. For a home this process did not set up, it is forgetLocalIdentity.
 */
export async function undoSetup(options: LocalIdentityOptions): Promise<string[]> {
  const path = configPath(options.home);
  if (!beforeInstall.has(path)) return forgetLocalIdentity(options);
  const previous = beforeInstall.get(path)!;
  const deleted = await forgetLocalIdentity(options);
  beforeInstall.delete(path);
  if (previous.text !== null) {
    await writeFileAtomic(path, previous.text);
    return deleted;
  }
  await rm(path, { force: true });
  if (!previous.dirExisted) {
    // The folder was made by this setup: what it leaves there is an emptied secrets file at most.
    const dir = motebitDir(options.home);
    const left = await readdir(dir).catch(() => []);
    if (left.every((name) => name === SECRETS_FILE)) {
      if (options.secrets instanceof FileSecretStore && (await options.secrets.isEmpty())) await rm(join(dir, SECRETS_FILE), { force: true });
      await rmdir(dir).catch(() => undefined);
    }
  }
  return deleted;
}
