import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { writeFileAtomic } from '../../main/config/atomic-write.ts';
import { ConfigError, loadConfig, readConfig, saveConfig, updateConfig } from '../../main/config/config.ts';
import { configPath, motebitDir, resolveHome } from '../../main/config/home.ts';
import { parseRelayUrl } from '../../main/config/relay-url.ts';
import { tempHome } from './support.ts';

const homes: Array<{ remove(): void }> = [];
function newHome(): string {
  const home = tempHome('config');
  homes.push(home);
  return home.path;
}
afterEach(() => {
  for (const home of homes.splice(0)) home.remove();
});

function writeRawConfig(home: string, text: string): string {
  mkdirSync(motebitDir(home), { recursive: true });
  writeFileSync(configPath(home), text);
  return configPath(home);
}

describe('home', () => {
  it('is --home, else MOTEBIT_HOME, else the OS home', () => {
    expect(resolveHome({ home: '/tmp/a', env: { MOTEBIT_HOME: '/tmp/b' } })).toBe('/tmp/a');
    expect(resolveHome({ env: { MOTEBIT_HOME: '/tmp/b' } })).toBe('/tmp/b');
    expect(resolveHome({ home: '', env: { MOTEBIT_HOME: '' } })).toBe(homedir());
    expect(resolveHome({ env: {} })).toBe(homedir());
    expect(resolveHome({ home: 'relative/dir', env: {} })).toBe(resolve('relative/dir'));
    expect(configPath('/h')).toBe(join('/h', '.motebit', 'config.json'));
  });
});

describe('relay URL', () => {
  it('accepts an http(s) origin and normalises it', () => {
    expect(parseRelayUrl('https://relay.example.com')).toBe('https://relay.example.com');
    expect(parseRelayUrl(' https://Relay.Example.com/ ')).toBe('https://relay.example.com');
    expect(parseRelayUrl('http://localhost:8787')).toBe('http://localhost:8787');
    expect(parseRelayUrl('https://relay.example.com:443')).toBe('https://relay.example.com');
  });

  it('refuses other schemes, paths, queries, fragments and credentials', () => {
    expect(() => parseRelayUrl('relay.example.com')).toThrow(/not a URL/);
    expect(() => parseRelayUrl('ftp://relay.example.com')).toThrow(/http:\/\/ or https:\/\//);
    expect(() => parseRelayUrl('wss://relay.example.com')).toThrow(/not wss:/);
    expect(() => parseRelayUrl('https://relay.example.com/sync')).toThrow(/no path, query or fragment: use https:\/\/relay.example.com/);
    expect(() => parseRelayUrl('https://relay.example.com/?token=x')).toThrow(/no path, query/);
    expect(() => parseRelayUrl('https://relay.example.com/#x')).toThrow(/fragment/);
    expect(() => parseRelayUrl('https://me:secret@relay.example.com')).toThrow(/no user name or password/);
  });
});

describe('config file', () => {
  it('round-trips, with defaults for what is not set', async () => {
    const home = newHome();
    expect(await readConfig(home)).toBeNull();
    expect(await loadConfig(home)).toEqual({ interval_seconds: 30, encryption: true, transport: 'auto' });
    const saved = await saveConfig(home, {
      sync_url: 'https://relay.example.com/',
      transport: 'websocket',
      motebit_id: 'mb_' + 'A'.repeat(22),
      device_id: 'dv_' + 'B'.repeat(22),
      device_name: 'laptop',
    });
    expect(saved.sync_url).toBe('https://relay.example.com');
    expect(await readConfig(home)).toEqual(saved);
    expect(JSON.parse(readFileSync(configPath(home), 'utf8'))).toEqual({
      sync_url: 'https://relay.example.com',
      interval_seconds: 30,
      encryption: true,
      transport: 'websocket',
      motebit_id: 'mb_' + 'A'.repeat(22),
      device_id: 'dv_' + 'B'.repeat(22),
      device_name: 'laptop',
    });
    const updated = await updateConfig(home, { interval_seconds: 5, encryption: false });
    expect(updated).toEqual({ ...saved, interval_seconds: 5, encryption: false });
    expect(await readConfig(home)).toEqual(updated);
  });

  it('reads the example from the issue', async () => {
    const home = newHome();
    writeRawConfig(home, '{"sync_url": "https://relay.example.com"}');
    expect(await loadConfig(home)).toEqual({ sync_url: 'https://relay.example.com', interval_seconds: 30, encryption: true, transport: 'auto' });
  });

  it.each([
    ['{"interval_seconds": "30"}', 'interval_seconds', /interval_seconds: .*expected (int|number)/],
    ['{"interval_seconds": 0}', 'interval_seconds', /interval_seconds: /],
    ['{"transport": "carrier-pigeon"}', 'transport', /transport: /],
    ['{"sync_url": "https://relay.example.com/api"}', 'sync_url', /sync_url: a relay URL has no path/],
    ['{"sync_url": "https://relay.example.com", "sync_urll": "x"}', 'sync_urll', /unknown field "sync_urll"/],
    ['{"motebit_id": "mb_nope", "device_id": "dv_' + 'B'.repeat(22) + '"}', 'motebit_id', /motebit_id: a motebit id is mb_/],
    ['{"motebit_id": "mb_' + 'A'.repeat(22) + '"}', 'device_id', /device_id: motebit_id and device_id are set together/],
  ])('an invalid file %s is refused, naming the field and the file', async (text, field, message) => {
    const home = newHome();
    const path = writeRawConfig(home, text);
    const error = await readConfig(home).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).message).toMatch(message);
    expect((error as ConfigError).message).toContain(path);
    expect((error as ConfigError).fields).toContain(field);
    expect((error as ConfigError).path).toBe(path);
  });

  it('refuses a file that is not JSON, naming the file', async () => {
    const home = newHome();
    const path = writeRawConfig(home, '{"sync_url": "https://relay.example.com",}');
    await expect(readConfig(home)).rejects.toThrow(new RegExp(`invalid config ${path}: not valid JSON`));
  });

  it('never overwrites an invalid file: saves and updates refuse and leave it byte for byte', async () => {
    const home = newHome();
    const original = '{\n  "sync_url": "https://relay.example.com",\n  "intervall_seconds": 10\n}\n';
    const path = writeRawConfig(home, original);
    const before = statSync(path);
    await expect(saveConfig(home, { sync_url: 'https://other.example.com' })).rejects.toThrow(/unknown field "intervall_seconds".*Not overwriting it/);
    await expect(updateConfig(home, { interval_seconds: 10 })).rejects.toThrow(ConfigError);
    expect(readFileSync(path, 'utf8')).toBe(original);
    expect(statSync(path).mtimeMs).toBe(before.mtimeMs);
    expect(readdirSync(motebitDir(home))).toEqual(['config.json']);
  });

  it('refuses to write an invalid config, and leaves the valid file as it was', async () => {
    const home = newHome();
    await saveConfig(home, { sync_url: 'https://relay.example.com' });
    const before = readFileSync(configPath(home), 'utf8');
    await expect(saveConfig(home, { sync_url: 'https://relay.example.com/x' })).rejects.toThrow(/sync_url: a relay URL has no path/);
    await expect(saveConfig(home, { interval_seconds: -1 })).rejects.toThrow(/interval_seconds/);
    expect(readFileSync(configPath(home), 'utf8')).toBe(before);
  });
});

