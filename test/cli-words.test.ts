// The CLI's words, in child processes against real relays: bad input never prints a stack, no keyring is
// said once with the exact command, the file keyring warns in one line, text from outside (device names,
// relay messages) reaches the terminal without control characters, a loopback alias is the same relay,
// and a failed init leaves the home as it was.
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configPath, motebitDir } from '../main/config/home.ts';
import { createDeviceKey } from '../main/identity/device-key.ts';
import { masterTokenIdentity } from '../main/identity/local-identity.ts';
import { RELAY_PROTOCOL, RELAY_REVISION } from '../shared/portable/relay-api.ts';
import type { RunningRelay } from '../relay/server.ts';
import { KEYRING, Lab } from './support/devices.ts';
import { runCli, type CliRun } from './support/cli.ts';

const STACK = /^\s+at .+:\d+:\d+\)?$/m;
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

function cli(args: string[], env: NodeJS.ProcessEnv = { MOTEBIT_KEYRING: KEYRING }): Promise<CliRun> {
  return runCli(args, { env: { MOTEBIT_KEYRING: undefined, ...env } });
}

let lab: Lab;
let relay: RunningRelay;
let fake: Server;
let fakeUrl: string;

beforeAll(async () => {
  lab = new Lab();
  relay = await lab.relay();
  // Answers as a relay on /healthz, then refuses the enrolment with a message full of terminal escapes.
  fake = createServer((request, response) => {
    response.writeHead(request.url === '/healthz' ? 200 : 403, { 'content-type': 'application/json' });
    response.end(
      request.url === '/healthz'
        ? JSON.stringify({ ok: true, protocol: RELAY_PROTOCOL, revision: RELAY_REVISION })
        : JSON.stringify({ error: { code: 'wrong_motebit', message: '\u001b]0;pwned\u0007\u001b[2J\u009b31mgotcha\u001b[0m' } }),
    );
  });
  await new Promise<void>((resolve) => fake.listen(0, '127.0.0.1', resolve));
  fakeUrl = `http://127.0.0.1:${(fake.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((resolve) => fake.close(resolve));
  await lab.close();
});

describe('motebit-sync in words', () => {
  it('init --relay ftp://x: a usage error in one sentence, no stack trace, nothing written', async () => {
    const home = join(lab.dir, 'ftp');
    const run = await cli(['--home', home, 'init', '--relay', 'ftp://x']);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/^motebit-sync: A relay URL is http:\/\/ or https:\/\/, not ftp:\/\/\.\n.*npx motebit-relay/);
    expect(run.stderr).not.toMatch(STACK);
    expect(run.stderr).not.toMatch(/TypeError|unexpected/);
    expect(existsSync(motebitDir(home))).toBe(false);
  });

  it('no keyring: says so, with the exact command and the file alternative, no stack; nothing written', async () => {
    const home = join(lab.dir, 'no-keyring');
    const run = await cli(['--home', home, 'init', '--relay', relay.url], { DBUS_SESSION_BUS_ADDRESS: 'unix:path=/nonexistent/motebit-test-bus' });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/no OS keyring/);
    expect(run.stderr).toMatch(/dbus-run-session -- sh -c '.*gnome-keyring-daemon/);
    expect(run.stderr).toMatch(/--keyring file/);
    expect(run.stderr).not.toMatch(STACK);
    expect(existsSync(configPath(home))).toBe(false);
  });

  it('the file keyring warns in one line, on every run, never "warning: WARNING:"', async () => {
    const home = join(lab.dir, 'file-keyring');
    const init = await cli(['--home', home, '--keyring', 'file', 'init', '--relay', relay.url, '--name', 'filed'], {});
    expect(init.code).toBe(0);
    for (const run of [init, await cli(['--home', home, '--keyring', 'file', 'status'], {})]) {
      const warnings = run.stderr.split('\n').filter((line) => /warn/i.test(line));
      expect(warnings).toEqual([`warning: secrets are kept in a plain file (${join(motebitDir(home), 'secrets.json')}, mode 0600), not in the OS keyring: anyone who can read this file can read and change everything this motebit syncs.`]);
    }
  });

  it('device names and relay messages reach the terminal without control characters', async () => {
    // another device of the motebit enrolled with bidirectional overrides in its name (the relay takes them)
    const first = await lab.create(relay.url, { name: 'first' });
    await first.relay.enrolDevice({ identityKey: masterTokenIdentity(first.identity).identityKey, deviceKey: createDeviceKey().signingKey.publicKey, name: 'evil\u202egnp.exe\u2066x' });
    const home = join(lab.dir, 'names');
    expect((await runCli(['--home', home, 'join', '--name', 'reader'], { stdin: `${await first.pairingCode()}\n`, env: { MOTEBIT_KEYRING: KEYRING } })).code).toBe(0);
    const devices = await cli(['--home', home, 'devices']);
    expect(devices.code).toBe(0);
    expect(devices.stdout).toContain('evil\ufffdgnp.exe\ufffdx');
    expect(devices.stdout).not.toMatch(CONTROL);

    // a relay whose refusal is full of escape sequences: words, and with --verbose its message, cleaned
    const refused = join(lab.dir, 'escapes');
    const plain = await cli(['--home', refused, 'init', '--relay', fakeUrl]);
    expect(plain.code).toBe(4);
    expect(plain.stderr).toMatch(/^motebit-sync: The relay does not accept this device for this motebit\./);
    expect(plain.stderr).not.toContain('gotcha');
    const verbose = await cli(['--home', refused, 'init', '--relay', fakeUrl, '--verbose']);
    expect(verbose.code).toBe(4);
    expect(verbose.stderr).toMatch(/details: wrong_motebit: .*gotcha/);
    expect(verbose.stderr).not.toMatch(CONTROL);
    expect(existsSync(configPath(refused))).toBe(false); // the failed init left nothing
  });

  it('init with http://localhost:PORT works with a relay that calls itself 127.0.0.1', async () => {
    const home = join(lab.dir, 'localhost');
    const run = await cli(['--home', home, 'init', '--relay', `http://localhost:${new URL(relay.url).port}`]);
    expect(run.stderr).not.toMatch(/another address|refused/);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/state\s+idle/);
  });

  it('init against a relay that refuses: exit 4, what to type in words, and no config.json', async () => {
    const other = await lab.relay({ db: join(lab.dir, 'elsewhere.db'), audience: 'https://elsewhere.example' });
    const home = join(lab.dir, 'refused');
    const run = await cli(['--home', home, 'init', '--relay', other.url]);
    expect(run.code).toBe(4);
    expect(run.stderr).toMatch(/knows itself by another address/);
    expect(run.stderr).not.toMatch(/\/v1\/|wrong_audience|HTTP \d/);
    expect(existsSync(configPath(home))).toBe(false);
    expect(existsSync(motebitDir(home))).toBe(false);
  });
});
