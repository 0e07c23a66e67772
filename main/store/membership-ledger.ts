// The motebit's membership log as this device verified it (docs/keys.md), kept in the device's own SQLite
// file so it survives restarts: a relay that later serves another history (a fork, fewer entries) is
// compared against it. Only verified entries are written (main/sync/membership-sync.ts decides); this
// module only remembers, in order, gap-free.
import type { SqliteDatabase } from './database.ts';

export interface LedgerEntry {
  readonly seq: number;
  readonly hash: string;
  /** The entry's canonical JSON. */
  readonly text: string;
}

export class MembershipLedger {
  private readonly db: SqliteDatabase;
  private readonly sql;

  constructor(db: SqliteDatabase) {
    this.db = db;
    this.sql = {
      all: db.prepare('SELECT seq, hash, entry FROM membership ORDER BY seq'),
      head: db.prepare('SELECT max(seq) AS seq FROM membership'),
      insert: db.prepare('INSERT INTO membership (seq, hash, entry) VALUES (?, ?, ?)'),
    };
  }

  /** Every entry held, in order. */
  entries(): LedgerEntry[] {
    return (this.sql.all.all() as { seq: number; hash: string; entry: string }[]).map((row) => ({ seq: row.seq, hash: row.hash, text: row.entry }));
  }

  /** The last entry's number, or -1 when none is held. */
  head(): number {
    return (this.sql.head.get() as { seq: number | null }).seq ?? -1;
  }

  /** Appends entries that follow the held ones (seq head + 1, head + 2 …), all or none. */
  append(entries: readonly LedgerEntry[]): void {
    this.db
      .transaction(() => {
        let next = this.head() + 1;
        for (const entry of entries) {
          if (entry.seq !== next) throw new RangeError(`membership entry ${entry.seq} does not follow entry ${next - 1}`);
          this.sql.insert.run(entry.seq, entry.hash, entry.text);
          next++;
        }
      })
      .immediate();
  }
}
