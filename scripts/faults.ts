// npm run faults -- --runs N --seed S [--events E] [--only KIND,KIND+KIND] [--json] [--keep]
// The randomised fault campaign (test/faults/): the real relay and device CLI as child processes, faults
// striking at random moments, then heal and check. Progress on stderr; the table and the final line
// "RUNS runs, L lost, D duplicated, N non-converged, H hangs, F false-successes" on stdout (with --json,
// one JSON object after it, on the last line). Exit 0 only when every counter is 0.
import { parseArgs } from 'node:util';
import { DEFAULT_EVENTS, cleanUpEverything, parseOnly, runCampaign } from '../test/faults/campaign.ts';
import { FAULT_KINDS, KINDS } from '../test/faults/kinds.ts';
import { failed, renderReport, reportJson, totals } from '../test/faults/report.ts';
import { SABOTAGES } from '../test/faults/run.ts';

const USAGE = `usage: npm run faults -- [--runs N (default 12)] [--seed S (default random)] [--events E (default ${DEFAULT_EVENTS})]
                          [--only KIND,...] [--json] [--keep]
  --only   run only these kinds; KIND+KIND runs two kinds together in one run
  --keep   keep each run's folder (relay databases, device homes, logs) under the temp folder
  env MOTEBIT_FAULTS_ROOT=DIR runs the relay and CLI of another checkout (default: this one)
randomness: one seeded PRNG (sfc32 seeded by cyrb128, test/faults/prng.ts); run i has seed S+i, so
  "--runs 1 --seed S+i --only ITS_KINDS" replays it (choices are replayed; process timing is not)
kinds:
${KINDS.map((k) => `  ${k.padEnd(17)} ${FAULT_KINDS[k].about}`).join('\n')}`;

function fail(message: string): never {
  process.stderr.write(`faults: ${message}\n${USAGE}\n`);
  process.exit(2);
}

let values: Record<string, string | boolean | undefined>;
try {
  ({ values } = parseArgs({
    options: {
      runs: { type: 'string' },
      seed: { type: 'string' },
      events: { type: 'string' },
      only: { type: 'string' },
      json: { type: 'boolean', default: false },
      keep: { type: 'boolean', default: false },
      sabotage: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  }));
} catch (error) {
  fail((error as Error).message);
}
if (values.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}

const integer = (name: string, fallback: number, min: number): number => {
  const text = values[name];
  if (text === undefined) return fallback;
  if (typeof text !== 'string' || !/^\d+$/.test(text) || Number(text) < min || !Number.isSafeInteger(Number(text))) fail(`--${name} is a whole number ≥ ${min}`);
  return Number(text);
};
const runs = integer('runs', 12, 1);
const seed = integer('seed', Math.floor(Math.random() * 1_000_000), 0);
const events = integer('events', DEFAULT_EVENTS, 1);
const only = typeof values.only === 'string' ? values.only.split(',').filter(Boolean) : undefined;
if (only) {
  try {
    parseOnly(only);
  } catch (error) {
    fail((error as Error).message);
  }
}
const sabotage = SABOTAGES.find((kind) => kind === values.sabotage);
if (values.sabotage !== undefined && !sabotage) fail(`--sabotage is ${SABOTAGES.join(' or ')} (a self-check of the harness)`);
const keep = values.keep === true;

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    process.stderr.write(`\nfaults: ${signal}: killing every child process${keep ? '' : ' and removing the temp folders'}\n`);
    cleanUpEverything(keep);
    process.exit(130);
  });
}
process.on('exit', () => cleanUpEverything(keep));

process.stderr.write(`faults: seed ${seed}, ${runs} runs, ${events} events per run${only ? `, only ${only.join(',')}` : ''}\n`);
const result = await runCampaign({
  runs,
  seed,
  events,
  keep,
  ...(only ? { only } : {}),
  ...(sabotage ? { sabotage } : {}),
  log: (text) => void process.stderr.write(`${text}\n`),
});
process.stdout.write(`${renderReport(result, events)}\n`);
if (values.json) process.stdout.write(`${JSON.stringify(reportJson(result, seed, events))}\n`);
const t = totals(result);
const clean = Object.values(t.counters).every((n) => n === 0) && !result.runs.some((run) => run.error !== null && failed(run));
process.exitCode = clean ? 0 : 1;
