// Per-device keys from a terminal (issue 16), with the real CLI in child processes, a real relay and the
// test keyring: init shows the recovery key once and keeps it nowhere; join shows a one-time code and the
// six digits; approve asks before it adds anything; a code is used once; the recovery key brings the whole
// motebit back on a fresh home and removes a device a thief added.
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { chmodSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { RunningRelay } from '../relay/server.ts';
import { runCli } from './support/cli.ts';
import { startCli } from './support/pair.ts';
import { Lab, freePort } from './support/devices.ts';
import { startRewritingProxy, type RewritingProxy } from './support/rewriting-proxy.ts';

let lab: Lab;
let relay: RunningRelay;
let proxy: RewritingProxy | undefined;
const children: ChildProcessWithoutNullStreams[] = [];

beforeEach(async () => {
  lab = new Lab();
  relay = await lab.relay({ pairingLifetimeSeconds: 20 });
});

afterEach(async () => {
  for (const child of children.splice(0)) child.kill();
  await proxy?.close();
  proxy = undefined;
  await lab.close();
});

const home = (name: string) => join(lab.dir, name);

/** The CLI as a running process (test/support/pair.ts), killed after the test if it is still running. */
function start(args: string[]) {
  const run = startCli(args);
  children.push(run.child);
  return run;
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}

async function init(name: string): Promise<{ motebitId: string; recoveryKey: string }> {
  const created = await runCli(['--home', home(name), 'init', '--relay', relay.url, '--keys', 'per-device', '--name', name, '--json']);
  expect(created.code, created.stderr).toBe(0);
  const first = JSON.parse(created.stdout.split('\n')[0]!) as { motebit_id: string; recovery_key: string };
  return { motebitId: first.motebit_id, recoveryKey: first.recovery_key };
}

/** join on `newHome` and approve on `memberHome`, the person answering `answer` after comparing the digits. */
async function pair(memberHome: string, newHome: string, options: { answer: (joinerSas: string, memberSas: string) => string; relayUrl?: string }) {
  const joiner = start(['--home', home(newHome), 'join', '--relay', options.relayUrl ?? relay.url, '--name', newHome, '--json']);
  const { join_code: code } = await joiner.json<{ join_code: string }>();
  const approver = start(['--home', home(memberHome), 'approve', code, '--json']);
  const [{ sas: joinerSas }, { sas: memberSas }] = await Promise.all([joiner.json<{ sas: string }>(), approver.json<{ sas: string }>()]);
  approver.child.stdin.end(`${options.answer(joinerSas, memberSas)}\n`);
  return { code, joiner, approver, joinerSas, memberSas, approverCode: await approver.exited };
}

describe('per-device keys from the CLI', () => {
  it('init shows the recovery key once and keeps it nowhere; the home folder is private, even one that existed', async () => {
    mkdirSync(join(home('laptop'), '.motebit'), { recursive: true, mode: 0o755 });
    chmodSync(join(home('laptop'), '.motebit'), 0o755);
    const { motebitId, recoveryKey } = await init('laptop');
    expect(motebitId).toMatch(/^mb_/);
    expect(recoveryKey).toMatch(/^MBR1-/);
    for (const file of filesUnder(home('laptop'))) expect(readFileSync(file).includes(recoveryKey.replaceAll('-', '').slice(4, 20)), file).toBe(false);
    expect(statSync(join(home('laptop'), '.motebit')).mode & 0o777).toBe(0o700);
    chmodSync(join(home('laptop'), '.motebit'), 0o755); // widened later (a copy, an older version)
    const status = await runCli(['--home', home('laptop'), 'status', '--json']);
    expect(status.code).toBe(0);
    expect(statSync(join(home('laptop'), '.motebit')).mode & 0o777).toBe(0o700);
  });

  it('join and approve: the same six digits, a yes, then the new device syncs everything; a used code is worthless', async () => {
    await init('laptop');
    expect((await runCli(['--home', home('laptop'), 'put', 'note/1', '"hello"'])).code).toBe(0);
    expect((await runCli(['--home', home('laptop'), 'sync'])).code).toBe(0);
    const paired = await pair('laptop', 'phone', { answer: (a, b) => (a === b ? 'yes' : 'no') });
    expect(paired.joinerSas).toMatch(/^\d{3} \d{3}$/);
    expect(paired.joinerSas).toBe(paired.memberSas);
    expect(paired.approverCode, paired.approver.stderr()).toBe(0);
    expect(await paired.joiner.exited, paired.joiner.stderr()).toBe(0);
    const got = await runCli(['--home', home('phone'), 'get', 'note/1']);
    expect(got.stdout.trim()).toBe('"hello"');
    // The same code again: refused in words, nothing changes.
    const again = await runCli(['--home', home('laptop'), 'approve', paired.code, '--yes']);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toMatch(/unknown, used or expired/);
    const devices = JSON.parse((await runCli(['--home', home('laptop'), 'devices', '--json'])).stdout) as { devices: { name?: string; revoked_at: number | null }[] };
    expect(devices.devices.filter((d) => d.revoked_at === null).map((d) => d.name).sort()).toEqual(['laptop', 'phone']);
  });

  it('digits that differ (a relay that swapped the motebit): the person says no, nothing is added, the new device gives up', async () => {
    // Both devices reach the relay through a proxy that shows the new device another genesis than the
    // member offered (the member reads only the reveal from the rendezvous).
    await lab.relays[0]!.close();
    lab.relays.length = 0;
    const port = await freePort();
    proxy = await startRewritingProxy(() => honest.url, port);
    const honest = await lab.relay({ pairingLifetimeSeconds: 3, audience: proxy.url, db: join(lab.dir, 'relay-2.db') });
    relay = { ...honest, url: proxy.url } as RunningRelay;
    await init('laptop');
    proxy.rewrite((answer) => {
      const body = answer.body as { offer?: { genesis_hash: string } | null };
      if (answer.method !== 'GET' || !answer.path.startsWith('/v1/pairings/') || !body.offer) return undefined;
      return { ...body, offer: { ...body.offer, genesis_hash: 'e'.repeat(64) } };
    });
    const paired = await pair('laptop', 'phone', { answer: (a, b) => (a === b ? 'yes' : 'no') });
    expect(paired.joinerSas).not.toBe(paired.memberSas);
    expect(paired.approverCode).not.toBe(0);
    expect(paired.approver.stderr()).toMatch(/not approved; nothing was changed/);
    expect(await paired.joiner.exited).not.toBe(0);
    expect(paired.joiner.stderr()).toMatch(/expired before another device approved it/);
    const devices = JSON.parse((await runCli(['--home', home('laptop'), 'devices', '--json'])).stdout) as { devices: unknown[] };
    expect(devices.devices).toHaveLength(1);
    expect(filesUnder(lab.dir).some((file) => file.startsWith(home('phone')) && file.endsWith('config.json'))).toBe(false);
  });

  it('the recovery key restores the whole motebit on a fresh home and removes the device a thief added', async () => {
    const { motebitId, recoveryKey } = await init('laptop');
    expect((await runCli(['--home', home('laptop'), 'put', 'note/1', '"kept"'])).code).toBe(0);
    expect((await runCli(['--home', home('laptop'), 'sync'])).code).toBe(0);
    // A thief with the unlocked laptop approves a device of their own.
    const thief = await pair('laptop', 'thief', { answer: () => 'y' });
    expect(await thief.joiner.exited).toBe(0);
    const thiefId = (JSON.parse((await runCli(['--home', home('thief'), 'status', '--json'])).stdout) as { device_id: string }).device_id;
    // Every device of the owner is lost: a fresh home, the recovery key typed on stdin (never on argv).
    const recovered = await runCli(['--home', home('fresh'), 'recover', '--relay', relay.url, '--motebit', motebitId, '--remove', thiefId, '--name', 'fresh'], { stdin: `${recoveryKey}\n` });
    expect(recovered.code, recovered.stderr).toBe(0);
    expect((await runCli(['--home', home('fresh'), 'get', 'note/1'])).stdout.trim()).toBe('"kept"');
    const cut = await runCli(['--home', home('thief'), 'sync']);
    expect(cut.code).not.toBe(0);
    expect(cut.stdout + cut.stderr).toMatch(/revoked|removed/);
    // A mistyped recovery key changes nothing and says so.
    const mistyped = `${recoveryKey.slice(0, -1)}${recoveryKey.endsWith('X') ? 'Y' : 'X'}`; // never the key itself (its last character was X once in 32 runs)
    const typo = await runCli(['--home', home('other'), 'recover', '--relay', relay.url, '--motebit', motebitId], { stdin: `${mistyped}\n` });
    expect(typo.code).toBe(2);
    expect(typo.stderr).toMatch(/recovery key/);
  });

  it('upgrade: a master-token motebit keeps its id and events; the second device upgrades by approval', async () => {
    const old = await runCli(['--home', home('laptop'), 'init', '--relay', relay.url, '--keys', 'master-token', '--name', 'laptop', '--json']);
    expect(old.code, old.stderr).toBe(0);
    const motebitId = (JSON.parse(old.stdout.split('\n')[0]!) as { motebit_id: string }).motebit_id;
    const code = (JSON.parse((await runCli(['--home', home('laptop'), 'pair', '--json'])).stdout) as { pairing_code: string }).pairing_code;
    // The old code carries the master token: refused on the command line (other users read argv), taken on stdin.
    const onArgv = await runCli(['--home', home('phone'), 'join', code, '--name', 'phone']);
    expect(onArgv.code).toBe(2);
    expect(onArgv.stderr).toMatch(/command line can be read by other users/);
    expect((await runCli(['--home', home('phone'), 'join', '--name', 'phone'], { stdin: `${code}\n` })).code).toBe(0);
    expect((await runCli(['--home', home('phone'), 'put', 'note/phone', '"old"'])).code).toBe(0);
    expect((await runCli(['--home', home('phone'), 'sync'])).code).toBe(0);
    expect((await runCli(['--home', home('laptop'), 'sync'])).code).toBe(0);

    const first = await runCli(['--home', home('laptop'), 'upgrade', '--json']);
    expect(first.code, first.stderr).toBe(0);
    expect(JSON.parse(first.stdout.split('\n')[0]!)).toMatchObject({ motebit_id: motebitId, recovery_key: expect.stringMatching(/^MBR1-/) });
    expect((await runCli(['--home', home('laptop'), 'pair'])).stderr).toMatch(/adds devices by approval/);

    const joiner = start(['--home', home('phone'), 'upgrade', '--json']);
    const { join_code: joinCode } = await joiner.json<{ join_code: string }>();
    const approver = start(['--home', home('laptop'), 'approve', joinCode, '--json']);
    const [{ sas: a }, { sas: b }] = await Promise.all([joiner.json<{ sas: string }>(), approver.json<{ sas: string }>()]);
    expect(a).toBe(b);
    approver.child.stdin.end('y\n');
    expect(await approver.exited, approver.stderr()).toBe(0);
    expect(await joiner.exited, joiner.stderr()).toBe(0);
    expect((await runCli(['--home', home('laptop'), 'put', 'note/laptop', '"new"'])).code).toBe(0);
    expect((await runCli(['--home', home('laptop'), 'sync'])).code).toBe(0);
    expect((await runCli(['--home', home('phone'), 'sync'])).code).toBe(0);
    expect((await runCli(['--home', home('phone'), 'get', 'note/laptop'])).stdout.trim()).toBe('"new"');
    expect((await runCli(['--home', home('laptop'), 'get', 'note/phone'])).stdout.trim()).toBe('"old"');
    const config = JSON.parse(readFileSync(join(home('phone'), '.motebit', 'config.json'), 'utf8')) as { motebit_id: string; keys?: string };
    expect(config).toMatchObject({ motebit_id: motebitId, keys: 'per-device' });
  });

  it('the recovery key can be replaced: the new one is shown once, the old one no longer works', async () => {
    const { motebitId, recoveryKey } = await init('laptop');
    const wrong = await runCli(['--home', home('laptop'), 'recovery-key', '--replace'], { stdin: `${recoveryKey.replace(/^MBR1-..../, 'MBR1-AAAA')}\n` });
    expect(wrong.code).not.toBe(0);
    const replaced = await runCli(['--home', home('laptop'), 'recovery-key', '--replace', '--json'], { stdin: `${recoveryKey}\n` });
    expect(replaced.code, replaced.stderr).toBe(0);
    const next = (JSON.parse(replaced.stdout.split('\n')[0]!) as { recovery_key: string }).recovery_key;
    expect(next).toMatch(/^MBR1-/);
    expect(next).not.toBe(recoveryKey);
    const withOld = await runCli(['--home', home('old'), 'recover', '--relay', relay.url, '--motebit', motebitId], { stdin: `${recoveryKey}\n` });
    expect(withOld.code).not.toBe(0);
    const withNew = await runCli(['--home', home('new'), 'recover', '--relay', relay.url, '--motebit', motebitId], { stdin: `${next}\n` });
    expect(withNew.code, withNew.stderr).toBe(0);
  });
});
