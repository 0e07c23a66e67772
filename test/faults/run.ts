// One run: a relay behind the front, 2–4 devices (one init, the others pair/join), the workload with the
// run's faults striking at random moments, then the heal (faults off, relay honest and up, every device
// on the one URL, sync rounds until a full round changes nothing, at most 6) and the checks.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { check } from './checker.ts';
import { DeviceHome, jsonOut, type Transport } from './devices.ts';
import { Executor, newLedger, tail, type Ledger } from './executor.ts';
import { Front } from './front.ts';
import { Judge } from './judge.ts';
import { FAULT_KINDS, type KindName, type StrikeContext } from './kinds.ts';
import { Prng } from './prng.ts';
import { sleep } from './procs.ts';
import { RelayHost } from './relay-host.ts';
import { readDevice, relayDuplicateIds, relayEventIds, type DeviceView } from './store-reader.ts';
import { planDevice, Writer, type Op } from './workload.ts';

export const HEAL_ROUNDS = 6;

export interface RunOptions {
  readonly seed: number;
  readonly kinds: readonly KindName[];
  readonly events: number;
  readonly keep: boolean;
  /** Self-check of the harness: break one device's store before the checks (they must catch it). */
  readonly sabotage?: Sabotage;
  readonly log: (text: string) => void;
}

export interface Counters {
  lost: number;
  duplicated: number;
  nonConverged: number;
  hangs: number;
  falseSuccesses: number;
}

export interface RunResult {
  readonly seed: number;
  readonly kinds: readonly KindName[];
  readonly counters: Counters;
  readonly seconds: number;
  readonly devices: string[];
  readonly acknowledged: number;
  readonly struck: Partial<Record<KindName, number>>;
  readonly syncs: { judged: number; exempt: number; unjudged: number };
  readonly exits: Record<string, number>;
  readonly failures: string[];
  readonly notes: string[];
  /** The harness itself failed (setup, a relay that would not start...): the run proves nothing. */
  readonly error: string | null;
  readonly dir: string | null;
}

/** Temp folders of runs in progress (removed on Ctrl-C unless --keep). */
export const liveDirs = new Set<string>();

