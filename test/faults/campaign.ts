// Many runs. Run i of a campaign with seed S has seed S+i, so `--runs 1 --seed S+i` replays it alone.
// Its fault kinds are a function of its seed and the allowed list only: item (S+i) mod |list| of the list
// (so consecutive runs go through every kind), plus, when no --only was given, a second random kind in one
// run of five. An item of --only may name several kinds joined by "+" (run together).
import { rmSync } from 'node:fs';
import { faketimeProblem } from './devices.ts';
import { KINDS, isKind, type KindName } from './kinds.ts';
import { Prng } from './prng.ts';
import { killAllChildren } from './procs.ts';
import { liveDirs, runOne, type RunResult, type Sabotage } from './run.ts';

export const DEFAULT_EVENTS = 2000;

export interface CampaignOptions {
  readonly runs: number;
  readonly seed: number;
  readonly events: number;
  /** Items of --only ("tamper", "relay-kill+proxy-cut"); all kinds, one per run, when absent. */
  readonly only?: readonly string[];
  readonly keep: boolean;
  readonly sabotage?: Sabotage;
  /** Progress (stderr). */
  readonly log: (text: string) => void;
}

export interface CampaignResult {
  readonly runs: RunResult[];
  /** Kinds that could not run here, with the reason (not counted as passing). */
  readonly skipped: Map<KindName, string>;
  readonly seconds: number;
}

export function parseOnly(items: readonly string[]): KindName[][] {
  return items.map((item) => {
    const kinds = item.split('+').map((k) => k.trim()).filter(Boolean);
    for (const kind of kinds) if (!isKind(kind)) throw new Error(`unknown fault kind "${kind}"; kinds: ${KINDS.join(', ')}`);
    if (kinds.length === 0) throw new Error('an empty --only item');
    return kinds as KindName[];
  });
}

export function kindsOf(seed: number, items: readonly (readonly KindName[])[], extras: boolean): KindName[] {
  const kinds = [...items[((seed % items.length) + items.length) % items.length]!];
  const prng = new Prng(`faults:${seed}`).fork('kinds');
  if (extras && prng.chance(0.2)) {
    const other = prng.pick(KINDS.filter((k) => !kinds.includes(k)));
    kinds.push(other);
  }
  return kinds;
}

export function replayCommand(run: Pick<RunResult, 'seed' | 'kinds'>, events: number): string {
  return `npm run faults -- --runs 1 --seed ${run.seed} --only ${run.kinds.join('+')}${events !== DEFAULT_EVENTS ? ` --events ${events}` : ''}`;
}

export async function runCampaign(options: CampaignOptions): Promise<CampaignResult> {
  const started = Date.now();
  const skipped = new Map<KindName, string>();
  const clockProblem = await faketimeProblem();
  if (clockProblem) skipped.set('clock-skew', clockProblem);
  const items = options.only ? parseOnly(options.only) : KINDS.map((k) => [k]);
  const runs: RunResult[] = [];
  for (let i = 0; i < options.runs; i++) {
    const seed = options.seed + i;
    let kinds = kindsOf(seed, items, !options.only);
    const unavailable = kinds.filter((k) => skipped.has(k));
    if (unavailable.length > 0) {
      for (const kind of unavailable) options.log(`run ${i + 1}/${options.runs} ${kinds.join('+')} seed=${seed}: ${kind} SKIPPED: ${skipped.get(kind)}`);
      kinds = kinds.filter((k) => !skipped.has(k));
      if (kinds.length === 0) continue;
    }
    options.log(`run ${i + 1}/${options.runs} ${kinds.join('+')} seed=${seed} …`);
    const result = await runOne({ seed, kinds, events: options.events, keep: options.keep, log: options.log, ...(options.sabotage ? { sabotage: options.sabotage } : {}) });
    runs.push(result);
    const c = result.counters;
    const bad = c.lost + c.duplicated + c.nonConverged + c.hangs + c.falseSuccesses > 0 || result.error !== null;
    options.log(
      `run ${i + 1}/${options.runs} ${kinds.join('+')} seed=${seed}: ${bad ? 'FAIL' : 'ok'} lost=${c.lost} duplicated=${c.duplicated} non-converged=${c.nonConverged} hangs=${c.hangs} false-successes=${c.falseSuccesses}` +
        ` (${result.acknowledged} writes acknowledged, ${result.syncs.judged} syncs judged, ${result.syncs.exempt} exempt; ${result.seconds.toFixed(1)} s)`,
    );
    if (bad) {
      for (const failure of result.failures.slice(0, 8)) options.log(`    ${failure}`);
      if (result.failures.length > 8) options.log(`    … ${result.failures.length - 8} more`);
      if (result.error) options.log(`    ERROR ${result.error.split('\n')[0]}`);
      options.log(`    replay: ${replayCommand(result, options.events)}`);
    }
    if (result.dir) options.log(`    kept ${result.dir}`);
  }
  return { runs, skipped, seconds: (Date.now() - started) / 1000 };
}

/** Kills every child and removes the temp folders (unless kept): for exit and Ctrl-C. */
export function cleanUpEverything(keep: boolean): void {
  killAllChildren();
  if (!keep) for (const dir of liveDirs) rmSync(dir, { recursive: true, force: true });
  liveDirs.clear();
}
