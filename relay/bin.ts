#!/usr/bin/env node
// motebit-relay: the CLI entry.
//   motebit-relay [--db PATH|URL] [--port 8787] [--host 127.0.0.1] [--audience URL] [--metrics-port N] …   serve
//   motebit-relay migrate [--db PATH|URL]                                                                  apply the schema, exit
//   motebit-relay copy --from ./relay.db --to postgres://…                                                 SQLite → PostgreSQL
// --db defaults to $MOTEBIT_RELAY_DB: a SQLite file path or a postgres:// URL (keep a password in
// ~/.pgpass or PGPASSWORD, not in argv). Serving prints one line, "motebit-relay listening on URL", on
// stdout; structured logs (JSON lines) go to stderr. SIGTERM/SIGINT: stop accepting, close sockets with
// 1001, close the database, exit 0. Bad arguments: exit 2; a failure to start or a failed command: exit 1.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { z } from 'zod';
import { copyCommand, migrateCommand } from './admin.ts';
import { createLogger } from './log.ts';
import { startRelay } from './server.ts';

const USAGE = [
  'usage: motebit-relay [--db PATH|postgres://URL (default $MOTEBIT_RELAY_DB)] [--port N (default 8787, 0 = any free port)] [--host ADDR (default 127.0.0.1)]',
  '                     [--audience URL] [--metrics-port N [--metrics-host ADDR]] [--trust-proxy] [--log-level info]',
  '       motebit-relay migrate [--db PATH|postgres://URL]',
  '       motebit-relay copy --from ./relay.db --to postgres://URL',
].join('\n');

const DbSchema = z.string({ error: '--db is required (a SQLite file path or a postgres:// URL), or set MOTEBIT_RELAY_DB' }).min(1, '--db is required (a SQLite file path or a postgres:// URL), or set MOTEBIT_RELAY_DB');

const ArgsSchema = z.strictObject({
  db: DbSchema,
  host: z.string().min(1).default('127.0.0.1'),
  port: z
    .string()
    .regex(/^[0-9]{1,5}$/, '--port is a number from 0 to 65535')
    .transform(Number)
    .pipe(z.int().min(0, '--port is a number from 0 to 65535').max(65535, '--port is a number from 0 to 65535'))
    .default(8787),
  audience: z.url({ protocol: /^https?$/, error: '--audience is an http(s) URL' }).optional(),
  'log-level': z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  'metrics-host': z.string().min(1).default('127.0.0.1'),
  'metrics-port': z
    .string()
    .regex(/^[0-9]{1,5}$/, '--metrics-port is a number from 0 to 65535')
    .transform(Number)
    .pipe(z.int().min(0, '--metrics-port is a number from 0 to 65535').max(65535, '--metrics-port is a number from 0 to 65535'))
    .optional(),
  'trust-proxy': z.boolean().optional(),
  help: z.boolean().optional(),
});

function fail(message: string): never {
  process.stderr.write(`motebit-relay: ${message}\n${USAGE}\n`);
  process.exit(2);
}

const command = process.argv[2] === 'migrate' || process.argv[2] === 'copy' ? process.argv[2] : 'serve';
const argv = command === 'serve' ? process.argv.slice(2) : process.argv.slice(3);

function parse(options: NonNullable<ParseArgsConfig['options']>): Record<string, string | boolean | undefined> {
  try {
    return parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, strict: true, allowPositionals: false }).values as Record<string, string | boolean | undefined>;
  } catch (error) {
    fail(error instanceof Error ? error.message : String(error));
  }
}

const values = parse(
  command === 'copy'
    ? { from: { type: 'string' }, to: { type: 'string' } }
    : command === 'migrate'
      ? { db: { type: 'string' } }
      : {
          db: { type: 'string' },
          host: { type: 'string' },
          port: { type: 'string' },
          audience: { type: 'string' },
          'log-level': { type: 'string' },
          'metrics-host': { type: 'string' },
          'metrics-port': { type: 'string' },
          'trust-proxy': { type: 'boolean' },
        },
);
if (values.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
if (command !== 'copy' && values.db === undefined && process.env.MOTEBIT_RELAY_DB) values.db = process.env.MOTEBIT_RELAY_DB;

if (command !== 'serve') {
  const say = (line: string): void => void process.stdout.write(`${line}\n`);
  const progress = (line: string): void => void process.stderr.write(`${line}\n`);
  try {
    if (command === 'migrate') {
      const db = DbSchema.safeParse(values.db);
      if (!db.success) fail(z.prettifyError(db.error));
      await migrateCommand(db.data, say);
    } else {
      const paths = z.strictObject({ from: z.string({ error: '--from PATH is required' }).min(1), to: z.string({ error: '--to postgres://URL is required' }).min(1), help: z.boolean().optional() }).safeParse(values);
      if (!paths.success) fail(z.prettifyError(paths.error));
      await copyCommand(paths.data.from, paths.data.to, say, progress);
    }
    process.exit(0);
  } catch (error) {
    process.stderr.write(`motebit-relay ${command}: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  }
}

const parsed = ArgsSchema.safeParse(values);
if (!parsed.success) fail(z.prettifyError(parsed.error));
const args = parsed.data;

const log = createLogger(args['log-level']);
let relay: Awaited<ReturnType<typeof startRelay>>;
try {
  relay = await startRelay({
    host: args.host,
    port: args.port,
    db: args.db,
    ...(args.audience ? { audience: args.audience } : {}),
    ...(args['metrics-port'] === undefined ? {} : { metricsPort: args['metrics-port'], metricsHost: args['metrics-host'] }),
    ...(args['trust-proxy'] ? { trustProxy: true } : {}),
    logger: log,
  });
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
