// The desktop app's main-process logic, without Electron: setup (create or join a motebit), the running
// device and its engine, conflict notifications, settings, and the handlers of the IPC contract. The
// Electron adapter (main/electron/) and the UI harness both drive this one object; only the platform hooks
// (notifications, start at login) differ between them.
import { join } from 'node:path';
import type { ApprovalView, ConflictView, DeviceView, EnvironmentView, RecoveryKeyView, SecretsView, SettingsView, StorageView, AppState } from '../../shared/portable/ipc-contract.ts';
import type { SyncStatus } from '../../shared/portable/status.ts';
import { parseRelayUrl } from '../config/relay-url.ts';
import { updateConfig } from '../config/config.ts';
import { pairingQrSvg } from '../identity/pairing.ts';
import { IdentityNotSetUpError, defaultDeviceName } from '../identity/local-identity.ts';
import { decodePairingCode } from '../identity/pairing.ts';
import { SECRETS_FILE } from '../keyring/file-secret-store.ts';
import { FILE_STORE_MEANING, keyringHelp } from '../keyring/help.ts';
import { openSecretStore } from '../keyring/open.ts';
import { KeyringUnavailableError } from '../keyring/secret-store.ts';
import { motebitDir } from '../config/home.ts';
import { checkRelay } from '../sync/relay-client.ts';
import { CancelledError, StepNotDoneError, errorWords, oneLine } from './error-words.ts';
import type { ConflictQuery, ConflictRecord, KeepChoice } from '../store/event-store.ts';
import { winReasonWords } from './conflict-words.ts';
import { RelayClient } from '../sync/relay-client.ts';
import { TransportError } from '../sync/transport.ts';
import { announceMove, dismissMove, moveOffer, type MoveOffer } from './relay-move.ts';
import { Device, type HomeOptions, type SnapshotFigures } from './device.ts';
import { ApprovalDesk, JoinSession } from './pairing-sessions.ts';
import { InvalidStateError, type Handlers } from './ipc-dispatch.ts';
import { Emitter, type Listener } from '../../shared/emitter.ts';

/** What differs between the Electron app and the headless harness. */
export interface PlatformHooks {
  /** A desktop notification. */
  notify(title: string, body: string): void;
  getStartAtLogin(): boolean;
  setStartAtLogin(enabled: boolean): void;
}

export interface AppControllerOptions extends HomeOptions {
  readonly platform: PlatformHooks;
  /** What the person runs to start this app again (npm start …): the no-keyring command ends with it. */
  readonly restartCommand?: string;
}


const DEVICE_NAMES_TTL_MS = 60_000;

/** A later upgrade's one-time code, to show until a member approves (keys.upgrade, keys.upgradeWaiting). */
type UpgradeJoin = { kind: 'join'; code: string; qrSvg: string; expiresAt: number };

/** An upgrade in progress: its session, the state the device had (the window's while it is closed), its code once shown. */
interface Upgrading {
  readonly session: JoinSession;
  readonly state: AppState;
  join: UpgradeJoin | null;
}

export class AppController {
  private readonly options: AppControllerOptions;
  private device: Device | null = null;
  private readonly statusListeners = new Emitter<SyncStatus>();
  private readonly stateListeners = new Emitter<AppState>();
  private unsubscribe: (() => void) | null = null;
  private lastNotifiedConflict = 0;
  private deviceNames = new Map<string, string | null>();
  private deviceNamesAt = 0;
  private secretsState: SecretsView;
  /** The relay check of a setup in progress, which Cancel aborts. */
  private attempt: AbortController | null = null;
  /** A join by approval in progress (the new device's side). */
  private joining: JoinSession | null = null;
  /** A new device this member is checking or about to approve. */
  private readonly approvals = new ApprovalDesk();
  /** The recovery key of the motebit created here, until the window takes it (once). */
  private recoveryKey: RecoveryKeyView | null = null;
  /** An upgrade of this device to its own keys in progress (its device closed meanwhile), and the state it had. */
  private upgrading: Upgrading | null = null;
  /** The state of a device whose upgrade is starting (its device closing, the session not made yet). */
  private upgradeStarting: AppState | null = null;
  /** A snapshot being saved or this device's history being pruned (one at a time). */
  private storageWork: string | null = null;

