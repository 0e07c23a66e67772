// The state digest (docs/protocol.md §5): SHA-256 over "entity NUL winning event id LF" for every entity,
// tombstones included, in entity order: the order of the names' UTF-8 bytes, which is how SQLite's BINARY
// collation sorts them (not JavaScript's code-unit order, which differs beyond the BMP). The store computes
// it from its state table; a snapshot's receiver from the events it holds. One definition.
import { createHash } from 'node:crypto';

export function stateDigestOf(rows: Iterable<{ entity: string; eventId: string }>): string {
  const keyed = [...rows].map((row) => ({ row, key: Buffer.from(row.entity, 'utf8') }));
  keyed.sort((a, b) => Buffer.compare(a.key, b.key));
  return digestSorted(keyed.map(({ row }) => row));
}

/** For rows already in entity order (a database cursor): streamed, nothing held. */
export function digestSorted(rows: Iterable<{ entity: string; eventId: string }>): string {
  const hash = createHash('sha256');
  for (const row of rows) hash.update(`${row.entity}\u0000${row.eventId}\n`, 'utf8');
  return hash.digest('hex');
}
