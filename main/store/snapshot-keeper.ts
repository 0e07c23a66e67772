// What a device's store does with snapshots (issue 12, docs/protocol.md §10): write the content of one from
// the log it holds, take one as a new device's starting point, and prune its own log below one. Which
// events must stay is decided by shared/snapshot/retain.ts; this module only reads and writes rows.
import type { SqliteDatabase } from './database.ts';
import type { SealedEvent } from '../../shared/portable/event.ts';
import { SNAPSHOT_FORMAT, type SnapshotConflict, type SnapshotContent, type SnapshotHead, type VerifiedSnapshot } from '../../shared/snapshot/content.ts';
import { joinBounds, stableThrough, type WriterBound } from '../../shared/snapshot/retain.ts';

export interface SnapshotOptions {
  readonly snapshotId: string;
  readonly createdAt: number;
  /**
   * Devices that may still write, beyond those that have written (which are always counted), each with a
   * signed acknowledgement of what it had applied when it has one (`seen`, {} when nothing is known).
   */
  readonly writers?: readonly WriterBound[];
  /** Where the covered events end in the relay's log, as a hint for a joining device's first pull. */
  readonly relay: { epoch: string; seq: number } | null;
}

/** What the keeper needs of the store around it. */
export interface KeeperHost {
  readonly deviceId: string;
  readonly motebitId: string;
  /** Protocol 3: the membership position this device holds (undefined in protocol 2). */
  position(): number | undefined;
  stateDigest(): string;
  /** Writes an entity's state row: its winner, each writer's highest sequence among its events here, its conflict count. */
  putState(winner: SealedEvent, writers: Readonly<Record<string, number>>, conflicts: number): void;
  /** This device's events the relay has acknowledged (never pruned beyond it). */
  pushedSeq(): number;
}

/**
 * Events kept whatever the bounds say (retain.ts): each entity's winner, and the sides and settler of every
 * conflict but a settled one of an entity deleted since (its values go with the entity). Snapshots and
 * pruning both keep exactly these, plus what is not stable.
 */
const PINNED = `SELECT event_id FROM state
  UNION SELECT c.event_a FROM conflicts c JOIN state s ON s.entity = c.entity WHERE c.resolved_by IS NULL OR s.deleted = 0
  UNION SELECT c.event_b FROM conflicts c JOIN state s ON s.entity = c.entity WHERE c.resolved_by IS NULL OR s.deleted = 0
  UNION SELECT c.resolved_by FROM conflicts c JOIN state s ON s.entity = c.entity WHERE c.resolved_by IS NOT NULL AND s.deleted = 0`;

interface HeadRow {
  device_id: string;
  seq: number;
  hash: string;
  lamport: number;
  clock: string | null;
}

export class SnapshotKeeper {
  readonly #db: SqliteDatabase;
  readonly #host: KeeperHost;
  readonly #sql;