export async function runOne(options: RunOptions): Promise<RunResult> {
  const started = Date.now();
  const prng = new Prng(`faults:${options.seed}`);
  const dir = mkdtempSync(join(tmpdir(), `motebit-faults-${options.seed}-`));
  liveDirs.add(dir);
  const log = (text: string): void => options.log(`  [${options.seed}] ${text}`);
  const ledger = newLedger();
  const counters: Counters = { lost: 0, duplicated: 0, nonConverged: 0, hangs: 0, falseSuccesses: 0 };
  const front = new Front(prng.fork('front'));
  let relay: RelayHost | null = null;
  let error: string | null = null;
  const devices: DeviceHome[] = [];
  try {
    await front.listen();
    relay = new RelayHost(dir, front.url, (port) => front.setTarget(port));
    await relay.start();
    const judge = new Judge(relay);
    const executor = new Executor(dir, judge, ledger, log);

    // ---- setup: no faults yet -------------------------------------------------------------------
    const setup = prng.fork('setup');
    const count = setup.int(2, 4);
    const encrypted = setup.chance(0.75);
    for (let i = 1; i <= count; i++) devices.push(new DeviceHome(dir, `d${i}`));
    await enrol(devices, front.url, encrypted);
    for (const device of devices) device.transport = setup.pick<Transport>(['auto', 'auto', 'auto', 'http', 'http', 'websocket']);
    if (devices.every((d) => d.transport === 'websocket')) devices.at(-1)!.transport = 'http'; // someone can pull over HTTP
    for (const device of devices) device.patchConfig({ transport: device.transport });
    log(`${count} devices (${devices.map((d) => `${d.name}:${d.transport}`).join(' ')}), encryption ${encrypted ? 'on' : 'off'}, relay behind ${front.url}`);

    // ---- plans ----------------------------------------------------------------------------------
    const planning = prng.fork('plan');
    const writers = new Map(devices.map((d) => [d.name, new Writer(`r${options.seed}`, d.name, planning.fork(`writer:${d.name}`))] as const));
    const maxImport = Math.max(5, Math.round(options.events / (count * 4)));
    const plans = new Map<string, Op[]>(
      devices.map((d) => [d.name, planDevice(planning.fork(`ops:${d.name}`), writers.get(d.name)!, Math.max(1, Math.round((options.events / count) * (0.7 + planning.next() * 0.6))), maxImport)] as const),
    );
    for (const kind of options.kinds) FAULT_KINDS[kind].plan?.({ prng: prng.fork(`kind:${kind}:plan`), devices, plans, writers, events: options.events });

    // ---- workload and strikes -------------------------------------------------------------------
    const total = [...plans.values()].reduce((sum, ops) => sum + ops.length, 0);
    let done = 0;
    let workloadDone = false;
    const waiting: { at: number; resolve: () => void }[] = [];
    const wake = (): void => {
      for (const waiter of [...waiting]) {
        if (workloadDone || done >= waiter.at * total) {
          waiting.splice(waiting.indexOf(waiter), 1);
          waiter.resolve();
        }
      }
    };
    const progress = (fraction: number): Promise<void> =>
      new Promise((resolve) => {
        waiting.push({ at: fraction, resolve });
        wake();
      });
    const trafficPrng = prng.fork('traffic');
    const traffic = async (parallel = false): Promise<void> => {
      const writer = trafficPrng.pick(devices);
      await executor.perform(writer, { kind: 'import', writes: writers.get(writer.name)!.many(trafficPrng.int(3, 12)) });
      if (parallel) await Promise.all(devices.map((device) => executor.perform(device, { kind: 'sync' })));
      else for (const device of [writer, ...devices.filter((d) => d !== writer)]) await executor.perform(device, { kind: 'sync' });
    };
    const scripts = options.kinds.map(async (kind) => {
      const script = FAULT_KINDS[kind].script;
      if (!script) return;
      const context: StrikeContext = {
        prng: prng.fork(`kind:${kind}:script`),
        front,
        relay: relay!,
        judge,
        devices,
        progress,
        traffic,
        workloadDone: () => workloadDone,
        note: (text) => log(`${kind}: ${text}`),
        struck: () => executor.strike(kind),
      };
      try {
        await script(context);
      } catch (e) {
        error ??= `fault ${kind} failed: ${(e as Error).stack ?? String(e)}`;
        log(`fault ${kind} failed: ${(e as Error).message}`);
      }
    });
    const thinking = prng.fork('think');
    await Promise.all(
      devices.map(async (device) => {
        const pause = thinking.fork(device.name);
        for (const op of plans.get(device.name)!) {
          await executor.perform(device, op);
          done++;
          wake();
          await sleep(pause.int(0, 120));
        }
      }),
    );
    workloadDone = true;
    wake();
    await Promise.all(scripts);

    // ---- heal -----------------------------------------------------------------------------------
    front.setMode({ kind: 'pass' });
    const f = front.stats;
    log(`front: ${f.accepted} connections, ${f.cut} cut, ${f.blackholed} blackholed, ${f.upgradesRefused} upgrades refused, ${f.replayed} POSTs replayed, ${f.answersLost} answers lost, ${f.tampered.length} pages tampered`);
    if (!relay.running) await relay.start();
    for (const device of devices) device.skewSeconds = 0;
    // A round that changed nothing ends the heal when every sync of it succeeded; with failures, only a
    // second unchanged round in a row does (a failure might be passing).
    let before = fingerprint(devices, relay);
    let settled = false;
    let unchanged = 0;
    for (let round = 1; round <= HEAL_ROUNDS && !settled; round++) {
      let failures = 0;
      for (const device of devices) {
        const release = await executor.slots.acquire();
        try {
          if ((await executor.sync(device)).code !== 0) failures++;
        } finally {
          release();
        }
      }
      const after = fingerprint(devices, relay);
      unchanged = after === before ? unchanged + 1 : 0;
      before = after;
      settled = unchanged >= (failures === 0 ? 1 : 2);
      if (settled) log(`healed: round ${round} changed nothing${failures > 0 ? ` (${failures} syncs failed)` : ''}`);
    }
    if (!settled) executor.note(`the heal did not settle in ${HEAL_ROUNDS} rounds`);
    log(`exit codes: ${[...ledger.exits].sort().map(([key, n]) => `${key}×${n}`).join(', ')}`);

    // ---- checks ---------------------------------------------------------------------------------
    if (options.sabotage) sabotage(options.sabotage, devices, ledger, log);
    const views = new Map<string, DeviceView>(devices.map((d) => [d.name, readDevice(d.dbPath, { copyOnFailure: true })]));
    const result = check({ views, acknowledged: ledger.acknowledged, relayDuplicates: relayDuplicateIds(relay.dbPath) });
    counters.lost = result.lost;
    counters.duplicated = result.duplicated;
    counters.nonConverged = result.nonConverged;
    ledger.failures.push(...result.details);
  } catch (e) {
    error = `harness: ${(e as Error).stack ?? String(e)}`;
    log(error);
  } finally {
    await relay?.stop().catch(() => {});
    await front.close().catch(() => {});
  }
  counters.hangs = ledger.counters.hangs;
  counters.falseSuccesses = ledger.counters.falseSuccesses;
  if (!options.keep) {
    rmSync(dir, { recursive: true, force: true });
    liveDirs.delete(dir);
  }
  return {
    seed: options.seed,
    kinds: options.kinds,
    counters,
    seconds: (Date.now() - started) / 1000,
    devices: devices.map((d) => `${d.name}:${d.transport}`),
    acknowledged: ledger.acknowledged.size,
    struck: Object.fromEntries(ledger.struck),
    syncs: { judged: ledger.counters.judged, exempt: ledger.counters.exempt, unjudged: ledger.counters.unjudged },
    exits: Object.fromEntries([...ledger.exits].sort()),
    failures: ledger.failures,
    notes: ledger.notes,
    error,
    dir: options.keep ? dir : null,
  };
}