  constructor(options: AppControllerOptions) {
    this.options = options;
    this.secretsState = this.secretsView('os');
  }

  /**
   * Opens the home's device if one is set up (and starts syncing); otherwise stays on setup. A machine
   * without a usable OS keyring is no failure: secrets() says so, and the window offers the way out.
   */
  async start(): Promise<AppState> {
    await this.openHome();
    return this.state();
  }

  /** Opens the device when the home is set up; else finds out whether a new device could keep its secrets here. */
  private async openHome(): Promise<void> {
    if (this.device) return;
    try {
      const device = await Device.open(this.options);
      this.secretsState = this.secretsView(device.secretsWarning === null ? 'os' : 'file');
      await this.attach(device);
      return;
    } catch (error) {
      if (error instanceof KeyringUnavailableError) return void (this.secretsState = this.secretsView('unavailable', error));
      if (!(error instanceof IdentityNotSetUpError)) throw error;
    }
    try {
      const { store } = await openSecretStore({ home: this.options.home, keyring: this.options.keyring, env: this.options.env, service: this.options.keyringService });
      this.secretsState = this.secretsView(store.kind);
    } catch (error) {
      if (!(error instanceof KeyringUnavailableError)) throw error;
      this.secretsState = this.secretsView('unavailable', error);
    }
  }

  private secretsView(store: SecretsView['store'], error?: KeyringUnavailableError): SecretsView {
    const help = store === 'unavailable' ? keyringHelp({ env: this.options.env ?? process.env, ...(this.options.restartCommand ? { then: this.options.restartCommand } : {}) }) : null;
    return {
      store,
      filePath: store === 'file' ? join(motebitDir(this.options.home), SECRETS_FILE) : null,
      why: help?.why ?? null,
      command: help?.command ?? null,
      instead: help?.instead ?? null,
      fileMeaning: FILE_STORE_MEANING,
      details: error?.detail ?? null,
    };
  }

  /** Where secrets are kept (or that they cannot be kept: no keyring), and the default device name. */
  environment(): EnvironmentView {
    return { secrets: this.secretsState, defaultDeviceName: defaultDeviceName() };
  }

  get secrets(): SecretsView {
    return this.secretsState;
  }

  /** No keyring: look again, once the person has started one. */
  async retrySecrets(): Promise<EnvironmentView> {
    await this.openHome();
    return this.environment();
  }

  /** No keyring: this home keeps its secrets in a plain file from now on (the person chose it, knowing what it means). */
  async useFileStore(): Promise<EnvironmentView> {
    if (this.device) throw new InvalidStateError('this device is set up already; its secrets stay where they are');
    await updateConfig(this.options.home, { secret_store: 'file' });
    await this.openHome();
    return this.environment();
  }

  state(): AppState {
    const device = this.device;
    if (!device) return this.upgrading?.state ?? this.upgradeStarting ?? { phase: 'setup' };
    const { identity } = device;
    return { phase: 'ready', motebitId: identity.motebitId, deviceId: identity.deviceId, deviceName: identity.deviceName, relayUrl: identity.relayUrl ?? '' };
  }

  /** The running device, or an error that says setup comes first. */
  get current(): Device {
    if (!this.device && (this.upgrading || this.upgradeStarting)) throw new InvalidStateError('this device is being upgraded to its own keys: finish or cancel the upgrade first');
    if (!this.device) throw new InvalidStateError('no motebit is set up on this device yet: create one or join with a pairing code');
    return this.device;
  }

  get isReady(): boolean {
    return this.device !== null;
  }

  status(): SyncStatus {
    return this.current.status();
  }

  onStatus(listener: Listener<SyncStatus>): () => void {
    return this.statusListeners.on(listener);
  }

  onState(listener: Listener<AppState>): () => void {
    return this.stateListeners.on(listener);
  }

  // ---- setup --------------------------------------------------------------------------------------

