// The device's event store: the append-only log, the materialised state it folds to, the conflicts it
// contains, and the cursors sync keeps. One SQLite file per device home.
//
// Local writes and remote events take the same path (applyEvent): insert, advance the device head, record
// every concurrency with another device's write to the entity, and let the highest event win. Because
// each of those is a function of the set of events present, two devices holding the same events hold the
// same state, the same digest and the same conflicts, whatever order the events arrived in.
import { canonicalJson } from '../../shared/encoding.ts';
import { createHash } from 'node:crypto';
import { sha256Hex } from '../../shared/crypto.ts';
import { compareEvents, concurrent, happenedBefore, nextClock, sqlOrder, type Clocked } from '../../shared/clock.ts';
import { ChainError, identityAuthority, parseEvents, planChains, type ChainContext, type ChainHead, type EventAuthority, type HashedEvent } from '../../shared/chain.ts';
import { membershipAuthority } from '../../shared/membership/event-authority.ts';
import type { MembershipState } from '../../shared/membership/log.ts';
import { EntitySchema, GENESIS_HASH, JsonValueSchema, MAX_PAYLOAD_BYTES, PROTOCOL_VERSION, type JsonValue, type Operation, type SealedEvent } from '../../shared/portable/event.ts';
import { sealEvent, type DeviceCredentials, hashEvent, payloadSize } from '../../shared/event.ts';
import { newEventId } from '../../shared/ids.ts';
import { MAX_PAYLOAD_DEPTH, jsonValueDepth } from '../../shared/portable/json-bounds.ts';
import { openDatabase, StoreOpenError, type SqliteDatabase } from './database.ts';
import { MembershipLedger } from './membership-ledger.ts';
import { RelayLedger } from './relay-ledger.ts';
import { SnapshotKeeper } from './snapshot-keeper.ts';
import { digestSorted } from '../../shared/snapshot/digest.ts';

export interface StoreIdentity {
  readonly motebitId: string;
  readonly deviceId: string;
  /** Protocol 2: the motebit identity key that certifies every device; seals are checked against it. */
  readonly identityPublicKey?: Uint8Array;
  /**
   * A motebit with a membership log (docs/keys.md): the log as this device verified it, null before it
   * holds one. It decides who may write; this device's writes name its head. Exactly one of the two is given.
   */
  readonly membership?: () => MembershipState | null;
}

export interface LocalWrite {
  readonly entity: string;
  readonly op: Operation;
  readonly payload: JsonValue;
}

export interface EntityState {
  readonly entity: string;
  readonly deleted: boolean;
  readonly value: JsonValue;
  readonly eventId: string;
  readonly deviceId: string;
}

export interface ConflictSide {
  readonly eventId: string;
  readonly deviceId: string;
  /**
   * False when this device no longer keeps the side's event: a settled conflict of an entity deleted since,
   * after pruning or starting from a snapshot (docs/protocol.md §10). Its op, value and time are then null.
   */
  readonly kept: boolean;
  readonly op: Operation | null;
  readonly value: JsonValue;
  readonly writtenAt: number | null;
}

export interface ConflictRecord {
  readonly id: number;
  readonly entity: string;
  /** The side that sorts first: it lost the tie-break of the pair. */
  readonly loser: ConflictSide;
  /** The side that sorts last: the pair's winner. */
  readonly winner: ConflictSide;
  /** The entity's current winning event (a later write may have superseded both sides). */
  readonly currentEventId: string;
  readonly detectedAt: number;
  readonly reviewedAt: number | null;
  /** The first event written after seeing both sides, if any: the conflict is settled. */
  readonly resolvedBy: string | null;
  /** Which key of the one total order (compareEvents) made the winner sort last: see winReason. */
  readonly winReason: WinReason;
}

/** Why a pair's winner wins: its clock is later, or the clocks are equal and the device order decides. */
export type WinReason = 'clock' | 'device';

/** Which conflicts to list: open (neither settled nor reviewed here), reviewed here but not settled, settled. */
export const CONFLICT_FILTERS = ['open', 'reviewed', 'settled', 'unsettled', 'all'] as const;
export type ConflictFilter = (typeof CONFLICT_FILTERS)[number];

export interface ConflictQuery {
  /** Default 'unsettled' (open and reviewed); includeResolved is the older spelling of 'all'. */
  readonly filter?: ConflictFilter;
  readonly includeResolved?: boolean;
  /** Only entities whose name starts with this. */
  readonly entityPrefix?: string;
  /** Only conflicts whose entity's current value was written by this device. */
  readonly currentDevice?: string;
}

/** What a person keeps for a conflict: the value the entity holds now, or the pair's other side. */
export type KeepChoice = 'current' | 'other';

export interface RejectedEvent {
  readonly relaySeq: number;
  readonly eventId: string;
  readonly deviceId: string;
  readonly deviceSeq: number;
  readonly code: string;
  readonly message: string;
}

export interface ApplyResult {
  readonly applied: number;
  readonly duplicates: number;
  /** Events held back until a seal covers them. */
  readonly held: number;
  readonly newConflicts: number;
}

/** Thrown for a write a person or a caller got wrong; nothing was written. */
export class InvalidWriteError extends Error {
  override name = 'InvalidWriteError';
}

interface EventRow {
  event_id: string;
  device_id: string;
  device_seq: number;
  lamport: number;
  body: string;
}

const now = (): number => Date.now();

export class EventStore {
  readonly identity: StoreIdentity;
  /** What this device knows about its relay: epoch, writers being repaired, recoveries. */
  readonly ledger: RelayLedger;
  /** The membership log this device verified (docs/keys.md). */
  readonly membership: MembershipLedger;
  /** Snapshots (issue 12): write one of this log, start from one, prune below one. */
  readonly snapshots: SnapshotKeeper;
  private readonly db: SqliteDatabase;
  private readonly sql;

  private cachedAuthority: { state: MembershipState | null; authority: EventAuthority } | undefined;

