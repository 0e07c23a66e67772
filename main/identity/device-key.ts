// Each device's own Ed25519 key (a random seed, never derived, never shared) and its certificate: the
// identity key's signature that the device belongs to the motebit (docs/protocol.md §1).
import { randomSeed, signingKeyFromSeed, type SigningKey } from '../../shared/crypto.ts';
import { certifyDevice, type DeviceCredentials } from '../../shared/event.ts';
import { deviceIdFromDeviceKey } from '../../shared/ids.ts';

export interface DeviceKey {
  /** The 32-byte seed: the secret that is stored in the keyring. */
  readonly seed: Buffer;
  readonly signingKey: SigningKey;
  readonly deviceId: string;
}

export function deviceKeyFromSeed(seed: Uint8Array): DeviceKey {
  const signingKey = signingKeyFromSeed(seed);
  return { seed: Buffer.from(seed), signingKey, deviceId: deviceIdFromDeviceKey(signingKey.publicKey) };
}

export function createDeviceKey(): DeviceKey {
  return deviceKeyFromSeed(randomSeed());
}

/** The device's credentials for sealing: its key and the identity's certificate of it. */
export function deviceCredentials(identityKey: SigningKey, motebitId: string, device: DeviceKey): DeviceCredentials {
  return { deviceKey: device.signingKey, cert: certifyDevice(identityKey, motebitId, device.signingKey.publicKey) };
}

/** The keyring form of a device seed: "dks1_" + base64url. */
export function formatDeviceSeed(seed: Uint8Array): string {
  return 'dks1_' + Buffer.from(seed).toString('base64url');
}

export function parseDeviceSeed(text: string): Buffer {
  const match = /^dks1_([A-Za-z0-9_-]{43})$/.exec(text.trim());
  const seed = match?.[1] === undefined ? undefined : Buffer.from(match[1], 'base64url');
  if (!match || !seed || seed.byteLength !== 32 || seed.toString('base64url') !== match[1]) {
    throw new Error('the stored device key is damaged (expected dks1_ and 32 bytes of base64url)');
  }
  return seed;
}