  /**
   * A new motebit: per-device keys (the window's only way), whose recovery key the window takes once
   * (recovery.take); 'shared' (protocol 2, one master token) only for callers that ask for it.
   */
  async create(relayUrl: string, deviceName?: string, keys: 'per-device' | 'shared' = 'per-device'): Promise<AppState> {
    if (this.device) throw new InvalidStateError('this device already belongs to a motebit');
    const url = parseRelayUrl(relayUrl); // a bad URL fails here, before anything is written
    await this.checkRelayCancellably(url);
    const device = await this.noticingKeyring(Device.create({ ...this.options, relayUrl: url, deviceName, ...(keys === 'per-device' ? { keys } : {}) }));
    const recoveryKey = device.takeRecoveryKey();
    // kept before the window hears the motebit is ready, so its first recovery.take finds it
    this.recoveryKey = recoveryKey ? { motebitId: device.identity.motebitId, recoveryKey, qrSvg: await pairingQrSvg(recoveryKey) } : null;
    await this.attach(device);
    return this.state();
  }

  /**
   * Every device lost: the recovery key (as typed; never stored) adds this device to the motebit, which
   * then syncs everything. A mistyped key or a wrong motebit id fails before anything is written.
   */
  async recover(relayUrl: string, motebitId: string, recoveryKey: string, deviceName?: string): Promise<AppState> {
    if (this.device) throw new InvalidStateError('this device already belongs to a motebit');
    const url = parseRelayUrl(relayUrl);
    await this.checkRelayCancellably(url);
    let device: Device;
    try {
      device = await this.noticingKeyring(Device.recover({ ...this.options, relayUrl: url, motebitId, recoveryKey, deviceName }));
    } catch (error) {
      // the relay knows no such motebit for this key: say which two things to check, not what the relay said
      if (error instanceof TransportError && (error.kind === 'auth' || error.code === 'not_found')) {
        throw new InvalidStateError('this relay knows no motebit with that id and this recovery key; check the motebit id (it was shown with the recovery key) and the relay address; nothing was set up');
      }
      throw error;
    }
    await this.attach(device);
    return this.state();
  }

  /** The recovery key of the motebit just created here, once; null after (and on any other device). */
  takeRecoveryKey(): RecoveryKeyView | null {
    const taken = this.recoveryKey;
    this.recoveryKey = null;
    return taken;
  }

  /**
   * Joins by approval, first step: checks the relay, opens a rendezvous and answers the one-time code to
   * show. A join still waiting is stopped first. Nothing is written until a member approves.
   */
  async joinStart(relayUrl: string, deviceName?: string): Promise<{ code: string; qrSvg: string; expiresAt: number }> {
    if (this.device) throw new InvalidStateError('this device already belongs to a motebit');
    const url = parseRelayUrl(relayUrl);
    this.joining?.cancel();
    this.joining = null;
    await this.checkRelayCancellably(url);
    const session = new JoinSession(
      (hooks) => this.noticingKeyring(Device.joinByApproval({ ...this.options, relayUrl: url, deviceName, ...hooks })),
      async (device) => {
        if (this.device) {
          await device.close();
          throw new InvalidStateError('this device already belongs to a motebit');
        }
        await this.attach(device);
      },
    );
    this.joining = session;
    const { code, expiresAt } = await session.started;
    return { code, expiresAt, qrSvg: await pairingQrSvg(code) };
  }

  private get joinInProgress(): JoinSession {
    if (!this.joining) throw new InvalidStateError('no join is in progress; get a code first');
    return this.joining;
  }

  /** Second step: waits for a member to answer the code; the six digits to compare. */
  joinDigits(): Promise<{ motebitId: string; sas: string }> {
    return this.joinInProgress.offered;
  }

  /** Last step: waits for the approval; the device is set up and syncing when it answers. */
  async joinFinish(): Promise<AppState> {
    const session = this.joinInProgress;
    try {
      await session.joined;
    } finally {
      if (this.joining === session) this.joining = null;
    }
    return this.state();
  }

  async join(pairingCode: string, deviceName?: string): Promise<AppState> {
    if (this.device) throw new InvalidStateError('this device already belongs to a motebit');
    await this.checkRelayCancellably(decodePairingCode(pairingCode).relayUrl); // a bad code fails here
    await this.attach(await this.noticingKeyring(Device.join({ ...this.options, pairingCode, deviceName })));
    return this.state();
  }

