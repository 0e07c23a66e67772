// Per-device keys through the window's contract (issue 16), with a real relay, real stores and the real
// secret store: setup.create founds a per-device motebit and hands its recovery key to the window once;
// a new device joins by approval in steps (code, digits, approval), can be cancelled and expires in words;
// a member checks a new device's code, then approves or declines it; removing a device cuts it off.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { controllerLab, value } from './support/controllers.ts';
import { Device } from '../main/app/device.ts';
import { configPath, motebitDir } from '../main/config/home.ts';
import { eventually, syncAll } from './support/devices.ts';
import { POLL_MS } from './support/pair.ts';
import { randomBytes } from 'node:crypto';
import { startJoin } from '../main/identity/pairing-flow.ts';
import { memberFromSecret } from '../shared/membership/author.ts';
import { parsePairingCode } from '../shared/membership/pairing-code.ts';
import { toBase64Url } from '../shared/encoding.ts';

const harness = controllerLab();
const app = harness.app;

function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name));
}

/** A new device (Device.joinByApproval) whose code and digits the test reads as they come. */
function newDevice(name: string, relayUrl: string) {
  let code!: (text: string) => void;
  let sas!: (digits: string) => void;
  const shown = { code: new Promise<string>((resolve) => (code = resolve)), sas: new Promise<string>((resolve) => (sas = resolve)) };
  const joined = Device.joinByApproval({ ...harness.lab.home(name), relayUrl, deviceName: name, pollMs: POLL_MS, onCode: (text) => code(text), onOffer: (offered) => sas(offered.sas) });
  joined.catch(() => {});
  return { ...shown, joined };
}

