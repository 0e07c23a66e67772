// The services the tray app, the settings window and the CLI share: one device home, opened once, with
// its identity, secret store, event store, relay client and sync engine. Everything here is plain Node.
import { join } from 'node:path';
import { type JsonValue, type SealedEvent } from '../../shared/portable/event.ts';
import { verifyDeviceCert } from '../../shared/event.ts';
import { fromBase64Url } from '../../shared/encoding.ts';
import { identitySnapshotSigner, membershipSnapshotSigner } from '../../shared/snapshot/signer.ts';
import { coveredEvents } from '../../shared/snapshot/content.ts';
import { DEFAULT_SNAPSHOT_EVERY, DEFAULT_SNAPSHOT_EVERY_MB, SnapshotSync, type MadeSnapshot } from '../sync/snapshot-sync.ts';
import { SNAPSHOT_REVISION, type DeviceInfo, type SnapshotInfo } from '../../shared/portable/relay-api.ts';
import type { SyncProgress, SyncStatus } from '../../shared/portable/status.ts';
import { loadConfig, updateConfig, type Config } from '../config/config.ts';
import { ensurePrivateDir, motebitDir } from '../config/home.ts';
import { randomBytes } from 'node:crypto';
import { createMotebit, createPairingCode, deviceNameOrDefault, checkNoIdentity, installMember, joinMotebit, loadLocalIdentity, undoSetup, upgradeInPlace, type LocalIdentity, type MasterTokenIdentity, type MemberIdentity } from '../identity/local-identity.ts';
import { formatRecoveryKey, generateRecoverySecret, parseRecoveryKey, recoveryMember } from '../identity/recovery-key.ts';
import { genesisEntry, memberFromDeviceSeed, memberFromSecret, addEntry, recoveryEntry, removeEntry, type MemberSecret } from '../../shared/membership/author.ts';
import { MembershipError, applyEntry, verifyLog, type MembershipState } from '../../shared/membership/log.ts';
import { openKeys } from '../../shared/membership/open-keys.ts';
import { MembershipRelayError, MembershipSync } from '../sync/membership-sync.ts';
import { MemberKeyring } from '../sync/member-keyring.ts';
import { InvalidStateError, SyncFirstError } from './error-words.ts';
import { startApproval, startJoin } from '../identity/pairing-flow.ts';
import { SyncFailure, type MembershipHook } from '../sync/engine.ts';
import { TransportError, type ReceivedEvent } from '../sync/transport.ts';
import { openSecretStore } from '../keyring/open.ts';
import type { SecretStore } from '../keyring/secret-store.ts';
import { EventStore, type ConflictRecord, type EntityState, type LocalWrite } from '../store/event-store.ts';
import { EncryptedTransport, type BodyKeyring } from '../sync/encrypted-transport.ts';
import { SyncEngine, type CycleResult, type Logger, type RelayControl, type TransportPreference } from '../sync/engine.ts';
import { HttpTransport } from '../sync/http-transport.ts';
import { RelayClient, checkRelay } from '../sync/relay-client.ts';
import type { Transport, TransportKind } from '../sync/transport.ts';
import { WsTransport } from '../sync/ws-transport.ts';

export const STORE_FILE = 'device.db';

/** A relay from before snapshots (revision 3) keeps none. */
const NO_SNAPSHOT_ROUTES = 'this relay keeps no snapshots (it runs an older version): new devices download the whole history; ask its operator to update it';

/** The relay's latest snapshot as the Storage section shows it: changes covered, when, its size, who saved it. */
export interface LatestSnapshotFigures {
  readonly covered: number;
  readonly createdAt: number;
  readonly bytes: number;
  readonly deviceId: string;
}

export interface SnapshotFigures {
  /** Events this device holds, and its database file's size. */
  readonly events: number;
  readonly databaseBytes: number;
  readonly latest: LatestSnapshotFigures | null;
}

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
  /**
   * "per-device": each device its own keys and a signed membership log, with a recovery key (docs/keys.md).
   * Absent: protocol 2, one master token shared by every device.
   */
  readonly keys?: 'per-device' | undefined;
}

