// `motebit-sync snapshot [--prune]` (issue 12) with the real CLI in child processes against a real relay:
// it syncs, saves a snapshot with progress in bytes, prunes this device's old history and says by how much
// its database shrank; a second device started from the snapshot holds the same state; a failure says so
// in words with a non-zero exit code.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab } from './support/devices.ts';
import { runCli } from './support/cli.ts';

let lab: Lab;
let relayUrl: string;
beforeAll(async () => {
  lab = new Lab();
  relayUrl = (await lab.relay()).url;
});
afterAll(() => lab.close());

describe('motebit-sync snapshot', () => {
  it('saves a snapshot, prunes this device, and a new device starts from it with the same state', async () => {
    const a = join(lab.dir, 'a');
    expect((await runCli(['--home', a, 'init', '--relay', relayUrl, '--name', 'a', '--keys', 'master-token'])).code).toBe(0);
    const lines = Array.from({ length: 3_000 }, (_, i) => JSON.stringify({ entity: `memory/${i % 50}`, value: { n: i, text: 'x'.repeat(200) } })).join('\n');
    expect((await runCli(['--home', a, 'import', '-'], { stdin: lines })).code).toBe(0);

    const made = await runCli(['--home', a, 'snapshot', '--prune']);
    expect(made.code).toBe(0);
    expect(made.stderr).toMatch(/uploading a snapshot: [\d.]+ of [\d.]+ MB/);
    expect(made.stdout).toMatch(/saved snapshot sn_\S+ on the relay: 3,000 events in [\d.]+ MB, keeping 50 of them/);
    const shrank = /its database went from ([\d.]+) MB to ([\d.]+) MB/.exec(made.stdout);
    expect(shrank).not.toBeNull();
    expect(Number(shrank![2])).toBeLessThan(Number(shrank![1]));

    const json = await runCli(['--home', a, 'snapshot', '--json']);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ covered_events: 3_000, kept_events: 50 });

    const b = join(lab.dir, 'b');
    const code = (await runCli(['--home', a, 'pair'])).stdout.match(/motebit-pair:\S+/)![0];
    const joined = await runCli(['--home', b, 'join', '--name', 'b'], { stdin: `${code}\n` });
    expect(joined.code).toBe(0);
    expect(joined.stderr).toMatch(/downloading a snapshot: [\d.]+ of [\d.]+ MB/); // joining syncs once
    expect((await runCli(['--home', b, 'sync'])).code).toBe(0);
    const stateA = await runCli(['--home', a, 'state', '--json']);
    const stateB = await runCli(['--home', b, 'state', '--json']);
    expect(stateB.stdout).toBe(stateA.stdout);
  });

  it('a device that holds nothing says there is nothing to save, in words, with a non-zero exit', async () => {
    const c = join(lab.dir, 'c');
    expect((await runCli(['--home', c, 'init', '--relay', relayUrl, '--name', 'c'])).code).toBe(0);
    const run = await runCli(['--home', c, 'snapshot']);
    expect(run.code).not.toBe(0);
    expect(run.stderr).toMatch(/holds no events yet/);
    expect(run.stderr).not.toMatch(/Error:|at .*\.ts/);
  });
});
