// What a device knows about its relay, kept beside its log so it survives restarts: the epoch of the relay
// log it syncs with, the writers whose events the relay served in a form that failed verification (to be
// fetched again, or quarantined), and the times the relay was found to have lost data and was refilled.
// The sync engine decides; this module only remembers, in the device's own SQLite file.
import type { SqliteDatabase } from './database.ts';

export interface Repair {
  readonly deviceId: string;
  /** The lowest relay seq of this writer's events that failed: fetching resumes before it. */
  readonly relaySeq: number;
  /** The writer's first sequence that failed. */
  readonly deviceSeq: number;
  readonly code: string;
  readonly message: string;
  /** Cycles in which the events failed again. */
  readonly attempts: number;
  readonly firstAt: number;
  /** Set once the events kept failing: they are shown, and no longer fetched again until retryAt. */
  readonly quarantinedAt: number | null;
  readonly retryAt: number | null;
}

/** The name of the pull cursor among the store's cursors: the highest relay seq received and committed. */
export const PULL_CURSOR = 'relay_seq';

export const RECOVERY_REASONS = ['relay_replaced', 'relay_rolled_back', 'relay_missing_events', 'relay_skipped_events'] as const;
export type RecoveryReason = (typeof RECOVERY_REASONS)[number];

export interface Recovery {
  readonly at: number;
  readonly reason: RecoveryReason;
  /** Events this device sent to the relay again. */
  readonly resent: number;
  readonly epoch: string;
}

export interface RepairPolicy {
  /** Failing cycles before a writer's bad events are quarantined. */
  readonly maxAttempts: number;
  /** How long a quarantine lasts before the events are fetched once more. */
  readonly quarantineMs: number;
}

export const DEFAULT_REPAIR_POLICY: RepairPolicy = { maxAttempts: 3, quarantineMs: 24 * 60 * 60 * 1000 };

interface RepairRow {
  device_id: string;
  relay_seq: number;
  device_seq: number;
  code: string;
  message: string;
  attempts: number;
  first_at: number;
  quarantined_at: number | null;
  retry_at: number | null;
}

const toRepair = (row: RepairRow): Repair => ({
  deviceId: row.device_id,
  relaySeq: row.relay_seq,
  deviceSeq: row.device_seq,
  code: row.code,
  message: row.message,
  attempts: row.attempts,
  firstAt: row.first_at,
  quarantinedAt: row.quarantined_at,
  retryAt: row.retry_at,
});

export class RelayLedger {
  private readonly db: SqliteDatabase;
  private readonly sql;

  constructor(db: SqliteDatabase) {
    this.db = db;
    const p = (text: string) => db.prepare(text);
    this.sql = {
      getMeta: p('SELECT value FROM meta WHERE key = ?'),
      setMeta: p('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value'),
      deleteMeta: p('DELETE FROM meta WHERE key = ?'),
      resetCursor: p('DELETE FROM cursors WHERE name = ?'),
      repairs: p('SELECT * FROM repairs ORDER BY relay_seq'),
      repair: p('SELECT * FROM repairs WHERE device_id = ?'),
      insertRepair: p(`INSERT INTO repairs (device_id, relay_seq, device_seq, code, message, attempts, first_at, quarantined_at, retry_at)
                       VALUES (?, ?, ?, ?, ?, 0, ?, NULL, NULL)`),
      lowerRelaySeq: p('UPDATE repairs SET relay_seq = min(relay_seq, ?) WHERE device_id = ?'),
      setCause: p('UPDATE repairs SET device_seq = ?, code = ?, message = ? WHERE device_id = ?'),
      countAttempt: p('UPDATE repairs SET attempts = attempts + 1 WHERE device_id = ?'),
      quarantine: p('UPDATE repairs SET quarantined_at = ?, retry_at = ? WHERE device_id = ?'),
      release: p('UPDATE repairs SET quarantined_at = NULL, retry_at = NULL, attempts = 0 WHERE quarantined_at IS NOT NULL AND retry_at <= ?'),
      deleteRepair: p('DELETE FROM repairs WHERE device_id = ?'),
      clearRepairs: p('DELETE FROM repairs'),
      addRecovery: p('INSERT INTO recoveries (at, reason, resent, epoch) VALUES (?, ?, ?, ?)'),
      lastRecovery: p('SELECT at, reason, resent, epoch FROM recoveries ORDER BY id DESC LIMIT 1'),
    };
  }

  /** The epoch of the relay log this device last synced with, or null before the first sync. */
  epoch(): string | null {
    return (this.sql.getMeta.get('relay_epoch') as { value: string } | undefined)?.value ?? null;
  }