/** d1 init (with or without encryption), every other device pair + join; each must exit 0. */
async function enrol(devices: readonly DeviceHome[], url: string, encrypted: boolean): Promise<void> {
  const [first, ...others] = devices;
  // Protocol 2 (a pairing code per device): the campaign is about relay faults, which both key schemes meet
  // in the same engine; per-device pairing by approval is tested in test/cli-keys.test.ts.
  const init = await first!.run(['init', '--relay', url, '--name', first!.name, '--keys', 'master-token', ...(encrypted ? [] : ['--no-encryption']), '--json']);
  if (init.code !== 0) throw new Error(`setup: init exited ${init.code}: ${tail(init.stderr)}`);
  first!.deviceId = String(jsonOut(init)?.device_id ?? '');
  for (const device of others) {
    const pair = await first!.run(['pair', '--json']);
    const code = jsonOut(pair)?.pairing_code;
    if (pair.code !== 0 || typeof code !== 'string') throw new Error(`setup: pair exited ${pair.code}: ${tail(pair.stderr)}`);
    const join = await device.run(['join', '--name', device.name, '--json'], { stdin: `${code}\n` }); // the code carries the master token: never on argv
    if (join.code !== 0) throw new Error(`setup: join exited ${join.code}: ${tail(join.stderr)}`);
    device.deviceId = String(jsonOut(join)?.device_id ?? '');
  }
  for (const device of devices) if (!/^dv_/.test(device.deviceId)) device.deviceId = String(device.readConfig().device_id ?? '');
}

/** What a heal round could change: every device's events, state and conflicts, and what the relay holds. */
function fingerprint(devices: readonly DeviceHome[], relay: RelayHost): string {
  let held: string;
  try {
    held = String(relayEventIds(relay.dbPath).size);
  } catch (error) {
    held = `unreadable:${(error as Error).message}`;
  }
  return `relay:${held}|` + devices
    .map((device) => {
      try {
        const view = readDevice(device.dbPath, { copyOnFailure: true });
        const hashes = view.events.map((e) => e.hash).sort();
        const state = [...view.state].map(([entity, id]) => `${entity}=${id}`).sort();
        return `${device.name}:${hashes.length}:${digest(hashes)}:${digest(state)}:${digest([...view.conflicts].sort())}`;
      } catch (error) {
        return `${device.name}:unreadable:${(error as Error).message}`;
      }
    })
    .join('|');
}

function digest(items: readonly string[]): string {
  let h = 0;
  for (const item of items) for (let i = 0; i < item.length; i++) h = (Math.imul(h, 31) + item.charCodeAt(i)) | 0;
  return `${items.length}.${(h >>> 0).toString(16)}`;
}

export const SABOTAGES = ['drop-event', 'duplicate-event'] as const;
export type Sabotage = (typeof SABOTAGES)[number];

/**
 * Harness self-check only, after healing and before the checks: deletes one acknowledged write from the
 * last device's store (must count as lost and non-converged), or stores a second event carrying one
 * acknowledged write's marker (must count as duplicated).
 */
function sabotage(kind: Sabotage, devices: readonly DeviceHome[], ledger: Ledger, log: (text: string) => void): void {
  const victim = devices.at(-1)!;
  const db = new Database(victim.dbPath);
  try {
    for (const marker of ledger.acknowledged.keys()) {
      const row = db.prepare<[string], { id: number }>("SELECT id FROM events WHERE json_extract(body, '$.payload.m') = ? LIMIT 1").get(marker);
      if (!row) continue;
      if (kind === 'drop-event') db.prepare('DELETE FROM events WHERE id = ?').run(row.id);
      else {
        db.prepare(`INSERT INTO events (event_id, device_id, device_seq, lamport, entity, op, hash, ts, received_at, body)
                    SELECT ?, device_id, device_seq + 1000000000, lamport, entity, op, hash, ts, received_at, body FROM events WHERE id = ?`).run(randomUUID(), row.id);
      }
      log(`SABOTAGE: ${kind === 'drop-event' ? 'deleted the event' : 'stored a second event'} of ${marker} in ${victim.name}'s store`);
      return;
    }
  } finally {
    db.close();
  }
}