describe('per-device keys through the contract', () => {
  it('setup.create founds a per-device motebit; recovery.take answers its recovery key once, kept in no file; the old pairing code is refused in words', async () => {
    const relay = await harness.lab.relay();
    const { call, home } = await app('laptop');
    const state = value<{ motebitId: string }>(await call('setup.create', { relayUrl: relay.url, deviceName: 'laptop' }));
    expect(value(await call('settings.get', {}))).toMatchObject({ keys: 'per-device' });
    const key = value<{ motebitId: string; recoveryKey: string; qrSvg: string }>(await call('recovery.take', {}));
    expect(key.motebitId).toBe(state.motebitId);
    expect(key.recoveryKey).toMatch(/^MBR1-[0-9A-Z]{4}-/);
    expect(key.qrSvg).toMatch(/^<svg/);
    expect(value(await call('recovery.take', {}))).toBeNull(); // once
    const body = key.recoveryKey.replaceAll('-', '').slice(4, 24);
    const files = filesUnder(motebitDir(home));
    expect(files.length).toBeGreaterThan(0);
    for (const file of files) expect(readFileSync(file).includes(body), file).toBe(false);
    const refused = await call('pairing.create', {});
    expect(refused).toMatchObject({ ok: false, error: { code: 'invalid_state' } });
    expect(!refused.ok && refused.error.message).toMatch(/approv/i);
  });

  it('join by approval in three steps: the code, the same digits as the member, then ready with what the member wrote', async () => {
    const relay = await harness.lab.relay();
    const { device: member } = await harness.lab.found(relay.url, { name: 'laptop' });
    member.put('note/1', 'written on the laptop');
    expect((await member.syncNow()).ok).toBe(true);
    const { controller, call } = await app('desk');
    const started = value<{ code: string; qrSvg: string; expiresAt: number }>(await call('setup.joinStart', { relayUrl: relay.url, deviceName: 'desk' }));
    expect(started.code).toMatch(/^MBP1-/);
    expect(started.qrSvg).toMatch(/^<svg/);
    expect(started.expiresAt).toBeGreaterThan(Date.now() + 60_000);
    expect(existsSync(configPath(join(harness.lab.dir, 'desk')))).toBe(false); // nothing written while waiting
    const digits = call('setup.joinDigits', {});
    const pending = await member.approvalFor(started.code, { pollMs: POLL_MS });
    expect(value<{ sas: string; motebitId: string }>(await digits)).toEqual({ sas: pending.sas, motebitId: member.identity.motebitId });
    expect(pending.name).toBe('desk');
    expect(existsSync(configPath(join(harness.lab.dir, 'desk')))).toBe(false); // nor before the approval
    await pending.approve();
    const state = value<{ phase: string; motebitId: string; deviceName: string }>(await call('setup.joinFinish', {}));
    expect(state).toMatchObject({ phase: 'ready', motebitId: member.identity.motebitId, deviceName: 'desk' });
    expect(value(await call('recovery.take', {}))).toBeNull(); // only the founding device ever had one
    await eventually(async () => (await controller.current.syncNow()).ok && controller.current.get('note/1')?.value === 'written on the laptop', 'the new device has what the member wrote');
    expect(value(await call('settings.get', {}))).toMatchObject({ keys: 'per-device' });
  });

  it('setup.cancel stops a join waiting for the other device: cancelled, nothing written, and a new code can be had', async () => {
    const relay = await harness.lab.relay();
    const { controller, call, home } = await app('desk');
    value(await call('setup.joinStart', { relayUrl: relay.url }));
    const digits = call('setup.joinDigits', {});
    expect(value(await call('setup.cancel', {}))).toEqual({ cancelled: true });
    expect(await digits).toMatchObject({ ok: false, error: { code: 'cancelled', message: expect.stringMatching(/stopped; nothing was changed/) } });
    expect(await call('setup.joinFinish', {})).toMatchObject({ ok: false, error: { code: 'cancelled' } });
    expect(value(await call('setup.cancel', {}))).toEqual({ cancelled: false });
    expect(existsSync(configPath(home))).toBe(false);
    expect(controller.state()).toEqual({ phase: 'setup' });
    expect(value<{ code: string }>(await call('setup.joinStart', { relayUrl: relay.url })).code).toMatch(/^MBP1-/);
  });

  it('a code nobody answers expires: words for the window (no command to run), nothing written', async () => {
    const relay = await harness.lab.relay({ pairingLifetimeSeconds: 2 });
    const { controller, call, home } = await app('desk');
    value(await call('setup.joinStart', { relayUrl: relay.url }));
    const expired = await call('setup.joinDigits', {});
    expect(expired).toMatchObject({ ok: false, error: { code: 'invalid_state' } });
    expect(!expired.ok && expired.error.message).toMatch(/^The code expired before another device approved it[;:] get a new code and try again\.?$/);
    expect(existsSync(configPath(home))).toBe(false);
    expect(controller.state()).toEqual({ phase: 'setup' });
  });

  it('setup.recover: the recovery key adds this device to the motebit, which then syncs everything; a typo or a wrong motebit id writes nothing', async () => {
    const relay = await harness.lab.relay();
    const { device: lost, recoveryKey } = await harness.lab.found(relay.url, { name: 'lost-laptop' });
    lost.put('note/kept', 'written before every device was lost');
    expect((await lost.syncNow()).ok).toBe(true);
    const motebitId = lost.identity.motebitId;
    const { controller, call, home } = await app('fresh');

    const typo = await call('setup.recover', { relayUrl: relay.url, motebitId, recoveryKey: `${recoveryKey.slice(0, -1)}${recoveryKey.endsWith('X') ? 'Y' : 'X'}` });
    expect(typo).toMatchObject({ ok: false, error: { code: 'invalid_argument', message: expect.stringMatching(/recovery key/i) } });
    const other = (await harness.lab.found(relay.url, { name: 'other' })).device.identity.motebitId;
    const wrong = await call('setup.recover', { relayUrl: relay.url, motebitId: other, recoveryKey });
    expect(wrong).toMatchObject({ ok: false, error: { code: 'invalid_state' } });
    expect(!wrong.ok && wrong.error.message).toMatch(/recovery key/);
    expect(existsSync(configPath(home))).toBe(false);
    expect(controller.state()).toEqual({ phase: 'setup' });

    const state = value<{ phase: string; motebitId: string }>(await call('setup.recover', { relayUrl: relay.url, motebitId, recoveryKey: ` ${recoveryKey.toLowerCase()} `, deviceName: 'fresh' }));
    expect(state).toMatchObject({ phase: 'ready', motebitId, deviceName: 'fresh' });
    await eventually(async () => (await controller.current.syncNow()).ok && controller.current.get('note/kept')?.value === 'written before every device was lost', 'the recovered device has everything');
    const key = recoveryKey.replaceAll('-', '').slice(4, 24);
    for (const file of filesUnder(home)) expect(readFileSync(file).includes(key), file).toBe(false);
    // and the lost device is removed from here
    value(await call('devices.revoke', { deviceId: lost.identity.deviceId }));
    expect((await lost.syncNow()).ok).toBe(false);
  });

  it('a member checks a new device: its name and the same digits; declining adds nothing and the code is used up; approving adds it', async () => {
    const relay = await harness.lab.relay({ pairingLifetimeSeconds: 4 });
    const { controller, call } = await app('laptop');
    value(await call('setup.create', { relayUrl: relay.url, deviceName: 'laptop' }));
    const before = value<{ deviceId: string }[]>(await call('devices.list', {}));
    expect(before).toHaveLength(1);

    // bad input first: nothing reaches the relay
    const typo = await call('pairing.check', { code: 'MBP1-AAAA' });
    expect(typo).toMatchObject({ ok: false, error: { code: 'invalid_argument' } });
    expect(await call('pairing.check', { code: '   ' })).toMatchObject({ ok: false, error: { code: 'invalid_argument', field: 'code' } });
    expect(await call('pairing.approve', { deviceId: before[0]!.deviceId })).toMatchObject({ ok: false, error: { code: 'invalid_state' } });

    // declined
    const declined = newDevice('stranger', relay.url);
    const code = await declined.code;
    const checked = value<{ deviceId: string; name: string; sas: string }>(await call('pairing.check', { code }));
    expect(checked).toMatchObject({ name: 'stranger', sas: await declined.sas });
    expect(value(await call('pairing.decline', {}))).toEqual({ declined: true });
    expect(await call('pairing.approve', { deviceId: checked.deviceId })).toMatchObject({ ok: false, error: { code: 'invalid_state' } });
    await expect(declined.joined).rejects.toThrow(/expired before another device approved it/);
    expect(value<unknown[]>(await call('devices.list', {}))).toHaveLength(1);
    const again = await call('pairing.check', { code });
    expect(again).toMatchObject({ ok: false, error: { code: 'invalid_state', message: expect.stringMatching(/unknown, used or expired/) } });

    // approved
    const phone = newDevice('phone', relay.url);
    const shown = value<{ deviceId: string; sas: string }>(await call('pairing.check', { code: await phone.code }));
    expect(shown.sas).toBe(await phone.sas);
    expect(value(await call('pairing.approve', { deviceId: shown.deviceId }))).toEqual({ deviceId: shown.deviceId, name: 'phone' });
    const joined = harness.lab.track(await phone.joined);
    expect(joined.identity.motebitId).toBe(controller.current.identity.motebitId);
    const devices = value<{ deviceId: string; name: string | null; revokedAt: number | null }[]>(await call('devices.list', {}));
    expect(devices.map((d) => d.name).sort()).toEqual(['laptop', 'phone']);

    // removed: it shows revoked, and its next sync fails
    controller.current.put('before', 'both read this');
    await syncAll([controller.current, joined]);
    expect(joined.get('before')?.value).toBe('both read this');
    expect(value<{ revokedAt: number | null }>(await call('devices.revoke', { deviceId: joined.identity.deviceId })).revokedAt).toEqual(expect.any(Number));
    const cut = await joined.syncNow();
    expect(cut.ok).toBe(false);
    expect(cut.error?.message).toMatch(/revoked|removed/);
  });

  it('pairing.decline stops a check still waiting for the new device: cancelled in words, nothing added', async () => {
    const relay = await harness.lab.relay();
    const { call } = await app('laptop');
    value(await call('setup.create', { relayUrl: relay.url, deviceName: 'laptop' }));
    // a new device that opened its code and then went quiet (it never answers the offer)
    const quiet = await startJoin({ relayUrl: relay.url, member: memberFromSecret('device', randomBytes(32), 'quiet') });
    const checking = call('pairing.check', { code: quiet.code });
    const rendezvous = `${relay.url}/v1/pairings/${toBase64Url(parsePairingCode(quiet.code).rendezvousId)}`;
    await eventually(async () => ((await (await fetch(rendezvous)).json()) as { offer: unknown }).offer !== null, 'the member offered its motebit and waits for the answer');
    expect(value(await call('pairing.decline', {}))).toEqual({ declined: true });
    expect(await checking).toMatchObject({ ok: false, error: { code: 'cancelled', message: expect.stringMatching(/stopped; nothing was changed/) } });
    expect(value<unknown[]>(await call('devices.list', {}))).toHaveLength(1);
  });
});
