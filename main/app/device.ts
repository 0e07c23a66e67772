// The services the tray app, the settings window and the CLI share: one device home, opened once, with
// its identity, secret store, event store, relay client and sync engine. Everything here is plain Node.
import { join } from 'node:path';
import { type JsonValue, type SealedEvent } from '../../shared/event.ts';
import type { DeviceInfo } from '../../shared/relay-api.ts';
import type { SyncStatus } from '../../shared/status.ts';
import { loadConfig, updateConfig, type Config } from '../config/config.ts';
import { motebitDir } from '../config/home.ts';
import { createMotebit, createPairingCode, joinMotebit, loadLocalIdentity, undoSetup, type LocalIdentity } from '../identity/local-identity.ts';
import { openSecretStore } from '../keyring/open.ts';
import type { SecretStore } from '../keyring/secret-store.ts';
import { EventStore, type ConflictRecord, type EntityState, type LocalWrite } from '../store/event-store.ts';
import { EncryptedTransport } from '../sync/encrypted-transport.ts';
import { SyncEngine, type CycleResult, type Logger, type RelayControl, type TransportPreference } from '../sync/engine.ts';
import { HttpTransport } from '../sync/http-transport.ts';
import { RelayClient, checkRelay } from '../sync/relay-client.ts';
import type { Transport, TransportKind } from '../sync/transport.ts';
import { WsTransport } from '../sync/ws-transport.ts';

export const STORE_FILE = 'device.db';

export interface HomeOptions {
  /** The device home: <home>/.motebit holds the config, the store and (opt-in) the secrets file. */
  readonly home: string;
  /** --keyring: 'os' (default) or 'file' (opt-in). */
  readonly keyring?: string | undefined;
  readonly env?: NodeJS.ProcessEnv;
  /** The OS keyring service name; tests use their own. */
  readonly keyringService?: string;
  readonly log?: Logger;
  /** Overrides the config's transport preference (--transport). */
  readonly transport?: TransportPreference | undefined;
}

export interface CreateOptions extends HomeOptions {
  readonly relayUrl: string;
  readonly deviceName?: string | undefined;
  readonly encryption?: boolean;
}

export interface JoinOptions extends HomeOptions {
  readonly pairingCode: string;
  readonly deviceName?: string | undefined;
}

/** One opened device home. Close it when done: the engine stops and the store closes. */
export class Device {
  readonly home: string;
  readonly identity: LocalIdentity;
  readonly config: Config;
  readonly store: EventStore;
  readonly engine: SyncEngine;
  /** What the engine asks the relay outside the event stream: its frontier, and enrolling again. */
  readonly relayControl: RelayControl;
  readonly relay: RelayClient;
  /** Set when secrets live outside the OS keyring (the file opt-in): show it. */
  readonly secretsWarning: string | null;
  private readonly secrets: SecretStore;

  private constructor(parts: { home: string; identity: LocalIdentity; config: Config; secrets: SecretStore; secretsWarning: string | null; log?: Logger | undefined; transport?: TransportPreference | undefined }) {
    this.home = parts.home;
    this.identity = parts.identity;
    this.config = parts.config;
    this.secrets = parts.secrets;
    this.secretsWarning = parts.secretsWarning;
    const { identity } = parts;
    if (!identity.relayUrl) throw new Error(`no relay URL is configured in ${parts.home}; set sync_url`);
    this.relay = new RelayClient({ relayUrl: identity.relayUrl, motebitId: identity.motebitId, deviceId: identity.deviceId, deviceKey: identity.deviceKey });
    this.store = EventStore.open(join(motebitDir(parts.home), STORE_FILE), {
      motebitId: identity.motebitId,
      deviceId: identity.deviceId,
      identityPublicKey: identity.identityKey.publicKey,
    });
    this.relayControl = {
      frontier: (at) => this.relay.frontier(at),
      // A relay that lost its data no longer knows this device; the identity key enrols it again. A
      // revoked device is refused (device_revoked) as long as the relay remembers the revocation.
      reenrol: async () => {
        await this.relay.enrolDevice({ identityKey: identity.identityKey, cert: identity.cert, ...(identity.deviceName ? { name: identity.deviceName } : {}) });
      },
    };
    this.engine = new SyncEngine({
      store: this.store,
      relay: this.relayControl,
      credentials: identity.credentials,
      connect: (kind) => this.connect(kind),
      transport: parts.transport ?? parts.config.transport,
      intervalMs: parts.config.interval_seconds * 1000,
      ...(parts.log ? { log: parts.log } : {}),
    });
  }