  private constructor(db: SqliteDatabase, identity: StoreIdentity) {
    this.db = db;
    this.identity = identity;
    this.sql = prepareStatements(db);
    this.ledger = new RelayLedger(db);
    this.membership = new MembershipLedger(db);
    this.snapshots = new SnapshotKeeper(db, {
      deviceId: identity.deviceId,
      motebitId: identity.motebitId,
      position: () => this.writePosition().m,
      stateDigest: () => this.stateDigest(),
      putState: (winner, writers, conflicts) => {
        const state = stateRow(winner);
        this.sql.upsertState.run(state.entity, state.event_id, state.lamport, state.device_id, state.deleted, state.payload, JSON.stringify(writers), conflicts);
      },
      pushedSeq: () => this.getCursor('pushed_seq'),
    });
  }

  /** Opens (creating if needed) the store at `path` for one device of one motebit. */
  static open(path: string, identity: StoreIdentity): EventStore {
    // Checked before the file is opened, so a wrong call leaves no database open behind it.
    if ((identity.identityPublicKey === undefined) === (identity.membership === undefined)) throw new TypeError('a store is given an identity key or a membership log, one of the two');
    const db = openDatabase(path);
    try {
      bindIdentity(db, identity);
    } catch (error) {
      db.close();
      throw error;
    }
    return new EventStore(db, identity);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  // ---- local writes -------------------------------------------------------------------------------

  /** Appends one local write. When it returns, the event is committed to disk. */
  append(write: LocalWrite): SealedEvent {
    return this.appendMany([write])[0]!;
  }

  put(entity: string, value: JsonValue): SealedEvent {
    return this.append({ entity, op: 'set', payload: value });
  }

  delete(entity: string): SealedEvent {
    return this.append({ entity, op: 'delete', payload: null });
  }

  /** Appends several local writes in one transaction: all of them or none. */
  appendMany(writes: readonly LocalWrite[]): SealedEvent[] {
    writes.forEach(validateWrite);
    const position = this.writePosition();
    return this.db
      .transaction(() => {
        const seen = this.frontier();
        let head = this.head(this.identity.deviceId) ?? { seq: 0, hash: GENESIS_HASH, lamport: 0 };
        let lamport = seen.lamport;
        const heads: Record<string, number> = { ...seen.heads };
        const events: SealedEvent[] = [];
        for (const write of writes) {
          const seq = head.seq + 1;
          const clock = nextClock({ lamport, heads }, this.identity.deviceId, seq);
          const event: SealedEvent = {
            ...position,
            v: PROTOCOL_VERSION,
            motebit_id: this.identity.motebitId,
            device_id: this.identity.deviceId,
            event_id: newEventId(),
            device_seq: seq,
            prev: head.hash,
            clock,
            entity: write.entity,
            op: write.op,
            payload: write.op === 'delete' ? null : write.payload,
            ts: now(),
          };
          const canonical = canonicalJson(event);
          const hash = sha256Hex(canonical);
          this.applyEvent({ event, hash, canonical });
          events.push(event);
          head = { seq, hash, lamport: clock.l };
          lamport = clock.l;
          heads[this.identity.deviceId] = seq;
        }
        const last = events.at(-1);
        if (last) this.sql.upsertHead.run(this.identity.deviceId, head.seq, head.hash, head.lamport, JSON.stringify(last.clock.v));
        return events;
      })
      .immediate();
  }

  // ---- remote events ------------------------------------------------------------------------------

  /**
   * Applies a batch from other devices in one transaction. Untrusted input: every event is validated and
   * its device chain and seal verified first; if anything is wrong a ChainError names it and nothing of
   * the batch is applied. Events already present are skipped, so applying a batch twice is a no-op.
   */
  applyRemote(input: readonly unknown[], options: { texts?: readonly string[] } = {}): ApplyResult {
    const incoming = parseEvents(input);
    // The JSON text each event arrived as (same order as input), so unsealed ones need no re-encoding.
    const texts = new Map<SealedEvent, string>();
    if (options.texts) {
      incoming.forEach((event, i) => {
        const text = options.texts![i];
        if (text !== undefined) texts.set(event, text);
      });
    }
    return this.db
      .transaction(() => {
        const devices = new Set(incoming.map((event) => event.device_id));
        const held = this.stagedFor(devices);
        let plan;
        try {
          plan = planChains([...held, ...incoming], this.chainContext(), texts);
        } catch (error) {
          // Held events are unauthenticated; if they are what breaks the chain, they were not genuine.
          // Judge the new batch on its own, and drop what was held only if the batch then verifies.
          if (!(error instanceof ChainError) || held.length === 0) throw error;
          plan = planChains(incoming, this.chainContext(), texts);
          for (const device of devices) this.sql.dropStaged.run(device);
        }
        let newConflicts = 0;
        const lastOfDevice = new Map<string, HashedEvent>();
        for (const item of plan.verified) {
          newConflicts += this.applyEvent(item);
          lastOfDevice.set(item.event.device_id, item);
        }
        for (const [deviceId, { event, hash }] of lastOfDevice) {
          this.sql.upsertHead.run(deviceId, event.device_seq, hash, event.clock.l, JSON.stringify(event.clock.v));
          this.sql.unstageUpTo.run(deviceId, event.device_seq);
        }
        // What these authenticated events say their writers had seen of every device.
        const claims = new Map<string, number>();
        for (const { event } of plan.verified) {
          for (const [deviceId, seq] of Object.entries(event.clock.v)) claims.set(deviceId, Math.max(claims.get(deviceId) ?? 0, seq));
        }
        for (const [deviceId, seq] of claims) this.sql.raiseClaim.run(deviceId, seq);
        for (const item of plan.unsealed) {
          this.sql.stage.run(item.event.device_id, item.event.device_seq, item.canonical);
        }
        return { applied: plan.verified.length, duplicates: plan.duplicates, held: plan.unsealed.length, newConflicts };
      })
      .immediate();
  }

  /**
   * Runs `write` as one transaction: every write it makes through this store and its ledger commits with
   * the others or not at all (applyRemote and recordRejected inside it are savepoints: one that throws
   * undoes only its own writes, and the caller decides). Sync applies a received page and moves the pull
   * cursor past it this way, so after a crash the cursor never points past events that were not applied,
   * nor stays behind events that were. `write` must not be async.
   */
  atomically<T>(write: () => T): T {
    return this.db.transaction(write).immediate();
  }

  // ---- the single path every event takes ----------------------------------------------------------

  /**
   * Inserts a verified event and updates conflicts and state; the caller advances the device head once
   * per batch. Returns how many conflicts the event made.
   */
  private applyEvent({ event, hash, canonical }: HashedEvent): number {
    // Positional parameters: binding an object by name costs more than the insert itself on a bulk apply.
    const info = this.sql.insertEvent.run(
      event.event_id,
      event.device_id,
      event.device_seq,
      event.clock.l,
      event.entity,
      event.op,
      hash,
      event.ts,
      now(),
      event.seal ? canonicalJson(event) : canonical, // unsealed, the body is what was hashed
    );
    if (info.changes !== 1) {
      throw new ChainError('fork', `event id ${event.event_id} is already used by another event`, {
        deviceId: event.device_id,
        deviceSeq: event.device_seq,
      });
    }
    const row = this.sql.stateMetaOf.get(event.entity) as StateMetaRow | undefined;
    const writers: Record<string, number> = row ? (JSON.parse(row.writers) as Record<string, number>) : {};
    // An event can only settle conflicts that existed before it (it is not concurrent with itself).
    if (row && row.conflicts > 0) this.settleConflicts(event);
    const created = this.recordConflicts(event, writers);
    writers[event.device_id] = Math.max(writers[event.device_id] ?? 0, event.device_seq);
    const writersJson = JSON.stringify(writers);
    const conflicts = (row?.conflicts ?? 0) + created;
    const wins = !row || compareEvents(event, { event_id: row.event_id, device_id: row.device_id, device_seq: 0, clock: { l: row.lamport, v: {} } }) > 0;
    if (wins) {
      const state = stateRow(event);
      this.sql.upsertState.run(state.entity, state.event_id, state.lamport, state.device_id, state.deleted, state.payload, writersJson, conflicts);
    } else this.sql.updateStateMeta.run(writersJson, conflicts, event.entity);
    return created;
  }

  /**
   * Records each write to the same entity, by another device, that is concurrent with `event`. Only
   * events the writer of `event` had not seen can be concurrent with it, so per other writer (from the
   * entity's state row) we read just its events past the sequence in `event`'s clock: usually none.
   */
  private recordConflicts(event: SealedEvent, writers: Readonly<Record<string, number>>): number {
    let created = 0;
    for (const [deviceId, maxSeq] of Object.entries(writers)) {
      if (deviceId === event.device_id) continue;
      const seen = event.clock.v[deviceId] ?? 0;
      if (maxSeq <= seen) continue;
      for (const row of this.sql.writesAfter.all(event.entity, deviceId, seen) as EventRow[]) {
        const other = rowEvent(row);
        if (!concurrent(event, other)) continue;
        const [first, second] = compareEvents(event, other) < 0 ? [event, other] : [other, event];
        const inserted = this.sql.insertConflict.run({
          entity: event.entity,
          event_a: first.event_id,
          event_b: second.event_id,
          a_device: first.device_id,
          a_seq: first.device_seq,
          b_device: second.device_id,
          b_seq: second.device_seq,
          sides_lamport: Math.max(first.clock.l, second.clock.l),
          a_lamport: first.clock.l,
          b_lamport: second.clock.l,
          detected_at: now(),
        });
        if (inserted.changes === 1) {
          created++;
          this.settleNewConflict(Number(inserted.lastInsertRowid), event.entity, first, second);
        }
      }
    }
    return created;
  }

  /** A new conflict may already be settled by an event that arrived before one of its sides. */
  private settleNewConflict(id: number, entity: string, a: Clocked, b: Clocked): void {
    const after = Math.max(a.clock.l, b.clock.l);
    for (const row of this.sql.writesLaterThan.all(entity, after) as EventRow[]) {
      const candidate = rowEvent(row);
      if (happenedBefore(a, candidate) && happenedBefore(b, candidate)) {
        this.sql.setResolvedBy.run(candidate.event_id, candidate.clock.l, id);
        return; // rows come in total order, so the first found is the earliest
      }
    }
  }

  /**
   * `event` settles each conflict of its entity whose two sides its writer had both seen, unless an event
   * earlier in the total order already did. Only conflicts whose sides are older than `event` (lower
   * Lamport time) and that are open or settled by a later-sorting event can change.
   */
  private settleConflicts(event: SealedEvent): void {
    const rows = this.sql.settleCandidates.all(event.entity, event.clock.l, event.clock.l) as SettleCandidate[];
    for (const row of rows) {
      const seen = event.clock.v;
      if (row.a_seq > (seen[row.a_device] ?? 0) || row.b_seq > (seen[row.b_device] ?? 0)) continue;
      if (row.resolved_by !== null) {
        const settledBy = this.sql.eventById.get(row.resolved_by) as EventRow;
        if (compareEvents(rowEvent(settledBy), event) < 0) continue;
      }
      this.sql.setResolvedBy.run(event.event_id, event.clock.l, row.id);
    }
  }

  // ---- reading ------------------------------------------------------------------------------------

  get(entity: string): EntityState | undefined {
    const row = this.sql.stateOf.get(entity) as StateRow | undefined;
    return row && stateFromRow(row);
  }

  /** The whole materialised state, tombstones included, sorted by entity. */
  state(): EntityState[] {
    return (this.sql.allState.all() as StateRow[]).map(stateFromRow);
  }

  conflicts(options: ConflictQuery = {}): ConflictRecord[] {
    const filter = options.filter ?? (options.includeResolved ? 'all' : 'unsettled');
    const rows = this.sql.queryConflicts.all({ filter, prefix: options.entityPrefix ?? '', device: options.currentDevice ?? null }) as ConflictRow[];
    return rows.map((row) => this.conflictFromRow(row));
  }

  /** How many conflicts each list holds. */
  conflictCounts(): { open: number; reviewed: number; settled: number } {
    return this.sql.conflictCounts.get() as { open: number; reviewed: number; settled: number };
  }

  conflict(id: number): ConflictRecord | undefined {
    const row = this.sql.conflictById.get(id) as ConflictRow | undefined;
    return row && this.conflictFromRow(row);
  }

  /** Marks a conflict as seen by the person on this device: the current winner stays. */
  markReviewed(id: number): void {
    const info = this.sql.markReviewed.run(now(), id);
    if (info.changes !== 1) throw new InvalidWriteError(`there is no conflict ${id}`);
  }

  /** Marks several conflicts reviewed, all or none (an unknown id changes nothing). */
  markReviewedMany(ids: readonly number[]): void {
    this.db
      .transaction(() => {
        for (const id of new Set(ids)) this.markReviewed(id);
      })
      .immediate();
  }

  /**
   * What keeping `choice` of a conflict writes: the entity's current value (which need not be either side,
   * if a third write superseded both without settling), or the side that is not current.
   */
  keptValue(conflict: ConflictRecord, choice: KeepChoice): LocalWrite {
    if (choice === 'other') {
      const side = otherSide(conflict);
      if (!side.kept) throw new InvalidWriteError(`the other value of ${conflict.entity} is no longer kept: the entity was deleted and its old history dropped`);
      return { entity: conflict.entity, op: side.op!, payload: side.op === 'delete' ? null : side.value };
    }
    const current = this.get(conflict.entity);
    if (!current || current.deleted) return { entity: conflict.entity, op: 'delete', payload: null };
    return { entity: conflict.entity, op: 'set', payload: current.value };
  }

  /**
   * Resolves several conflicts in one transaction (all or none): per entity one ordinary event carrying the
   * kept value, written after seeing every side, so it settles the entity's conflicts on every device. When
   * several chosen conflicts share an entity, the first one (lowest id) decides what is kept.
   */
  resolveConflicts(ids: readonly number[], choice: KeepChoice): SealedEvent[] {
    return this.db
      .transaction(() => {
        const writes = new Map<string, LocalWrite>();
        const missing: number[] = [];
        for (const id of [...new Set(ids)].sort((a, b) => a - b)) {
          const conflict = this.conflict(id);
          if (!conflict) missing.push(id);
          else if (!writes.has(conflict.entity)) writes.set(conflict.entity, this.keptValue(conflict, choice));
        }
        if (missing.length > 0) throw new InvalidWriteError(`there is no conflict ${missing.join(', ')}; nothing was changed`);
        return this.appendMany([...writes.values()]);
      })
      .immediate();
  }

  /**
   * Resolves a conflict by choosing a side: appends a new ordinary event carrying the chosen side's value
   * (or delete). Written after seeing both sides, it wins and settles the conflict on every device. There
   * is never a merge.
   */
  resolveConflict(id: number, keepEventId: string): SealedEvent {
    const conflict = this.conflict(id);
    if (!conflict) throw new InvalidWriteError(`there is no conflict ${id}`);
    if (keepEventId === conflict.currentEventId) return this.append(this.keptValue(conflict, 'current'));
    const side = [conflict.loser, conflict.winner].find((s) => s.eventId === keepEventId);
    if (!side) throw new InvalidWriteError(`event ${keepEventId} is not a side of conflict ${id}`);
    if (!side.kept) throw new InvalidWriteError(`that value of ${conflict.entity} is no longer kept: the entity was deleted and its old history dropped`);
    return this.append({ entity: conflict.entity, op: side.op!, payload: side.op === 'delete' ? null : side.value });
  }

  /** Every applied event, in local insertion order. */
  *events(): IterableIterator<SealedEvent> {
    for (const row of this.sql.allEvents.iterate() as Iterable<{ body: string }>) yield parseBody(row.body);
  }

  eventCount(): number {
    return (this.sql.countEvents.get() as { n: number }).n;
  }

  /** Highest Lamport time seen, and each device's last applied sequence. */
  frontier(): { lamport: number; heads: Record<string, number> } {
    const rows = this.sql.allHeads.all() as { device_id: string; seq: number; lamport: number }[];
    const heads: Record<string, number> = {};
    let lamport = 0;
    for (const row of rows) {
      heads[row.device_id] = row.seq;
      lamport = Math.max(lamport, row.lamport);
    }
    return { lamport, heads };
  }

  /** A hash of the materialised state (entity -> winning event, tombstones included). */
  stateDigest(): string {
    const rows = this.sql.stateDigestRows.iterate() as Iterable<{ entity: string; event_id: string }>;
    return digestSorted((function* () {
      for (const row of rows) yield { entity: row.entity, eventId: row.event_id };
    })());
  }

  /**
   * A hash of the set of applied events: each writer's chain head (device, sequence, hash), in device
   * order. Through the hash chains, equal heads mean equal events, also where a device pruned its log or
   * started from a snapshot and so does not hold all of them.
   */
  eventsDigest(): string {
    const hash = sha256Stream();
    for (const row of this.sql.headDigestRows.iterate() as Iterable<{ device_id: string; seq: number; hash: string }>) hash.add(`${row.device_id}\u0000${row.seq}\u0000${row.hash}\n`);
    return hash.hex();
  }

  /** Recomputes the materialised state from the log alone and replaces it; returns the entity count. */
  rebuildState(): number {
    return this.db
      .transaction(() => {
        this.db.exec('DELETE FROM state');
        const writers = new Map<string, Record<string, number>>();
        for (const row of this.sql.writersByEntity.iterate() as Iterable<{ entity: string; device_id: string; max_seq: number }>) {
          const map = writers.get(row.entity) ?? {};
          map[row.device_id] = row.max_seq;
          writers.set(row.entity, map);
        }
        const conflicts = new Map((this.sql.conflictCountByEntity.all() as { entity: string; n: number }[]).map((r) => [r.entity, r.n]));
        const rows = this.sql.winnersByFold.all() as { body: string }[];
        for (const { body } of rows) {
          const event = parseBody(body);
          const state = stateRow(event);
          this.sql.upsertState.run(state.entity, state.event_id, state.lamport, state.device_id, state.deleted, state.payload, JSON.stringify(writers.get(event.entity) ?? {}), conflicts.get(event.entity) ?? 0);
        }
        return rows.length;
      })
      .immediate();
  }

  // ---- what sync needs ----------------------------------------------------------------------------

  /** Local events the relay has not acknowledged, oldest first. */
  /** Up to `limit` local events after `after` (by default: after what the relay acknowledged). */
  unpushed(limit: number, after = this.getCursor('pushed_seq')): SealedEvent[] {
    return (this.sql.localAfter.all(this.identity.deviceId, after, limit) as { body: string }[]).map((row) => parseBody(row.body));
  }

  /**
   * The next batch to push: up to `limit` local events the relay has not acknowledged (or, given `after`,
   * the local events after it: the batch that follows one still unanswered), the last one sealed by this
   * device (a checkpoint that authenticates the whole batch through the hash chain). The seal is stored
   * with the event, so a retried push carries the same one.
   */
  outboxBatch(limit: number, device: DeviceCredentials, after?: number): SealedEvent[] {
    const batch = this.unpushed(limit, after);
    const last = batch.at(-1);
    if (last && !last.seal) {
      const sealed = sealEvent(last, device);
      this.sql.replaceBody.run(canonicalJson(sealed), sealed.event_id, hashEvent(sealed));
      batch[batch.length - 1] = sealed;
    }
    return batch;
  }

  /**
   * Up to `limit` applied events of a device after `afterSeq`, as sealed and stored, ending at the last
   * sealed one among them, so that a relay given them can serve them on with the seal that authenticates
   * them. Empty when no sealed event follows within `limit` (a writer's pushes are at most that long).
   */
  sealedRun(deviceId: string, afterSeq: number, limit: number): SealedEvent[] {
    const events = (this.sql.localAfter.all(deviceId, afterSeq, limit) as { body: string }[]).map((row) => parseBody(row.body));
    // Below a snapshot this device may not hold every event: a run must start right after `afterSeq`, unbroken.
    const unbroken = events.findIndex((event, i) => event.device_seq !== afterSeq + 1 + i);
    if (unbroken !== -1) events.length = unbroken;
    let end = events.length;
    while (end > 0 && !events[end - 1]!.seal) end--;
    return events.slice(0, end);
  }

  /**
   * Forgets rejected copies of events that have since been applied intact, for writers not being repaired
   * or quarantined: what stays listed is what is still missing here.
   */
  forgetSettledRejections(): void {
    this.sql.forgetSettledRejections.run();
  }

  /** Each device's highest event held here: applied, or held back intact until a seal covers it. */
  heldHeads(): Map<string, number> {
    const held = new Map<string, number>();
    for (const row of this.sql.heldHeads.all() as { device_id: string; seq: number }[]) held.set(row.device_id, row.seq);
    return held;
  }

  /** Devices whose events up to some sequence were seen by a writer (by its signed clock) but are not held here. */
  missingEvents(): { deviceId: string; held: number; claimed: number }[] {
    const held = this.heldHeads();
    return (this.sql.allClaims.all() as { device_id: string; seq: number }[])
      .map((row) => ({ deviceId: row.device_id, held: held.get(row.device_id) ?? 0, claimed: row.seq }))
      .filter((row) => row.claimed > row.held);
  }

  /** The relay no longer holds this device's events after `deviceSeq`: they are queued to be pushed again. */
  lowerPushed(deviceSeq: number): number {
    return this.db
      .transaction(() => {
        const pushed = this.getCursor('pushed_seq');
        if (deviceSeq >= pushed) return 0;
        this.setCursor('pushed_seq', Math.max(0, deviceSeq));
        return pushed - Math.max(0, deviceSeq);
      })
      .immediate();
  }

  /** The relay has acknowledged this device's events up to `deviceSeq`. */
  markPushed(deviceSeq: number): void {
    this.db
      .transaction(() => {
        if (deviceSeq > this.getCursor('pushed_seq')) this.setCursor('pushed_seq', deviceSeq);
      })
      .immediate();
  }

  pendingOutCount(): number {
    const head = this.head(this.identity.deviceId)?.seq ?? 0;
    return head - this.getCursor('pushed_seq');
  }

  /** Records received events that will never be applied, with why, so they can be shown. */
  recordRejected(events: readonly RejectedEvent[]): void {
    this.db
      .transaction(() => {
        for (const e of events) this.sql.insertRejected.run(e.relaySeq, e.eventId, e.deviceId, e.deviceSeq, e.code, e.message, now());
      })
      .immediate();
  }

  rejectedEvents(): (RejectedEvent & { seenAt: number })[] {
    return (this.sql.allRejected.all() as RejectedRow[]).map((row) => ({
      relaySeq: row.relay_seq,
      eventId: row.event_id,
      deviceId: row.device_id,
      deviceSeq: row.device_seq,
      code: row.code,
      message: row.message,
      seenAt: row.seen_at,
    }));
  }

  rejectedCount(): number {
    return (this.sql.countRejected.get() as { n: number }).n;
  }

  openConflictCount(): number {
    return (this.sql.countOpenConflicts.get() as { n: number }).n;
  }

  heldCount(): number {
    return (this.sql.countStaged.get() as { n: number }).n;
  }

  /** Entities that hold a value (deleted ones not counted). */
  entityCount(): number {
    return (this.sql.countEntities.get() as { n: number }).n;
  }

  /** The local database's size in bytes (its pages, the write-ahead log's included). */
  databaseBytes(): number {
    const pages = this.db.pragma('page_count', { simple: true }) as number;
    const size = this.db.pragma('page_size', { simple: true }) as number;
    return pages * size;
  }

  getCursor(name: string): number {
    return (this.sql.getCursor.get(name) as { value: number } | undefined)?.value ?? 0;
  }

  setCursor(name: string, value: number): void {
    this.sql.setCursor.run(name, value);
  }

  // ---- internals ----------------------------------------------------------------------------------

  private head(deviceId: string): ChainHead | undefined {
    return this.sql.headOf.get(deviceId) as ChainHead | undefined;
  }

  /** An applied event's hash; null when it is below a snapshot and not kept here (any copy is a duplicate). */
  private appliedHashOrPruned(deviceId: string, deviceSeq: number): string | undefined | null {
    const hash = (this.sql.hashAt.get(deviceId, deviceSeq) as { hash: string } | undefined)?.hash;
    if (hash !== undefined) return hash;
    return deviceSeq <= this.floor(deviceId) ? null : undefined;
  }

  /** How far a writer's events may be absent here: covered by a snapshot (0 when none is). */
  floor(deviceId: string): number {
    return (this.sql.floorOf.get(deviceId) as { seq: number } | undefined)?.seq ?? 0;
  }

  /** The hash of an applied event of a device, or undefined when this device does not hold it. */
  eventHash(deviceId: string, deviceSeq: number): string | undefined {
    return (this.sql.hashAt.get(deviceId, deviceSeq) as { hash: string } | undefined)?.hash;
  }

  /** What this device's new events name of the membership log: its head, for a motebit that has one. */
  private writePosition(): { m?: number } {
    if (!this.identity.membership) return {};
    const state = this.identity.membership();
    if (!state) throw new Error('this device holds no membership log yet: sync once before writing');
    return { m: state.head.seq };
  }

  /** Who may write, as this device knows it now (the membership authority is made again only when the log moved). */
  private authority(): EventAuthority {
    const { identityPublicKey, membership } = this.identity;
    if (identityPublicKey) return (this.cachedAuthority ??= { state: null, authority: identityAuthority(identityPublicKey) }).authority;
    const state = membership!();
    if (this.cachedAuthority?.state !== state) this.cachedAuthority = { state, authority: state ? membershipAuthority(state) : NO_MEMBERSHIP };
    return this.cachedAuthority.authority;
  }

  private chainContext(): ChainContext {
    return {
      motebitId: this.identity.motebitId,
      authority: this.authority(),
      head: (deviceId) => this.head(deviceId),
      appliedHash: (deviceId, seq) => this.appliedHashOrPruned(deviceId, seq),
    };
  }

  private stagedFor(devices: Set<string>): SealedEvent[] {
    const held: SealedEvent[] = [];
    for (const device of devices) {
      for (const row of this.sql.stagedOf.iterate(device) as Iterable<{ body: string }>) held.push(parseBody(row.body));
    }
    return held;
  }

  private conflictFromRow(row: ConflictRow): ConflictRecord {
    const side = (eventId: string, deviceId: string): ConflictSide => {
      const found = this.sql.eventById.get(eventId) as EventRow | undefined;
      if (!found) return { eventId, deviceId, kept: false, op: null, value: null, writtenAt: null };
      const event = parseBody(found.body);
      return { eventId, deviceId, kept: true, op: event.op, value: event.payload, writtenAt: event.ts };
    };
    const current = this.sql.stateOf.get(row.entity) as StateRow;
    // What the order needs of each side (its clock, device and id) is on the conflict itself.
    const clocked = (eventId: string, deviceId: string, lamport: number): Clocked => ({ event_id: eventId, device_id: deviceId, device_seq: 0, clock: { l: lamport, v: {} } });
    return {
      id: row.id,
      entity: row.entity,
      loser: side(row.event_a, row.a_device),
      winner: side(row.event_b, row.b_device),
      currentEventId: current.event_id,
      detectedAt: row.detected_at,
      reviewedAt: row.reviewed_at,
      resolvedBy: row.resolved_by,
      winReason: winReason(clocked(row.event_b, row.b_device, row.b_lamport), clocked(row.event_a, row.a_device, row.a_lamport)),
    };
  }
}

// ---- helpers ----------------------------------------------------------------------------------------

/**
 * Why `winner` sorts after `loser`, asked of compareEvents itself (no second copy of the order): if the two
 * differed only in their clocks, would the winner still sort last? Then its clock decided; otherwise the
 * clocks are equal and the device order did (the sides of a conflict are always from two devices).
 */
export function winReason(winner: Clocked, loser: Clocked): WinReason {
  const clockOnly = compareEvents(winner, { ...loser, device_id: winner.device_id, event_id: winner.event_id });
  return clockOnly > 0 ? 'clock' : 'device';
}

/** The side of a conflict that the entity does not hold now (the loser when a third write holds it). */
export function otherSide(conflict: ConflictRecord): ConflictSide {
  return conflict.currentEventId === conflict.loser.eventId ? conflict.winner : conflict.loser;
}

/** The side the entity holds now, or null when a later write superseded both. */
export function currentSide(conflict: ConflictRecord): ConflictSide | null {
  return [conflict.winner, conflict.loser].find((s) => s.eventId === conflict.currentEventId) ?? null;
}

interface StateRow {
  entity: string;
  event_id: string;
  device_id: string;
  lamport: number;
  deleted: number;
  payload: string | null;
  writers: string;
  conflicts: number;
}

type StateMetaRow = Pick<StateRow, 'event_id' | 'device_id' | 'lamport' | 'writers' | 'conflicts'>;

interface RejectedRow {
  relay_seq: number;
  event_id: string;
  device_id: string;
  device_seq: number;
  code: string;
  message: string;
  seen_at: number;
}

interface SettleCandidate {
  id: number;
  a_device: string;
  a_seq: number;
  b_device: string;
  b_seq: number;
  resolved_by: string | null;
}

interface ConflictRow {
  id: number;
  entity: string;
  event_a: string;
  event_b: string;
  a_device: string;
  b_device: string;
  a_lamport: number;
  b_lamport: number;
  detected_at: number;
  reviewed_at: number | null;
  resolved_by: string | null;
}

function stateFromRow(row: StateRow): EntityState {
  return {
    entity: row.entity,
    deleted: row.deleted === 1,
    value: row.payload === null ? null : (JSON.parse(row.payload) as JsonValue),
    eventId: row.event_id,
    deviceId: row.device_id,
  };
}

/** The materialised-state row of an entity whose winner is `event` (a delete leaves a tombstone). */
function stateRow(event: SealedEvent) {
  return {
    entity: event.entity,
    event_id: event.event_id,
    lamport: event.clock.l,
    device_id: event.device_id,
    deleted: event.op === 'delete' ? 1 : 0,
    payload: event.op === 'delete' ? null : JSON.stringify(event.payload),
  };
}

// Bodies in our own database were validated on the way in; parsing them again is only JSON.
function parseBody(body: string): SealedEvent {
  return JSON.parse(body) as SealedEvent;
}

function rowEvent(row: EventRow): SealedEvent {
  return parseBody(row.body);
}

function validateWrite(write: LocalWrite): void {
  const entity = EntitySchema.safeParse(write.entity);
  if (!entity.success) throw new InvalidWriteError(`invalid entity name: ${entity.error.issues[0]?.message}`);
  if (write.op !== 'set' && write.op !== 'delete') throw new InvalidWriteError(`unknown operation ${String(write.op)}: use set or delete`);
  if (write.op === 'set') {
    if (jsonValueDepth(write.payload, MAX_PAYLOAD_DEPTH) > MAX_PAYLOAD_DEPTH) throw new InvalidWriteError(`the value of ${write.entity} is nested more than ${MAX_PAYLOAD_DEPTH} levels deep`);
    if (!JsonValueSchema.safeParse(write.payload).success) throw new InvalidWriteError(`the value of ${write.entity} is not JSON`);
    const size = payloadSize(write.payload);
    if (size > MAX_PAYLOAD_BYTES) throw new InvalidWriteError(`the value of ${write.entity} is ${size} bytes; the limit is ${MAX_PAYLOAD_BYTES}`);
  }
}

function sha256Stream(): { add(text: string): void; hex(): string } {
  const hash = createHash('sha256');
  return {
    add: (text) => void hash.update(text, 'utf8'),
    hex: () => hash.digest('hex'),
  };
}

/** Before this device holds a membership log, nobody's events can be checked: all wait. */
const NO_MEMBERSHIP: EventAuthority = {
  admit: () => 'this device holds no membership log yet',
  seal: () => 'device_key_mismatch',
};

function bindIdentity(db: SqliteDatabase, identity: StoreIdentity): void {
  const get = db.prepare('SELECT value FROM meta WHERE key = ?');
  const put = db.prepare('INSERT INTO meta (key, value) VALUES (?, ?)');
  db.transaction(() => {
    for (const [key, value] of [
      ['motebit_id', identity.motebitId],
      ['device_id', identity.deviceId],
    ] as const) {
      const stored = (get.get(key) as { value: string } | undefined)?.value;
      if (stored === undefined) put.run(key, value);
      else if (stored !== value) {
        throw new StoreOpenError(`this store belongs to ${key.replace('_id', '')} ${stored}, not ${value}; use that device's own home`);
      }
    }
  }).immediate();
}

function prepareStatements(db: SqliteDatabase) {
  const p = (sql: string) => db.prepare(sql);
  return {
    insertEvent: p(`INSERT OR IGNORE INTO events (event_id, device_id, device_seq, lamport, entity, op, hash, ts, received_at, body)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
    upsertHead: p(`INSERT INTO heads (device_id, seq, hash, lamport, clock) VALUES (?, ?, ?, ?, ?)
                   ON CONFLICT (device_id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, lamport = excluded.lamport, clock = excluded.clock`),
    headOf: p('SELECT seq, hash, lamport FROM heads WHERE device_id = ?'),
    allHeads: p('SELECT device_id, seq, lamport FROM heads'),
    hashAt: p('SELECT hash FROM events WHERE device_id = ? AND device_seq = ?'),
    writesAfter: p(`SELECT event_id, device_id, device_seq, lamport, body FROM events
                    WHERE entity = ? AND device_id = ? AND device_seq > ? ORDER BY device_seq`),
    // Rare (a conflict found after an event that settles it): walks the entity's events by writer index.
    writesLaterThan: p(`SELECT event_id, device_id, device_seq, lamport, body FROM events INDEXED BY events_by_entity_writer
                        WHERE entity = ? AND lamport > ? ORDER BY ${sqlOrder('ASC')}`),
    insertConflict: p(`INSERT OR IGNORE INTO conflicts (entity, event_a, event_b, a_device, a_seq, b_device, b_seq, sides_lamport, a_lamport, b_lamport, detected_at)
                       VALUES (@entity, @event_a, @event_b, @a_device, @a_seq, @b_device, @b_seq, @sides_lamport, @a_lamport, @b_lamport, @detected_at)`),
    settleCandidates: p(`SELECT id, a_device, a_seq, b_device, b_seq, resolved_by FROM conflicts
                         WHERE entity = ? AND sides_lamport < ? AND (resolved_by IS NULL OR resolved_lamport >= ?)`),
    setResolvedBy: p('UPDATE conflicts SET resolved_by = ?, resolved_lamport = ? WHERE id = ?'),
    eventById: p('SELECT event_id, device_id, device_seq, lamport, body FROM events WHERE event_id = ?'),
    upsertState: p(`INSERT INTO state (entity, event_id, lamport, device_id, deleted, payload, writers, conflicts)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT (entity) DO UPDATE SET event_id = excluded.event_id, lamport = excluded.lamport,
                      device_id = excluded.device_id, deleted = excluded.deleted, payload = excluded.payload,
                      writers = excluded.writers, conflicts = excluded.conflicts`),
    updateStateMeta: p('UPDATE state SET writers = ?, conflicts = ? WHERE entity = ?'),
    // What applying an event needs of its entity's state row (not the payload it may replace).
    stateMetaOf: p('SELECT event_id, device_id, lamport, writers, conflicts FROM state WHERE entity = ?'),
    stateOf: p('SELECT entity, event_id, device_id, lamport, deleted, payload, writers, conflicts FROM state WHERE entity = ?'),
    writersByEntity: p('SELECT entity, device_id, max(device_seq) AS max_seq FROM events GROUP BY entity, device_id'),
    conflictCountByEntity: p('SELECT entity, count(*) AS n FROM conflicts GROUP BY entity'),
    allState: p('SELECT entity, event_id, device_id, lamport, deleted, payload, writers, conflicts FROM state ORDER BY entity'),
    stateDigestRows: p('SELECT entity, event_id FROM state ORDER BY entity'),
    headDigestRows: p('SELECT device_id, seq, hash FROM heads ORDER BY device_id'),
    winnersByFold: p(`SELECT body FROM (
                        SELECT body, row_number() OVER (PARTITION BY entity ORDER BY ${sqlOrder('DESC')}) AS rank
                        FROM events) WHERE rank = 1`),
    // Open: neither settled nor reviewed here. The prefix test is exact (no LIKE wildcards or case folding).
    queryConflicts: p(`SELECT c.id, c.entity, c.event_a, c.event_b, c.a_device, c.b_device, c.a_lamport, c.b_lamport, c.detected_at, c.reviewed_at, c.resolved_by
                       FROM conflicts c JOIN state s ON s.entity = c.entity
                       WHERE CASE @filter
                               WHEN 'open' THEN c.resolved_by IS NULL AND c.reviewed_at IS NULL
                               WHEN 'reviewed' THEN c.resolved_by IS NULL AND c.reviewed_at IS NOT NULL
                               WHEN 'settled' THEN c.resolved_by IS NOT NULL
                               WHEN 'unsettled' THEN c.resolved_by IS NULL
                               ELSE 1 END
                         AND substr(c.entity, 1, length(@prefix)) = @prefix
                         AND (@device IS NULL OR s.device_id = @device)
                       ORDER BY c.id`),
    conflictCounts: p(`SELECT coalesce(sum(resolved_by IS NULL AND reviewed_at IS NULL), 0) AS open,
                              coalesce(sum(resolved_by IS NULL AND reviewed_at IS NOT NULL), 0) AS reviewed,
                              coalesce(sum(resolved_by IS NOT NULL), 0) AS settled FROM conflicts`),
    conflictById: p('SELECT id, entity, event_a, event_b, a_device, b_device, a_lamport, b_lamport, detected_at, reviewed_at, resolved_by FROM conflicts WHERE id = ?'),
    markReviewed: p('UPDATE conflicts SET reviewed_at = ? WHERE id = ?'),
    allEvents: p('SELECT body FROM events ORDER BY id'),
    countEvents: p('SELECT count(*) AS n FROM events'),
    localAfter: p('SELECT body FROM events WHERE device_id = ? AND device_seq > ? ORDER BY device_seq LIMIT ?'),
    replaceBody: p('UPDATE events SET body = ? WHERE event_id = ? AND hash = ?'),
    stage: p('INSERT OR REPLACE INTO staged (device_id, device_seq, body) VALUES (?, ?, ?)'),
    unstageUpTo: p('DELETE FROM staged WHERE device_id = ? AND device_seq <= ?'),
    dropStaged: p('DELETE FROM staged WHERE device_id = ?'),
    stagedOf: p('SELECT body FROM staged WHERE device_id = ? ORDER BY device_seq'),
    countStaged: p('SELECT count(*) AS n FROM staged'),
    insertRejected: p(`INSERT OR REPLACE INTO rejected_events (relay_seq, event_id, device_id, device_seq, code, message, seen_at)
                       VALUES (?, ?, ?, ?, ?, ?, ?)`),
    allRejected: p('SELECT relay_seq, event_id, device_id, device_seq, code, message, seen_at FROM rejected_events ORDER BY relay_seq'),
    countRejected: p('SELECT count(*) AS n FROM rejected_events'),
    forgetSettledRejections: p(`DELETE FROM rejected_events WHERE device_id NOT IN (SELECT device_id FROM repairs)
                                  AND device_seq <= coalesce((SELECT seq FROM heads WHERE heads.device_id = rejected_events.device_id), 0)`),
    raiseClaim: p('INSERT INTO claims (device_id, seq) VALUES (?, ?) ON CONFLICT (device_id) DO UPDATE SET seq = max(seq, excluded.seq)'),
    allClaims: p('SELECT device_id, seq FROM claims'),
    heldHeads: p(`SELECT device_id, max(seq) AS seq FROM (
                    SELECT device_id, seq FROM heads UNION ALL SELECT device_id, max(device_seq) FROM staged GROUP BY device_id
                  ) GROUP BY device_id`),
    countOpenConflicts: p('SELECT count(*) AS n FROM conflicts WHERE resolved_by IS NULL'),
    countEntities: p('SELECT count(*) AS n FROM state WHERE deleted = 0'),
    getCursor: p('SELECT value FROM cursors WHERE name = ?'),
    floorOf: p('SELECT seq FROM floors WHERE device_id = ?'),
    setCursor: p(`INSERT INTO cursors (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value`),
  };
}

export { ChainError };
