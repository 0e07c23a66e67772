// Settings → Storage through the window's contract (issue 12), with a real relay, real SQLite stores and
// the real secret store: snapshot.info says there is no snapshot yet; snapshot.make syncs first and saves
// one (the relay then serves it, and a new device starts from it with the same state); snapshot.prune
// shrinks this device's database and leaves every value as it was; failures (no snapshot yet, the relay
// stopped, a second click while one runs) come back in words with nothing changed.
import { describe, expect, it } from 'vitest';
import { controllerLab, value } from './support/controllers.ts';
import type { ChannelOutput } from '../shared/portable/ipc-contract.ts';


const harness = controllerLab();
const app = harness.app;

/** 3,000 writes over 50 entities: most of the history no longer matters once a snapshot covers it. */
const HISTORY = Array.from({ length: 3_000 }, (_, i) => ({ entity: `memory/${i % 50}`, op: 'set' as const, payload: { n: i, text: 'x'.repeat(200) } }));

/** Words for people: no HTTP paths, status codes, stack traces or error class names. */
function expectWords(text: string): void {
  expect(text).not.toMatch(/\/v1\/|\b[45]\d\d\b|Error:|at .*\.ts|ECONNREFUSED|fetch failed/);
}

describe('Settings → Storage through the contract', () => {
  it('no snapshot yet; Save syncs and saves one the relay serves; Free space shrinks the database and keeps every value; a new device starts from the snapshot', async () => {
    const relay = await harness.lab.relay();
    const laptop = await app('laptop');
    await laptop.controller.create(relay.url, 'laptop');
    const recoveryKey = laptop.controller.takeRecoveryKey()!.recoveryKey;
    const device = laptop.controller.current;
    device.write(HISTORY);

    const empty = value<ChannelOutput<'snapshot.info'>>(await laptop.call('snapshot.info', {}));
    expect(empty).toEqual({ events: device.store.eventCount(), databaseBytes: device.store.databaseBytes(), latest: { kind: 'none' } });
    expect(empty.events).toBeGreaterThanOrEqual(3_000);

    // Free space with no snapshot: said in words, nothing dropped
    const early = await laptop.call('snapshot.prune', {});
    expect(early).toMatchObject({ ok: false, error: { code: 'invalid_state', message: 'There is no snapshot on the relay yet: save one first.' } });
    expect(device.store.eventCount()).toBe(empty.events);

    const made = value<ChannelOutput<'snapshot.make'>>(await laptop.call('snapshot.make', {}));
    expect(device.store.pendingOutCount()).toBe(0); // it synced first
    const total = Object.values(device.store.frontier().heads).reduce((sum, seq) => sum + seq, 0);
    expect(made.covered).toBe(total);
    expect(made.kept).toBeLessThan(made.covered);
    const onRelay = (await device.relay.latestSnapshot()).snapshot;
    expect(onRelay).not.toBeNull();
    expect(onRelay!.size).toBe(made.bytes);
    expect(made.storage.latest).toEqual({ kind: 'snapshot', covered: total, createdAt: onRelay!.created_at, bytes: onRelay!.size, deviceId: device.identity.deviceId, deviceName: 'laptop', current: true });
    expect(value(await laptop.call('snapshot.info', {}))).toEqual(made.storage);

    const stateBefore = device.state();
    const digestBefore = device.store.stateDigest();
    const freed = value<ChannelOutput<'snapshot.prune'>>(await laptop.call('snapshot.prune', {}));
    expect(freed.dropped).toBeGreaterThan(2_000);
    expect(freed.bytesAfter).toBeLessThan(freed.bytesBefore);
    expect(freed.storage.databaseBytes).toBe(freed.bytesAfter);
    expect(freed.storage.databaseBytes).toBe(device.store.databaseBytes());
    expect(freed.storage.events).toBe(empty.events - freed.dropped);
    expect(device.state()).toEqual(stateBefore);
    expect(device.store.stateDigest()).toBe(digestBefore);
    expect(device.get('memory/7')?.value).toEqual({ n: 2_957, text: 'x'.repeat(200) });

    // a second Free space finds nothing more to drop
    expect(value<ChannelOutput<'snapshot.prune'>>(await laptop.call('snapshot.prune', {})).dropped).toBe(0);

    value(await laptop.call('conflicts.list', {})); // the window read the device names (laptop only) and keeps them a while

    // a new device starts from the snapshot: it holds the same state without downloading the whole history
    const motebitId = device.identity.motebitId;
    const phone = await harness.lab.recover(relay.url, motebitId, recoveryKey, { name: 'phone' });
    const phases = new Set<string>();
    phone.engine.onStatus((status) => status.progress && phases.add(status.progress.phase));
    expect((await phone.syncNow()).ok).toBe(true);
    expect(phases.has('snapshot_download')).toBe(true);
    expect(phone.store.stateDigest()).toBe(digestBefore);
    expect(phone.store.eventCount()).toBeLessThan(3_000);
    expect(value<ChannelOutput<'snapshot.info'>>(await laptop.call('snapshot.info', {})).latest).toMatchObject({ kind: 'snapshot', deviceName: 'laptop', current: true });

    // a snapshot the new device saves later: the laptop names who saved it (a device added since it last read the names)
    phone.put('memory/from-phone', 'hello');
    const phoneMade = await phone.saveSnapshot();
    const seen = value<ChannelOutput<'snapshot.info'>>(await laptop.call('snapshot.info', {}));
    expect(seen.latest).toMatchObject({ kind: 'snapshot', covered: phoneMade.covered, deviceId: phone.identity.deviceId, deviceName: 'phone', current: false });
  }, 60_000);

  it('one snapshot action at a time: a second click while Save runs is refused in words, and the first completes', async () => {
    const relay = await harness.lab.relay();
    const laptop = await app('laptop');
    await laptop.controller.create(relay.url, 'laptop');
    laptop.controller.current.write(HISTORY.slice(0, 100));
    const first = laptop.call('snapshot.make', {});
    const second = await laptop.call('snapshot.prune', {});
    expect(second).toMatchObject({ ok: false, error: { code: 'invalid_state', message: 'A snapshot is being saved already: wait until it is done.' } });
    expect(value<ChannelOutput<'snapshot.make'>>(await first).covered).toBeGreaterThanOrEqual(100);
  }, 60_000);

  it('the relay stopped: Save says in words that no snapshot was saved and why, with the technical text apart; info still gives this device’s figures', async () => {
    const relay = await harness.lab.relay();
    const laptop = await app('laptop');
    await laptop.controller.create(relay.url, 'laptop');
    const device = laptop.controller.current;
    device.write(HISTORY.slice(0, 100));
    await relay.close();

    const failed = await laptop.call('snapshot.make', {});
    expect(failed.ok).toBe(false);
    if (failed.ok) return;
    expect(failed.error.code).toBe('network');
    expect(failed.error.message).toMatch(/^No snapshot was saved: the sync before it failed \(the relay could not be reached\): check the network/);
    expect(failed.error.message).toMatch(/; then save the snapshot again\.$/);
    expect(failed.error.details).toBeTruthy(); // the technical text, apart
    expectWords(failed.error.message);
    expect(device.store.pendingOutCount()).toBe(100); // nothing lost: the writes wait for the next sync

    const info = value<ChannelOutput<'snapshot.info'>>(await laptop.call('snapshot.info', {}));
    expect(info.events).toBe(100);
    expect(info.databaseBytes).toBe(device.store.databaseBytes());
    expect(info.latest.kind).toBe('unknown');
    if (info.latest.kind !== 'unknown') return;
    expect(info.latest.message).toMatch(/^The relay could not be reached/);
    expectWords(info.latest.message);
    expect(info.latest.details).toBeTruthy();

    const prune = await laptop.call('snapshot.prune', {});
    expect(prune).toMatchObject({ ok: false, error: { code: 'network' } });
    expect(device.store.eventCount()).toBe(100);
  }, 60_000);
});