describe('atomic write', () => {
  it('leaves only the target after a write, and no temp file after a failed one', async () => {
    const home = newHome();
    const dir = motebitDir(home);
    mkdirSync(dir);
    await saveConfig(home, { sync_url: 'https://relay.example.com' });
    await saveConfig(home, { sync_url: 'https://relay2.example.com' });
    expect(readdirSync(dir)).toEqual(['config.json']);

    // rename() onto a non-empty folder fails after the temp file was written: the temp file must go.
    const target = join(dir, 'occupied');
    mkdirSync(join(target, 'inside'), { recursive: true });
    await expect(writeFileAtomic(target, 'data')).rejects.toThrow();
    expect(readdirSync(dir).sort()).toEqual(['config.json', 'occupied']);
    expect(readdirSync(target)).toEqual(['inside']);
  });

  it.skipIf(process.getuid?.() === 0)('fails cleanly when the folder is not writable (SKIPPED as root: root writes anyway)', async () => {
    const home = newHome();
    await saveConfig(home, { sync_url: 'https://relay.example.com' });
    const before = readFileSync(configPath(home), 'utf8');
    chmodSync(motebitDir(home), 0o500);
    try {
      await expect(saveConfig(home, { sync_url: 'https://relay2.example.com' })).rejects.toThrow(/EACCES/);
    } finally {
      chmodSync(motebitDir(home), 0o700);
    }
    expect(readFileSync(configPath(home), 'utf8')).toBe(before);
  });

  it('a reader never sees a partial file while another process rewrites it', async () => {
    const home = newHome();
    const path = join(home, 'big.json');
    await writeFileAtomic(path, JSON.stringify({ fill: 'start' }));
    const writer = spawn(process.execPath, [join(import.meta.dirname, 'fixtures', 'atomic-writer.ts'), path, '60'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise<number | null>((done) => writer.on('exit', done));
    let finished = false;
    void exited.then(() => (finished = true));
    const seen = new Set<string>();
    let reads = 0;
    while (!finished) {
      const value = JSON.parse(readFileSync(path, 'utf8')) as { fill: string }; // throws on a partial file
      seen.add(value.fill.slice(0, 1) + value.fill.length);
      reads++;
      await new Promise((done) => setImmediate(done));
    }
    expect(await exited).toBe(0);
    expect(reads).toBeGreaterThan(0);
    for (const shape of seen) expect(['s5', `a${2 * 1024 * 1024}`, `b${2 * 1024 * 1024}`]).toContain(shape);
    expect(readdirSync(home).filter((name) => name !== 'big.json')).toEqual([]);
    expect(existsSync(path)).toBe(true);
  });
});
