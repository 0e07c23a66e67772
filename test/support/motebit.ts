// Real identities, real device keys and real SQLite files for store-level tests.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import { randomSeed, signingKeyFromSeed, type SigningKey } from '../../shared/crypto.ts';
import { certifyDevice, type DeviceCredentials } from '../../shared/event.ts';
import { deviceIdFromDeviceKey, motebitIdFromIdentityKey } from '../../shared/ids.ts';
import { EventStore } from '../../main/store/event-store.ts';
import { afterEach, beforeEach } from 'vitest';

export interface TestMotebit {
  readonly motebitId: string;
  readonly identity: SigningKey;
}

export interface TestDevice {
  readonly deviceId: string;
  readonly credentials: DeviceCredentials;
  readonly store: EventStore;
  readonly path: string;
}

export function newMotebit(): TestMotebit {
  const identity = signingKeyFromSeed(randomSeed());
  return { identity, motebitId: motebitIdFromIdentityKey(identity.publicKey) };
}

/** A temporary folder, on tmpfs when there is one (fsync is then cheap, SQLite is just as real). */
export function tempDir(prefix: string, { fast = false } = {}): { path: string; remove(): void } {
  const base = fast && existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
  const path = mkdtempSync(join(base, `motebit-${prefix}-`));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

export function newDeviceKey(motebit: TestMotebit): { deviceId: string; credentials: DeviceCredentials } {
  const deviceKey = signingKeyFromSeed(randomSeed());
  return {
    deviceId: deviceIdFromDeviceKey(deviceKey.publicKey),
    credentials: { deviceKey, cert: certifyDevice(motebit.identity, motebit.motebitId, deviceKey.publicKey) },
  };
}

export function openDevice(motebit: TestMotebit, dir: string, name: string): TestDevice {
  const { deviceId, credentials } = newDeviceKey(motebit);
  const path = join(dir, `${name}.db`);
  const store = EventStore.open(path, { motebitId: motebit.motebitId, deviceId, identityPublicKey: motebit.identity.publicKey });
  return { deviceId, credentials, store, path };
}

/** Everything a device has not pushed yet, as one sealed batch, marked pushed. */
export function pushAll(device: TestDevice): ReturnType<EventStore['outboxBatch']> {
  const batch = device.store.outboxBatch(1_000_000, device.credentials);
  const last = batch.at(-1);
  if (last) device.store.markPushed(last.device_seq);
  return batch;
}

/**
 * One motebit and the devices a test opens, in a fresh temp folder for each test of the calling file
 * (registers beforeEach/afterEach: every store opened through it, or handed to `keep`, is closed after).
 */
export function deviceLab(prefix: string): { device(name: string): TestDevice; keep(device: TestDevice): void } {
  let dir: ReturnType<typeof tempDir>;
  let motebit: TestMotebit;
  let devices: TestDevice[] = [];
  beforeEach(() => {
    dir = tempDir(prefix);
    motebit = newMotebit();
    devices = [];
  });
  afterEach(() => {
    for (const device of devices) device.store.close();
    dir.remove();
  });
  return {
    device(name) {
      const d = openDevice(motebit, dir.path, name);
      devices.push(d);
      return d;
    },
    keep(device) {
      devices.push(device);
    },
  };
}
