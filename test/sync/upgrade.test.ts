// Upgrading protocol-2 (master token) motebits in place (issue 16, docs/keys.md): the first device to
// upgrade founds the membership log and keeps the motebit id, its device id and every event; a device
// upgraded later joins by approval and keeps its events, including those it wrote in between; a device
// revoked before the upgrade, which still holds the old master token, gets nothing accepted.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Device } from '../../main/app/device.ts';
import { ChainError } from '../../shared/chain.ts';
import { certifyDevice } from '../../shared/event.ts';
import { createDeviceKey } from '../../main/identity/device-key.ts';
import { masterTokenIdentity } from '../../main/identity/local-identity.ts';
import { KEYRING, Lab, syncAll } from '../support/devices.ts';

let lab: Lab;
beforeEach(() => {
  lab = new Lab();
});
afterEach(async () => {
  await lab.close();
});

const homeOf = (device: Device) => ({ home: device.home, keyring: KEYRING, keyringService: `motebit-test-${process.pid}`, env: {} });

describe('upgrading a master-token motebit', () => {
  it('keeps every event and the ids, converges with a device upgraded later, and shuts out the old shared key', async () => {
    const relay = await lab.relay();
    const a = await lab.create(relay.url, { name: 'a' });
    const b = await lab.join(a, { name: 'b' });
    const r = await lab.join(a, { name: 'r' });
    a.put('from/a', 1);
    b.put('from/b', 2);
    r.put('from/r', 3);
    await syncAll([a, b, r]);
    await a.revoke(r.identity.deviceId); // protocol 2: revoked at the relay, but it keeps the master token
    const before = { motebitId: a.identity.motebitId, deviceId: a.identity.deviceId, digest: a.store.stateDigest() };
    const oldA = masterTokenIdentity(a.identity);

    await a.close();
    const upgraded = await Device.upgrade(homeOf(a));
    const a2 = lab.track(upgraded.device);
    expect(upgraded.recoveryKey).toMatch(/^MBR1-/);
    expect(a2.identity).toMatchObject({ kind: 'member', motebitId: before.motebitId, deviceId: before.deviceId });
    expect(a2.store.stateDigest()).toBe(before.digest);
    expect(a2.membership!.state!.legacy?.cutoffs.get(r.identity.deviceId)).toBe(1);
    a2.put('after/upgrade', 'new epoch');
    expect((await a2.syncNow()).ok).toBe(true);

    // b, not upgraded yet, writes with the old scheme; a2 does not take it yet (after the recorded frontier).
    b.put('b/in-between', 4);
    await b.syncNow(); // pushes it; cannot open a2's new event (a key of the new epoch)
    expect(b.store.pendingOutCount()).toBe(0);
    const refused = await a2.syncNow();
    expect(refused.ok).toBe(false);
    expect(a2.get('b/in-between')).toBeUndefined();

    // r, revoked before the upgrade with the master token in hand: its old-scheme events are refused by the
    // members whoever serves them, and the old identity key no longer enrols or revokes at the relay.
    r.put('r/forged', 'after');
    const forged = r.store.outboxBatch(10, r.identity.credentials);
    expect(() => a2.store.applyRemote(forged)).toThrow(ChainError);
    expect(a2.get('r/forged')).toBeUndefined();
    const stranger = createDeviceKey();
    await expect(a2.relay.enrolDevice({ identityKey: oldA.identityKey, deviceKey: stranger.signingKey.publicKey, cert: certifyDevice(oldA.identityKey, oldA.motebitId, stranger.signingKey.publicKey) })).rejects.toMatchObject({ code: 'membership_refused' });
    await expect(a2.relay.revokeDevice({ identityKey: oldA.identityKey, deviceId: a2.identity.deviceId })).rejects.toMatchObject({ code: 'membership_refused' });

    // b upgrades later, by approval on a2: it keeps its device id and its events, the one in between too.
    await b.close();
    let codeSeen!: (code: string) => void;
    const code = new Promise<string>((resolve) => (codeSeen = resolve));
    let joinerSas = '';
    const later = Device.upgrade({ ...homeOf(b), pollMs: 100, onCode: (c) => codeSeen(c), onOffer: ({ sas }) => void (joinerSas = sas) });
    const pending = await a2.approvalFor(await code, { pollMs: 100 });
    expect(pending.deviceId).toBe(b.identity.deviceId);
    await pending.approve();
    const b2 = lab.track((await later).device);
    expect(joinerSas).toBe(pending.sas);
    expect(b2.identity).toMatchObject({ kind: 'member', deviceId: b.identity.deviceId });

    await syncAll([a2, b2]);
    for (const device of [a2, b2]) {
      expect(device.get('from/a')?.value).toBe(1);
      expect(device.get('from/b')?.value).toBe(2);
      expect(device.get('from/r')?.value).toBe(3);
      expect(device.get('b/in-between')?.value).toBe(4);
      expect(device.get('after/upgrade')?.value).toBe('new epoch');
      expect(device.get('r/forged')).toBeUndefined();
    }
    expect(b2.store.stateDigest()).toBe(a2.store.stateDigest());
  });
});
