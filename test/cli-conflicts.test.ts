// Reviewing and resolving conflicts from a terminal: the real motebit-sync in child processes, two device
// homes against a real relay on 127.0.0.1. Filters, show, keep current / keep other (one or in bulk),
// review, the confirmation a delete needs, the shell, plain errors, terminal control characters made
// harmless, and a bulk resolution reaching the other device, whose conflicts settle too.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab, eventually } from './support/devices.ts';
import { runCli, type CliRun } from './support/cli.ts';


function cli(args: string[], stdin = ''): Promise<CliRun> {
  return runCli(args, { stdin });
}

interface Listed {
  id: number;
  entity: string;
  state: 'open' | 'reviewed' | 'settled';
  winner: { event_id: string; device_id: string; op: string; value: unknown };
  loser: { event_id: string; device_id: string; op: string; value: unknown };
  current_event_id: string;
  win_reason: 'clock' | 'device';
  why: string;
  resolved_by: string | null;
}

const list = async (home: string, ...words: string[]): Promise<Listed[]> => {
  const run = await cli(['--home', home, 'conflict', 'list', ...words, '--json']);
  expect(run.code, run.stderr).toBe(0);
  return (JSON.parse(run.stdout) as { conflicts: Listed[] }).conflicts;
};

// Terminal control: C0 (but newline), DEL, C1 (0x9b is CSI) and bidirectional overrides.
const CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/u;
const HOSTILE = 'red\u009b31m\u202eevil\u0007';

let lab: Lab;
let a: string;
let b: string;
let bDevice: string;

beforeAll(async () => {
  lab = new Lab();
  const relayUrl = (await lab.relay()).url;
  a = join(lab.dir, 'a');
  b = join(lab.dir, 'b');
  expect((await cli(['--home', a, 'init', '--relay', relayUrl, '--name', 'laptop', '--keys', 'master-token'])).code).toBe(0);
  const code = JSON.parse((await cli(['--home', a, 'pair', '--json'])).stdout).pairing_code as string;
  expect((await cli(['--home', b, 'join', '--name', 'desktop'], `${code}\n`)).code).toBe(0);
  bDevice = JSON.parse((await cli(['--home', b, 'status', '--json'])).stdout).device_id as string;

  // the same six entities on both devices, neither having seen the other's writes
  const entities = ['memory/1', 'memory/2', 'memory/3', 'memory/4', 'notes/1', 'notes/2'];
  const write = (home: string, who: string) => {
    const file = join(lab.dir, `${who}.jsonl`);
    writeFileSync(file, entities.filter((entity) => who === 'a' || entity !== 'memory/4').map((entity) => JSON.stringify({ entity, value: entity === 'memory/3' && who === 'b' ? HOSTILE : `${who} ${entity}` })).join('\n'));
    return cli(['--home', home, 'import', file]);
  };
  expect((await write(a, 'a')).code).toBe(0);
  expect((await write(b, 'b')).code).toBe(0);
  expect((await cli(['--home', b, 'delete', 'memory/4'])).code).toBe(0);
  expect((await cli(['--home', a, 'sync'])).code).toBe(0);
  expect((await cli(['--home', b, 'sync'])).code).toBe(0);
  expect((await cli(['--home', a, 'sync'])).code).toBe(0);
}, 120_000);
afterAll(() => lab.close());