  /**
   * Whether the relay answers, before anything is written; setup.cancel aborts the wait (a relay that
   * accepts the connection but never answers), and the setup then fails as cancelled.
   */
  private async checkRelayCancellably(url: string): Promise<void> {
    if (this.attempt) throw new InvalidStateError('a setup is already in progress');
    const attempt = new AbortController();
    this.attempt = attempt;
    const cancellable: typeof fetch = (input, init) => fetch(input, { ...init, signal: init?.signal ? AbortSignal.any([init.signal, attempt.signal]) : attempt.signal });
    try {
      await checkRelay(url, { fetch: cancellable });
    } catch (error) {
      if (attempt.signal.aborted) throw new CancelledError('setup was cancelled before the relay answered');
      throw error;
    } finally {
      this.attempt = null;
    }
  }

  /** Cancels a setup still waiting for its relay; false when there is none (or it is past that point). */
  cancelSetup(): { cancelled: boolean } {
    if (this.joining?.cancel()) return { cancelled: true };
    if (!this.attempt) return { cancelled: false };
    this.attempt.abort();
    return { cancelled: true };
  }

  /** A setup that finds no keyring says so to the window too (secrets() turns 'unavailable'). */
  private async noticingKeyring(setup: Promise<Device>): Promise<Device> {
    try {
      return await setup;
    } catch (error) {
      if (error instanceof KeyringUnavailableError) this.secretsState = this.secretsView('unavailable', error);
      throw error;
    }
  }

  private async attach(device: Device): Promise<void> {
    this.device = device;
    this.lastNotifiedConflict = maxConflictId(device.conflicts({ includeResolved: true }));
    this.unsubscribe = device.engine.onStatus((status) => {
      this.notifyNewConflicts();
      this.statusListeners.emit(status);
    });
    device.engine.start();
    const state = this.state();
    this.stateListeners.emit(state);
  }

  /** One notification per batch of new conflicts (a cycle or a live page), never one per event. */
  private notifyNewConflicts(): void {
    const device = this.device;
    if (!device) return;
    const conflicts = device.conflicts();
    const fresh = conflicts.filter((c) => c.id > this.lastNotifiedConflict);
    if (fresh.length === 0) return;
    this.lastNotifiedConflict = maxConflictId(conflicts);
    const entities = [...new Set(fresh.map((c) => c.entity))];
    this.options.platform.notify(
      fresh.length === 1 ? '1 new conflict to review' : `${fresh.length} new conflicts to review`,
      `${entities.slice(0, 3).join(', ')}${entities.length > 3 ? ` and ${entities.length - 3} more` : ''}: open Settings to choose which value to keep.`,
    );
  }

  // ---- conflicts ----------------------------------------------------------------------------------

  async conflicts(query: ConflictQuery = {}): Promise<ConflictView[]> {
    const names = await this.namesOfDevices();
    return this.current.store.conflicts(query).map((c) => conflictView(c, names));
  }

  /** Keeps the current value or the other side of each conflict (all or none), then syncs; how many settled. */
  keepMany(ids: readonly number[], keep: KeepChoice): { settled: number } {
    const store = this.current.store;
    store.resolveConflicts(ids, keep);
    void this.current.syncNow();
    return { settled: ids.filter((id) => store.conflict(id)?.resolvedBy !== null).length };
  }

  private async conflictById(id: number): Promise<ConflictView> {
    const record = this.current.store.conflict(id);
    if (!record) throw new InvalidStateError(`there is no conflict ${id}`);
    return conflictView(record, await this.namesOfDevices());
  }

  /** Device names for conflict sides; best effort (offline shows ids only). */
  private async namesOfDevices(): Promise<Map<string, string | null>> {
    if (Date.now() - this.deviceNamesAt < DEVICE_NAMES_TTL_MS) return this.deviceNames;
    try {
      const devices = await this.current.devices();
      this.deviceNames = new Map(devices.map((d) => [d.device_id, d.name ?? null]));
      this.deviceNamesAt = Date.now();
    } catch {
      // offline: keep what we had
    }
    return this.deviceNames;
  }

