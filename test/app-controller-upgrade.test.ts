// Upgrading a master-token motebit from the window's contract (issue 16: "one button"), with a real relay,
// real stores and the real secret store: the first device's keys.upgrade founds the membership log and
// hands its recovery key to the window once; a second device's upgrade shows a code, the same six digits as
// the member that approves it, and both converge with every value kept. A cancelled or failed upgrade
// changes nothing: the device runs on as it was.
import { describe, expect, it } from 'vitest';
import { controllerLab, value } from './support/controllers.ts';
import { Device } from '../main/app/device.ts';
import type { Lab } from './support/devices.ts';
import { eventually } from './support/devices.ts';

const harness = controllerLab();
const app = harness.app;

/** A master-token motebit of two devices: the laptop made by the window's controller, the phone joined with a pairing code. */
async function oldMotebit(relayOptions: Parameters<Lab['relay']>[0] = {}) {
  const relay = await harness.lab.relay(relayOptions);
  const laptop = await app('laptop');
  await laptop.controller.create(relay.url, 'laptop', 'shared');
  const phoneDevice = await Device.join({ ...harness.lab.home('phone'), pairingCode: await laptop.controller.current.pairingCode(), deviceName: 'phone' });
  laptop.controller.current.put('from/laptop', 1);
  phoneDevice.put('from/phone', { two: 2 });
  expect((await laptop.controller.current.syncNow()).ok).toBe(true);
  expect((await phoneDevice.syncNow()).ok).toBe(true);
  expect((await laptop.controller.current.syncNow()).ok).toBe(true);
  expect(laptop.controller.current.get('from/phone')?.value).toEqual({ two: 2 });
  await phoneDevice.close();
  const phone = await app('phone');
  return { relay, laptop, phone };
}

