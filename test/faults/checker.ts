// The end-of-run checks, on the device stores read (read-only) after the heal, once no device process runs:
//   LOST           an acknowledged write (its put/import exited 0) missing from at least one device
//   DUPLICATED     a write's marker in more than one event of one device, or an event id the relay holds twice
//   NON-CONVERGED  the devices differ in their event hashes, their state (entity -> winning event) or their
//                  conflicts (pair + resolved_by); counted once per run
import type { DeviceView } from './store-reader.ts';

export interface CheckInput {
  /** Device name -> its view. */
  readonly views: ReadonlyMap<string, DeviceView>;
  /** Marker -> the device whose put/import of it exited 0. */
  readonly acknowledged: ReadonlyMap<string, string>;
  /** Event ids the relay's database holds more than once. */
  readonly relayDuplicates: readonly string[];
}

export interface CheckResult {
  readonly lost: number;
  readonly duplicated: number;
  readonly nonConverged: number;
  readonly details: string[];
}

const MAX_EXAMPLES = 3;

export function check(input: CheckInput): CheckResult {
  const details: string[] = [];
  const names = [...input.views.keys()];

  // LOST
  const markersOn = new Map<string, Map<string, number>>(); // device -> marker -> count
  for (const [name, view] of input.views) {
    const counts = new Map<string, number>();
    for (const event of view.events) if (event.marker !== null) counts.set(event.marker, (counts.get(event.marker) ?? 0) + 1);
    markersOn.set(name, counts);
  }
  let lost = 0;
  const lostExamples: string[] = [];
  for (const [marker, writer] of input.acknowledged) {
    const missing = names.filter((name) => !markersOn.get(name)!.has(marker));
    if (missing.length === 0) continue;
    lost++;
    if (lostExamples.length < MAX_EXAMPLES) lostExamples.push(`${marker} (written by ${writer}) missing on ${missing.join(', ')}`);
  }
  if (lost > 0) details.push(`LOST ${lost} acknowledged writes, e.g. ${lostExamples.join('; ')}`);

  // DUPLICATED
  let duplicated = 0;
  for (const [name, counts] of markersOn) {
    const twice = [...counts].filter(([, count]) => count > 1);
    duplicated += twice.length;
    if (twice.length > 0) details.push(`DUPLICATED on ${name}: ${twice.length} markers in more than one event, e.g. ${twice.slice(0, MAX_EXAMPLES).map(([m, c]) => `${m} x${c}`).join(', ')}`);
    const ids = new Set<string>();
    for (const event of input.views.get(name)!.events) {
      if (ids.has(event.eventId)) {
        duplicated++;
        details.push(`DUPLICATED on ${name}: event id ${event.eventId} twice`);
      }
      ids.add(event.eventId);
    }
  }
  if (input.relayDuplicates.length > 0) {
    duplicated += input.relayDuplicates.length;
    details.push(`DUPLICATED on the relay: ${input.relayDuplicates.length} event ids held twice, e.g. ${input.relayDuplicates[0]}`);
  }

  // NON-CONVERGED: every device against the first one
  const differences: string[] = [];
  const [first, ...rest] = names;
  if (first !== undefined) {
    const base = input.views.get(first)!;
    const baseHashes = new Set(base.events.map((e) => e.hash));
    for (const name of rest) {
      const view = input.views.get(name)!;
      const hashes = new Set(view.events.map((e) => e.hash));
      const onlyBase = [...baseHashes].filter((h) => !hashes.has(h)).length;
      const onlyThis = [...hashes].filter((h) => !baseHashes.has(h)).length;
      if (onlyBase > 0 || onlyThis > 0) differences.push(`events: ${first} has ${onlyBase} that ${name} lacks, ${name} has ${onlyThis} that ${first} lacks`);
      const stateDiff = [...new Set([...base.state.keys(), ...view.state.keys()])].filter((entity) => base.state.get(entity) !== view.state.get(entity));
      if (stateDiff.length > 0) differences.push(`state: ${stateDiff.length} entities differ between ${first} and ${name} (e.g. ${stateDiff[0]})`);
      const conflictDiff = [...base.conflicts].filter((c) => !view.conflicts.has(c)).length + [...view.conflicts].filter((c) => !base.conflicts.has(c)).length;
      if (conflictDiff > 0) differences.push(`conflicts: ${conflictDiff} differ between ${first} (${base.conflicts.size}) and ${name} (${view.conflicts.size})`);
    }
  }
  const nonConverged = differences.length > 0 ? 1 : 0;
  if (nonConverged) details.push(`NON-CONVERGED: ${differences.slice(0, 4).join('; ')}`);
  const rejected = [...input.views].filter(([, view]) => view.rejected > 0).map(([name, view]) => `${name}: ${view.rejected}`);
  if (rejected.length > 0 && details.length > 0) details.push(`events the devices received and rejected: ${rejected.join(', ')}`);
  return { lost, duplicated, nonConverged, details };
}
