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
import { ConfigError, DeviceNameError, DeviceNameSchema, parseConfig, readConfig, saveConfig, updateConfig, type Config } from '../config/config.ts';
import { deviceKeyAccount, masterTokenAccount, rootSecretAccount, type SecretStore } from '../keyring/secret-store.ts';
import { memberFromDeviceSeed, memberFromSecret, type MemberSecret } from '../../shared/membership/author.ts';
import { deriveIdentity, type EncryptionKey } from './derive.ts';
import { createDeviceKey, deviceCredentials, deviceKeyFromSeed, formatDeviceSeed, parseDeviceSeed, type DeviceKey } from './device-key.ts';
import { MasterTokenFormatError, formatMasterToken, generateMasterToken, parseMasterToken } from './master-token.ts';
import { decodePairingCode, encodePairingCode } from './pairing.ts';

interface IdentityCommon {
  readonly motebitId: string;
  readonly deviceId: string;
  readonly deviceName: string | null;
  /** Signs this device's seals and relay tokens. */
  readonly deviceKey: SigningKey;
  /** What sealing takes: the device key, and (protocol 2) the identity's certificate of it. */
  readonly credentials: DeviceCredentials;
  /** Whether this device encrypts what it pushes (config `encryption`). */
  readonly encryption: boolean;
  readonly relayUrl: string | null;
}

/** Protocol 2: every device holds the motebit's master token (docs/security.md). */
export interface MasterTokenIdentity extends IdentityCommon {
  readonly kind: 'master-token';
  /** The device key's seed (secret): an upgrade keeps it as this device's member key. */
  readonly deviceSeed: Buffer;
  readonly identityKey: SigningKey;
  /** certifyDevice(identityKey, motebitId, deviceKey.publicKey) */
  readonly cert: string;
  readonly encryptionKey: EncryptionKey;
}

/** A motebit with a membership log (docs/keys.md): this device has its own keys, from its own root secret. */
export interface MemberIdentity extends IdentityCommon {
  readonly kind: 'member';
  /** This device as a member: its signing key (= deviceKey) and its X25519 key. */
  readonly member: MemberSecret;
}

export type LocalIdentity = MasterTokenIdentity | MemberIdentity;

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

/** A motebit with a membership log hands out no secret code: a new device is approved instead. */
export class PairsByApprovalError extends Error {
  override readonly name = 'PairsByApprovalError';
  constructor() {
    super('this motebit adds devices by approval, not with a code that carries its secret: run "motebit-sync join --relay URL" on the new device, then "motebit-sync approve CODE" here with the code it shows');
  }
}

const ROOT_SECRET_PREFIX = 'mrs1_';

/** The keyring form of a device's root secret: "mrs1_" + base64url of 32 bytes. */
export function formatRootSecret(secret: Uint8Array): string {
  if (secret.byteLength !== 32) throw new RangeError('a root secret is 32 bytes');
  return ROOT_SECRET_PREFIX + Buffer.from(secret).toString('base64url');
}

export function parseRootSecret(text: string): Buffer {
  const match = /^mrs1_([A-Za-z0-9_-]{43})$/.exec(text.trim());
  const secret = match?.[1] === undefined ? undefined : Buffer.from(match[1], 'base64url');
  if (!match || !secret || secret.byteLength !== 32 || secret.toString('base64url') !== match[1]) throw new Error('expected mrs1_ and 32 bytes of base64url');
  return secret;
}

export interface InstallMemberOptions {
  readonly home: string;
  readonly secrets: SecretStore;
  /** This device's new root secret (32 random bytes). */
  readonly rootSecret: Buffer;
  readonly motebitId: string;
  readonly relayUrl: string;
  readonly deviceName?: string | undefined;
  /** Default true. */
  readonly encryption?: boolean | undefined;
}

/**
 * Installs this device as a member of a motebit with a membership log (after init, an approved join or a
 * recovery): its root secret in the store, the identity in the config. If anything fails, what was
 * written is removed again. The caller keeps the verified log (the device's store) and tells the relay.
 */
