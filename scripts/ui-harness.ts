// npm run ui:harness -- [--home DIR] [--port N] [--keyring os|file]
// The settings window in any browser, driven by the real main-process services of one device home (see
// main/harness/server.ts). Prints the URL with its token; Ctrl+C stops it cleanly.
import { parseArgs } from 'node:util';
import { resolveHome } from '../main/config/home.ts';
import { startHarness } from '../main/harness/server.ts';
import { buildRenderer, rendererIsStale } from '../main/harness/renderer-build.ts';

const USAGE = 'usage: npm run ui:harness -- [--home DIR] [--port N] [--keyring os|file]';

function fail(message: string, code = 2): never {
  process.stderr.write(`ui-harness: ${message}\n${code === 2 ? `${USAGE}\n` : ''}`);
  process.exit(code);
}

let values;
try {
  ({ values } = parseArgs({ options: { home: { type: 'string' }, port: { type: 'string' }, keyring: { type: 'string' }, help: { type: 'boolean', short: 'h' } }, strict: true }));
} catch (error) {
  fail((error as Error).message);
}
if (values.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
const port = values.port === undefined ? 0 : Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65_535) fail(`--port must be a port number, not ${values.port}`);

if (rendererIsStale()) {
  process.stderr.write('ui-harness: building the settings window (npm run build:renderer)…\n');
  await buildRenderer();
}

const home = resolveHome({ home: values.home });
let harness;
try {
  harness = await startHarness({ home, keyring: values.keyring, port });
} catch (error) {
  fail(error instanceof Error ? error.message : String(error), 1);
}
process.stdout.write(`Motebit Sync UI harness for ${home}\nOpen: ${harness.url}\n`);

let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    void harness.close().then(() => process.exit(0));
  });
}
