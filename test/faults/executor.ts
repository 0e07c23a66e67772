// Carries out device operations with the real CLI: every process under a slot (at most 4 device processes
// at a time on this 2-core machine), every write acknowledged only when its put/import exited 0, every
// sync judged (judge.ts), every deadline hit counted as a hang, and fault operations (kills, re-sends,
// concurrent processes, skewed clocks) done as their kind planned them.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { jsonOut, type DeviceHome } from './devices.ts';
import type { Judge } from './judge.ts';
import type { KindName } from './kinds.ts';
import { Slots, type ProcResult } from './procs.ts';
import type { Op, Write } from './workload.ts';

export const DEVICE_PROCESSES = 4;

export interface Ledger {
  /** marker -> the device whose put/import of it exited 0 */
  readonly acknowledged: Map<string, string>;
  readonly exits: Map<string, number>;
  readonly counters: { hangs: number; falseSuccesses: number; judged: number; exempt: number; unjudged: number };
  readonly failures: string[];
  readonly notes: string[];
  readonly struck: Map<KindName, number>;
}

export function newLedger(): Ledger {
  return { acknowledged: new Map(), exits: new Map(), counters: { hangs: 0, falseSuccesses: 0, judged: 0, exempt: 0, unjudged: 0 }, failures: [], notes: [], struck: new Map() };
}

const PUSH_LINE = /^pushing \d+ of \d+/;
const PULL_LINE = /^pulling [1-9]\d* /;

export class Executor {
  readonly slots = new Slots(DEVICE_PROCESSES);
  readonly #dir: string;
  readonly #judge: Judge;
  readonly #ledger: Ledger;
  readonly #log: (text: string) => void;
  #files = 0;

