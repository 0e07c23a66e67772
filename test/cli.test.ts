// The CLI as a person or a script uses it: the real motebit-sync in child processes against a real relay.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab, freePort } from './support/devices.ts';
import { startRewritingProxy } from './support/rewriting-proxy.ts';
import { runCli, type CliRun } from './support/cli.ts';


function cli(args: string[], stdin = ''): Promise<CliRun> {
  return runCli(args, { stdin });
}

let lab: Lab;
let relayUrl: string;
let a: string;
let b: string;

beforeAll(async () => {
  lab = new Lab();
  relayUrl = (await lab.relay()).url;
  a = join(lab.dir, 'a');
  b = join(lab.dir, 'b');
  expect((await cli(['--home', a, 'init', '--relay', relayUrl, '--name', 'laptop', '--keys', 'master-token'])).code).toBe(0);
  const code = JSON.parse((await cli(['--home', a, 'pair', '--json'])).stdout).pairing_code as string;
  expect((await cli(['--home', b, 'join', '--name', 'desktop'], `${code}\n`)).code).toBe(0);
});
afterAll(() => lab.close());

describe('motebit-sync', () => {
  it('writes, syncs and reads back across two homes, with stable --json', async () => {
    expect((await cli(['--home', a, 'put', 'memory/1', '{"text":"hi"}'])).code).toBe(0);
    const sync = await cli(['--home', a, 'sync', '--json']);
    expect(sync.code).toBe(0);
    expect(JSON.parse(sync.stdout)).toEqual({
      motebit_id: expect.stringMatching(/^mb_/),
      device_id: expect.stringMatching(/^dv_/),
      state: 'idle',
      transport: 'websocket',
      last_success_at: expect.any(Number),
      pending_out: 0,
      open_conflicts: 0,
      rejected_events: 0,
      quarantined_events: 0,
      last_recovery: null,
      last_error: null,
    });
    expect((await cli(['--home', b, 'sync'])).code).toBe(0);
    const get = await cli(['--home', b, 'get', 'memory/1']);
    expect(get).toMatchObject({ code: 0, stdout: '{"text":"hi"}\n' });
    const state = JSON.parse((await cli(['--home', b, 'state', '--json'])).stdout);
    expect(state.entities).toContainEqual({ entity: 'memory/1', value: { text: 'hi' }, event_id: expect.any(String), device_id: expect.stringMatching(/^dv_/) });
  });

  it('imports JSON lines in one transaction: a bad line imports nothing', async () => {
    const bad = await cli(['--home', a, 'import', '-'], '{"entity":"i/1","value":1}\n{"entity":"i/2"}\n');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/line 2/);
    expect((await cli(['--home', a, 'get', 'i/1'])).code).toBe(1);
    const good = await cli(['--home', a, 'import', '-', '--json'], '{"entity":"i/1","value":1}\n\n{"entity":"i/2","value":[2]}\n');
    expect(good).toMatchObject({ code: 0 });
    expect(JSON.parse(good.stdout)).toEqual({ imported: 2 });
  });

  it('records a concurrent write as a conflict that both homes list, and resolves it by a new write', async () => {
    await cli(['--home', a, 'put', 'memory/c', '"a"']);
    await cli(['--home', b, 'put', 'memory/c', '"b"']);
    for (const home of [a, b, a]) expect((await cli(['--home', home, 'sync'])).code).toBe(0);
    const onA = JSON.parse((await cli(['--home', a, 'conflicts', '--json'])).stdout).conflicts;
    const onB = JSON.parse((await cli(['--home', b, 'conflicts', '--json'])).stdout).conflicts;
    expect(onA).toHaveLength(1);
    expect(onB.map((c: { winner: unknown; loser: unknown }) => [c.winner, c.loser])).toEqual(onA.map((c: { winner: unknown; loser: unknown }) => [c.winner, c.loser]));
    expect(new Set([onA[0].winner.value, onA[0].loser.value])).toEqual(new Set(['a', 'b']));

    const keep = onA[0].loser;
    expect((await cli(['--home', a, 'resolve', String(onA[0].id), keep.event_id])).code).toBe(0);
    for (const home of [a, b]) expect((await cli(['--home', home, 'sync'])).code).toBe(0);
    for (const home of [a, b]) {
      expect((await cli(['--home', home, 'get', 'memory/c'])).stdout).toBe(`${JSON.stringify(keep.value)}\n`);
      expect(JSON.parse((await cli(['--home', home, 'conflicts', '--json'])).stdout).conflicts).toEqual([]);
    }
  });

  it('answers usage errors with exit 2 and says what to do', async () => {
    for (const args of [['frobnicate'], ['put', 'memory/1', 'not json'], ['put', '', '1'], ['--bogus'], ['resolve', 'x', 'y'], ['init']]) {
      const run = await cli(['--home', a, ...args]);
      expect(run.code, args.join(' ')).toBe(2);
      expect(run.stderr).toMatch(/motebit-sync: /);
    }
    expect((await cli(['help'])).stdout).toMatch(/exit codes: 0 ok/);
  });

  it('a home with no motebit says to run init or join', async () => {
    const run = await cli(['--home', join(lab.dir, 'empty'), 'status']);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/motebit-sync init.*join/);
  });

  it('the interactive mode runs /sync, /status and /conflicts', async () => {
    const run = await cli(['--home', b, 'shell'], '/status\n/sync\n/conflicts\n/nonsense\n/quit\n');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/state\s+idle/);
    expect(run.stdout).toMatch(/last sync\s+\d+ s ago/);
    expect(run.stdout).toMatch(/no open conflicts/);
    expect(run.stderr).toMatch(/unknown command \/nonsense/);
  });

  it('revoking a device cuts it off: its next sync fails with the auth exit code and says why', async () => {
    const c = join(lab.dir, 'c');
    const code = JSON.parse((await cli(['--home', a, 'pair', '--json'])).stdout).pairing_code as string;
    expect((await cli(['--home', c, 'join', '--name', 'old-phone'], `${code}\n`)).code).toBe(0);
    const deviceId = JSON.parse((await cli(['--home', c, 'status', '--json'])).stdout).device_id as string;
    expect((await cli(['--home', a, 'revoke', deviceId])).code).toBe(0);
    const devices = JSON.parse((await cli(['--home', a, 'devices', '--json'])).stdout).devices;
    expect(devices.find((d: { device_id: string }) => d.device_id === deviceId).revoked_at).toEqual(expect.any(Number));
    const cut = await cli(['--home', c, 'sync', '--json']);
    expect(cut.code).toBe(4);
    expect(JSON.parse(cut.stdout).last_error).toMatchObject({ kind: 'auth', next_step: expect.stringMatching(/revoked/) });
  });

  it('an unreachable relay is exit code 3 with the next step', async () => {
    const home = join(lab.dir, 'a');
    const dead = join(lab.dir, 'dead');
    const run = await cli(['--home', dead, 'init', '--relay', 'http://127.0.0.1:9']);
    expect(run.code).toBe(3);
    expect(run.stderr).toMatch(/relay/);
    void home;
  });
});