export interface JoinByApprovalOptions extends HomeOptions {
  readonly relayUrl: string;
  readonly deviceName?: string | undefined;
  /** The one-time code to show (text; a QR carries the same), and when it stops working (ms since the epoch). */
  readonly onCode: (code: string, expiresAt: number) => void | Promise<void>;
  /** A member answered: the six digits to show; the person compares them with the member's screen. */
  readonly onOffer: (offered: { motebitId: string; sas: string }) => void | Promise<void>;
  readonly signal?: AbortSignal;
  /** Between two reads of the relay while waiting (tests make it short). */
  readonly pollMs?: number;
}

/** A new device that answered a code, waiting for the person to compare the digits and approve. */
export interface PendingApproval {
  readonly deviceId: string;
  readonly name: string | null;
  /** The six digits both screens must show. */
  readonly sas: string;
  /** Appends the add entry (this device signs it, with the current content key wrapped for the new device). */
  approve(): Promise<void>;
}

export interface UpgradeOptions extends HomeOptions {
  /** A later upgrade (another device upgraded the motebit first) joins by approval: the code to show. */
  readonly onCode?: JoinByApprovalOptions['onCode'];
  readonly onOffer?: JoinByApprovalOptions['onOffer'];
  readonly signal?: AbortSignal;
  readonly pollMs?: number;
}

export interface RecoverOptions extends HomeOptions {
  readonly relayUrl: string;
  readonly motebitId: string;
  /** The recovery key's text (MBR1-…), as the person typed it. */
  readonly recoveryKey: string;
  readonly deviceName?: string | undefined;
  /** Devices the recovery key removes first (a thief's). */
  readonly remove?: readonly string[];
}

export interface JoinOptions extends HomeOptions {
  readonly pairingCode: string;
  readonly deviceName?: string | undefined;
}