describe('motebit-sync conflict', () => {
  it('lists conflicts with why the winner wins, filters by list, entity prefix and device, and prints nothing that drives the terminal', async () => {
    const all = await list(a);
    expect(all.map((c) => c.entity).sort()).toEqual(['memory/1', 'memory/2', 'memory/3', 'memory/4', 'notes/1', 'notes/2']);
    for (const c of all) {
      expect(c.state).toBe('open');
      expect(c.why).toBe(c.win_reason === 'clock' ? 'Wins because it was written later by clock (its device had seen more changes).' : 'Same clock: device order decides (every device picks the same one).');
    }
    expect((await list(a, 'entity=notes/')).map((c) => c.entity).sort()).toEqual(['notes/1', 'notes/2']);
    const fromB = await list(a, `device=${bDevice}`);
    expect(await list(a, 'device=desktop')).toEqual(fromB);
    const states = JSON.parse((await cli(['--home', a, 'state', '--json'])).stdout).entities as { entity: string; device_id: string }[];
    const currentFromB = all.filter((c) => c.current_event_id === (c.winner.device_id === bDevice ? c.winner.event_id : c.loser.event_id)).map((c) => c.entity);
    expect(fromB.map((c) => c.entity).sort()).toEqual(currentFromB.sort());
    expect(states.length).toBeGreaterThan(0);

    const text = await cli(['--home', a, 'conflict', 'list']);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^#\d+ memory\/1 {2}\(open\)$/m);
    expect(text.stdout).toMatch(/ {2}why: {5}(Wins because it was written later by clock|Same clock: device order decides)/);
    expect(text.stdout).toMatch(/6 conflicts\n$/);
    expect(text.stdout).not.toMatch(CONTROL);
    expect(text.stdout).toContain('"red\ufffd\ufffdevil\\u0007"'); // the hostile value, shown but inert
    expect(text.stdout).toMatch(/written by desktop \(dv_/); // devices by name

    const one = all.find((c) => c.entity === 'memory/3')!;
    const show = await cli(['--home', a, 'conflict', 'show', String(one.id)]);
    expect(show.code).toBe(0);
    expect(show.stdout).toMatch(new RegExp(`^#${one.id} memory/3 {2}\\(open\\)\\n {2}current: `));
    expect(show.stdout).not.toMatch(CONTROL);
  });

  it('review moves a conflict to the reviewed list; keep-current settles one; bad input is a plain usage error that changes nothing', async () => {
    const [first, second] = (await list(a, 'entity=memory/')).filter((c) => c.entity === 'memory/1' || c.entity === 'memory/2');
    const review = await cli(['--home', a, 'conflict', 'review', String(first!.id)]);
    expect(review).toMatchObject({ code: 0, stdout: expect.stringMatching(/marked 1 conflict reviewed/) });
    expect((await list(a)).map((c) => c.id)).not.toContain(first!.id);
    expect((await list(a, 'reviewed')).map((c) => c.id)).toEqual([first!.id]);

    const keep = await cli(['--home', a, 'conflict', 'keep-current', String(second!.id)]);
    expect(keep.code, keep.stderr).toBe(0);
    expect(keep.stdout).toMatch(/kept the current value of 1 conflict \(1 new event, 1 settled\)/);
    expect((await list(a, 'settled')).map((c) => c.id)).toEqual([second!.id]);
    const current = second!.current_event_id === second!.winner.event_id ? second!.winner : second!.loser;
    expect((await cli(['--home', a, 'get', 'memory/2'])).stdout).toBe(`${JSON.stringify(current.value)}\n`);

    const before = await list(a, 'all');
    for (const [words, message] of [
      [['keep-current'], /name the conflicts: one or more ids, or all/],
      [['keep-other', '999'], /there is no conflict 999; nothing was changed/],
      [['show', '999'], /there is no conflict 999/],
      [['frobnicate'], /unknown conflict command "frobnicate"/],
      [['list', 'entity=x', 'sideways'], /unknown word "sideways"/],
      [['list', 'device=nobody'], /no device is named "nobody"/],
    ] as const) {
      const run = await cli(['--home', a, 'conflict', ...words]);
      expect(run.code, words.join(' ')).toBe(2);
      expect(run.stderr).toMatch(message);
      expect(run.stderr).not.toMatch(/\n\s+at /); // no stack trace
    }
    expect(await list(a, 'all')).toEqual(before);
  });

  it('keeping a deleted value needs confirm-delete; without it nothing is written', async () => {
    const c = (await list(a, 'entity=memory/4'))[0]!;
    const deleteIsCurrent = [c.winner, c.loser].find((s) => s.event_id === c.current_event_id)!.op === 'delete';
    const command = deleteIsCurrent ? 'keep-current' : 'keep-other';
    const refused = await cli(['--home', a, 'conflict', command, String(c.id)]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/1 of these keep a deleted value, so memory\/4 would be deleted on every device\.\nNothing was changed; add confirm-delete to go ahead\./);
    expect((await list(a, 'entity=memory/4'))[0]!.resolved_by).toBeNull();
    const confirmed = await cli(['--home', a, 'conflict', command, String(c.id), 'confirm-delete']);
    expect(confirmed.code, confirmed.stderr).toBe(0);
    expect((await cli(['--home', a, 'get', 'memory/4'])).stderr).toMatch(/memory\/4 is deleted/);
  });

  it('the shell keeps the other device\'s value in bulk; the other device gets it and its conflicts settle there too', async () => {
    const open = await list(a, 'entity=notes/');
    expect(open).toHaveLength(2);
    const run = await cli(['--home', a, 'shell'], '/conflict list entity=notes/\n/conflict keep-other all entity=notes/\n/conflict list entity=notes/\n/conflict help\n/sync\n/quit\n');
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/2 conflicts\n/);
    expect(run.stdout).toMatch(/kept the other value of 2 conflicts \(2 new events, 2 settled\)/);
    expect(run.stdout).toMatch(/No conflicts match\./);
    expect(run.stdout).toMatch(/conflict keep-other ID…\|all/);
    for (const c of open) {
      const other = c.current_event_id === c.winner.event_id ? c.loser : c.winner;
      expect((await cli(['--home', a, 'get', c.entity])).stdout).toBe(`${JSON.stringify(other.value)}\n`);
    }

    // the other device: the resolutions are ordinary events, so they arrive and settle its conflicts
    await eventually(async () => {
      await cli(['--home', b, 'sync']);
      return (await list(b, 'entity=notes/')).length === 0;
    }, 'device b settled the notes conflicts');
    for (const c of open) {
      const other = c.current_event_id === c.winner.event_id ? c.loser : c.winner;
      expect((await cli(['--home', b, 'get', c.entity])).stdout).toBe(`${JSON.stringify(other.value)}\n`);
    }
    // what is still open on b: memory/1 (reviewed on a only, a local mark) and memory/3
    expect((await list(b)).map((c) => c.entity).sort()).toEqual(['memory/1', 'memory/3']);
    const empty = await cli(['--home', b, 'conflict', 'keep-current', 'all']);
    expect(empty.code, empty.stderr).toBe(0);
    expect((await cli(['--home', b, 'conflict', 'list'])).stdout).toBe('No conflicts. Every device agrees.\n');
  });
});
