// Errors in words (main/app/error-words.ts): real failures — a real relay's refusals, a server that is not a
// relay, a closed port, the dispatcher's zod validation, an invalid config — read as what happened and
// what to do, with the technical text only in details. Also: equivalent loopback names are one relay
// (shared/audience.ts), and a failed setup leaves the home exactly as it was.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as createNetServer, type AddressInfo, type Server as NetServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppController } from '../main/app/app-controller.ts';
import { Device } from '../main/app/device.ts';
import { errorWords, validationWords } from '../main/app/error-words.ts';
import { createDispatcher } from '../main/app/ipc-dispatch.ts';
import { configPath, motebitDir } from '../main/config/home.ts';
import { keyringHelp, noKeyringLine } from '../main/keyring/help.ts';
import { RelayClient, checkRelay } from '../main/sync/relay-client.ts';
import { IPC_CONTRACT } from '../shared/portable/ipc-contract.ts';
import { canonicalAudience, sameAudience } from '../shared/audience.ts';
import { createDeviceKey } from '../main/identity/device-key.ts';
import type { RunningRelay } from '../relay/server.ts';
import { Lab, freePort } from './support/devices.ts';

/** No HTTP paths, status codes, relay codes or schema jargon in what a person reads. */
const JARGON = /\/v1\/|\/healthz|HTTP \d{3}|wrong_audience|unknown_device|quota_exceeded|rate_limited|Too small|expected number|relayUrl:|^seconds:|\bat \S+\.ts:\d+/;

const platform = () => ({ notify: () => {}, getStartAtLogin: () => false, setStartAtLogin: () => {} });

let lab: Lab;
let relay: RunningRelay;
const servers: (Server | NetServer)[] = [];

beforeAll(async () => {
  lab = new Lab();
  relay = await lab.relay();
});

afterAll(async () => {
  for (const server of servers) await new Promise((resolve) => server.close(resolve));
  await lab.close();
});

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error('expected a failure');
    },
    (error: unknown) => error,
  );
}

/** A real HTTP server that answers every request with `status` and `body`. */
async function server(status: number, body: string): Promise<string> {
  const s = createServer((_request, response) => {
    response.writeHead(status, { 'content-type': 'application/json' });
    response.end(body);
  });
  servers.push(s);
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
}