  // ---- settings -----------------------------------------------------------------------------------

  settings(): SettingsView {
    const device = this.current;
    const { identity, config } = device;
    return {
      relayUrl: identity.relayUrl,
      intervalSeconds: config.interval_seconds,
      encryption: identity.encryption,
      transport: config.transport,
      startAtLogin: this.options.platform.getStartAtLogin(),
      motebitId: identity.motebitId,
      deviceId: identity.deviceId,
      deviceName: identity.deviceName,
      keys: identity.kind === 'member' ? 'per-device' : 'shared',
    };
  }

  /**
   * Moves this device to another relay: the URL must be valid and the relay reachable, then this device is
   * enrolled there and its whole log is pushed to it on the next cycle. A bad URL changes nothing.
   */
  async setRelayUrl(relayUrl: string): Promise<SettingsView> {
    return (await this.moveRelay(relayUrl, false)).settings;
  }

  /**
   * setRelayUrl that can first leave word of the new address through the old relay (relay-move.ts), once
   * the new relay has answered and enrolled this device, so nobody is sent to a relay that does not work.
   */
  async moveRelay(relayUrl: string, tellOthers: boolean): Promise<{ settings: SettingsView; told: 'sent' | 'not_asked' | 'failed'; message: string | null }> {
    const device = this.current;
    const url = parseRelayUrl(relayUrl);
    if (url === device.identity.relayUrl) return { settings: this.settings(), told: 'not_asked', message: null };
    const { identity } = device;
    const relay = new RelayClient({ relayUrl: url, motebitId: identity.motebitId, deviceId: identity.deviceId, deviceKey: identity.deviceKey });
    try {
      await relay.health();
      await device.enrolAt(relay);
    } catch (error) {
      throw new StepNotDoneError(`this device did not move to ${url}`, error, `it still syncs with ${device.identity.relayUrl}; try the move again later, or choose another relay`);
    }
    let told: 'sent' | 'not_asked' | 'failed' = 'not_asked';
    let message: string | null = null;
    if (tellOthers) {
      announceMove(device.store, { url, deviceName: identity.deviceName, at: Date.now() });
      let sent = await device.syncNow();
      // A cycle already running when the word was written may have sent its batch before it: once more.
      if (sent.ok && device.store.pendingOutCount() > 0) sent = await device.syncNow();
      told = sent.ok ? 'sent' : 'failed';
      message = sent.error ? `${sent.error.message}; ${sent.error.nextStep}` : null;
    }
    await this.detach();
    // A new relay: pull its log from the start; the first cycle sends it whatever it lacks of ours.
    device.store.ledger.forgetRelay();
    device.store.close();
    await updateConfig(this.options.home, { sync_url: url });
    this.deviceNamesAt = 0;
    await this.attach(await Device.open(this.options));
    return { settings: this.settings(), told, message };
  }

  /** A move another device announced through this relay, for this device's person to accept or dismiss. */
  moveOffer(): MoveOffer | null {
    const device = this.current;
    return moveOffer(device.store, device.identity.relayUrl);
  }

  async setInterval(seconds: number): Promise<SettingsView> {
    const device = this.current;
    await updateConfig(this.options.home, { interval_seconds: seconds });
    (device.config as { interval_seconds: number }).interval_seconds = seconds;
    device.engine.setIntervalMs(seconds * 1000);
    return this.settings();
  }

  setStartAtLogin(enabled: boolean): SettingsView {
    this.options.platform.setStartAtLogin(enabled);
    return this.settings();
  }

  // ---- devices ------------------------------------------------------------------------------------

  async devices(): Promise<DeviceView[]> {
    const self = this.current.identity.deviceId;
    const { devices, head } = await this.current.relay.deviceList();
    return devices.map((d) => ({
      deviceId: d.device_id,
      name: d.name ?? null,
      enrolledAt: d.enrolled_at,
      revokedAt: d.revoked_at,
      current: d.device_id === self,
      lastSeenAt: d.last_seen_at ?? null,
      behind: head === undefined || d.read_seq === undefined ? null : Math.max(0, head - d.read_seq),
    }));
  }

