// npm run bench [-- --json] [-- --rounds N]: runs every benchmark on this machine, prints progress on stderr,
// a table on stdout and, with --json, one JSON object of all figures on the last line.
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { printTable, progress, type Figure } from './support.ts';
import { storeBench } from './store.bench.ts';

const Options = z.object({ json: z.boolean(), rounds: z.coerce.number().int().min(1).max(15) });

const { values } = parseArgs({ options: { json: { type: 'boolean', default: false }, rounds: { type: 'string', default: '3' } } });
const parsed = Options.safeParse(values);
if (!parsed.success) {
  console.error(`bench: ${z.prettifyError(parsed.error)}\nusage: npm run bench -- [--json] [--rounds N]`);
  process.exit(2);
}
const { json, rounds } = parsed.data;

const started = performance.now();
const figures: Figure[] = [];
figures.push(...(await storeBench(rounds)));
progress(`done in ${((performance.now() - started) / 1000).toFixed(1)} s`);

printTable(figures);
if (json) console.log(JSON.stringify(Object.fromEntries(figures.map((f) => [f.key, Number(f.value.toPrecision(6))]))));
