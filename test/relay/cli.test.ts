import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { testDb } from '../support/test-db.ts';
import { RelayClient, WsClient, enrolledMotebit, tempDir } from './support.ts';

const BIN = join(import.meta.dirname, '../../relay/bin.ts');
let dir: ReturnType<typeof tempDir> | undefined;
let child: ChildProcessWithoutNullStreams | undefined;

afterEach(() => {
  if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  dir?.cleanup();
});

function run(args: string[]): { child: ChildProcessWithoutNullStreams; stdout: () => string; stderr: () => string } {
  // process.execPath is the Node 24 that runs the tests (system node may be older).
  const proc = spawn(process.execPath, [BIN, ...args], { stdio: 'pipe' });
  let out = '';
  let err = '';
  proc.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  proc.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
  return { child: proc, stdout: () => out, stderr: () => err };
}

async function firstLine(proc: ChildProcessWithoutNullStreams): Promise<string> {
  let buffered = '';
  for await (const chunk of proc.stdout) {
    buffered += String(chunk);
    const end = buffered.indexOf('\n');
    if (end >= 0) return buffered.slice(0, end);
  }
  throw new Error('the relay exited without printing its URL');
}

describe('motebit-relay CLI', () => {
  it('starts, prints its URL, serves, and exits 0 on SIGTERM closing sockets with 1001', async () => {
    dir = tempDir();
    const started = run(['--port', '0', '--db', await testDb(join(dir.dir, 'cli.db'))]);
    child = started.child;
    const line = await firstLine(child);
    const match = /^motebit-relay listening on (http:\/\/127\.0\.0\.1:\d+)$/.exec(line);
    expect(match).not.toBeNull();
    const url = match![1]!;
    const client = new RelayClient({ url, audience: url });
    expect(await client.healthy()).toBe(true);
    const { devices } = await enrolledMotebit(client, 1);
    const device = devices[0]!;
    const events = device.events(2);
    expect((await client.push(device, events)).body.stored).toBe(2);
    const socket = await WsClient.connect(url, device, url);

    child.kill('SIGTERM');
    const [code] = (await once(child, 'exit')) as [number | null];
    expect(code).toBe(0);
    expect((await socket.closed).code).toBe(1001);
    // Logs are JSON lines on stderr and never carry a token or a body.
    const logs = started.stderr().trim().split('\n').filter((l) => l.startsWith('{'));
    expect(logs.length).toBeGreaterThan(0);
    for (const log of logs) expect(() => JSON.parse(log) as unknown).not.toThrow();
    expect(started.stderr()).not.toContain(events[0]!.body);
    expect(started.stderr()).not.toMatch(/Motebit [A-Za-z0-9_-]{40,}\./);
  });

  it('refuses bad arguments with a clear message and a non-zero exit', async () => {
    for (const args of [['--port', '99999', '--db', 'x.db'], ['--port', '80a', '--db', 'x.db'], ['--port', '0'], ['--port', '0', '--db', 'x.db', '--bogus'], ['--db', 'x.db', '--audience', 'not a url']]) {
      const started = run(args);
      const [code] = (await once(started.child, 'exit')) as [number | null];
      expect(code).not.toBe(0);
      expect(started.stderr()).toMatch(/^motebit-relay: /);
      expect(started.stderr()).toContain('usage: motebit-relay');
      expect(started.stdout()).toBe('');
    }
  });
});
