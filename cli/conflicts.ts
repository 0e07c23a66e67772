// Reviewing and resolving conflicts from a terminal: `motebit-sync conflict …` and `/conflict …` in the
// shell take the same words. Listing filters like the window's (open / reviewed / settled / all, entity
// prefix, the device that wrote the current value); keeping a side writes an ordinary event (the same
// store call as the window), so every device converges when it syncs. Keeping a deleted value asks for
// `confirm-delete` first. Everything printed from other devices (names, values) is made printable first.
import type { Device } from '../main/app/device.ts';
import { winReasonWords } from '../main/app/conflict-words.ts';
import { CONFLICT_FILTERS, currentSide, otherSide, type ConflictFilter, type ConflictQuery, type ConflictRecord, type ConflictSide, type KeepChoice } from '../main/store/event-store.ts';
import { EXIT } from './exit-codes.ts';
import { printable, printableLine } from './format.ts';

export const CONFLICT_USAGE = `conflict list [open|reviewed|settled|all] [entity=PREFIX] [device=DEVICE] [--json]
conflict show ID [--json]
conflict keep-current ID…|all [filters] [confirm-delete]   keep the value the entity holds now
conflict keep-other ID…|all [filters] [confirm-delete]     keep the other device's value
conflict review ID…|all [filters]                          mark reviewed here (the current value stays)
  filters: open|reviewed|settled|all, entity=PREFIX, device=DEVICE (id or name of the device that wrote the current value)
  keeping writes a new event; it reaches the other devices with the next sync`;

/** A conflict command a person got wrong: nothing was changed (a usage error, exit code 2). */
export class ConflictCommandError extends Error {
  override name = 'ConflictCommandError';
}

interface Io {
  out(text: string): void;
  err(text: string): void;
}

interface Parsed {
  ids: number[];
  all: boolean;
  query: ConflictQuery;
  confirmDelete: boolean;
}

/** Words after the subcommand: ids, `all`, a list name, entity=…, device=…, confirm-delete. */
function parseWords(words: readonly string[], names: ReadonlyMap<string, string | null>): Parsed {
  const parsed: Parsed = { ids: [], all: false, query: {}, confirmDelete: false };
  let filter: ConflictFilter | undefined;
  let entityPrefix: string | undefined;
  let currentDevice: string | undefined;
  for (const word of words) {
    if (/^\d+$/.test(word)) {
      const id = Number(word);
      if (!Number.isSafeInteger(id) || id < 1) throw new ConflictCommandError(`a conflict id is a positive number (got ${printable(word)})`);
      parsed.ids.push(id);
    } else if (word === 'all' && !parsed.all && filter === undefined) {
      parsed.all = true;
    } else if ((CONFLICT_FILTERS as readonly string[]).includes(word) && word !== 'unsettled') {
      filter = word as ConflictFilter;
    } else if (word.startsWith('entity=')) {
      entityPrefix = word.slice('entity='.length);
    } else if (word.startsWith('device=')) {
      currentDevice = deviceByIdOrName(word.slice('device='.length), names);
    } else if (word === 'confirm-delete') {
      parsed.confirmDelete = true;
    } else {
      throw new ConflictCommandError(`unknown word ${JSON.stringify(printable(word))}\n${CONFLICT_USAGE}`);
    }
  }
  parsed.query = { filter: filter ?? 'open', ...(entityPrefix !== undefined ? { entityPrefix } : {}), ...(currentDevice !== undefined ? { currentDevice } : {}) };
  return parsed;
}

function deviceByIdOrName(text: string, names: ReadonlyMap<string, string | null>): string {
  if (text.startsWith('dv_')) return text;
  const matches = [...names].filter(([, name]) => name === text).map(([id]) => id);
  if (matches.length === 1) return matches[0]!;
  if (matches.length === 0) throw new ConflictCommandError(`no device is named ${JSON.stringify(printable(text))}; use its id (motebit-sync devices)`);
  throw new ConflictCommandError(`${matches.length} devices are named ${JSON.stringify(printable(text))}; use the id of one (motebit-sync devices)`);
}

/** Device names from the relay, best effort: offline, conflicts still list with device ids. */
async function deviceNames(device: Device): Promise<Map<string, string | null>> {
  try {
    return new Map((await device.devices()).map((d) => [d.device_id, d.name ?? null]));
  } catch {
    return new Map();
  }
}

function who(side: ConflictSide, names: ReadonlyMap<string, string | null>): string {
  const name = names.get(side.deviceId);
  return name ? `${printableLine(name)} (${side.deviceId})` : side.deviceId;
}

function valueText(side: ConflictSide): string {
  if (!side.kept) return '(no longer kept: the entity was deleted and its old history dropped)';
  return side.op === 'delete' ? '(deleted)' : printable(JSON.stringify(side.value));
}

/** " at 2026-11-30T…" when the side's time is kept; nothing when it is not. */
const writtenAt = (side: ConflictSide): string => (side.writtenAt === null ? '' : ` at ${new Date(side.writtenAt).toISOString()}`);

function state(c: ConflictRecord): string {
  return c.resolvedBy !== null ? 'settled' : c.reviewedAt !== null ? 'reviewed' : 'open';
}

export function conflictText(c: ConflictRecord, names: ReadonlyMap<string, string | null>): string {
  const current = currentSide(c);
  const other = otherSide(c);
  const line = (label: string, side: ConflictSide) =>
    `  ${label} ${valueText(side)}  written by ${who(side, names)}${writtenAt(side)}${side.eventId === c.winner.eventId ? '  (wins)' : ''}`;
  return [
    `#${c.id} ${printableLine(c.entity)}  (${state(c)})`,
    current ? line('current:', current) : `  current: a later write (${c.currentEventId}) holds the entity now`,
    line('other:  ', other),
    `  why:     ${winReasonWords(c.winReason)}`,
  ].join('\n');
}

