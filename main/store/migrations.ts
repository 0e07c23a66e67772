// Schema migrations, applied in order; a shipped migration is never edited, only followed by a new one.
export const MIGRATIONS: readonly string[] = [
  /* 1: the event log, the materialised state, conflicts, held-back events and sync cursors */ `
  CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
  ) STRICT;

  -- Every applied event, local or remote. body is the canonical JSON of the sealed event, exactly as it
  -- travels; the other columns are what queries need.
  CREATE TABLE events (
    id          INTEGER PRIMARY KEY,
    event_id    TEXT NOT NULL UNIQUE,
    device_id   TEXT NOT NULL,
    device_seq  INTEGER NOT NULL,
    lamport     INTEGER NOT NULL,
    entity      TEXT NOT NULL,
    op          TEXT NOT NULL CHECK (op IN ('set', 'delete')),
    hash        TEXT NOT NULL,
    ts          INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    body        TEXT NOT NULL,
    UNIQUE (device_id, device_seq)
  ) STRICT;
  CREATE INDEX events_by_entity_writer ON events (entity, device_id, device_seq);

  -- The last applied event of each device: the frontier a local write's clock is made from.
  CREATE TABLE heads (
    device_id TEXT PRIMARY KEY,
    seq       INTEGER NOT NULL,
    hash      TEXT NOT NULL,
    lamport   INTEGER NOT NULL
  ) STRICT;

  -- The materialised state: each entity's winning event (highest in the total order). A delete wins
  -- like any other event and leaves a tombstone. writers ({device: highest sequence}) and conflicts (how
  -- many the entity has) let one read of this row tell where concurrent writes can be, so applying an
  -- event costs three statements: read this row, insert the event, write this row.
  CREATE TABLE state (
    entity    TEXT PRIMARY KEY,
    event_id  TEXT NOT NULL,
    lamport   INTEGER NOT NULL,
    device_id TEXT NOT NULL,
    deleted   INTEGER NOT NULL,
    payload   TEXT,
    writers   TEXT NOT NULL,
    conflicts INTEGER NOT NULL
  ) STRICT;

  -- Every pair of concurrent writes to one entity, event_a before event_b in the total order (so b won).
  -- resolved_by: the first event (in the total order) written after seeing both; derived from the log, so
  -- every device agrees. reviewed_at is this device's own mark. The sides' devices, sequences and highest
  -- Lamport time let a new event be checked against open conflicts without reading either side.
  CREATE TABLE conflicts (
    id               INTEGER PRIMARY KEY,
    entity           TEXT NOT NULL,
    event_a          TEXT NOT NULL,
    event_b          TEXT NOT NULL,
    a_device         TEXT NOT NULL,
    a_seq            INTEGER NOT NULL,
    b_device         TEXT NOT NULL,
    b_seq            INTEGER NOT NULL,
    sides_lamport    INTEGER NOT NULL,
    detected_at      INTEGER NOT NULL,
    reviewed_at      INTEGER,
    resolved_by      TEXT,
    resolved_lamport INTEGER,
    UNIQUE (event_a, event_b)
  ) STRICT;
  CREATE INDEX conflicts_by_entity ON conflicts (entity, sides_lamport);

  -- Remote events whose chain is intact but that no seal covers yet (a pull page ended mid-batch).
  CREATE TABLE staged (
    device_id  TEXT NOT NULL,
    device_seq INTEGER NOT NULL,
    body       TEXT NOT NULL,
    PRIMARY KEY (device_id, device_seq)
  ) STRICT;

  CREATE TABLE cursors (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
  ) STRICT;
  `,
  /* 2: received events that were reported and never applied */ `
  -- An event the device received but could not use: a body it could not decrypt or read, or a chain
  -- that failed verification. Kept to be shown to the person; never applied.
  CREATE TABLE rejected_events (
    relay_seq  INTEGER PRIMARY KEY,
    event_id   TEXT NOT NULL,
    device_id  TEXT NOT NULL,
    device_seq INTEGER NOT NULL,
    code       TEXT NOT NULL,
    message    TEXT NOT NULL,
    seen_at    INTEGER NOT NULL
  ) STRICT;
  `,
  /* 3: what the device knows about its relay, so it can tell when the relay lost, withheld or altered data */ `
  -- For each device, the highest sequence any applied (so authenticated) event says its writer had seen:
  -- max over events of clock.v[device]. A device held to a lower sequence than this is missing events.
  CREATE TABLE claims (
    device_id TEXT PRIMARY KEY,
    seq       INTEGER NOT NULL
  ) STRICT;
  INSERT INTO claims (device_id, seq)
    SELECT v.key, max(v.value) FROM events, json_each(events.body, '$.clock.v') AS v GROUP BY v.key;

  -- A writer whose events, as the relay served them, failed verification: fetched again from relay_seq
  -- on later cycles until they verify. After several failing cycles it is quarantined (shown, no longer
  -- re-fetched) until retry_at.
  CREATE TABLE repairs (
    device_id      TEXT PRIMARY KEY,
    relay_seq      INTEGER NOT NULL,
    device_seq     INTEGER NOT NULL,
    code           TEXT NOT NULL,
    message        TEXT NOT NULL,
    attempts       INTEGER NOT NULL,
    first_at       INTEGER NOT NULL,
    quarantined_at INTEGER,
    retry_at       INTEGER
  ) STRICT;

  -- Each time the relay was found to have lost data and this device refilled it.
  CREATE TABLE recoveries (
    id      INTEGER PRIMARY KEY,
    at      INTEGER NOT NULL,
    reason  TEXT NOT NULL,
    resent  INTEGER NOT NULL,
    epoch   TEXT NOT NULL
  ) STRICT;
  `,
  /* 4: the motebit's membership log as this device verified it (docs/keys.md) */ `
  CREATE TABLE membership (
    seq   INTEGER PRIMARY KEY,
    hash  TEXT NOT NULL,
    entry TEXT NOT NULL
  ) STRICT;
  `,
  /* 5: snapshots (issue 12): each writer's head clock, and how far its events may be absent here */ `
  -- The version vector of each writer's head event: what it had seen, a lower bound on the clocks of the
  -- events it writes later. Kept with the head so it survives pruning (shared/snapshot/retain.ts).
  ALTER TABLE heads ADD COLUMN clock TEXT;
  UPDATE heads SET clock = (SELECT json_extract(e.body, '$.clock.v') FROM events e
                            WHERE e.device_id = heads.device_id AND e.device_seq = heads.seq);

  -- Each writer's events up to seq may be absent from events: covered by the snapshot this device joined
  -- from, or pruned below a snapshot. A copy of one of them arriving again is a duplicate, not a fork.
  CREATE TABLE floors (
    device_id TEXT PRIMARY KEY,
    seq       INTEGER NOT NULL
  ) STRICT;
  `,
  /* 6: each side's Lamport time on its conflict, so a conflict still reads right when its sides are no longer kept */ `
  -- A settled conflict of a deleted entity loses its sides' events when the log is pruned or a device starts
  -- from a snapshot (their values are gone with the entity); which of them won, and why, stays readable.
  ALTER TABLE conflicts ADD COLUMN a_lamport INTEGER;
  ALTER TABLE conflicts ADD COLUMN b_lamport INTEGER;
  UPDATE conflicts SET a_lamport = (SELECT lamport FROM events WHERE events.event_id = conflicts.event_a),
                       b_lamport = (SELECT lamport FROM events WHERE events.event_id = conflicts.event_b);
  `,
];