  async revoke(deviceId: string): Promise<DeviceView> {
    if (deviceId === this.current.identity.deviceId) throw new InvalidStateError('this is the device you are on; revoke it from another device');
    const d = await this.current.revoke(deviceId);
    this.deviceNamesAt = 0;
    return { deviceId: d.device_id, name: d.name ?? null, enrolledAt: d.enrolled_at, revokedAt: d.revoked_at, current: false };
  }

  /** Per-device keys: a new device's code; waits for its answer; its name and the six digits to compare. */
  checkApproval(code: string): Promise<ApprovalView> {
    return this.approvals.check(this.current, code);
  }

  async approve(deviceId: string): Promise<{ deviceId: string; name: string | null }> {
    const approved = await this.approvals.approve(deviceId);
    this.deviceNamesAt = 0;
    return approved;
  }

  // ---- storage: snapshots on the relay, this device's history (issue 12) ---------------------------

  /** What this device holds and the relay's latest snapshot; a relay that cannot be asked is said in words, the rest still shown. */
  async storage(): Promise<StorageView> {
    const device = this.current;
    try {
      return await this.storageView(await device.snapshotInfo());
    } catch (error) {
      const words = errorWords(error);
      return { ...device.holdings(), latest: { kind: 'unknown', message: oneLine(words), ...(words.details ? { details: words.details } : {}) } };
    }
  }

  private async storageView(figures: SnapshotFigures): Promise<StorageView> {
    const { latest } = figures;
    if (!latest) return { events: figures.events, databaseBytes: figures.databaseBytes, latest: { kind: 'none' } };
    const self = this.current.identity.deviceId;
    let names = latest.deviceId === self ? null : await this.namesOfDevices();
    if (names && !names.has(latest.deviceId)) {
      this.deviceNamesAt = 0; // a device added since the names were read
      names = await this.namesOfDevices();
    }
    const deviceName = names ? (names.get(latest.deviceId) ?? null) : this.current.identity.deviceName;
    return { events: figures.events, databaseBytes: figures.databaseBytes, latest: { kind: 'snapshot', ...latest, deviceName, current: latest.deviceId === self } };
  }

  /** One snapshot action at a time on this device (a second click while one runs is refused in words). */
  private async storageTask<T>(what: string, run: (device: Device) => Promise<T>): Promise<T> {
    if (this.storageWork) throw new InvalidStateError(`${this.storageWork} already: wait until it is done`);
    const device = this.current;
    this.storageWork = what;
    try {
      return await run(device);
    } finally {
      this.storageWork = null;
    }
  }

  /** Save a snapshot now: syncs, then saves one on the relay; answers what it did and the figures after. */
  saveSnapshot(): Promise<{ covered: number; kept: number; bytes: number; storage: StorageView }> {
    return this.storageTask('a snapshot is being saved', async (device) => {
      const made = await device.saveSnapshot();
      return { covered: made.covered, kept: made.kept, bytes: made.bytes, storage: await this.storage() };
    });
  }

  /** Free space on this device: prunes its history below the relay's latest snapshot; the values stay. */
  freeSpace(): Promise<{ dropped: number; bytesBefore: number; bytesAfter: number; storage: StorageView }> {
    return this.storageTask('space is being freed on this device', async (device) => {
      const pruned = await device.pruneToLatest();
      return { ...pruned, storage: await this.storage() };
    });
  }

  // ---- upgrade (a master-token motebit: this device gets its own keys) ------------------------------

