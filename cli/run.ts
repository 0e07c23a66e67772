// motebit-sync: the device's services from a terminal (the same main/app code as the tray app). The
// entry is cli/main.ts, which loads this module once Node's compile cache is on.
import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { Device, type HomeOptions } from '../main/app/device.ts';
import { resolveHome } from '../main/config/home.ts';
import { parseRelayUrl } from '../main/config/relay-url.ts';
import { pairingQrText } from '../main/identity/pairing.ts';
import { errorWords, sentence, type WordsKind } from '../main/app/error-words.ts';
import { EntitySchema, JsonValueSchema } from '../shared/portable/event.ts';
import { MotebitIdSchema } from '../shared/portable/ids.ts';
import type { SyncProgress } from '../shared/portable/status.ts';
import { EXIT, exitCodeFor } from './exit-codes.ts';
import { conflictsJson, conflictsText, devicesText, printable, progressLine, stateJson, statusJson, statusText } from './format.ts';
import { runConflictCommand } from './conflicts.ts';

const USAGE = `usage: motebit-sync [--home DIR] [--keyring os|file] COMMAND [--json]

  init --relay URL [--name NAME] [--no-encryption] [--keys per-device|master-token]
                                                     create a motebit on a relay: by default each device has
                                                     its own keys, a signed membership log says which devices
                                                     belong, and a recovery key is shown once; master-token:
                                                     the old scheme (one secret shared by every device)
  join --relay URL [--name NAME]                     per-device keys: show a one-time code, wait for approval
  approve CODE [--yes]                               per-device keys: add the device showing CODE once the
                                                     person confirms both screens show the same six digits
                                                     (the answer is read from the terminal, or a line of
                                                     stdin; --yes: a script that compared them already)
  recover --relay URL --motebit ID [--name NAME] [--remove DEVICE]...
                                                     every device lost: add this one with the recovery key
                                                     (read from the terminal or stdin), removing DEVICEs
  recovery-key --replace                             per-device keys: replace the recovery key (the current
                                                     one is read from the terminal or stdin); the new one is
                                                     shown once, the old one stops working
  upgrade                                            master token motebits: give this device its own keys,
                                                     keeping every event (the first device founds the
                                                     membership log and shows a recovery key; later ones
                                                     show a code to approve on an upgraded device)
  pair                                               master token motebits: show a pairing code for a new device
  join [--name NAME]                                 master token motebits: join with a pairing code, typed
                                                     when asked or given on stdin (never on the command line)
  put ENTITY JSON                                    write a value (queued until the next sync)
  import FILE|-                                      write JSON lines {"entity": …, "value": …} in one transaction
  delete ENTITY                                      delete an entity (a tombstone that syncs)
  get ENTITY                                         print an entity's value
  state [--json]                                     print every entity
  sync                                               run one sync cycle and print the status
  snapshot [--prune] [--json]                        sync, then save a sealed snapshot of the motebit on the
                                                     relay (new devices start from it; the relay drops what
                                                     every device has); --prune: then drop this device's
                                                     own old history below it and shrink its database
  status [--json]                                    print the sync status
  conflicts [--json] [--all]                         list conflicts (--all: settled ones too)
  review ID                                          mark a conflict reviewed (the current value stays)
  conflict list|show|keep-current|keep-other|review  filter, review and resolve conflicts in bulk (conflict help)
  resolve ID EVENT_ID                                keep one side of a conflict (written again as a new event)
  devices [--json]                                   list the motebit's devices
  revoke DEVICE                                      cut a device off
  shell                                              interactive: /sync, /status, /conflicts, /help, /quit

  --home DIR      device home instead of ~ (or MOTEBIT_HOME)
  --keyring file  keep secrets in a 0600 file instead of the OS keyring (or MOTEBIT_KEYRING=file)
  --verbose       with a failure, its technical details too

exit codes: 0 ok, 1 local failure, 2 usage, 3 relay unreachable, 4 refused by the relay (auth), 5 relay or integrity error`;