describe('errors in words', () => {
  it('wrong_audience from a real relay: what happened and what to type, the code only in details', async () => {
    const device = await lab.create(relay.url, { name: 'words-a' });
    const { identity } = device;
    const error = await rejection(new RelayClient({ relayUrl: relay.url, motebitId: identity.motebitId, deviceId: identity.deviceId, deviceKey: identity.deviceKey, audience: 'https://elsewhere.example' }).listDevices());
    const words = errorWords(error);
    expect(words).toMatchObject({ kind: 'auth', message: expect.stringMatching(/knows itself by another address/), nextStep: expect.stringMatching(/address the relay prints/) });
    expect(`${words.message} ${words.nextStep}`).not.toMatch(JARGON);
    expect(words.details).toMatch(/wrong_audience/);
  });

  it('unknown_device from a real relay', async () => {
    const device = await lab.create(relay.url, { name: 'words-b' });
    const stranger = createDeviceKey();
    const error = await rejection(new RelayClient({ relayUrl: relay.url, motebitId: device.identity.motebitId, deviceId: stranger.deviceId, deviceKey: stranger.signingKey }).listDevices());
    const words = errorWords(error);
    expect(words).toMatchObject({ kind: 'auth', message: expect.stringMatching(/does not know this device/) });
    expect(`${words.message} ${words.nextStep}`).not.toMatch(JARGON);
    expect(words.details).toMatch(/unknown_device/);
  });

  it('a server that is not a relay (GET /healthz refused: HTTP 403) and a closed port', async () => {
    const notRelay = errorWords(await rejection(checkRelay(await server(403, 'Forbidden'))));
    expect(notRelay).toMatchObject({ kind: 'relay', message: 'the address answered, but not as a motebit relay', nextStep: expect.stringContaining('npx motebit-relay') });
    expect(`${notRelay.message} ${notRelay.nextStep}`).not.toMatch(JARGON);
    expect(notRelay.details).toMatch(/HTTP 403/);

    const closed = errorWords(await rejection(checkRelay(`http://127.0.0.1:${await freePort()}`)));
    expect(closed).toMatchObject({ kind: 'network', message: 'the relay could not be reached', nextStep: expect.stringMatching(/^check the network, the relay address .*npx motebit-relay/) });
    expect(`${closed.message} ${closed.nextStep}`).not.toMatch(JARGON);
  });

  it("a relay's rate limit, from a real relay with a tiny budget", async () => {
    const strict = await lab.relay({ db: join(lab.dir, 'strict.db'), rateLimitCapacity: 3, rateLimitPerSecond: 0.01 });
    const device = await lab.create(strict.url, { name: 'busy' });
    let refused: unknown = null;
    for (let i = 0; i < 10 && refused === null; i++) refused = await device.relay.listDevices().then(() => null, (error: unknown) => error);
    const words = errorWords(refused);
    // A step run once (listing devices) is not retried by itself: it says to try again.
    expect(words).toMatchObject({ kind: 'network', message: 'the relay is busy with too many requests from this network', nextStep: 'wait a minute before trying again.' });
    expect(words.details).toMatch(/rate_limited/);
  });

  it('IPC inputs that fail their schema: the field in words, never "seconds: Too small…" or "relayUrl: …"', async () => {
    const controller = new AppController({ ...lab.home('words-ipc'), platform: platform() });
    await controller.start();
    const dispatch = createDispatcher(controller.handlers());
    const interval = await dispatch('settings.setInterval', { seconds: 1 });
    expect(interval).toMatchObject({ ok: false, error: { code: 'invalid_argument', field: 'seconds', message: 'The sync interval is at least 5 seconds: enter a number of seconds from 5 to 86,400 (one day).' } });
    expect(!interval.ok && interval.error.details).toMatch(/seconds: Too small/);
    const relayUrl = await dispatch('setup.create', { relayUrl: ' ' });
    expect(relayUrl).toMatchObject({ ok: false, error: { code: 'invalid_argument', field: 'relayUrl', message: expect.stringMatching(/^The relay address is empty: enter the relay address/) } });
    for (const result of [interval, relayUrl]) expect(!result.ok && result.error.message).not.toMatch(JARGON);
    // a field no person types (a conflict id) says the request was bad, not which schema rule failed
    const parsed = IPC_CONTRACT['conflicts.markReviewed'].input.safeParse({ id: 0 });
    expect(!parsed.success && validationWords(parsed.error)).toMatchObject({ kind: 'input', message: 'the window sent a request this app cannot take', details: expect.stringMatching(/^id: /) });
    await controller.close();
  });

  it('an invalid config names the file in words; the schema text is in details', async () => {
    const home = lab.home('words-config');
    mkdirSync(motebitDir(home.home), { recursive: true });
    writeFileSync(configPath(home.home), JSON.stringify({ interval_seconds: 'often' }));
    const words = errorWords(await rejection(Device.open(home)));
    expect(words).toMatchObject({ kind: 'local', message: `the settings file ${configPath(home.home)} has a problem`, nextStep: 'fix or remove that file, then try again' });
    expect(words.details).toMatch(/interval_seconds/);
  });

  it('an unexpected error shows no stack, only its name and message in details', () => {
    const words = errorWords(new TypeError('boom'));
    expect(words).toEqual({ kind: 'local', message: 'an unexpected error happened', nextStep: expect.any(String), details: 'TypeError: boom' });
  });
});