  /**
   * Upgrades this device in place (Device.upgrade): its engine stops and its store closes while the upgrade
   * opens the same home. The first device of the motebit founds the membership log: the upgraded device is
   * attached and its recovery key kept for the window (recovery.take, once): 'founded'. A later one joins
   * that log by approval: 'join' with the code to show; upgradeDigits and upgradeFinish follow, as for a join.
   * A failure or a cancel changes nothing: the device is opened again as it was.
   */
  async upgradeStart(): Promise<{ kind: 'founded' } | UpgradeJoin> {
    if (this.upgradeStarting || (this.upgrading && !this.upgrading.session.settled)) throw new InvalidStateError('an upgrade of this device is already in progress: finish or cancel it first');
    this.upgrading = null;
    const device = this.current;
    if (device.identity.kind !== 'master-token') throw new InvalidStateError('this device has its own keys already: there is nothing to upgrade');
    const state = this.state();
    // the device's engine stops and its store closes before the upgrade opens the same home
    this.upgradeStarting = state;
    try {
      await this.detach();
    } finally {
      device.store.close();
      this.upgradeStarting = null;
    }
    let recoveryKey: string | null = null;
    const session = new JoinSession(
      async (hooks) => {
        try {
          const upgrading = Device.upgrade({ ...this.options, ...hooks }).then((result) => {
            recoveryKey = result.recoveryKey;
            return result.device;
          });
          return await this.noticingKeyring(upgrading);
        } catch (error) {
          await this.attach(await Device.open(this.options)); // nothing changed: the device as it was
          throw error;
        }
      },
      async (upgraded) => {
        if (recoveryKey) this.recoveryKey = { motebitId: upgraded.identity.motebitId, recoveryKey, qrSvg: await pairingQrSvg(recoveryKey) };
        this.deviceNamesAt = 0;
        await this.attach(upgraded);
      },
    );
    const upgrading: Upgrading = { session, state, join: null };
    this.upgrading = upgrading;
    const done = (): void => {
      if (this.upgrading === upgrading) this.upgrading = null;
    };
    let first;
    try {
      first = await Promise.race([session.started.then((code) => ({ kind: 'join' as const, ...code })), session.joined.then(() => ({ kind: 'founded' as const }))]);
    } catch (error) {
      done();
      throw error;
    }
    if (first.kind === 'founded') {
      done();
      return first;
    }
    upgrading.join = { kind: 'join', code: first.code, expiresAt: first.expiresAt, qrSvg: await pairingQrSvg(first.code) };
    return upgrading.join;
  }

  /** A later upgrade still waiting for a member's approval: its code again (a window opened meanwhile shows it); else null. */
  upgradeWaiting(): UpgradeJoin | null {
    const upgrading = this.upgrading;
    return upgrading && !upgrading.session.settled ? upgrading.join : null;
  }

  private get upgradeInProgress(): JoinSession {
    if (!this.upgrading) throw new InvalidStateError('no upgrade is in progress on this device; start it from Settings');
    return this.upgrading.session;
  }

  /** A later upgrade, second step: waits for a member to answer the code; the six digits to compare. */
  upgradeDigits(): Promise<{ motebitId: string; sas: string }> {
    return this.upgradeInProgress.offered;
  }

  /** Last step: waits for the member's approval; this device then runs with its own keys. */
  async upgradeFinish(): Promise<AppState> {
    const upgrading = this.upgrading;
    try {
      await this.upgradeInProgress.joined;
    } finally {
      if (this.upgrading === upgrading) this.upgrading = null;
    }
    return this.state();
  }

  /** Stops an upgrade waiting for a member (the device is opened again as it was); false when there is none. */
  async upgradeCancel(): Promise<{ cancelled: boolean }> {
    const upgrading = this.upgrading;
    if (!upgrading?.session.cancel()) return { cancelled: false };
    // answers once the device is attached again as it was (or upgraded, when the cancel came too late)
    return { cancelled: await upgrading.session.joined.then(() => false, () => true) };
  }

  // ---- lifecycle ----------------------------------------------------------------------------------

  private async detach(): Promise<void> {
    this.unsubscribe?.();
    this.unsubscribe = null;
    const device = this.device;
    this.device = null;
    if (device) await device.engine.stop();
  }

  /** On quit: a running cycle finishes or is cleanly abandoned, and the store is closed. Nothing is lost. */
  async close(): Promise<void> {
    await this.upgradeCancel();
    this.joining?.cancel();
    this.approvals.decline();
    const device = this.device;
    await this.detach();
    device?.store.close();
  }