/** A relay client that signs as this member. */
function memberRelay(identity: MemberIdentity): RelayClient {
  return new RelayClient({ relayUrl: identity.relayUrl!, motebitId: identity.motebitId, deviceId: identity.deviceId, deviceKey: identity.deviceKey });
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
  /** A motebit with a membership log: the log as this device verified it (null for protocol 2). */
  readonly membership: MembershipSync | null;
  /** Snapshots on the relay (issue 12): join from one, acknowledge, make one. */
  readonly snapshots: SnapshotSync;
  private readonly secrets: SecretStore;
  /** The content keys this member holds (a motebit with a membership log). */
  private memberKeys: MemberKeyring | null = null;
  /** Made at init, shown once: taken by takeRecoveryKey. */
  private recoveryKeyText: string | null = null;
  /** Opens events again after a refresh brought a newer epoch (reopen); made on first use. */
  private opener: EncryptedTransport | null = null;

  private constructor(parts: { home: string; identity: LocalIdentity; config: Config; secrets: SecretStore; secretsWarning: string | null; log?: Logger | undefined; transport?: TransportPreference | undefined }) {
    this.home = parts.home;
    this.identity = parts.identity;
    this.config = parts.config;
    this.secrets = parts.secrets;
    this.secretsWarning = parts.secretsWarning;
    const { identity } = parts;
    if (!identity.relayUrl) throw new Error(`no relay URL is configured in ${parts.home}; set sync_url`);
    this.relay = new RelayClient({ relayUrl: identity.relayUrl, motebitId: identity.motebitId, deviceId: identity.deviceId, deviceKey: identity.deviceKey });
    const path = join(motebitDir(parts.home), STORE_FILE);
    if (identity.kind === 'member') {
      this.store = EventStore.open(path, { motebitId: identity.motebitId, deviceId: identity.deviceId, membership: () => this.membership?.state ?? null });
      this.membership = new MembershipSync(this.store.membership, this.relay, identity.motebitId);
    } else {
      this.store = EventStore.open(path, { motebitId: identity.motebitId, deviceId: identity.deviceId, identityPublicKey: identity.identityKey.publicKey });
      this.membership = null;
    }
    this.relayControl = {
      frontier: (at) => this.relay.frontier(at),
      // A relay that lost its data no longer knows this device. Protocol 2: the identity key enrols it
      // again; a revoked device is refused (device_revoked) as long as the relay remembers the revocation.
      // A membership log: the device offers the relay its log again, and the log says who is a member.
      reenrol: async () => {
        if (identity.kind === 'member') await this.refreshMembership();
        else await this.relay.enrolDevice({ identityKey: identity.identityKey, cert: identity.cert, ...(identity.deviceName ? { name: identity.deviceName } : {}) });
      },
    };
    const membershipHook: MembershipHook | null =
      identity.kind === 'member'
        ? {
            head: () => this.membership!.state?.head.seq ?? -1,
            refresh: async () => {
              await this.refreshMembership();
            },
            reopen: (event) => this.reopen(event),
          }
        : null;
    this.snapshots = new SnapshotSync({
      store: this.store,
      relay: this.relay,
      credentials: identity.credentials,
      keys: () => this.bodyKeys(),
      signer: () => (identity.kind === 'member' ? membershipSnapshotSigner(this.membership!.state!) : identitySnapshotSigner(identity.motebitId, identity.identityKey.publicKey)),
      writers: () => this.liveWriters(),
      downloadDir: join(motebitDir(parts.home), 'snapshot-download'),
      uploadDir: join(motebitDir(parts.home), 'snapshot-upload'),
      every: parts.config.snapshot_every_events ?? DEFAULT_SNAPSHOT_EVERY,
      everyMb: parts.config.snapshot_every_mb ?? DEFAULT_SNAPSHOT_EVERY_MB,
    });
    this.engine = new SyncEngine({
      ...(membershipHook ? { membership: membershipHook } : {}),
      snapshots: { join: (progress) => this.withSnapshotRoutes(() => this.snapshots.join(progress)), afterCycle: (progress) => this.withSnapshotRoutes(() => this.snapshots.afterCycle(progress)) },
      store: this.store,
      relay: this.relayControl,
      credentials: identity.credentials,
      connect: (kind) => this.connect(kind),
      transport: parts.transport ?? parts.config.transport,
      intervalMs: parts.config.interval_seconds * 1000,
      ...(parts.log ? { log: parts.log } : {}),
    });
  }

  /** The content keys snapshots are sealed with and opened by; null when the motebit does not encrypt. */
  private bodyKeys(): BodyKeyring | null {
    const { identity } = this;
    if (!identity.encryption) return null;
    if (identity.kind === 'member') return this.memberKeys;
    const { id, key } = identity.encryptionKey;
    return { current: { id, key }, byId: (keyId) => (keyId === id ? key : undefined) };
  }

  /**
   * The devices that may still write, with the keys that sign their acknowledgements: the members of the
   * verified log, or (protocol 2) the relay's live devices whose certificate the identity key made.
   */
  private async liveWriters(): Promise<{ deviceId: string; key: Uint8Array }[]> {
    const { identity } = this;
    if (identity.kind === 'member') {
      return [...this.membership!.state!.members.values()].filter((m) => m.key.role === 'device' && m.removedAt === null).map((m) => ({ deviceId: m.key.id, key: fromBase64Url(m.key.sign_key) }));
    }
    const devices = await this.relay.listDevices();
    return devices
      .filter((d) => d.revoked_at === null && d.cert !== undefined && verifyDeviceCert(identity.identityKey.publicKey, identity.motebitId, d.device_id, d.key, d.cert))
      .map((d) => ({ deviceId: d.device_id, key: fromBase64Url(d.key) }));
  }

  /** A relay from before snapshots (revision 3, no such routes) has none: nothing to join from, nothing to acknowledge. */
  private async withSnapshotRoutes<T>(run: () => Promise<T>): Promise<T | null> {
    try {
      return await run();
    } catch (error) {
      // A 404 there means "no such route" only from a relay older than snapshots: it says its revision
      // (asked each time, since a relay may be updated while this runs). From a newer one it is a failure.
      if (!(error instanceof TransportError && error.code === 'not_found')) throw error;
      const { revision } = await this.relay.health();
      if (revision < SNAPSHOT_REVISION) return null;
      throw new SyncFailure('relay', `the relay says it keeps snapshots (version ${revision}) but answered that it has none of them`, 'sync again later; if this keeps happening the relay is misconfigured or faulty: tell its operator, or move to another relay', error.message);
    }
  }

  /** Makes a snapshot now and uploads it (motebit-sync snapshot). */
  makeSnapshot(progress?: (progress: SyncProgress) => void): Promise<MadeSnapshot> {
    return this.snapshots.make(progress);
  }

  /** "Save a snapshot now": syncs first (a snapshot of everything there is); a failed sync saves none. */
  async saveSnapshot(progress?: (progress: SyncProgress) => void): Promise<MadeSnapshot> {
    const cycle = await this.syncNow();
    if (!cycle.ok) throw new SyncFirstError('no snapshot was saved', cycle.error ?? { kind: 'local', message: 'unknown', nextStep: 'sync again' }, 'then save the snapshot again');
    const made = await this.withSnapshotRoutes(() => this.makeSnapshot(progress));
    if (made === null) throw new InvalidStateError(NO_SNAPSHOT_ROUTES);
    return made;
  }

  /** What this device holds: its events and the size of its database file. */
  holdings(): { events: number; databaseBytes: number } {
    return { events: this.store.eventCount(), databaseBytes: this.store.databaseBytes() };
  }

  /** The relay's latest snapshot (null: none yet) with what this device holds. A relay that cannot be asked fails it. */
  async snapshotInfo(): Promise<SnapshotFigures> {
    const latest = await this.latestSnapshot();
    return {
      ...this.holdings(),
      latest: latest && { covered: coveredEvents(latest.covers), createdAt: latest.created_at, bytes: latest.size, deviceId: latest.device_id },
    };
  }

  /** Drops this device's old history below the relay's latest snapshot (where it no longer matters) and shrinks its database. */
  async pruneToLatest(): Promise<{ dropped: number; bytesBefore: number; bytesAfter: number }> {
    const latest = await this.latestSnapshot();
    if (!latest) throw new InvalidStateError('there is no snapshot on the relay yet: save one first');
    return this.snapshots.prune(latest.covers);
  }

  private async latestSnapshot(): Promise<SnapshotInfo | null> {
    const latest = await this.withSnapshotRoutes(() => this.relay.latestSnapshot());
    if (latest === null) throw new InvalidStateError(NO_SNAPSHOT_ROUTES);
    return latest.snapshot;
  }

  /** Opens an existing device home (config + secrets); errors say to run init or join when there is none. */
  static async open(options: HomeOptions, seed?: readonly unknown[]): Promise<Device> {
    // Opening reads the secrets a home already has (a missing keyring fails the read): no write probe.
    const { store: secrets, warning } = await openSecretStore({ home: options.home, keyring: options.keyring, env: options.env, service: options.keyringService, probe: false });
    const identity = await loadLocalIdentity({ home: options.home, secrets });
    const config = await loadConfig(options.home);
    await ensurePrivateDir(options.home); // a folder made wider by an older version or a copy is tightened
    const device = new Device({ home: options.home, identity, config, secrets, secretsWarning: warning, log: options.log, transport: options.transport });
    try {
      await device.openMemberKeys(seed);
    } catch (error) {
      device.store.close();
      throw error;
    }
    return device;
  }

  /**
   * A member's log and keys, at open: the log its store holds (or `seed`, a log it verified while being set
   * up), else the relay's. Its content keys are opened from it.
   */
  private async openMemberKeys(seed: readonly unknown[] | undefined): Promise<void> {
    const { identity, membership } = this;
    if (identity.kind !== 'member' || !membership) return;
    if (!membership.state && seed) membership.adopt(seed);
    if (!membership.state) await this.refreshMembershipLog();
    this.memberKeys = await MemberKeyring.open(membership.state!, { id: identity.deviceId, kemPrivateKey: identity.member.kem.privateKey });
  }

  /** The relay's membership log, verified onto this device's (re-seeding a relay that lost it). */
  private async refreshMembershipLog(): Promise<MembershipState> {
    try {
      return (await this.membership!.refresh()).state;
    } catch (error) {
      if (error instanceof MembershipRelayError) {
        throw new SyncFailure('integrity', error.message, 'nothing of it was used: this device keeps the membership log it checked before. If this keeps happening the relay is faulty or tampered with: move to another relay');
      }
      throw error;
    }
  }

  /** Refreshes the log and the keys from it; a device the log says was removed is told so, as the relay would. */
  private async refreshMembership(): Promise<MembershipState> {
    const state = await this.refreshMembershipLog();
    const me = state.members.get(this.identity.deviceId);
    if (!me || me.removedAt !== null) throw new TransportError('auth', 'this device was removed from the motebit by another of its devices', { code: 'device_revoked' });
    try {
      await this.memberKeys?.update(state);
    } catch (error) {
      if (error instanceof MembershipError) throw new SyncFailure('integrity', `the membership log gives this device a key that does not open: ${error.message}`, 'nothing of it was used. Ask another device to remove this one and add it again, or recover with the recovery key');
      throw error;
    }
    return state;
  }

  /** Opens again an event that did not open under the keys this device had (it now holds a newer epoch). */
  private reopen(event: ReceivedEvent): ReceivedEvent {
    if (!this.memberKeys || !this.identity.encryption) return event;
    // One opener for the device (its imported keys are reused); its keyring follows every refresh.
    this.opener ??= new EncryptedTransport({ inner: new HttpTransport(this.relay), motebitId: this.identity.motebitId, keys: this.memberKeys });
    const { problem: _problem, ...sealed } = event;
    return this.opener.openEvent(sealed);
  }

  /**
   * Creates a new motebit on a relay: checks the relay answers, makes the identity (secrets in the keyring,
   * identity in the config), enrols this device. If enrolment fails the home is left as it was.
   */
  static async create(options: CreateOptions): Promise<Device> {
    await checkRelay(options.relayUrl); // unreachable or not a relay: nothing is written
    const { store: secrets } = await openSecretStore({ home: options.home, keyring: options.keyring, env: options.env, service: options.keyringService });
    if (options.keys === 'per-device') return Device.found(options, secrets);
    const identity = await createMotebit({ home: options.home, relayUrl: options.relayUrl, secrets, deviceName: options.deviceName, encryption: options.encryption });
    return Device.enrolOrForget(options, secrets, identity);
  }

  /** Joins the motebit of a pairing code from another device and enrols this device on its relay. */
  static async join(options: JoinOptions): Promise<Device> {
    const { store: secrets } = await openSecretStore({ home: options.home, keyring: options.keyring, env: options.env, service: options.keyringService });
    const identity = await joinMotebit({ home: options.home, pairingCode: options.pairingCode, secrets, deviceName: options.deviceName });
    return Device.enrolOrForget(options, secrets, identity);
  }

  /**
   * A new motebit with a membership log: this device's root secret and a recovery key, the genesis entry
   * that founds it (its id commits to it), offered to the relay. The recovery key is shown once
   * (takeRecoveryKey). If the relay refuses, the home is left as it was.
   */
  private static async found(options: CreateOptions, secrets: SecretStore): Promise<Device> {
    await checkNoIdentity(options.home);
    const rootSecret = randomBytes(32);
    const recoverySecret = generateRecoverySecret();
    const name = deviceNameOrDefault(options.home, options.deviceName);
    const founder = memberFromSecret('device', rootSecret, name);
    const { entry } = await genesisEntry(founder, recoveryMember(recoverySecret).key, Date.now());
    const { motebitId } = verifyLog([entry]);
    const identity = await installMember({ home: options.home, secrets, rootSecret, motebitId, relayUrl: options.relayUrl, deviceName: name, encryption: options.encryption });
    try {
      const relay = memberRelay(identity);
      await relay.offerMembership([entry]);
      // A genesis needs no token: read it back signed, so a relay that knows itself by another address (and
      // so refuses every token made for this one) fails the setup now, not every sync after it.
      await relay.membership(-1);
    } catch (error) {
      await undoSetup({ home: options.home, secrets });
      throw error;
    }
    const device = await Device.open(options, [entry]);
    device.recoveryKeyText = formatRecoveryKey(recoverySecret);
    return device;
  }

  /**
   * Every device lost: the recovery key reads the motebit's log from the relay, removes the devices named
   * (a thief's), and adds this new device, which then syncs the whole motebit. The key is never stored.
   */
  static async recover(options: RecoverOptions): Promise<Device> {
    const secret = parseRecoveryKey(options.recoveryKey); // a mistyped key fails before anything is touched
    await checkNoIdentity(options.home);
    await checkRelay(options.relayUrl);
    const { store: secrets } = await openSecretStore({ home: options.home, keyring: options.keyring, env: options.env, service: options.keyringService });
    const recovery = recoveryMember(secret);
    const relay = new RelayClient({ relayUrl: options.relayUrl, motebitId: options.motebitId, deviceId: recovery.key.id, deviceKey: recovery.signing });
    const { entries } = await relay.membership(-1);
    let state = verifyLog(entries, options.motebitId);
    if (state.recoveryId !== recovery.key.id) throw new InvalidStateError('this recovery key is not (or no longer) the recovery key of that motebit');
    const log = [...entries];
    const append = async (entry: unknown): Promise<void> => {
      await relay.offerMembership([entry]);
      state = applyEntry(state, entry);
      log.push(entry);
    };
    const currentKey = async (): Promise<Buffer> => (await openKeys(state, { id: recovery.key.id, kemPrivateKey: recovery.kem.privateKey })).get(state.epochs.at(-1)!.keyId)!;
    for (const deviceId of options.remove ?? []) {
      const target = state.members.get(deviceId);
      if (!target || target.removedAt !== null || target.key.role !== 'device') throw new InvalidStateError(`${deviceId} is not a device of this motebit`);
      const { entry } = await removeEntry(state, recovery, deviceId, 0, await currentKey(), Date.now());
      await append(entry);
    }
    const rootSecret = randomBytes(32);
    const name = deviceNameOrDefault(options.home, options.deviceName);
    const member = memberFromSecret('device', rootSecret, name);
    await append(await addEntry(state, recovery, member.key, await currentKey(), Date.now()));
    await installMember({ home: options.home, secrets, rootSecret, motebitId: options.motebitId, relayUrl: options.relayUrl, deviceName: name });
    return Device.open(options, log);
  }

  /**
   * A new device joins a motebit with a membership log by approval: it shows a one-time code, waits for a
   * member to answer, shows the six digits, and once approved verifies the log and opens its keys. Nothing
   * is written to the home until it is approved; nothing secret is ever sent or typed.
   */
  static async joinByApproval(options: JoinByApprovalOptions): Promise<Device> {
    await checkNoIdentity(options.home);
    await checkRelay(options.relayUrl);
    const { store: secrets } = await openSecretStore({ home: options.home, keyring: options.keyring, env: options.env, service: options.keyringService });
    const rootSecret = randomBytes(32);
    const name = deviceNameOrDefault(options.home, options.deviceName);
    const member = memberFromSecret('device', rootSecret, name);
    const { motebitId, entries } = await Device.approvedJoin(options.relayUrl, member, options);
    await installMember({ home: options.home, secrets, rootSecret, motebitId, relayUrl: options.relayUrl, deviceName: name });
    return Device.open(options, entries);
  }

  /**
   * The new (or later-upgrading) device's side of an approval: its code shown, a member's offer (of
   * `expectMotebit` when given), the digits shown, then the log it verified once approved.
   */
  private static async approvedJoin(
    relayUrl: string,
    member: MemberSecret,
    options: Pick<JoinByApprovalOptions, 'onCode' | 'onOffer' | 'signal' | 'pollMs'>,
    expectMotebit?: string,
  ): Promise<{ motebitId: string; entries: readonly unknown[] }> {
    const join = await startJoin({ relayUrl, member, ...(options.pollMs === undefined ? {} : { pollMs: options.pollMs }) });
    await options.onCode(join.code, join.expiresAt);
    const waiting = options.signal ? { signal: options.signal } : {};
    const offered = await join.waitForOffer(waiting);
    if (expectMotebit !== undefined && offered.motebitId !== expectMotebit) throw new InvalidStateError('the device that answered the code offered another motebit; nothing was changed');
    await options.onOffer({ motebitId: offered.motebitId, sas: offered.sas });
    return { motebitId: offered.motebitId, entries: (await join.waitForApproval(waiting)).entries };
  }

  /**
   * This member reads a new device's code: offers the motebit, waits for the new device's answer and checks
   * the code's commitment. Nothing changes until `approve` is called on what it returns.
   */
  async approvalFor(code: string, options: { signal?: AbortSignal; pollMs?: number } = {}): Promise<PendingApproval> {
    const { identity, state, currentKey, relay } = await this.memberContext();
    const approval = await startApproval({ relay, code, state, ...(options.signal ? { signal: options.signal } : {}), ...(options.pollMs === undefined ? {} : { pollMs: options.pollMs }) });
    return {
      deviceId: approval.id,
      name: approval.name,
      sas: approval.sas,
      approve: async () => {
        await approval.approve(identity.member, currentKey, await this.legacySeqOf(state, approval.id));
        await this.refreshMembership();
      },
    };
  }

  /**
   * Upgrades a protocol-2 (master token) device in place, keeping its motebit id, its device id and every
   * event. The first device to upgrade founds the membership log: its genesis is signed by the old identity
   * key too, chains the old content key as epoch 0, and records each old device's last event it holds
   * (those stay valid; anything the old shared key signs later is refused). Later devices join that log by
   * approval (onCode/onOffer), keeping their events up to their last one. Afterwards the master token is
   * gone from this device. The first upgrade answers the new recovery key, to be shown once.
   */
  static async upgrade(options: UpgradeOptions): Promise<{ device: Device; recoveryKey: string | null }> {
    const old = await Device.open(options);
    let open = true;
    const reopen = async (identity: MasterTokenIdentity, log: readonly unknown[]): Promise<Device> => {
      await old.close();
      open = false;
      await upgradeInPlace({ home: options.home, secrets: old.secrets }, identity);
      return Device.open(options, log);
    };
    try {
      const { identity } = old;
      if (identity.kind !== 'master-token') throw new InvalidStateError('this device has its own keys already: there is nothing to upgrade');
      // The relay must hold all this device wrote (what a later approval keeps valid is what the relay holds).
      const cycle = await old.syncNow();
      if (old.store.pendingOutCount() > 0) throw new InvalidStateError(`this device has changes the relay has not taken yet (${cycle.error?.message ?? 'sync again'}); sync, then upgrade; nothing was changed`);
      const member = memberFromDeviceSeed(identity.deviceSeed, identity.deviceName);
      const { entries } = await old.relay.membership(-1);
      if (entries.length === 0) {
        // The first upgrade records what this device holds of every device as what stays valid: it must hold everything.
        if (!cycle.ok) throw new InvalidStateError(`this device must sync before it upgrades, and the sync failed (${cycle.error?.message ?? 'unknown'}); nothing was changed`);
        const recoverySecret = generateRecoverySecret();
        const legacy = { identityKey: identity.identityKey, contentKey: identity.encryptionKey.key, frontier: old.store.frontier().heads };
        const { entry } = await genesisEntry(member, recoveryMember(recoverySecret).key, Date.now(), legacy);
        await old.relay.offerMembership([entry]);
        return { device: await reopen(identity, [entry]), recoveryKey: formatRecoveryKey(recoverySecret) };
      }
      const { onCode, onOffer } = options;
      if (!onCode || !onOffer) throw new InvalidStateError('this motebit was upgraded on another device: this one joins it by approval (run the upgrade where it can show a code)');
      const { entries: joined } = await Device.approvedJoin(identity.relayUrl!, member, { ...options, onCode, onOffer }, identity.motebitId);
      return { device: await reopen(identity, joined), recoveryKey: null };
    } finally {
      if (open) await old.close();
    }
  }

  /**
   * For a protocol-2 device of an upgraded motebit joining later: the last of its events from before its
   * upgrade, as far as this device or the relay holds them (they stay valid). Undefined for any other device.
   */
  private async legacySeqOf(state: MembershipState, deviceId: string): Promise<number | undefined> {
    if (!state.legacy) return undefined;
    const relayHas = (await this.relay.frontier()).devices.find((d) => d.device_id === deviceId)?.seq ?? 0;
    const seq = Math.max(relayHas, this.store.frontier().heads[deviceId] ?? 0);
    return seq > 0 ? seq : undefined;
  }

  /**
   * Replaces the recovery key (one written down may have been seen): the current one, typed in, names a new
   * one in the log (a `recovery` entry; the old key is cut off like a removed device). Answers the new key,
   * to be shown once. The current key is never stored.
   */
  async replaceRecoveryKey(currentRecoveryKey: string): Promise<string> {
    const current = recoveryMember(parseRecoveryKey(currentRecoveryKey));
    const { state, currentKey } = await this.memberContext();
    if (state.recoveryId !== current.key.id) throw new InvalidStateError('that is not the current recovery key of this motebit; nothing was changed');
    const secret = generateRecoverySecret();
    const entry = await recoveryEntry(state, current, recoveryMember(secret).key, currentKey, Date.now());
    await this.relay.offerMembership([entry]);
    await this.refreshMembership();
    return formatRecoveryKey(secret);
  }

  /** The recovery key made at init, once: later calls answer null. */
  takeRecoveryKey(): string | null {
    const text = this.recoveryKeyText;
    this.recoveryKeyText = null;
    return text;
  }

  private static async enrolOrForget(options: HomeOptions, secrets: SecretStore, identity: MasterTokenIdentity): Promise<Device> {
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
    if (identity.kind === 'member') return new EncryptedTransport({ inner, motebitId: identity.motebitId, keys: this.memberKeys! });
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

  /**
   * Cuts a device off. Protocol 2: asks the relay. A membership log: appends a `remove` entry (its events up
   * to the last one this device holds stay valid) and a new content-key epoch the removed device cannot read.
   */
  async revoke(deviceId: string): Promise<DeviceInfo> {
    const { identity } = this;
    if (identity.kind !== 'member') return (await this.relay.revokeDevice({ identityKey: identity.identityKey, deviceId })).device;
    // First receive all the relay holds: every event the device pushed while a member stays valid everywhere
    // (a device that applied one must never disagree with one that refuses it). The log is read after it,
    // so the removal follows the newest entry.
    await this.syncNow();
    const state = await this.refreshMembership();
    const target = state.members.get(deviceId);
    if (!target || target.key.role !== 'device') throw new InvalidStateError(`${deviceId} is not a device of this motebit`);
    if (target.removedAt === null) {
      // Its events this device holds stay valid, pinned by the hash of the last one (its history cannot be rewritten).
      const cutoff = this.store.frontier().heads[deviceId] ?? 0;
      const cutoffHash = cutoff === 0 ? null : (this.store.eventHash(deviceId, cutoff) ?? null);
      if (cutoff > 0 && cutoffHash === null) throw new InvalidStateError(`this device does not hold event ${cutoff} of ${deviceId}; sync, then remove it`);
      const { entry } = await removeEntry(state, identity.member, deviceId, cutoff, this.currentContentKey(state), Date.now(), cutoffHash);
      await this.relay.offerMembership([entry]);
      await this.refreshMembership();
    }
    const info = (await this.relay.listDevices()).find((d) => d.device_id === deviceId);
    if (!info) throw new InvalidStateError(`the relay does not list ${deviceId}`);
    return info;
  }

  /**
   * Makes this device known to another relay (a move): protocol 2 enrols it with the identity key; a
   * membership log is offered whole (in the chunks a relay takes), and the log says who the members are.
   */
  async enrolAt(relay: RelayClient): Promise<void> {
    const { identity } = this;
    if (identity.kind === 'member') {
      await this.membership!.offerTo(relay);
      return;
    }
    await relay.enrolDevice({ identityKey: identity.identityKey, cert: identity.cert, ...(identity.deviceName ? { name: identity.deviceName } : {}) });
  }

  /** The key of the log's current epoch (this member holds it while it is a member). */
  private currentContentKey(state: MembershipState): Buffer {
    const key = this.memberKeys?.byId(state.epochs.at(-1)!.keyId);
    if (!key) throw new InvalidStateError('this device does not hold the current content key: it is no longer a member');
    return key;
  }

  /** This device as a member and the log it verified (a motebit with a membership log), refreshed from the relay. */
  async memberContext(): Promise<{ identity: MemberIdentity; state: MembershipState; currentKey: Buffer; relay: RelayClient }> {
    const { identity } = this;
    if (identity.kind !== 'member') throw new InvalidStateError('this motebit shares one master token (protocol 2): upgrade it first');
    const state = await this.refreshMembership();
    return { identity, state, currentKey: this.currentContentKey(state), relay: this.relay };
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