  constructor(db: SqliteDatabase, host: KeeperHost) {
    this.#db = db;
    this.#host = host;
    const p = (sql: string) => db.prepare(sql);
    this.#sql = {
      heads: p('SELECT device_id, seq, hash, lamport, clock FROM heads ORDER BY device_id'),
      writerAfter: p('SELECT event_id, body FROM events WHERE device_id = ? AND device_seq > ?'),
      bytesAfter: p('SELECT coalesce(sum(length(body)), 0) AS n FROM events WHERE device_id = ? AND device_seq > ?'),
      pinned: p(`SELECT event_id, body FROM events WHERE event_id IN (${PINNED})`),
      conflicts: p(`SELECT entity, event_a, event_b, a_device, a_seq, b_device, b_seq, sides_lamport, a_lamport, b_lamport, resolved_by, resolved_lamport, detected_at
                    FROM conflicts ORDER BY id`),
      claims: p('SELECT device_id, seq FROM claims ORDER BY device_id'),
      counts: p('SELECT (SELECT count(*) FROM events) AS events, (SELECT count(*) FROM heads) AS heads'),
      insertEvent: p(`INSERT INTO events (event_id, device_id, device_seq, lamport, entity, op, hash, ts, received_at, body)
                      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
      insertHead: p('INSERT INTO heads (device_id, seq, hash, lamport, clock) VALUES (?, ?, ?, ?, ?)'),
      raiseFloor: p('INSERT INTO floors (device_id, seq) VALUES (?, ?) ON CONFLICT (device_id) DO UPDATE SET seq = max(seq, excluded.seq)'),
      raiseClaim: p('INSERT INTO claims (device_id, seq) VALUES (?, ?) ON CONFLICT (device_id) DO UPDATE SET seq = max(seq, excluded.seq)'),
      insertConflict: p(`INSERT INTO conflicts (entity, event_a, event_b, a_device, a_seq, b_device, b_seq, sides_lamport, a_lamport, b_lamport, detected_at, resolved_by, resolved_lamport)
                         VALUES (@entity, @event_a, @event_b, @a_device, @a_seq, @b_device, @b_seq, @sides_lamport, @a_lamport, @b_lamport, @detected_at, @resolved_by, @resolved_lamport)`),
      pruneWriter: p(`DELETE FROM events WHERE device_id = ? AND device_seq <= ? AND event_id NOT IN (${PINNED})`),
    };
  }

  /** The heads of every writer, with their clocks (a head from before schema 5 without one counts as knowing nothing). */
  #heads(): SnapshotHead[] {
    return (this.#sql.heads.all() as HeadRow[]).map((row) => ({ device_id: row.device_id, seq: row.seq, hash: row.hash, lamport: row.lamport, v: row.clock === null ? {} : (JSON.parse(row.clock) as Record<string, number>) }));
  }

  /** Per writer, how far its events are stable (retain.ts), from the heads held and what is known of the devices that may write. */
  #stable(heads: readonly SnapshotHead[], writers: readonly WriterBound[]): Map<string, number> {
    const covers = Object.fromEntries(heads.map((h) => [h.device_id, h.seq]));
    const bounds = new Map<string, Record<string, number>>();
    // This device: everything it writes from now on has seen everything it holds.
    bounds.set(this.#host.deviceId, covers);
    for (const head of heads) bounds.set(head.device_id, joinBounds(bounds.get(head.device_id) ?? {}, head.v));
    for (const writer of writers) {
      // An acknowledgement bounds the device's later events only when nothing it wrote before it is missing here.
      if ((writer.seen[writer.deviceId] ?? 0) > (covers[writer.deviceId] ?? 0)) {
        if (!bounds.has(writer.deviceId)) bounds.set(writer.deviceId, {});
        continue;
      }
      bounds.set(writer.deviceId, joinBounds(bounds.get(writer.deviceId) ?? {}, writer.seen));
    }
    return stableThrough(Object.keys(covers), [...bounds].map(([deviceId, seen]) => ({ deviceId, seen })), covers);
  }

  /** The content of a snapshot of everything this device holds now (not sealed: Device seals and sends it). */
  content(options: SnapshotOptions): SnapshotContent {
    return this.#db
      .transaction(() => {
        const heads = this.#heads();
        const stable = this.#stable(heads, options.writers ?? []);
        const kept = new Map<string, string>();
        for (const row of this.#sql.pinned.iterate() as Iterable<{ event_id: string; body: string }>) kept.set(row.event_id, row.body);
        for (const [writer, through] of stable) {
          for (const row of this.#sql.writerAfter.iterate(writer, through) as Iterable<{ event_id: string; body: string }>) kept.set(row.event_id, row.body);
        }
        const position = this.#host.position();
        return {
          t: SNAPSHOT_FORMAT,
          motebit_id: this.#host.motebitId,
          device_id: this.#host.deviceId,
          snapshot_id: options.snapshotId,
          created_at: options.createdAt,
          ...(position === undefined ? {} : { m: position }),
          heads,
          claims: Object.fromEntries((this.#sql.claims.all() as { device_id: string; seq: number }[]).map((r) => [r.device_id, r.seq])),
          relay: options.relay,
          events: [...kept.values()],
          conflicts: this.#sql.conflicts.all() as SnapshotConflict[],
          state_digest: this.#host.stateDigest(),
        } satisfies SnapshotContent;
      })
      .deferred();
  }

  /** The bytes of the events this device holds beyond `covers` (their stored bodies): how much a new snapshot would take in. */
  bytesBeyond(covers: Readonly<Record<string, number>>): number {
    let bytes = 0;
    for (const head of this.#sql.heads.all() as HeadRow[]) {
      if (head.seq > (covers[head.device_id] ?? 0)) bytes += (this.#sql.bytesAfter.get(head.device_id, covers[head.device_id] ?? 0) as { n: number }).n;
    }
    return bytes;
  }

  /** Whether this device holds nothing yet (a snapshot can only be a new device's starting point). */
  isEmpty(): boolean {
    const { events, heads } = this.#sql.counts.get() as { events: number; heads: number };
    return events === 0 && heads === 0;
  }

  /**
   * Takes a verified snapshot as this device's starting point: its events, heads, claims and conflicts,
   * the state they fold to, and a floor per writer (events below it may never arrive here). Only into a
   * store that holds nothing; all of it or nothing.
   */
  adopt(snapshot: VerifiedSnapshot, now: number): void {
    this.#db
      .transaction(() => {
        if (!this.isEmpty()) throw new Error('this device already holds events; a snapshot can only start a new one');
        for (const { event, hash, text } of snapshot.events) {
          this.#sql.insertEvent.run(event.event_id, event.device_id, event.device_seq, event.clock.l, event.entity, event.op, hash, event.ts, now, text);
        }
        for (const head of snapshot.content.heads) {
          this.#sql.insertHead.run(head.device_id, head.seq, head.hash, head.lamport, JSON.stringify(head.v));
          this.#sql.raiseFloor.run(head.device_id, head.seq);
        }
        for (const [device, seq] of Object.entries(snapshot.content.claims)) this.#sql.raiseClaim.run(device, seq);
        const conflicts = new Map<string, number>();
        for (const c of snapshot.content.conflicts) {
          this.#sql.insertConflict.run(c);
          conflicts.set(c.entity, (conflicts.get(c.entity) ?? 0) + 1);
        }
        // The state the verification folded the events to, with what applying them would have recorded.
        const writers = new Map<string, Record<string, number>>();
        for (const { event } of snapshot.events) {
          const of = writers.get(event.entity) ?? {};
          of[event.device_id] = Math.max(of[event.device_id] ?? 0, event.device_seq);
          writers.set(event.entity, of);
        }
        for (const [entity, winner] of snapshot.winners) this.#host.putState(winner, writers.get(entity)!, conflicts.get(entity) ?? 0);
      })
      .immediate();
  }

  /**
   * Drops from this device's log every event below `covers` that no longer matters (retain.ts), never one
   * of its own the relay has not acknowledged. Returns how many were dropped. The database file shrinks
   * once it is vacuumed (`vacuum`).
   */
  prune(covers: Readonly<Record<string, number>>, writers: readonly WriterBound[] = []): number {
    return this.#db
      .transaction(() => {
        const stable = this.#stable(this.#heads(), writers);
        let dropped = 0;
        for (const [writer, through] of stable) {
          let upTo = Math.min(through, covers[writer] ?? 0);
          if (writer === this.#host.deviceId) upTo = Math.min(upTo, this.#host.pushedSeq());
          if (upTo <= 0) continue;
          dropped += this.#sql.pruneWriter.run(writer, upTo).changes;
          this.#sql.raiseFloor.run(writer, upTo);
        }
        return dropped;
      })
      .immediate();
  }

  /** Gives the space of dropped events back to the file system. */
  vacuum(): void {
    this.#db.exec('VACUUM');
  }
}
