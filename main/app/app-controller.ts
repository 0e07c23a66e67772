// The desktop app's main-process logic, without Electron: setup (create or join a motebit), the running
// device and its engine, conflict notifications, settings, and the handlers of the IPC contract. The
// Electron adapter (main/electron/) and the UI harness both drive this one object; only the platform hooks
// (notifications, start at login) differ between them.
import type { ConflictView, DeviceView, SettingsView, AppState } from '../../shared/ipc-contract.ts';
import type { SyncStatus } from '../../shared/status.ts';
import { parseRelayUrl } from '../config/relay-url.ts';
import { updateConfig } from '../config/config.ts';
import { pairingQrSvg } from '../identity/pairing.ts';
import { IdentityNotSetUpError } from '../identity/local-identity.ts';
import type { ConflictRecord } from '../store/event-store.ts';
import { RelayClient } from '../sync/relay-client.ts';
import { Device, type HomeOptions } from './device.ts';
import { InvalidStateError, type Handlers } from './ipc-dispatch.ts';

/** What differs between the Electron app and the headless harness. */
export interface PlatformHooks {
  /** A desktop notification. */
  notify(title: string, body: string): void;
  getStartAtLogin(): boolean;
  setStartAtLogin(enabled: boolean): void;
}

export interface AppControllerOptions extends HomeOptions {
  readonly platform: PlatformHooks;
}

type Listener<T> = (value: T) => void;

const DEVICE_NAMES_TTL_MS = 60_000;

export class AppController {
  private readonly options: AppControllerOptions;
  private device: Device | null = null;
  private readonly statusListeners = new Set<Listener<SyncStatus>>();
  private readonly stateListeners = new Set<Listener<AppState>>();
  private unsubscribe: (() => void) | null = null;
  private lastNotifiedConflict = 0;
  private deviceNames = new Map<string, string | null>();
  private deviceNamesAt = 0;

  constructor(options: AppControllerOptions) {
    this.options = options;
  }

  /** Opens the home's device if one is set up (and starts syncing); otherwise stays on setup. */
  async start(): Promise<AppState> {
    try {
      await this.attach(await Device.open(this.options));
    } catch (error) {
      if (!(error instanceof IdentityNotSetUpError)) throw error;
    }
    return this.state();
  }

  state(): AppState {
    const device = this.device;
    if (!device) return { phase: 'setup' };
    const { identity } = device;
    return { phase: 'ready', motebitId: identity.motebitId, deviceId: identity.deviceId, deviceName: identity.deviceName, relayUrl: identity.relayUrl ?? '' };
  }

  /** The running device, or an error that says setup comes first. */
  get current(): Device {
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
    this.statusListeners.add(listener);
    return () => this.statusListeners.delete(listener);
  }

  onState(listener: Listener<AppState>): () => void {
    this.stateListeners.add(listener);
    return () => this.stateListeners.delete(listener);
  }

  // ---- setup --------------------------------------------------------------------------------------

  async create(relayUrl: string, deviceName?: string): Promise<AppState> {
    if (this.device) throw new InvalidStateError('this device already belongs to a motebit');
    const url = parseRelayUrl(relayUrl); // a bad URL fails here, before anything is written
    await this.attach(await Device.create({ ...this.options, relayUrl: url, deviceName }));
    return this.state();
  }

  async join(pairingCode: string, deviceName?: string): Promise<AppState> {
    if (this.device) throw new InvalidStateError('this device already belongs to a motebit');
    await this.attach(await Device.join({ ...this.options, pairingCode, deviceName }));
    return this.state();
  }

  private async attach(device: Device): Promise<void> {
    this.device = device;
    this.lastNotifiedConflict = maxConflictId(device.conflicts({ includeResolved: true }));
    this.unsubscribe = device.engine.onStatus((status) => {
      this.notifyNewConflicts();
      for (const listener of this.statusListeners) listener(status);
    });
    device.engine.start();
    const state = this.state();
    for (const listener of this.stateListeners) listener(state);
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

  async conflicts(includeResolved = false): Promise<ConflictView[]> {
    const names = await this.namesOfDevices();
    return this.current.conflicts({ includeResolved }).map((c) => conflictView(c, names));
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
    };
  }

  /**
   * Moves this device to another relay: the URL must be valid and the relay reachable, then this device is
   * enrolled there and its whole log is pushed to it on the next cycle. A bad URL changes nothing.
   */
  async setRelayUrl(relayUrl: string): Promise<SettingsView> {
    const device = this.current;
    const url = parseRelayUrl(relayUrl);
    if (url === device.identity.relayUrl) return this.settings();
    const { identity } = device;
    const relay = new RelayClient({ relayUrl: url, motebitId: identity.motebitId, deviceId: identity.deviceId, deviceKey: identity.deviceKey });
    await relay.health();
    await relay.enrolDevice({ identityKey: identity.identityKey, cert: identity.cert, ...(identity.deviceName ? { name: identity.deviceName } : {}) });
    await this.detach();
    // A new relay: pull its log from the start; the first cycle sends it whatever it lacks of ours.
    device.store.ledger.forgetRelay();
    device.store.close();
    await updateConfig(this.options.home, { sync_url: url });
    this.deviceNamesAt = 0;
    await this.attach(await Device.open(this.options));
    return this.settings();
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
    return (await this.current.devices()).map((d) => ({ deviceId: d.device_id, name: d.name ?? null, enrolledAt: d.enrolled_at, revokedAt: d.revoked_at, current: d.device_id === self }));
  }

  async revoke(deviceId: string): Promise<DeviceView> {
    if (deviceId === this.current.identity.deviceId) throw new InvalidStateError('this is the device you are on; revoke it from another device');
    const d = await this.current.revoke(deviceId);
    this.deviceNamesAt = 0;
    return { deviceId: d.device_id, name: d.name ?? null, enrolledAt: d.enrolled_at, revokedAt: d.revoked_at, current: false };
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
      'conflicts.list': ({ includeResolved }) => this.conflicts(includeResolved ?? false),
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
      'settings.setInterval': ({ seconds }) => this.setInterval(seconds),
      'settings.setStartAtLogin': ({ enabled }) => this.setStartAtLogin(enabled),
      'devices.list': () => this.devices(),
      'devices.revoke': ({ deviceId }) => this.revoke(deviceId),
      'pairing.create': async () => {
        const code = await this.current.pairingCode();
        return { code, qrSvg: await pairingQrSvg(code) };
      },
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
  };
}