function conflictJson(c: ConflictRecord): object {
  const side = (s: ConflictSide) => ({ event_id: s.eventId, device_id: s.deviceId, op: s.op, value: s.value, written_at: s.writtenAt, kept: s.kept });
  return {
    id: c.id,
    entity: c.entity,
    state: state(c),
    winner: side(c.winner),
    loser: side(c.loser),
    current_event_id: c.currentEventId,
    win_reason: c.winReason,
    why: winReasonWords(c.winReason),
    detected_at: c.detectedAt,
    reviewed_at: c.reviewedAt,
    resolved_by: c.resolvedBy,
  };
}

/** The conflicts a bulk command acts on: the ids given, or `all` that match the filters (never nothing by accident). */
function chosen(device: Device, parsed: Parsed): ConflictRecord[] {
  if (parsed.all === (parsed.ids.length > 0)) throw new ConflictCommandError('name the conflicts: one or more ids, or all (with filters if you like)');
  if (parsed.all) return device.store.conflicts(parsed.query);
  const found = parsed.ids.map((id) => device.store.conflict(id));
  const missing = parsed.ids.filter((_, i) => !found[i]);
  if (missing.length > 0) throw new ConflictCommandError(`there is no conflict ${missing.join(', ')}; nothing was changed`);
  return found as ConflictRecord[];
}

/** Runs `conflict <subcommand> …`; returns the exit code. A wrong command is said on stderr (exit code 2). */
export async function runConflictCommand(device: Device, words: readonly string[], json: boolean, io: Io): Promise<number> {
  try {
    return await conflictCommand(device, words, json, io);
  } catch (error) {
    if (!(error instanceof ConflictCommandError)) throw error;
    io.err(`motebit-sync: ${error.message}`);
    return EXIT.usage;
  }
}

async function conflictCommand(device: Device, words: readonly string[], json: boolean, io: Io): Promise<number> {
  const [sub = 'list', ...rest] = words;
  const needsNames = sub === 'list' || sub === 'show' || rest.some((w) => w.startsWith('device=') && !w.startsWith('device=dv_'));
  const names = needsNames ? await deviceNames(device) : new Map<string, string | null>();
  switch (sub) {
    case 'help':
      io.out(CONFLICT_USAGE);
      return EXIT.ok;
    case 'list': {
      const parsed = parseWords(rest, names);
      if (parsed.ids.length > 0) throw new ConflictCommandError('list takes filters, not ids; use: conflict show ID');
      const conflicts = device.store.conflicts(parsed.all ? { ...parsed.query, filter: 'all' } : parsed.query);
      if (json) io.out(JSON.stringify({ conflicts: conflicts.map(conflictJson) }));
      else if (conflicts.length === 0) io.out(parsed.query.filter === 'open' && !parsed.query.entityPrefix && !parsed.query.currentDevice ? 'No conflicts. Every device agrees.' : 'No conflicts match.');
      else io.out(`${conflicts.map((c) => conflictText(c, names)).join('\n')}\n${conflicts.length} ${conflicts.length === 1 ? 'conflict' : 'conflicts'}`);
      return EXIT.ok;
    }
    case 'show': {
      const parsed = parseWords(rest, names);
      if (parsed.ids.length !== 1 || parsed.all) throw new ConflictCommandError('show takes one conflict id: conflict show ID');
      const [c] = chosen(device, parsed);
      io.out(json ? JSON.stringify(conflictJson(c!)) : conflictText(c!, names));
      return EXIT.ok;
    }
    case 'keep-current':
    case 'keep-other': {
      const keep: KeepChoice = sub === 'keep-current' ? 'current' : 'other';
      const parsed = parseWords(rest, names);
      const conflicts = chosen(device, parsed);
      if (conflicts.length === 0) {
        io.out('No conflicts match; nothing was changed.');
        return EXIT.ok;
      }
      const deletes = conflicts.filter((c) => device.store.keptValue(c, keep).op === 'delete');
      if (deletes.length > 0 && !parsed.confirmDelete) {
        io.err(`${deletes.length} of these keep a deleted value, so ${deletes.map((c) => printable(c.entity)).slice(0, 5).join(', ')}${deletes.length > 5 ? ` and ${deletes.length - 5} more` : ''} would be deleted on every device.\nNothing was changed; add confirm-delete to go ahead.`);
        return EXIT.failure;
      }
      const events = device.store.resolveConflicts(conflicts.map((c) => c.id), keep);
      const settled = conflicts.filter((c) => device.store.conflict(c.id)?.resolvedBy !== null).length;
      if (json) io.out(JSON.stringify({ settled, events: events.map((e) => e.event_id) }));
      else io.out(`kept the ${keep === 'current' ? 'current' : 'other'} value of ${conflicts.length} ${conflicts.length === 1 ? 'conflict' : 'conflicts'} (${events.length} new ${events.length === 1 ? 'event' : 'events'}, ${settled} settled); the other devices get it with the next sync`);
      return EXIT.ok;
    }
    case 'review': {
      const parsed = parseWords(rest, names);
      const conflicts = chosen(device, parsed);
      device.store.markReviewedMany(conflicts.map((c) => c.id));
      io.out(`marked ${conflicts.length} ${conflicts.length === 1 ? 'conflict' : 'conflicts'} reviewed; the current values stay (see them with: conflict list reviewed)`);
      return EXIT.ok;
    }
    default:
      throw new ConflictCommandError(`unknown conflict command ${JSON.stringify(printable(sub))}\n${CONFLICT_USAGE}`);
  }
}