export async function installMember({ home, secrets, rootSecret, motebitId, relayUrl, deviceName, encryption }: InstallMemberOptions): Promise<MemberIdentity> {
  const existing = await configWithoutIdentity(home);
  const name = deviceNameOrDefault(home, deviceName);
  const deviceId = memberFromSecret('device', rootSecret, name).key.id;
  const config: Config = { ...(existing ?? defaultConfig(home)), sync_url: parseRelayUrl(relayUrl), encryption: encryption ?? true, device_name: name, keys: 'per-device', motebit_id: motebitId, device_id: deviceId };
  const saved = await writeIdentity(home, secrets, [[rootSecretAccount(motebitId, deviceId), formatRootSecret(rootSecret)]], config);
  return assemble({ kind: 'member', rootSecret, config: saved, fromDeviceSeed: false }) as MemberIdentity;
}

/**
 * Turns this home's protocol-2 identity into a member of its motebit's membership log, in place: the
 * device key's seed becomes its root (same device id, same chain of events), the config says per-device,
 * and the master token and the old entry are deleted from the secret store — from now on this device
 * holds no secret shared with any other. Written new-first, so a crash half way leaves a home that opens.
 */
export async function upgradeInPlace({ home, secrets }: LocalIdentityOptions, identity: MasterTokenIdentity): Promise<void> {
  const { motebitId, deviceId } = identity;
  await secrets.set(rootSecretAccount(motebitId, deviceId), formatDeviceSeed(identity.deviceSeed));
  await updateConfig(home, { keys: 'per-device' });
  await secrets.delete(masterTokenAccount(motebitId, deviceId));
  await secrets.delete(deviceKeyAccount(motebitId, deviceId));
}

/** Whether the home already holds a motebit (init, join and recover never replace one): throws IdentityExistsError. */
export async function checkNoIdentity(home: string): Promise<void> {
  await configWithoutIdentity(home);
}

type IdentityParts =
  | { readonly kind: 'master-token'; readonly masterToken: Buffer; readonly device: DeviceKey; readonly config: Config }
  | { readonly kind: 'member'; readonly rootSecret: Buffer; readonly config: Config; readonly fromDeviceSeed: boolean };

