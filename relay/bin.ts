#!/usr/bin/env node
// motebit-relay: the CLI entry. `motebit-relay --port 8787 --db ./relay.db [--host 127.0.0.1] [--audience URL]`
// Prints one line, "motebit-relay listening on URL", on stdout; structured logs (JSON lines) go to stderr.
// SIGTERM/SIGINT: stop accepting, close sockets with 1001, close the database, exit 0.
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { createLogger } from './log.ts';
import { startRelay } from './server.ts';

const USAGE = 'usage: motebit-relay --db PATH [--port N (default 8787, 0 = any free port)] [--host ADDR (default 127.0.0.1)] [--audience URL] [--log-level info]';

const ArgsSchema = z.strictObject({
  db: z.string({ error: '--db PATH is required' }).min(1, '--db PATH is required'),
  host: z.string().min(1).default('127.0.0.1'),
  port: z
    .string()
    .regex(/^[0-9]{1,5}$/, '--port is a number from 0 to 65535')
    .transform(Number)
    .pipe(z.int().min(0, '--port is a number from 0 to 65535').max(65535, '--port is a number from 0 to 65535'))
    .default(8787),
  audience: z.url({ protocol: /^https?$/, error: '--audience is an http(s) URL' }).optional(),
  'log-level': z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  help: z.boolean().optional(),
});

function fail(message: string): never {
  process.stderr.write(`motebit-relay: ${message}\n${USAGE}\n`);
  process.exit(2);
}

let values: Record<string, string | boolean | undefined>;
try {
  ({ values } = parseArgs({
    options: {
      db: { type: 'string' },
      host: { type: 'string' },
      port: { type: 'string' },
      audience: { type: 'string' },
      'log-level': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
    allowPositionals: false,
  }));
} catch (error) {
  fail(error instanceof Error ? error.message : String(error));
}
if (values.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
const parsed = ArgsSchema.safeParse(values);
if (!parsed.success) fail(z.prettifyError(parsed.error));
const args = parsed.data;

const log = createLogger(args['log-level']);
let relay: Awaited<ReturnType<typeof startRelay>>;
try {
  relay = await startRelay({ host: args.host, port: args.port, db: args.db, ...(args.audience ? { audience: args.audience } : {}), logger: log });
} catch (error) {
  log.fatal({ err: error instanceof Error ? error.message : String(error) }, 'relay failed to start');
  process.exit(1);
}
process.stdout.write(`motebit-relay listening on ${relay.url}\n`);

let stopping = false;
const stop = (signal: string): void => {
  if (stopping) return;
  stopping = true;
  log.info({ signal }, 'shutting down');
  relay.close().then(
    () => process.exit(0),
    (error: unknown) => {
      log.error({ err: error instanceof Error ? error.message : String(error) }, 'shutdown failed');
      process.exit(1);
    },
  );
};
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));