describe('no keyring: the words and the one terminal line', () => {
  it('names the exact command for this machine, and a single line for the terminal', () => {
    const found = (program: string) => `/usr/bin/${program}`;
    const help = keyringHelp({ platform: 'linux', env: {}, then: 'npm start', which: found });
    expect(help.why).toMatch(/no D-Bus session/);
    expect(help.command).toMatch(/^dbus-run-session -- sh -c '.*gnome-keyring-daemon --unlock --components=secrets .*&& npm start'$/);
    expect(help.instead).toBeNull();
    const line = noKeyringLine({ store: 'unavailable', command: help.command, instead: help.instead });
    expect(line).not.toMatch(/\n/);
    expect(line).toContain(help.command!);
    expect(noKeyringLine({ store: 'os', command: null, instead: null })).toBeNull();

    const bare = keyringHelp({ platform: 'linux', env: {}, then: 'npm start', which: (program) => (program === 'apt-get' ? '/usr/bin/apt-get' : null) });
    expect(bare.instead).toBe('First install a keyring: sudo apt-get install gnome-keyring dbus');
  });
});

describe('loopback names are one relay', () => {
  it('canonicalAudience folds localhost, 127.0.0.1 and [::1] (same scheme and port), nothing else', () => {
    expect(canonicalAudience('http://localhost:8787')).toBe('http://127.0.0.1:8787');
    expect(canonicalAudience('http://[::1]:8787')).toBe('http://127.0.0.1:8787');
    expect(canonicalAudience('http://LOCALHOST:8787/')).toBe('http://127.0.0.1:8787');
    expect(sameAudience('http://localhost:8787', 'http://127.0.0.1:8787')).toBe(true);
    expect(sameAudience('http://localhost:8788', 'http://127.0.0.1:8787')).toBe(false);
    expect(sameAudience('https://localhost:8787', 'http://127.0.0.1:8787')).toBe(false);
    expect(sameAudience('http://relay.example:8787', 'http://127.0.0.1:8787')).toBe(false);
    expect(sameAudience('http://localhost.evil.example:8787', 'http://127.0.0.1:8787')).toBe(false);
  });

  it('a device set up with http://localhost:PORT syncs with a relay whose audience is 127.0.0.1, and back', async () => {
    expect(relay.audience).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const port = new URL(relay.url).port;
    const laptop = await lab.create(`http://localhost:${port}`, { name: 'via-localhost' });
    expect(laptop.identity.relayUrl).toBe(`http://localhost:${port}`);
    laptop.put('memory/loopback', { text: 'hello' });
    expect((await laptop.syncNow()).ok).toBe(true);
    const desk = await lab.join(laptop, { name: 'desk' });
    expect((await desk.syncNow()).ok).toBe(true);
    expect(desk.get('memory/loopback')?.value).toEqual({ text: 'hello' });

    // the relay's side on its own: a token that names localhost (an older device) is accepted too
    const { identity } = laptop;
    const devices = await new RelayClient({ relayUrl: relay.url, motebitId: identity.motebitId, deviceId: identity.deviceId, deviceKey: identity.deviceKey, audience: `http://localhost:${port}` }).listDevices();
    expect(devices.map((d) => d.name)).toContain('via-localhost');

    // and a relay that calls itself localhost takes a device configured with 127.0.0.1
    const namedPort = await freePort();
    const named = await lab.relay({ db: join(lab.dir, 'named.db'), port: namedPort, audience: `http://localhost:${namedPort}` });
    expect(named.url).toBe(`http://127.0.0.1:${namedPort}`);
    const phone = await lab.create(named.url, { name: 'via-127' });
    expect((await phone.syncNow()).ok).toBe(true);
  });
});

