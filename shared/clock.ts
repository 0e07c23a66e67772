// Version clocks: a Lamport counter for the one total order every device computes, plus a vector of the
// highest device sequence seen from each device, for exact concurrency (docs/protocol.md, "Clocks").
//
// Why both: the Lamport counter alone orders events but cannot tell "B had seen A's write" from "B wrote
// without knowing"; a single base revision per write (CouchDB's parent) cannot either once a device has seen
// several concurrent writes to the entity. The vector answers exactly, for any two events, with no history.

export interface VersionClock {
  /** Lamport time: one more than the highest Lamport time the writer had seen. */
  readonly l: number;
  /** For each device the writer had seen, the highest device sequence it had applied (its own included). */
  readonly v: Readonly<Record<string, number>>;
}

/** The part of an event that ordering and concurrency need. */
export interface Clocked {
  readonly device_id: string;
  readonly device_seq: number;
  readonly event_id: string;
  readonly clock: VersionClock;
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0; // code-unit order: identical on every device, whatever its locale
}

/**
 * The total order: higher Lamport time is later; ties broken by device id, then event id. The highest
 * event of an entity wins. Causality is respected: if a happened before b, a sorts before b.
 */
export function compareEvents(a: Clocked, b: Clocked): number {
  return a.clock.l - b.clock.l || compareText(a.device_id, b.device_id) || compareText(a.event_id, b.event_id);
}

/**
 * The same order in SQL, for queries that sort events or pick an entity's winner in the database: an
 * ORDER BY over the columns holding Lamport time, device id and event id (SQLite's BINARY collation
 * compares these ASCII ids as compareText does). test/clock-sql.property.test.ts checks on random events,
 * ties included, that SQLite sorts by it exactly as compareEvents does.
 */
export function sqlOrder(direction: 'ASC' | 'DESC', columns: { lamport: string; deviceId: string; eventId: string } = { lamport: 'lamport', deviceId: 'device_id', eventId: 'event_id' }): string {
  return `${columns.lamport} ${direction}, ${columns.deviceId} ${direction}, ${columns.eventId} ${direction}`;
}

/** True when the writer of b had already applied a when it wrote b. */
export function happenedBefore(a: Clocked, b: Clocked): boolean {
  if (a.event_id === b.event_id) return false;
  return a.device_seq <= (b.clock.v[a.device_id] ?? 0);
}

/** Two writes are concurrent when neither writer had seen the other's. Same-device writes never are. */
export function concurrent(a: Clocked, b: Clocked): boolean {
  return a.device_id !== b.device_id && !happenedBefore(a, b) && !happenedBefore(b, a);
}

/** What a device has seen: its highest Lamport time and, per device, the highest sequence applied. */
export interface Frontier {
  readonly lamport: number;
  readonly heads: Readonly<Record<string, number>>;
}

/** The clock of the next local write of `deviceId`, numbered `deviceSeq`, after seeing `seen`. */
export function nextClock(seen: Frontier, deviceId: string, deviceSeq: number): VersionClock {
  const v: Record<string, number> = { ...seen.heads, [deviceId]: deviceSeq };
  return { l: seen.lamport + 1, v };
}
