// Which events a snapshot, or a device pruning its log, must keep (issue 12: conflicts stay exact across
// the boundary). The one rule, in one place.
//
// A conflict is a pair of concurrent writes to one entity (docs/protocol.md §5). An event `a` can still
// take part in a conflict found later only if some device may yet write an event that had not seen `a`.
// Every device's future events carry a clock at least what that device had seen when it last said so: the
// clock of its newest event we hold, or a signed acknowledgement of what it had applied (when nothing it
// wrote before that is missing here). So `a` is *stable* — no future event can be concurrent with it —
// when every device that may still write had seen it by then; a device's own later events follow `a` in
// its chain. A stable event that is not its entity's winner, nor a side or the settler of a recorded
// conflict, is needed for nothing: not for the state (it lost), not for conflicts (none can involve it),
// not for settling (the sides of every conflict are kept). Everything else is kept.
//
// A device that may still write but of which nothing is known (never wrote, never acknowledged) makes
// nothing stable: it could hold writes made before it saw anything.

/** What is known of a device that may still write: every event it writes from now on has seen `seen`. */
export interface WriterBound {
  readonly deviceId: string;
  /** Per writer, the highest sequence this device had seen; {} when nothing is known. */
  readonly seen: Readonly<Record<string, number>>;
}

/**
 * For each writer, the sequence through which its events are stable: every other device that may still
 * write had seen them. `writers` lists every device that has written (a key for each); `bounds` every
 * device that may still write. A writer with no other possible writer is stable through its head.
 */
export function stableThrough(writers: Iterable<string>, bounds: readonly WriterBound[], heads: Readonly<Record<string, number>>): Map<string, number> {
  const through = new Map<string, number>();
  for (const writer of writers) {
    let low = heads[writer] ?? 0;
    for (const bound of bounds) {
      if (bound.deviceId === writer) continue; // its own later events follow all of its earlier ones
      low = Math.min(low, bound.seen[writer] ?? 0);
    }
    through.set(writer, low);
  }
  return through;
}

/** Pointwise maximum of lower bounds: both hold, so the higher one does. */
export function joinBounds(a: Readonly<Record<string, number>>, b: Readonly<Record<string, number>>): Record<string, number> {
  const out: Record<string, number> = { ...a };
  for (const [device, seq] of Object.entries(b)) out[device] = Math.max(out[device] ?? 0, seq);
  return out;
}
