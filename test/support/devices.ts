// Real device homes against a real relay: each device is the app's own Device (identity, secret store,
// SQLite store, engine), the relay is the real one on 127.0.0.1. The secret store is the OS keyring when
// a Secret Service is reachable (npm test runs inside one), else the explicit file opt-in.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Device, type HomeOptions } from '../../main/app/device.ts';
import type { TransportPreference } from '../../main/sync/engine.ts';
import type { SyncProgress } from '../../shared/portable/status.ts';
import { startRelay, type RelayOptions, type RunningRelay } from '../../relay/server.ts';
import { freePort } from './ports.ts';

export const KEYRING: 'os' | 'file' = process.env.DBUS_SESSION_BUS_ADDRESS ? 'os' : 'file';
const KEYRING_SERVICE = `motebit-test-${process.pid}`;

export class Lab {
  readonly dir = mkdtempSync(join(tmpdir(), 'motebit-lab-'));
  readonly relays: RunningRelay[] = [];
  readonly devices: Device[] = [];
  private count = 0;

  async relay(options: Partial<RelayOptions> = {}): Promise<RunningRelay> {
    const relay = await startRelay({ host: '127.0.0.1', port: 0, db: join(this.dir, 'relay.db'), logLevel: 'silent', ...options });
    this.relays.push(relay);
    return relay;
  }

  home(name: string): HomeOptions {
    return { home: join(this.dir, name), keyring: KEYRING, keyringService: KEYRING_SERVICE, env: {} };
  }

  async create(relayUrl: string, options: { encryption?: boolean; transport?: TransportPreference; name?: string } = {}): Promise<Device> {
    const name = options.name ?? `device-${++this.count}`;
    const device = await Device.create({ ...this.home(name), relayUrl, deviceName: name, encryption: options.encryption ?? true, transport: options.transport });
    return this.track(await reopen(device, options.transport));
  }

  /** A new motebit with per-device keys and a membership log (docs/keys.md); its recovery key is kept on the device object's side. */
  async found(relayUrl: string, options: { encryption?: boolean; transport?: TransportPreference; name?: string } = {}): Promise<{ device: Device; recoveryKey: string }> {
    const name = options.name ?? `device-${++this.count}`;
    const device = await Device.create({ ...this.home(name), relayUrl, deviceName: name, encryption: options.encryption ?? true, transport: options.transport, keys: 'per-device' });
    const recoveryKey = device.takeRecoveryKey()!;
    return { device: this.track(await reopen(device, options.transport)), recoveryKey };
  }

  /** A new device added with the recovery key (every other device lost, or a test's second device). */
  async recover(relayUrl: string, motebitId: string, recoveryKey: string, options: { transport?: TransportPreference; name?: string; remove?: string[] } = {}): Promise<Device> {
    const name = options.name ?? `device-${++this.count}`;
    const device = await Device.recover({ ...this.home(name), relayUrl, motebitId, recoveryKey, deviceName: name, ...(options.remove ? { remove: options.remove } : {}) });
    return this.track(await reopen(device, options.transport));
  }

  async join(first: Device, options: { transport?: TransportPreference; name?: string } = {}): Promise<Device> {
    const name = options.name ?? `device-${++this.count}`;
    const device = await Device.join({ ...this.home(name), pairingCode: await first.pairingCode(), deviceName: name });
    return this.track(await reopen(device, options.transport));
  }

  /** Closes `device` and opens its home again (as its app would) with a logger that keeps every line. */
  async reopenWithLog(device: Device, name: string, transport: TransportPreference = 'http'): Promise<{ device: Device; log: CapturedLog }> {
    await device.close();
    const log: CapturedLog = { infos: [], warnings: [] };
    const opened = await Device.open({
      ...this.home(name),
      transport,
      log: { info: (fields, message) => log.infos.push({ fields, message }), warn: (fields, message) => log.warnings.push({ fields, message }) },
    });
    return { device: this.track(opened), log };
  }

  /** A relay at a fixed URL whose storage a test can swap, as an operator would by restarting it. */
  async relayAtOneUrl(db: string): Promise<RelayAtOneUrl> {
    const at = new RelayAtOneUrl(this, await freePort());
    await at.restart(db);
    return at;
  }

  track(device: Device): Device {
    this.devices.push(device);
    return device;
  }

  async close(): Promise<void> {
    for (const device of this.devices) await device.close().catch(() => {});
    for (const relay of this.relays) await relay.close().catch(() => {});
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A log line as a device's logger received it. */
export interface LogLine {
  fields: object;
  message: string;
}

/** Every line a device logged, by level. */
export interface CapturedLog {
  infos: LogLine[];
  warnings: LogLine[];
}

/** A relay at a fixed URL (Lab.relayAtOneUrl) whose storage a test can swap. */
export class RelayAtOneUrl {
  relay!: RunningRelay;
  readonly port: number;
  readonly #lab: Lab;
  constructor(lab: Lab, port: number) {
    this.#lab = lab;
    this.port = port;
  }
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }
  /** Stops the relay (checkpointing its database) and starts it again on `db`, at the same URL. */
  async restart(db: string): Promise<void> {
    if (this.relay) await this.relay.close();
    this.relay = await this.#lab.relay({ port: this.port, db });
  }
}

/** Reopens with a transport preference (create/join open with the config's, which is auto). */
async function reopen(device: Device, transport: TransportPreference | undefined): Promise<Device> {
  if (!transport) return device;
  const home = { home: device.home, keyring: KEYRING, keyringService: KEYRING_SERVICE, env: {}, transport };
  await device.close();
  return Device.open(home);
}

/** Reopens a device home as a fresh process would. */
export function openAgain(lab: Lab, device: Device, transport?: TransportPreference): Promise<Device> {
  return Device.open({ home: device.home, keyring: KEYRING, keyringService: KEYRING_SERVICE, env: {}, transport }).then((d) => lab.track(d));
}

export { freePort };

/** Syncs every device in turn, twice, so everything reaches everyone; fails loudly on a failed cycle. */
export async function syncAll(devices: readonly Device[]): Promise<void> {
  for (let round = 0; round < 2; round++) {
    for (const device of devices) {
      const result = await device.syncNow();
      if (!result.ok) throw new Error(`sync failed on ${device.identity.deviceId}: ${result.error?.message}`);
    }
  }
}

export function conflictPairs(device: Device): string[] {
  return device
    .conflicts({ includeResolved: true })
    .map((c) => `${c.entity}|${c.loser.eventId}|${c.winner.eventId}|${c.resolvedBy}`)
    .sort();
}

/** Every progress the device reports while `run` runs. */
export async function progressDuring<T>(device: Device, run: () => Promise<T>): Promise<{ result: T; seen: SyncProgress[] }> {
  const seen: SyncProgress[] = [];
  const stop = device.engine.onStatus((status) => {
    if (status.progress) seen.push(status.progress);
  });
  try {
    return { result: await run(), seen };
  } finally {
    stop();
  }
}

/** Waits until `check` holds, polling; a bounded wait for an asynchronous outcome, never a timing assertion. */
export async function eventually(check: () => boolean | Promise<boolean>, what: string, limitMs = 20_000): Promise<void> {
  const until = Date.now() + limitMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