  setEpoch(epoch: string): void {
    this.sql.setMeta.run('relay_epoch', epoch);
  }

  /** The last event received, with its relay seq: evidence of what the log held at the cursor. */
  cursorEvent(): { seq: number; eventId: string } | null {
    const value = (this.sql.getMeta.get('cursor_event') as { value: string } | undefined)?.value;
    return value ? (JSON.parse(value) as { seq: number; eventId: string }) : null;
  }

  setCursorEvent(event: { seq: number; eventId: string } | null): void {
    if (event) this.sql.setMeta.run('cursor_event', JSON.stringify(event));
    else this.sql.deleteMeta.run('cursor_event');
  }

  repairs(): Repair[] {
    return (this.sql.repairs.all() as RepairRow[]).map(toRepair);
  }

  /** Writers being fetched again (not quarantined). */
  activeRepairs(): Repair[] {
    return this.repairs().filter((repair) => repair.quarantinedAt === null);
  }

  quarantined(): Repair[] {
    return this.repairs().filter((repair) => repair.quarantinedAt !== null);
  }

  isQuarantined(deviceId: string): boolean {
    const row = this.sql.repair.get(deviceId) as RepairRow | undefined;
    return row !== undefined && row.quarantined_at !== null;
  }

  /**
   * Remembers that a writer's events, fetched from `relaySeq` on, failed verification, the first bad one
   * being `deviceSeq` (for `code`). Fetching resumes before the lowest such relay seq; the cause shown is
   * the one earliest in the writer's chain (later failures are usually its consequence). A quarantined
   * writer stays as it is.
   */
  noteFailure(failure: { deviceId: string; relaySeq: number; deviceSeq: number; code: string; message: string }, now: number): void {
    const row = this.sql.repair.get(failure.deviceId) as RepairRow | undefined;
    if (!row) {
      this.sql.insertRepair.run(failure.deviceId, failure.relaySeq, failure.deviceSeq, failure.code, failure.message, now);
      return;
    }
    if (row.quarantined_at !== null) return;
    this.sql.lowerRelaySeq.run(failure.relaySeq, failure.deviceId);
    if (failure.deviceSeq < row.device_seq) this.sql.setCause.run(failure.deviceSeq, failure.code, failure.message, failure.deviceId);
  }

  /**
   * After a cycle that fetched everything from the resume point: a writer that failed again counts an
   * attempt (and is quarantined after `maxAttempts`); one that did not fail again is repaired.
   */
  endCycle(failedAgain: ReadonlySet<string>, now: number, policy: RepairPolicy): void {
    this.db
      .transaction(() => {
        for (const repair of this.activeRepairs()) {
          if (!failedAgain.has(repair.deviceId)) {
            this.sql.deleteRepair.run(repair.deviceId);
            continue;
          }
          this.sql.countAttempt.run(repair.deviceId);
          if (repair.attempts + 1 >= policy.maxAttempts) this.sql.quarantine.run(now, now + policy.quarantineMs, repair.deviceId);
        }
      })
      .immediate();
  }

  /** Quarantines whose time is up are fetched once more. */
  releaseExpired(now: number): void {
    this.sql.release.run(now);
  }

  /**
   * This device moves to another relay: nothing it knew of the old one applies. The pull cursor goes back
   * to 0 and the new relay's epoch is adopted on first contact, which is seeding, not a recovery.
   */
  forgetRelay(): void {
    this.db
      .transaction(() => {
        this.sql.deleteMeta.run('relay_epoch');
        this.sql.deleteMeta.run('cursor_event');
        this.sql.clearRepairs.run();
        this.sql.resetCursor.run(PULL_CURSOR);
      })
      .immediate();
  }

  /** A replaced or rolled-back relay: its seqs mean something else now, so every repair starts over. */
  clearRepairs(): void {
    this.sql.clearRepairs.run();
  }

  /** Where fetching must resume: before the first event still being repaired, else the cursor. */
  resumePoint(cursor: number): number {
    return this.activeRepairs().reduce((point, repair) => Math.min(point, repair.relaySeq - 1), cursor);
  }

  recordRecovery(recovery: Recovery): void {
    this.sql.addRecovery.run(recovery.at, recovery.reason, recovery.resent, recovery.epoch);
  }

  lastRecovery(): Recovery | null {
    const row = this.sql.lastRecovery.get() as Recovery | undefined;
    return row ? { at: row.at, reason: row.reason, resent: row.resent, epoch: row.epoch } : null;
  }
}