describe('a failed setup leaves the home as it was', () => {
  for (const [what, refusing] of [
    ['a relay that refuses the enrolment (it knows itself by another address)', 'audience'],
    ['a relay that is not reachable', 'closed'],
  ] as const) {
    it(`setup.create and setup.join against ${what}: no config.json, no secrets`, async () => {
      const bad = refusing === 'audience' ? (await lab.relay({ db: join(lab.dir, `refusing-${what.length}.db`), audience: 'https://elsewhere.example' })).url : `http://127.0.0.1:${await freePort()}`;
      const home = { ...lab.home(`failed-${refusing}`), keyring: 'file' };
      const controller = new AppController({ ...home, platform: platform() });
      await controller.start();
      const dispatch = createDispatcher(controller.handlers());
      const created = await dispatch('setup.create', { relayUrl: bad, deviceName: 'never' });
      expect(created).toMatchObject({ ok: false, error: { code: refusing === 'audience' ? 'auth' : 'network' } });
      expect(!created.ok && created.error.message).not.toMatch(JARGON);
      expect(existsSync(configPath(home.home))).toBe(false);
      expect(existsSync(motebitDir(home.home))).toBe(false); // no secrets file, no folder: as it was

      // join: a pairing code from a working device, whose relay we then point at the bad one
      const source = await lab.create(relay.url, { name: `source-${refusing}` });
      const code = await source.pairingCode();
      const { decodePairingCode, encodePairingCode } = await import('../main/identity/pairing.ts');
      const pointed = encodePairingCode({ ...decodePairingCode(code), relayUrl: bad });
      const joined = await dispatch('setup.join', { pairingCode: pointed });
      expect(joined).toMatchObject({ ok: false });
      expect(existsSync(configPath(home.home))).toBe(false);
      expect(existsSync(motebitDir(home.home))).toBe(false);
      expect(controller.state()).toEqual({ phase: 'setup' });
      await controller.close();
    });
  }

  it('setup.cancel abandons a join waiting for a relay that never answers: cancelled, nothing written', async () => {
    const silent = createNetServer(() => {}); // accepts, never answers
    servers.push(silent);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const source = await lab.create(relay.url, { name: 'source-cancel' });
    const { decodePairingCode, encodePairingCode } = await import('../main/identity/pairing.ts');
    const code = encodePairingCode({ ...decodePairingCode(await source.pairingCode()), relayUrl: `http://127.0.0.1:${(silent.address() as AddressInfo).port}` });
    const home = { ...lab.home('cancelled-join'), keyring: 'file' };
    const controller = new AppController({ ...home, platform: platform() });
    await controller.start();
    const dispatch = createDispatcher(controller.handlers());
    const joining = dispatch('setup.join', { pairingCode: code });
    await new Promise((resolve) => silent.once('connection', resolve)); // the check is waiting on the relay
    expect(await dispatch('setup.cancel', {})).toEqual({ ok: true, value: { cancelled: true } });
    expect(await joining).toMatchObject({ ok: false, error: { code: 'cancelled', message: 'Setup was cancelled before the relay answered: nothing was set up; try again when you are ready.' } });
    expect(await dispatch('setup.cancel', {})).toEqual({ ok: true, value: { cancelled: false } });
    expect(existsSync(motebitDir(home.home))).toBe(false);
    expect(controller.state()).toEqual({ phase: 'setup' });
    await controller.close();
  });

  it('a home that had settings gets exactly those back', async () => {
    const bad = (await lab.relay({ db: join(lab.dir, 'refusing-kept.db'), audience: 'https://elsewhere.example' })).url;
    const home = { ...lab.home('failed-kept'), keyring: 'file' };
    mkdirSync(motebitDir(home.home), { recursive: true });
    writeFileSync(configPath(home.home), `${JSON.stringify({ interval_seconds: 45, secret_store: 'file' }, null, 2)}\n`);
    const before = readFileSync(configPath(home.home), 'utf8');
    const controller = new AppController({ ...home, platform: platform() });
    await controller.start();
    expect(await createDispatcher(controller.handlers())('setup.create', { relayUrl: bad })).toMatchObject({ ok: false, error: { code: 'auth' } });
    expect(readFileSync(configPath(home.home), 'utf8')).toBe(before);
    expect(existsSync(join(motebitDir(home.home), 'secrets.json')) ? JSON.parse(readFileSync(join(motebitDir(home.home), 'secrets.json'), 'utf8')).secrets : {}).toEqual({});
    await controller.close();
  });
});