class UsageError extends Error {
  override name = 'UsageError';
}

const options = {
  home: { type: 'string' },
  keyring: { type: 'string' },
  json: { type: 'boolean', default: false },
  all: { type: 'boolean', default: false },
  relay: { type: 'string' },
  name: { type: 'string' },
  'no-encryption': { type: 'boolean', default: false },
  keys: { type: 'string' },
  motebit: { type: 'string' },
  remove: { type: 'string', multiple: true },
  yes: { type: 'boolean', default: false },
  replace: { type: 'boolean', default: false },
  prune: { type: 'boolean', default: false },
  verbose: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

type Flags = { json: boolean; all: boolean; relay?: string | undefined; name?: string | undefined; 'no-encryption': boolean; prune?: boolean };

interface Io {
  out(text: string): void;
  err(text: string): void;
}

const io: Io = {
  out: (text) => void process.stdout.write(`${text}\n`),
  err: (text) => void process.stderr.write(`${text}\n`),
};

function parseCommandLine(argv: string[]) {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const [command = parsed.values.help ? 'help' : process.stdin.isTTY ? 'shell' : 'help', ...args] = parsed.positionals;
  return { command, args, values: parsed.values };
}

function need(args: string[], count: number, names: string): void {
  if (args.length !== count) throw new UsageError(`expected ${names}, got ${args.length === 0 ? 'nothing' : args.map((a) => JSON.stringify(a)).join(' ')}`);
}

function parseJsonArgument(text: string): z.infer<typeof JsonValueSchema> {
  try {
    return JsonValueSchema.parse(JSON.parse(text));
  } catch {
    throw new UsageError(`the value must be JSON, e.g. '{"text":"hello"}' or '"a string"' (got ${text})`);
  }
}

function parseEntity(text: string | undefined): string {
  const result = EntitySchema.safeParse(text);
  if (!result.success) throw new UsageError(`invalid entity name ${JSON.stringify(text)}: ${result.error.issues[0]?.message}`);
  return result.data;
}

const ImportLineSchema = z.strictObject({ entity: EntitySchema, value: JsonValueSchema });

async function readImport(source: string): Promise<{ entity: string; value: z.infer<typeof JsonValueSchema> }[]> {
  const text = source === '-' ? await readStdin() : await readFile(source, 'utf8').catch((error: NodeJS.ErrnoException) => {
    throw new UsageError(`cannot read ${source}: ${error.code === 'ENOENT' ? 'no such file' : error.message}`);
  });
  const items = [];
  for (const [index, line] of text.split('\n').entries()) {
    if (line.trim() === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      throw new UsageError(`line ${index + 1} of ${source === '-' ? 'stdin' : source} is not JSON; nothing was imported`);
    }
    const parsed = ImportLineSchema.safeParse(value);
    if (!parsed.success) throw new UsageError(`line ${index + 1}: ${z.prettifyError(parsed.error)}; nothing was imported`);
    items.push(parsed.data);
  }
  return items;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Prints progress of long work on stderr: a line per phase change, and at most one per second within one. */
function showProgress(device: Device, io: Io): () => void {
  let last: SyncProgress | null = null;
  let lastAt = 0;
  return device.engine.onStatus(({ progress }) => {
    if (!progress) return;
    const now = Date.now();
    // within a phase at most one line a second, except its last figure (done of total), printed once
    if (last && last.phase === progress.phase && (last.done === progress.done || (now - lastAt < 1000 && progress.done !== progress.total))) return;
    if (progress.phase === 'connect' || (progress.done === 0 && progress.phase !== last?.phase && progress.total === 0)) return;
    last = progress;
    lastAt = now;
    io.err(progressLine(progress));
  });
}

async function syncAndReport(device: Device, flags: Flags, io: Io): Promise<number> {
  const stop = showProgress(device, io);
  const result = await device.syncNow();
  stop();
  printStatus(device, flags, io);
  return result.ok ? EXIT.ok : exitCodeFor(result.error!.kind);
}

/** Syncs first (a snapshot of everything there is), then makes and uploads one, and prunes when asked. */
async function snapshotAndReport(device: Device, flags: Flags, io: Io): Promise<number> {
  const stop = showProgress(device, io); // the sync's own progress
  let lastAt = 0;
  let made;
  try {
    made = await device.saveSnapshot((progress) => {
      // at most a line a second, and the last figure (done of total) once
      if (progress.done !== progress.total && Date.now() - lastAt < 1000) return;
      lastAt = Date.now();
      io.err(progressLine(progress));
    });
  } finally {
    stop();
  }
  const pruned = flags.prune ? await device.snapshots.prune(made.covers) : null;
  if (flags.json) {
    io.out(JSON.stringify({ snapshot_id: made.snapshotId, bytes: made.bytes, covered_events: made.covered, kept_events: made.kept, ...(pruned ? { pruned_events: pruned.dropped, database_bytes_before: pruned.bytesBefore, database_bytes_after: pruned.bytesAfter } : {}) }));
    return EXIT.ok;
  }
  io.out(`saved snapshot ${made.snapshotId} on the relay: ${made.covered.toLocaleString('en-US')} events in ${(made.bytes / 1_000_000).toFixed(1)} MB, keeping ${made.kept.toLocaleString('en-US')} of them (the others no longer matter); new devices start from it`);
  if (pruned) io.out(`dropped ${pruned.dropped.toLocaleString('en-US')} old events from this device: its database went from ${(pruned.bytesBefore / 1_000_000).toFixed(1)} MB to ${(pruned.bytesAfter / 1_000_000).toFixed(1)} MB`);
  return EXIT.ok;
}

function printStatus(device: Device, flags: Flags, io: Io): void {
  const status = device.status();
  const who = device.identity;
  io.out(flags.json ? JSON.stringify(statusJson(status, who)) : statusText(status, who));
}

async function runDeviceCommand(device: Device, command: string, args: string[], flags: Flags, io: Io): Promise<number> {
  switch (command) {
    case 'sync':
      need(args, 0, 'no arguments');
      return syncAndReport(device, flags, io);
    case 'status':
      need(args, 0, 'no arguments');
      printStatus(device, flags, io);
      return EXIT.ok;
    case 'put': {
      need(args, 2, 'ENTITY JSON');
      const event = device.put(parseEntity(args[0]), parseJsonArgument(args[1]!));
      io.out(flags.json ? JSON.stringify({ event_id: event.event_id, device_seq: event.device_seq }) : `wrote ${event.entity} (event ${event.event_id}); it goes out with the next sync`);
      return EXIT.ok;
    }
    case 'delete': {
      need(args, 1, 'ENTITY');
      const event = device.delete(parseEntity(args[0]));
      io.out(flags.json ? JSON.stringify({ event_id: event.event_id, device_seq: event.device_seq }) : `deleted ${event.entity} (event ${event.event_id})`);
      return EXIT.ok;
    }
    case 'import': {
      need(args, 1, 'FILE or -');
      const items = await readImport(args[0]!);
      const events = device.write(items.map((item) => ({ entity: item.entity, op: 'set' as const, payload: item.value })));
      io.out(flags.json ? JSON.stringify({ imported: events.length }) : `imported ${events.length} values in one transaction`);
      return EXIT.ok;
    }
    case 'get': {
      need(args, 1, 'ENTITY');
      const state = device.get(parseEntity(args[0]));
      if (!state || state.deleted) {
        io.err(`${args[0]} is ${state ? 'deleted' : 'not set'}`);
        return EXIT.failure;
      }
      io.out(JSON.stringify(state.value));
      return EXIT.ok;
    }
    case 'state': {
      need(args, 0, 'no arguments');
      const state = device.state();
      if (flags.json) io.out(JSON.stringify(stateJson(state)));
      else for (const s of state.filter((e) => !e.deleted)) io.out(`${s.entity} = ${JSON.stringify(s.value)}`);
      return EXIT.ok;
    }
    case 'conflicts': {
      need(args, 0, 'no arguments');
      const conflicts = device.conflicts({ includeResolved: flags.all });
      io.out(flags.json ? JSON.stringify(conflictsJson(conflicts)) : conflictsText(conflicts));
      return EXIT.ok;
    }
    case 'review': {
      need(args, 1, 'ID');
      device.markReviewed(parseId(args[0]!));
      io.out(`conflict ${args[0]} marked reviewed`);
      return EXIT.ok;
    }
    case 'resolve': {
      need(args, 2, 'ID EVENT_ID');
      const event = device.resolve(parseId(args[0]!), args[1]!);
      io.out(`kept that value as event ${event.event_id}; it goes out with the next sync`);
      return EXIT.ok;
    }
    case 'pair': {
      need(args, 0, 'no arguments');
      const code = await device.pairingCode();
      if (flags.json) io.out(JSON.stringify({ pairing_code: code }));
      else {
        io.out(await pairingQrText(code));
        io.out(`${code}\nOn the new device run "motebit-sync join" and paste this code when it asks (never put it on a command line).\nThe code carries this motebit's master token: show it only to your own device. Better: "motebit-sync upgrade" gives each device its own keys.`);
      }
      return EXIT.ok;
    }
    case 'devices': {
      need(args, 0, 'no arguments');
      const devices = await device.devices();
      io.out(flags.json ? JSON.stringify({ devices }) : devicesText(devices, device.identity.deviceId));
      return EXIT.ok;
    }
    case 'revoke': {
      need(args, 1, 'DEVICE');
      if (args[0] === device.identity.deviceId) throw new UsageError('this is the device you are on; revoke it from another device');
      const revoked = await device.revoke(args[0]!);
      io.out(flags.json ? JSON.stringify({ device: revoked }) : `revoked ${revoked.device_id}: it can no longer sync`);
      return EXIT.ok;
    }
    case 'snapshot':
      need(args, 0, 'no arguments');
      return snapshotAndReport(device, flags, io);
    case 'conflict':
      return runConflictCommand(device, args, flags.json, io);
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

/** The one-time code a joining (or later-upgrading) device shows: text and QR, or a JSON line first. */
async function showJoinCode(code: string, expiresAt: number, flags: Flags, io: Io): Promise<void> {
  const minutes = Math.max(1, Math.round((expiresAt - Date.now()) / 60_000));
  if (flags.json) {
    io.out(JSON.stringify({ join_code: code, expires_at: expiresAt }));
    return;
  }
  io.out(await pairingQrText(code));
  io.out(`On a device of your motebit run:\n  motebit-sync approve ${code}\n(or choose "Add a device" in its window). The code works once, for about ${minutes} minutes; nothing secret is in it.`);
}

function showOffer({ motebitId, sas }: { motebitId: string; sas: string }, flags: Flags, io: Io): void {
  io.out(flags.json ? JSON.stringify({ motebit_id: motebitId, sas }) : `Approve only if the other device shows: ${sas}\nwaiting for the approval…`);
}

/** A member approves a new device: its name and the six digits, a question (or --yes), then the add entry. */
async function approve(device: Device, args: string[], values: { yes: boolean }, flags: Flags, io: Io): Promise<number> {
  need(args, 1, 'CODE (the code the new device shows)');
  const pending = await device.approvalFor(args[0]!);
  const who = `${pending.name === null ? 'a device with no name' : `"${printable(pending.name)}"`} (${pending.deviceId})`;
  if (flags.json) io.out(JSON.stringify({ device_id: pending.deviceId, name: pending.name, sas: pending.sas }));
  else io.out(`New device ${who} asks to join this motebit.\nIt must show the same six digits as here: ${pending.sas}`);
  if (!values.yes && !(await confirm('Do both screens show the same digits? Approve this device [y/N] ', io))) {
    io.err('not approved; nothing was changed, and the code can no longer be used');
    return EXIT.failure;
  }
  await pending.approve();
  io.err(`approved ${who}: it is now a device of this motebit`);
  return EXIT.ok;
}

/** A yes/no question on the terminal (or one line of stdin): only "y" or "yes" is yes. */
async function confirm(question: string, io: Io): Promise<boolean> {
  if (!process.stdin.isTTY) {
    io.err(question);
    const answer = (await readStdin()).split('\n')[0]?.trim().toLowerCase() ?? '';
    return answer === 'y' || answer === 'yes';
  }
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = (await new Promise<string>((resolve) => rl.question(question, resolve))).trim().toLowerCase();
    return answer === 'y' || answer === 'yes';
  } finally {
    rl.close();
  }
}

/** --keys: per-device (the default: own keys per device, a membership log, a recovery key) or master-token (protocol 2). */
function parseKeysFlag(text: string | undefined): 'per-device' | undefined {
  if (text === 'master-token') return undefined;
  if (text === undefined || text === 'per-device') return 'per-device';
  throw new UsageError(`--keys is per-device or master-token (got ${JSON.stringify(text)})`);
}

function parseMotebitId(text: string): string {
  const parsed = MotebitIdSchema.safeParse(text.trim());
  if (!parsed.success) throw new UsageError(`${JSON.stringify(text)} is not a motebit id (mb_ followed by 22 characters)`);
  return parsed.data;
}

/** The recovery key, shown once: on stdout (the person's own terminal), never in a file or a log. */
async function showRecoveryKey(motebitId: string, recoveryKey: string, flags: Flags, io: Io): Promise<void> {
  if (flags.json) {
    io.out(JSON.stringify({ motebit_id: motebitId, recovery_key: recoveryKey }));
    return;
  }
  io.out(await pairingQrText(recoveryKey));
  io.out(
    [
      'Recovery key — write it down now with the motebit id; it is shown only this once and kept on no device:',
      `  ${recoveryKey}`,
      `  motebit ${motebitId}`,
      'With both, "motebit-sync recover" adds a new device when every device is lost, and can remove any device (a thief\'s).',
    ].join('\n'),
  );
}

/**
 * One line of a secret, from the terminal without echo, or from stdin when it is not a terminal (scripts).
 * Never from argv, where other users of the machine can read it.
 */
async function readSecretLine(prompt: string, io: Io, missing = 'no recovery key on stdin'): Promise<string> {
  if (!process.stdin.isTTY) {
    const line = (await readStdin()).split('\n')[0]?.trim() ?? '';
    if (line === '') throw new UsageError(missing);
    return line;
  }
  io.err(prompt);
  const stdin = process.stdin;
  stdin.setRawMode(true);
  stdin.resume();
  let text = '';
  try {
    for await (const chunk of stdin) {
      for (const char of (chunk as Buffer).toString('utf8')) {
        if (char === '\r' || char === '\n') return text.trim();
        if (char === '\u0003') throw new UsageError('cancelled');
        if (char === '\u007f' || char === '\b') text = text.slice(0, -1);
        else text += char;
      }
    }
  } finally {
    stdin.setRawMode(false);
    stdin.pause();
  }
  return text.trim();
}

function parseId(text: string): number {
  const id = Number(text);
  if (!Number.isSafeInteger(id) || id < 1) throw new UsageError(`a conflict id is a positive number (got ${text})`);
  return id;
}

async function shell(device: Device, io: Io): Promise<number> {
  device.engine.start(); // live sync while the shell is open, like the app
  const rl = createInterface({ input: process.stdin, output: process.stdout, prompt: 'motebit> ' });
  let open = true; // piped input ends (and closes readline) while a command may still be running
  rl.on('close', () => (open = false));
  io.out('motebit-sync shell: /sync, /status, /conflicts, /help, /quit');
  rl.prompt();
  for await (const line of rl) {
    const command = line.trim();
    try {
      if (command === '/quit' || command === '/exit') break;
      else if (command === '/sync') await syncAndReport(device, { json: false, all: false, 'no-encryption': false }, io);
      else if (command === '/status') printStatus(device, { json: false, all: false, 'no-encryption': false }, io);
      else if (command === '/conflicts') io.out(conflictsText(device.conflicts()));
      else if (/^\/conflict(\s|$)/.test(command)) await runConflictCommand(device, command.split(/\s+/).slice(1), false, io);
      else if (command === '/help' || command === '') io.out('/sync  run a cycle and print the status\n/status  print the status\n/conflicts  list open conflicts\n/conflict …  review and resolve (/conflict help)\n/quit');
      else io.err(`unknown command ${command}; try /help`);
    } catch (error) {
      io.err(describe(error).message);
    }
    if (open) rl.prompt();
  }
  rl.close();
  return EXIT.ok;
}

/** Exit code of each kind of failure (main/app/error-words.ts classifies, cli/exit-codes.ts numbers). */
const EXIT_OF_KIND: Record<WordsKind, number> = {
  input: EXIT.usage,
  state: EXIT.failure,
  cancelled: EXIT.failure,
  network: EXIT.network,
  auth: EXIT.auth,
  relay: EXIT.relay,
  integrity: EXIT.relay,
  local: EXIT.failure,
};

/**
 * Turns any error into what is printed and the exit code that names its kind: what happened and what to
 * do, in the words of main/app/error-words.ts; the technical details only with --verbose. Never a stack.
 */
function describe(error: unknown, verbose = false): { message: string; code: number } {
  if (error instanceof UsageError) return { message: `${error.message}\nrun "motebit-sync help" for usage`, code: EXIT.usage };
  const words = errorWords(error);
  const lines = [sentence(words.message), sentence(words.nextStep)].filter(Boolean);
  if (verbose && words.details) lines.push(`details: ${words.details}`);
  if (verbose && error instanceof Error && error.stack && words.kind === 'local') lines.push(error.stack);
  return { message: printable(lines.join('\n')), code: EXIT_OF_KIND[words.kind] };
}

/** One line, once per run, whenever secrets are in a plain file. */
function warnAboutSecrets(device: Device, io: Io): void {
  if (device.secretsWarning) io.err(`warning: ${device.secretsWarning}`);
}

export async function main(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let device: Device | null = null;
  let verbose = false;
  try {
    const { command, args, values } = parseCommandLine(argv);
    verbose = values.verbose;
    if (command === 'help') {
      io.out(USAGE);
      return EXIT.ok;
    }
    const flags: Flags = { json: values.json, all: values.all, relay: values.relay, name: values.name, 'no-encryption': values['no-encryption'], prune: values.prune };
    const home: HomeOptions = { home: resolveHome({ home: values.home, env }), keyring: values.keyring, env };
    if (command === 'init') {
      need(args, 0, 'no arguments (the relay goes in --relay URL)');
      if (!flags.relay) throw new UsageError('init needs --relay URL, e.g. motebit-sync init --relay https://relay.example.com');
      const relayUrl = parseRelayUrl(flags.relay); // a bad URL is a usage error, before anything is tried
      const keys = parseKeysFlag(values.keys);
      device = await Device.create({ ...home, relayUrl, deviceName: flags.name, encryption: !flags['no-encryption'], keys });
      warnAboutSecrets(device, io);
      io.err(`created motebit ${device.identity.motebitId}; this device is ${device.identity.deviceId}`);
      const recoveryKey = device.takeRecoveryKey();
      if (recoveryKey) await showRecoveryKey(device.identity.motebitId, recoveryKey, flags, io);
      return await syncAndReport(device, flags, io);
    }
    if (command === 'recover') {
      need(args, 0, 'no arguments (the relay goes in --relay URL, the motebit in --motebit ID; the recovery key is read from the terminal or stdin)');
      if (!flags.relay || !values.motebit) throw new UsageError('recover needs --relay URL and --motebit ID (both were shown with the recovery key at init)');
      const relayUrl = parseRelayUrl(flags.relay);
      const motebitId = parseMotebitId(values.motebit);
      const recoveryKey = await readSecretLine('Recovery key (MBR1-…): ', io);
      device = await Device.recover({ ...home, relayUrl, motebitId, recoveryKey, deviceName: flags.name, remove: values.remove ?? [] });
      warnAboutSecrets(device, io);
      for (const removed of values.remove ?? []) io.err(`removed ${removed} from motebit ${motebitId}: it can no longer sync or read what is written from now on`);
      io.err(`recovered motebit ${motebitId}; this device is ${device.identity.deviceId}`);
      return await syncAndReport(device, flags, io);
    }
    if (command === 'join' && args.length === 0 && !flags.relay) {
      // A master-token pairing code carries the motebit's secret: read from the terminal or stdin, never argv.
      const pairingCode = await readSecretLine('Pairing code from "motebit-sync pair" (motebit-pair:…): ', io, 'no pairing code on stdin; for a per-device motebit run join --relay URL');
      device = await Device.join({ ...home, pairingCode, deviceName: flags.name });
      warnAboutSecrets(device, io);
      io.err(`joined motebit ${device.identity.motebitId}; this device is ${device.identity.deviceId}`);
      return await syncAndReport(device, flags, io);
    }
    if (command === 'join' && args.length === 0) {
      if (!flags.relay) throw new UsageError('join needs --relay URL (a per-device motebit) or a pairing code from "motebit-sync pair" (a master token motebit)');
      const relayUrl = parseRelayUrl(flags.relay);
      device = await Device.joinByApproval({
        ...home,
        relayUrl,
        deviceName: flags.name,
        onCode: (code, expiresAt) => showJoinCode(code, expiresAt, flags, io),
        onOffer: (offered) => showOffer(offered, flags, io),
      });
      warnAboutSecrets(device, io);
      io.err(`joined motebit ${device.identity.motebitId}; this device is ${device.identity.deviceId}`);
      return await syncAndReport(device, flags, io);
    }
    if (command === 'join') {
      need(args, 1, 'CODE');
      if (/^\s*motebit-pair:/i.test(args[0]!)) {
        throw new UsageError('a pairing code carries the secret of the motebit, and a command line can be read by other users of this machine and stays in shell history: run "motebit-sync join" and paste the code when asked, or give it on stdin');
      }
      device = await Device.join({ ...home, pairingCode: args[0]!, deviceName: flags.name });
      warnAboutSecrets(device, io);
      io.err(`joined motebit ${device.identity.motebitId}; this device is ${device.identity.deviceId}`);
      return await syncAndReport(device, flags, io);
    }
    if (command === 'upgrade') {
      need(args, 0, 'no arguments');
      const upgraded = await Device.upgrade({ ...home, onCode: (code, expiresAt) => showJoinCode(code, expiresAt, flags, io), onOffer: (offered) => showOffer(offered, flags, io) });
      device = upgraded.device;
      warnAboutSecrets(device, io);
      io.err(`upgraded: this device (${device.identity.deviceId}) has its own keys now, and the motebit's master token is gone from it; other devices upgrade with "motebit-sync upgrade" and are approved here`);
      if (upgraded.recoveryKey) await showRecoveryKey(device.identity.motebitId, upgraded.recoveryKey, flags, io);
      return await syncAndReport(device, flags, io);
    }
    device = await Device.open(home);
    warnAboutSecrets(device, io);
    if (command === 'shell') return await shell(device, io);
    if (command === 'approve') return await approve(device, args, values, flags, io);
    if (command === 'recovery-key') {
      need(args, 0, 'no arguments');
      if (!values.replace) throw new UsageError('the recovery key is shown only once, at init; "recovery-key --replace" makes a new one (it asks for the current one)');
      const current = await readSecretLine('Current recovery key (MBR1-…): ', io);
      const next = await device.replaceRecoveryKey(current);
      io.err('the old recovery key no longer works');
      await showRecoveryKey(device.identity.motebitId, next, flags, io);
      return EXIT.ok;
    }
    return await runDeviceCommand(device, command, args, flags, io);
  } catch (error) {
    const { message, code } = describe(error, verbose);
    io.err(`motebit-sync: ${message}`);
    return code;
  } finally {
    await device?.close();
  }
}