function assemble(parts: IdentityParts): LocalIdentity {
  const { config } = parts;
  if (parts.kind === 'member') {
    const name = config.device_name ?? null;
    const member = parts.fromDeviceSeed ? memberFromDeviceSeed(parts.rootSecret, name) : memberFromSecret('device', parts.rootSecret, name);
    return {
      kind: 'member',
      motebitId: config.motebit_id!,
      deviceId: member.key.id,
      deviceName: config.device_name ?? null,
      deviceKey: member.signing,
      credentials: { deviceKey: member.signing, cert: null },
      encryption: config.encryption,
      relayUrl: config.sync_url ?? null,
      member,
    };
  }
  const { masterToken, device } = parts;
  const derived = deriveIdentity(masterToken);
  const credentials = deviceCredentials(derived.identityKey, derived.motebitId, device);
  return {
    kind: 'master-token',
    deviceSeed: device.seed,
    motebitId: derived.motebitId,
    deviceId: device.deviceId,
    deviceName: config.device_name ?? null,
    identityKey: derived.identityKey,
    deviceKey: device.signingKey,
    cert: credentials.cert!,
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
/**
 * Writes an identity: its secrets (account → text, in order), then the config naming it; if anything fails,
 * the secrets written are removed again. Remembers the config as it was (undoSetup). Answers the saved config.
 */
async function writeIdentity(home: string, secrets: SecretStore, entries: readonly (readonly [string, string])[], config: Config): Promise<Config> {
  const dirExisted = existsSync(motebitDir(home));
  const previous = await readFile(configPath(home), 'utf8').catch(() => null); // the file as it was, byte for byte
  const written: string[] = [];
  try {
    for (const [account, text] of entries) {
      await secrets.set(account, text);
      written.push(account);
    }
    const saved = await saveConfig(home, config);
    beforeInstall.set(configPath(home), { text: previous, dirExisted });
    return saved;
  } catch (error) {
    for (const account of written) await secrets.delete(account).catch(() => false);
    throw error;
  }
}

/** Stores the master token and a new device key, then writes the config (writeIdentity). */
async function install(home: string, secrets: SecretStore, masterToken: Buffer, config: Config): Promise<MasterTokenIdentity> {
  const device = createDeviceKey();
  const { motebitId } = deriveIdentity(masterToken);
  const saved = await writeIdentity(
    home,
    secrets,
    [
      [masterTokenAccount(motebitId, device.deviceId), formatMasterToken(masterToken)],
      [deviceKeyAccount(motebitId, device.deviceId), formatDeviceSeed(device.seed)],
    ],
    { ...config, motebit_id: motebitId, device_id: device.deviceId },
  );
  return assemble({ kind: 'master-token', masterToken, device, config: saved }) as MasterTokenIdentity;
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
export function deviceNameOrDefault(home: string, name: string | undefined): string {
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
export async function createMotebit({ home, relayUrl, secrets, deviceName, encryption }: CreateMotebitOptions): Promise<MasterTokenIdentity> {
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
export async function joinMotebit({ home, pairingCode, secrets, deviceName }: JoinMotebitOptions): Promise<MasterTokenIdentity> {
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

  if (config.keys === 'per-device') {
    const account = rootSecretAccount(motebitId, deviceId);
    const text = await secrets.get(account);
    if (text === null) throw missing('root secret', account);
    // An upgraded protocol-2 device keeps its device key's seed (dks1_) as its root: its device id stays.
    const fromDeviceSeed = text.trim().startsWith('dks1_');
    let rootSecret: Buffer;
    try {
      rootSecret = fromDeviceSeed ? parseDeviceSeed(text) : parseRootSecret(text);
    } catch (error) {
      throw new IdentityMismatchError(`the stored root secret (entry "${account}") is damaged: ${(error as Error).message}`, { cause: error });
    }
    const derivedId = (fromDeviceSeed ? memberFromDeviceSeed(rootSecret, null) : memberFromSecret('device', rootSecret, null)).key.id;
    if (derivedId !== deviceId) throw new IdentityMismatchError(`the stored root secret (entry "${account}") belongs to device ${derivedId}, but ${path} names ${deviceId}`);
    return { kind: 'member', rootSecret, config, fromDeviceSeed };
  }
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
  return { kind: 'master-token', masterToken, device, config };
}

/** This device's identity, keys and relay, from the config and the secret store. */
export async function loadLocalIdentity(options: LocalIdentityOptions): Promise<LocalIdentity> {
  return assemble(await readParts(options));
}

/** A pairing code for adding another device to this motebit (carries the master token: show it only to its owner). */
export async function createPairingCode(options: LocalIdentityOptions): Promise<string> {
  const parts = await readParts(options);
  if (parts.kind === 'member') throw new PairsByApprovalError();
  const { masterToken, config } = parts;
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
  for (const account of [masterTokenAccount(config.motebit_id, config.device_id), deviceKeyAccount(config.motebit_id, config.device_id), rootSecretAccount(config.motebit_id, config.device_id)]) {
    if (await secrets.delete(account)) deleted.push(account);
  }
  const { motebit_id: _m, device_id: _d, keys: _k, ...rest } = config;
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

/** The identity as a protocol-2 one (its master token's keys); throws for a device of a motebit with a membership log. */
export function masterTokenIdentity(identity: LocalIdentity): MasterTokenIdentity {
  if (identity.kind !== 'master-token') throw new TypeError(`device ${identity.deviceId} has its own keys (a membership log), not a master token`);
  return identity;
}