  /** The handlers of every IPC channel (validated around them by the dispatcher). */
  handlers(): Handlers {
    return {
      'app.state': () => this.state(),
      'setup.create': ({ relayUrl, deviceName }) => this.create(relayUrl, deviceName),
      'setup.join': ({ pairingCode, deviceName }) => this.join(pairingCode, deviceName),
      'setup.joinStart': ({ relayUrl, deviceName }) => this.joinStart(relayUrl, deviceName),
      'setup.joinDigits': () => this.joinDigits(),
      'setup.joinFinish': () => this.joinFinish(),
      'setup.cancel': () => this.cancelSetup(),
      'recovery.take': () => this.takeRecoveryKey(),
      'setup.recover': ({ relayUrl, motebitId, recoveryKey, deviceName }) => this.recover(relayUrl, motebitId, recoveryKey, deviceName),
      'app.environment': () => this.environment(),
      'secrets.retry': () => this.retrySecrets(),
      'secrets.useFile': () => this.useFileStore(),
      'status.get': () => this.status(),
      'sync.now': async () => {
        const { ok, pushed, pulled, error } = await this.current.syncNow();
        return { ok, pushed, pulled, error };
      },
      'sync.pause': async () => {
        await this.current.engine.pause();
        return this.status();
      },
      'sync.resume': async () => {
        void this.current.engine.resume();
        return this.status();
      },
      'conflicts.list': ({ includeResolved, filter, entityPrefix, deviceId }) => this.conflicts({ includeResolved, filter, entityPrefix, currentDevice: deviceId }),
      'conflicts.counts': () => this.current.store.conflictCounts(),
      'conflicts.keepMany': ({ ids, keep }) => this.keepMany(ids, keep),
      'conflicts.markReviewed': async ({ id }) => {
        this.current.markReviewed(id);
        return this.conflictById(id);
      },
      'conflicts.keep': async ({ id, eventId }) => {
        this.current.resolve(id, eventId);
        void this.current.syncNow();
        return this.conflictById(id);
      },
      'settings.get': () => this.settings(),
      'settings.setRelayUrl': ({ relayUrl }) => this.setRelayUrl(relayUrl),
      'settings.moveRelay': ({ relayUrl, tellOthers }) => this.moveRelay(relayUrl, tellOthers),
      'relay.moveOffer': () => this.moveOffer(),
      'relay.dismissMove': ({ at }) => {
        dismissMove(this.current.store, at);
        return {};
      },
      'settings.setInterval': ({ seconds }) => this.setInterval(seconds),
      'settings.setStartAtLogin': ({ enabled }) => this.setStartAtLogin(enabled),
      'devices.list': () => this.devices(),
      'devices.revoke': ({ deviceId }) => this.revoke(deviceId),
      'pairing.create': async () => {
        const code = await this.current.pairingCode();
        return { code, qrSvg: await pairingQrSvg(code) };
      },
      'pairing.check': ({ code }) => this.checkApproval(code),
      'pairing.approve': ({ deviceId }) => this.approve(deviceId),
      'pairing.decline': () => this.approvals.decline(),
      'keys.upgrade': () => this.upgradeStart(),
      'keys.upgradeWaiting': () => this.upgradeWaiting(),
      'keys.upgradeDigits': () => this.upgradeDigits(),
      'keys.upgradeFinish': () => this.upgradeFinish(),
      'keys.upgradeCancel': () => this.upgradeCancel(),
      'snapshot.info': () => this.storage(),
      'snapshot.make': () => this.saveSnapshot(),
      'snapshot.prune': () => this.freeSpace(),
    };
  }
}

function maxConflictId(conflicts: readonly ConflictRecord[]): number {
  return conflicts.reduce((max, c) => Math.max(max, c.id), 0);
}

function conflictView(c: ConflictRecord, names: Map<string, string | null>): ConflictView {
  const side = (s: ConflictRecord['winner']) => ({
    eventId: s.eventId,
    deviceId: s.deviceId,
    deviceName: names.get(s.deviceId) ?? null,
    kept: s.kept,
    op: s.op,
    value: s.value,
    writtenAt: s.writtenAt,
  });
  return {
    id: c.id,
    entity: c.entity,
    winner: side(c.winner),
    loser: side(c.loser),
    currentEventId: c.currentEventId,
    detectedAt: c.detectedAt,
    reviewedAt: c.reviewedAt,
    resolvedBy: c.resolvedBy,
    why: winReasonWords(c.winReason),
  };
}