describe('motebit-sync against a relay that fails it', () => {
  it('a relay replaced by an empty one: sync says so, sends everything again, exits 0; a tampered page exits 5', async () => {
    const port = await freePort();
    const proxy = await startRewritingProxy(() => relay.url, port);
    let relay = await lab.relay({ port: await freePort(), db: join(lab.dir, 'r1.db'), audience: proxy.url });
    const x = join(lab.dir, 'x');
    const y = join(lab.dir, 'y');
    expect((await cli(['--home', x, 'init', '--relay', proxy.url, '--name', 'x', '--keys', 'master-token'])).code).toBe(0);
    const code = JSON.parse((await cli(['--home', x, 'pair', '--json'])).stdout).pairing_code as string;
    expect((await cli(['--home', y, 'join', '--name', 'y'], `${code}\n`)).code).toBe(0);
    expect((await cli(['--home', x, 'import', '-'], '{"entity":"n/1","value":1}\n{"entity":"n/2","value":2}\n{"entity":"n/3","value":3}\n')).code).toBe(0);
    expect((await cli(['--home', x, 'sync'])).code).toBe(0);

    await relay.close();
    relay = await lab.relay({ port: await freePort(), db: join(lab.dir, 'r2.db'), audience: proxy.url }); // empty, same URL
    const text = await cli(['--home', x, 'sync']);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain('recovered 0 s ago: The relay had lost data (its storage was replaced by an empty one); this device sent 3 events again.');
    const json = JSON.parse((await cli(['--home', x, 'status', '--json'])).stdout);
    expect(json.last_recovery).toMatchObject({ reason: 'relay_replaced', resent: 3 });

    // The relay now alters one event of x in every page y pulls: y's sync fails with exit 5 and says why.
    proxy.rewrite((answer) => {
      const body = answer.body as { events?: { body: string; device_seq: number }[] };
      if (!answer.path.endsWith('/events') || answer.method !== 'GET' || !body.events?.length) return undefined;
      return { ...body, events: body.events.map((e) => (e.device_seq === 2 ? { ...e, body: `${e.body.slice(0, -4)}AAAA` } : e)) };
    });
    const bad = await cli(['--home', y, 'sync', '--json']);
    expect(bad.code).toBe(5);
    expect(JSON.parse(bad.stdout)).toMatchObject({ state: 'error', last_error: { kind: 'integrity', message: expect.stringContaining('failed verification') } });
    proxy.rewrite(null);
    expect((await cli(['--home', y, 'sync'])).code).toBe(0);
    expect(await cli(['--home', y, 'get', 'n/2'])).toMatchObject({ code: 0, stdout: '2\n' });
    await proxy.close();
  });
});