  constructor(dir: string, judge: Judge, ledger: Ledger, log: (text: string) => void) {
    this.#dir = join(dir, 'imports');
    mkdirSync(this.#dir, { recursive: true });
    this.#judge = judge;
    this.#ledger = ledger;
    this.#log = log;
  }

  strike(kind: KindName): void {
    this.#ledger.struck.set(kind, (this.#ledger.struck.get(kind) ?? 0) + 1);
  }

  note(text: string): void {
    this.#ledger.notes.push(text);
    this.#log(text);
  }

  async perform(device: DeviceHome, op: Op): Promise<void> {
    switch (op.kind) {
      case 'put':
        await this.#slot(1, () => this.put(device, op.write));
        return;
      case 'import':
        await this.#slot(1, () => this.import(device, op.writes));
        return;
      case 'sync':
        await this.#slot(1, () => this.sync(device));
        return;
      case 'kill-sync': {
        const result = await this.#slot(1, () => this.sync(device, { trigger: op.trigger, delayMs: op.delayMs }));
        if (result.killed) {
          this.strike('device-kill');
          this.#log(`${device.name}: sync SIGKILLed (${op.trigger})`);
        } else this.#log(`${device.name}: sync ended before its kill (${op.trigger})`);
        return;
      }
      case 'kill-import': {
        const result = await this.#slot(1, () => this.import(device, op.writes, op.delayMs));
        if (result.killed) {
          this.strike('device-kill');
          this.#log(`${device.name}: import of ${op.writes.length} SIGKILLed after ${op.delayMs} ms`);
        } else this.#log(`${device.name}: import of ${op.writes.length} ended before its kill`);
        return;
      }
      case 'sync-twice':
        await this.#slot(1, async () => {
          await this.sync(device);
          await this.sync(device);
        });
        this.strike('proxy-duplicate');
        return;
      case 'concurrent':
        await this.#slot(2, () =>
          Promise.all([
            this.sync(device),
            op.other === 'put' ? this.put(device, op.writes[0]!) : op.other === 'import' ? this.import(device, op.writes) : this.sync(device),
          ]),
        );
        this.strike('concurrent-cli');
        this.#log(`${device.name}: sync and ${op.other} at once`);
        return;
      case 'skew': {
        device.skewSeconds = op.seconds;
        this.strike('clock-skew');
        this.#log(`${device.name}: clock ${op.seconds > 0 ? '+' : ''}${op.seconds} s (${op.beyond ? 'beyond' : 'within'} the tolerance)`);
        try {
          for (const step of op.steps) {
            if (step.kind === 'put') await this.#slot(1, () => this.put(device, step.write));
            else {
              const result = await this.#slot(1, () => this.sync(device));
              if (op.beyond && result.code !== 4 && !result.timedOut) this.note(`UNEXPECTED: ${device.name} sync with its clock ${op.seconds} s off (beyond the tolerance) exited ${result.code ?? result.signal}, not 4`);
              if (!op.beyond && result.code !== 0) this.note(`UNEXPECTED: ${device.name} sync with its clock ${op.seconds} s off (within the tolerance) exited ${result.code ?? result.signal}: ${why(result)}`);
            }
          }
        } finally {
          device.skewSeconds = 0;
        }
        await this.#slot(1, () => this.sync(device));
        return;
      }
    }
  }

  async #slot<T>(n: number, fn: () => Promise<T>): Promise<T> {
    const release = await this.slots.acquire(n);
    try {
      return await fn();
    } finally {
      release();
    }
  }

  #account(device: DeviceHome, label: string, result: ProcResult): void {
    const key = `${label} ${result.timedOut ? 'hang' : result.killed ? 'killed' : (result.code ?? result.signal)}`;
    this.#ledger.exits.set(key, (this.#ledger.exits.get(key) ?? 0) + 1);
    if (result.timedOut) {
      this.#ledger.counters.hangs++;
      this.#ledger.failures.push(`HANG: ${device.name} ${label} did not end within its deadline and was killed; stderr: ${tail(result.stderr)}`);
    }
    if (result.code === null ? !result.killed && !result.timedOut : ![0, 1, 3, 4, 5].includes(result.code)) {
      this.note(`UNEXPECTED: ${device.name} ${label} ended with ${result.code ?? result.signal}: ${why(result)}`);
    }
    if (/unexpected error/.test(result.stderr)) this.note(`UNEXPECTED: ${device.name} ${label}: ${tail(result.stderr)}`);
  }

  #ack(device: DeviceHome, writes: readonly Write[]): void {
    for (const write of writes) this.#ledger.acknowledged.set(write.value.m, device.name);
  }

  async put(device: DeviceHome, write: Write): Promise<ProcResult> {
    const result = await device.start(['put', write.entity, JSON.stringify(write.value), '--json']).done;
    this.#account(device, 'put', result);
    if (result.code === 0) this.#ack(device, [write]);
    return result;
  }

  async import(device: DeviceHome, writes: readonly Write[], killAfterMs?: number): Promise<ProcResult> {
    const file = join(this.#dir, `${device.name}-${++this.#files}.jsonl`);
    writeFileSync(file, writes.map((w) => JSON.stringify({ entity: w.entity, value: w.value })).join('\n') + '\n');
    const running = device.start(['import', file, '--json']);
    const timer = killAfterMs === undefined ? undefined : setTimeout(() => running.kill(), killAfterMs);
    const result = await running.done;
    clearTimeout(timer);
    this.#account(device, 'import', result);
    if (result.code === 0) {
      const imported = jsonOut(result)?.imported;
      if (imported !== writes.length) this.note(`UNEXPECTED: ${device.name} import of ${writes.length} exited 0 saying imported=${String(imported)}`);
      this.#ack(device, writes);
    }
    return result;
  }

  /** One `sync --json`, judged; with a kill, SIGKILLed at the first progress line of that phase (or after a delay). */
  async sync(device: DeviceHome, kill?: { trigger: 'push' | 'pull' | 'timer'; delayMs: number }): Promise<ProcResult> {
    const start = this.#judge.begin(device);
    if (start.problem) this.#log(`${device.name}: cannot read the databases before a sync: ${start.problem}`);
    let killTimer: NodeJS.Timeout | undefined;
    let fallback: NodeJS.Timeout | undefined;
    const running = device.start(['sync', '--json'], {
      onStderrLine:
        kill && kill.trigger !== 'timer'
          ? (line) => {
              if (killTimer || !(kill.trigger === 'push' ? PUSH_LINE : PULL_LINE).test(line)) return;
              killTimer = setTimeout(() => running.kill(), kill.delayMs);
            }
          : undefined,
    });
    if (kill) fallback = setTimeout(() => running.kill(), kill.trigger === 'timer' ? 100 + kill.delayMs : 3_000 + kill.delayMs);
    const result = await running.done;
    clearTimeout(killTimer);
    clearTimeout(fallback);
    this.#account(device, 'sync', result);
    const verdict = this.#judge.end(start, result);
    const counters = this.#ledger.counters;
    if (verdict.kind === 'true-success') counters.judged++;
    else if (verdict.kind === 'exempt') counters.exempt++;
    else if (verdict.kind === 'unjudged') {
      counters.unjudged++;
      this.#log(`${device.name}: sync not judged: ${verdict.why}`);
    } else if (verdict.kind === 'false-success') {
      counters.judged++;
      counters.falseSuccesses++;
      this.#ledger.failures.push(`FALSE SUCCESS: ${verdict.why}`);
      this.#log(`FALSE SUCCESS: ${verdict.why}`);
    }
    return result;
  }
}

/** What a failed command said: its stderr, else the last_error of its --json status. */
function why(result: ProcResult): string {
  const said = tail(result.stderr);
  if (said) return said;
  const error = jsonOut(result)?.last_error as { kind?: unknown; message?: unknown } | null | undefined;
  return error ? `${String(error.kind)}: ${String(error.message)}` : '(nothing on stderr)';
}

export function tail(text: string, chars = 300): string {
  const lines = text
    .trim()
    .split('\n')
    .filter((line) => !/secrets are kept in a plain file/.test(line) && !/^(pushing|pulling) /.test(line));
  const joined = lines.join(' | ');
  return joined.length > chars ? `…${joined.slice(-chars)}` : joined;
}