  /** Opens an existing device home (config + secrets); errors say to run init or join when there is none. */
  static async open(options: HomeOptions): Promise<Device> {
    // Opening reads the secrets a home already has (a missing keyring fails the read): no write probe.
    const { store: secrets, warning } = await openSecretStore({ home: options.home, keyring: options.keyring, env: options.env, service: options.keyringService, probe: false });
    const identity = await loadLocalIdentity({ home: options.home, secrets });
    const config = await loadConfig(options.home);
    return new Device({ home: options.home, identity, config, secrets, secretsWarning: warning, log: options.log, transport: options.transport });
  }

  /**
   * Creates a new motebit on a relay: checks the relay answers, makes the identity (secrets in the keyring,
   * identity in the config), enrols this device. If enrolment fails the home is left as it was.
   */
  static async create(options: CreateOptions): Promise<Device> {
    await checkRelay(options.relayUrl); // unreachable or not a relay: nothing is written
    const { store: secrets } = await openSecretStore({ home: options.home, keyring: options.keyring, env: options.env, service: options.keyringService });
    const identity = await createMotebit({ home: options.home, relayUrl: options.relayUrl, secrets, deviceName: options.deviceName, encryption: options.encryption });
    return Device.enrolOrForget(options, secrets, identity);
  }

  /** Joins the motebit of a pairing code from another device and enrols this device on its relay. */
  static async join(options: JoinOptions): Promise<Device> {
    const { store: secrets } = await openSecretStore({ home: options.home, keyring: options.keyring, env: options.env, service: options.keyringService });
    const identity = await joinMotebit({ home: options.home, pairingCode: options.pairingCode, secrets, deviceName: options.deviceName });
    return Device.enrolOrForget(options, secrets, identity);
  }

  private static async enrolOrForget(options: HomeOptions, secrets: SecretStore, identity: LocalIdentity): Promise<Device> {
    try {
      const relay = new RelayClient({ relayUrl: identity.relayUrl!, motebitId: identity.motebitId, deviceId: identity.deviceId, deviceKey: identity.deviceKey });
      await relay.enrolDevice({ identityKey: identity.identityKey, cert: identity.cert, ...(identity.deviceName ? { name: identity.deviceName } : {}) });
    } catch (error) {
      await undoSetup({ home: options.home, secrets }); // the home as it was: no half-written config
      throw error;
    }
    return Device.open(options);
  }

  private connect(kind: TransportKind): Transport {
    const { identity } = this;
    const inner: Transport =
      kind === 'websocket'
        ? new WsTransport({ relayUrl: identity.relayUrl!, motebitId: identity.motebitId, deviceId: identity.deviceId, deviceKey: identity.deviceKey })
        : new HttpTransport(this.relay);
    if (!identity.encryption) return inner;
    const { id, key } = identity.encryptionKey;
    return new EncryptedTransport({ inner, motebitId: identity.motebitId, keys: { current: { id, key }, byId: (keyId) => (keyId === id ? key : undefined) } });
  }

  // ---- sync ---------------------------------------------------------------------------------------

  status(): SyncStatus {
    return this.engine.status();
  }

  syncNow(): Promise<CycleResult> {
    return this.engine.syncNow();
  }

  // ---- the log ------------------------------------------------------------------------------------

  put(entity: string, value: JsonValue): SealedEvent {
    return this.store.put(entity, value);
  }

  delete(entity: string): SealedEvent {
    return this.store.delete(entity);
  }

  /** Many writes in one transaction: all or none. */
  write(writes: readonly LocalWrite[]): SealedEvent[] {
    return this.store.appendMany(writes);
  }

  get(entity: string): EntityState | undefined {
    return this.store.get(entity);
  }

  state(): EntityState[] {
    return this.store.state();
  }

  conflicts(options: { includeResolved?: boolean } = {}): ConflictRecord[] {
    return this.store.conflicts(options);
  }

  markReviewed(conflictId: number): void {
    this.store.markReviewed(conflictId);
  }

  /** Keeps one side of a conflict by writing it again as a new event (no merge); the next sync sends it. */
  resolve(conflictId: number, keepEventId: string): SealedEvent {
    return this.store.resolveConflict(conflictId, keepEventId);
  }

  // ---- devices and pairing ------------------------------------------------------------------------

  devices(): Promise<DeviceInfo[]> {
    return this.relay.listDevices();
  }

  async revoke(deviceId: string): Promise<DeviceInfo> {
    return (await this.relay.revokeDevice({ identityKey: this.identity.identityKey, deviceId })).device;
  }

  /** A pairing code for a new device: it carries the master token out of band, never through the relay. */
  pairingCode(): Promise<string> {
    return createPairingCode({ home: this.home, secrets: this.secrets });
  }

  async setSyncInterval(seconds: number): Promise<Config> {
    return updateConfig(this.home, { interval_seconds: seconds });
  }

  async close(): Promise<void> {
    await this.engine.stop();
    this.store.close();
  }
}