describe('upgrading a master-token motebit through the contract', () => {
  it('the first device founds the log (recovery key once, per-device, values kept); the second is approved by it after a cancelled try; both converge', async () => {
    const { laptop, phone } = await oldMotebit();
    expect(value(await laptop.call('settings.get', {}))).toMatchObject({ keys: 'shared' });
    const before = laptop.controller.state();

    expect(value(await laptop.call('keys.upgrade', {}))).toEqual({ kind: 'founded' });
    const key = value<{ motebitId: string; recoveryKey: string; qrSvg: string }>(await laptop.call('recovery.take', {}));
    expect(key.recoveryKey).toMatch(/^MBR1-/);
    expect(key.qrSvg).toMatch(/^<svg/);
    expect(value(await laptop.call('recovery.take', {}))).toBeNull(); // once
    expect(laptop.controller.state()).toEqual(before); // the same motebit, the same device
    expect(key.motebitId).toBe(laptop.controller.current.identity.motebitId);
    expect(value(await laptop.call('settings.get', {}))).toMatchObject({ keys: 'per-device' });
    expect(laptop.controller.current.get('from/laptop')?.value).toBe(1);
    expect(laptop.controller.current.get('from/phone')?.value).toEqual({ two: 2 });
    expect(await laptop.call('keys.upgrade', {})).toMatchObject({ ok: false, error: { code: 'invalid_state', message: expect.stringMatching(/own keys already/) } });

    // the phone starts, and the person cancels: nothing changed, it runs on as before
    const tried = value<{ kind: string; code: string }>(await phone.call('keys.upgrade', {}));
    expect(tried).toMatchObject({ kind: 'join', code: expect.stringMatching(/^MBP1-/) });
    expect(phone.controller.isReady).toBe(false); // its device is closed while the upgrade waits
    expect(phone.controller.state()).toMatchObject({ phase: 'ready', deviceName: 'phone' });
    expect(await phone.call('status.get', {})).toMatchObject({ ok: false, error: { code: 'invalid_state', message: expect.stringMatching(/being upgraded/) } });
    expect(value(await phone.call('keys.upgradeWaiting', {}))).toEqual(tried); // a window opened again shows the same code
    const waiting = phone.call('keys.upgradeDigits', {});
    expect(value(await phone.call('keys.upgradeCancel', {}))).toEqual({ cancelled: true });
    expect(await waiting).toMatchObject({ ok: false, error: { code: 'cancelled' } });
    expect(phone.controller.isReady).toBe(true);
    expect(value(await phone.call('settings.get', {}))).toMatchObject({ keys: 'shared' });
    expect(phone.controller.current.get('from/phone')?.value).toEqual({ two: 2 });
    expect(value(await phone.call('keys.upgradeCancel', {}))).toEqual({ cancelled: false });
    expect(value(await phone.call('keys.upgradeWaiting', {}))).toBeNull();

    // again, approved on the laptop after comparing the digits
    const started = value<{ kind: 'join'; code: string; qrSvg: string; expiresAt: number }>(await phone.call('keys.upgrade', {}));
    expect(started.qrSvg).toMatch(/^<svg/);
    expect(started.expiresAt).toBeGreaterThan(Date.now());
    const [checked, digits] = await Promise.all([laptop.call('pairing.check', { code: started.code }), phone.call('keys.upgradeDigits', {})]);
    const member = value<{ deviceId: string; name: string; sas: string }>(checked);
    expect(value<{ sas: string; motebitId: string }>(digits)).toEqual({ sas: member.sas, motebitId: key.motebitId });
    expect(member.deviceId).toBe(phone.controller.state().phase === 'ready' && (phone.controller.state() as { deviceId: string }).deviceId);
    value(await laptop.call('pairing.approve', { deviceId: member.deviceId }));
    expect(value(await phone.call('keys.upgradeFinish', {}))).toMatchObject({ phase: 'ready', motebitId: key.motebitId, deviceName: 'phone', deviceId: member.deviceId });
    expect(value(await phone.call('settings.get', {}))).toMatchObject({ keys: 'per-device' });
    expect(value(await phone.call('recovery.take', {}))).toBeNull(); // only the first upgrade makes one
    expect(value(await phone.call('keys.upgradeWaiting', {}))).toBeNull();
    expect(await phone.call('keys.upgradeFinish', {})).toMatchObject({ ok: false, error: { code: 'invalid_state' } });

    laptop.controller.current.put('after/laptop', 'a');
    phone.controller.current.put('after/phone', 'b');
    await eventually(async () => {
      await laptop.controller.current.syncNow();
      await phone.controller.current.syncNow();
      return [laptop, phone].every(({ controller }) => controller.current.get('after/laptop')?.value === 'a' && controller.current.get('after/phone')?.value === 'b');
    }, 'both upgraded devices have what the other wrote since');
    for (const { controller } of [laptop, phone]) {
      expect(controller.current.get('from/laptop')?.value).toBe(1);
      expect(controller.current.get('from/phone')?.value).toEqual({ two: 2 });
    }
    expect(phone.controller.current.store.stateDigest()).toBe(laptop.controller.current.store.stateDigest());
  });

  it('an upgrade that cannot sync first fails in words, changes nothing, and the device runs on as it was', async () => {
    const { relay, laptop } = await oldMotebit();
    laptop.controller.current.put('offline/write', 'kept');
    await relay.close();
    const failed = await laptop.call('keys.upgrade', {});
    expect(failed.ok).toBe(false);
    const message = !failed.ok ? failed.error.message : '';
    expect(message).toMatch(/nothing was changed/);
    expect(message).not.toMatch(/\bat .*\.ts:\d+|ECONNREFUSED|HTTP \d{3}/); // words, not a stack or a status code
    expect(laptop.controller.isReady).toBe(true);
    expect(value(await laptop.call('settings.get', {}))).toMatchObject({ keys: 'shared' });
    expect(laptop.controller.current.get('offline/write')?.value).toBe('kept');
    expect(laptop.controller.current.store.pendingOutCount()).toBe(1); // still waiting to be sent
    expect(value(await laptop.call('recovery.take', {}))).toBeNull();
    expect(value<{ pendingOut: number }>(await laptop.call('status.get', {})).pendingOut).toBe(1);
  });

  it('quitting while a later upgrade waits for its approval leaves the device as it was', async () => {
    const { laptop, phone } = await oldMotebit();
    value(await laptop.call('keys.upgrade', {}));
    expect(value<{ kind: string }>(await phone.call('keys.upgrade', {})).kind).toBe('join');
    const finish = phone.call('keys.upgradeFinish', {});
    await phone.controller.close();
    expect(await finish).toMatchObject({ ok: false, error: { code: 'cancelled' } });
    const reopened = await Device.open(harness.lab.home('phone'));
    try {
      expect(reopened.identity.kind).toBe('master-token');
      expect(reopened.get('from/phone')?.value).toEqual({ two: 2 });
    } finally {
      await reopened.close();
    }
  });

  it('a code nobody answers expires in words; the device was opened again as it was, and a new code can be had', async () => {
    const { laptop, phone } = await oldMotebit({ pairingLifetimeSeconds: 2 });
    value(await laptop.call('keys.upgrade', {}));
    const first = value<{ code: string }>(await phone.call('keys.upgrade', {}));
    const expired = await phone.call('keys.upgradeDigits', {});
    expect(expired).toMatchObject({ ok: false, error: { message: expect.stringMatching(/expired.*get a new code and try again/) } });
    expect(phone.controller.isReady).toBe(true);
    expect(value(await phone.call('settings.get', {}))).toMatchObject({ keys: 'shared' });
    expect(phone.controller.current.get('from/phone')?.value).toEqual({ two: 2 });
    expect(await phone.call('keys.upgradeFinish', {})).toMatchObject({ ok: false, error: { message: expect.stringMatching(/expired/) } }); // the same words, once more
    const again = value<{ code: string }>(await phone.call('keys.upgrade', {}));
    expect(again.code).toMatch(/^MBP1-/);
    expect(again.code).not.toBe(first.code);
    expect(value(await phone.call('keys.upgradeCancel', {}))).toEqual({ cancelled: true });
  });

  it('a per-device motebit has nothing to upgrade', async () => {
    const relay = await harness.lab.relay();
    const { controller, call } = await app('desk');
    await controller.create(relay.url, 'desk');
    expect(await call('keys.upgrade', {})).toMatchObject({ ok: false, error: { code: 'invalid_state', message: expect.stringMatching(/own keys already/) } });
    expect(controller.isReady).toBe(true);
    expect(await call('keys.upgradeDigits', {})).toMatchObject({ ok: false, error: { code: 'invalid_state', message: expect.stringMatching(/no upgrade is in progress/i) } });
  });
});
