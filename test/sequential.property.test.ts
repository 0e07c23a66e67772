// Property: sequential cross-device edits (each writer has seen every earlier write) never record a
// conflict, and every device holds the last write of each entity. (Delivery model: test/support/world.ts.)
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { tempDir } from './support/motebit.ts';
import { ENTITIES, World } from './support/world.ts';
import { assertProperty, propertyPlan } from './support/property.ts';

// At least a few thousand histories in CI across the property files; PROPERTY_RUNS overrides.
const PLAN = propertyPlan('sequential edits', 1000);
const RUNS = PLAN.runs * PLAN.seeds.length;
const LONG = 15 * 60_000; // a property run is long by design: bounded by count, never by time

let dir: ReturnType<typeof tempDir>;
beforeAll(() => void (dir = tempDir('sequential', { fast: true })));
afterAll(() => dir.remove());

let runId = 0;

describe('sequential edits (property)', () => {
  it(`sequential cross-device edits never record a conflict (${RUNS} histories)`, () => {
    const writes = fc.array(fc.record({ d: fc.nat(3), entity: fc.nat(ENTITIES.length - 1), value: fc.option(fc.nat(9), { freq: 5 }) }), { minLength: 1, maxLength: 25, size: 'large' });
    assertProperty(
      fc.property(writes, (history) => {
        const world = new World(dir.path, 4, runId++);
        try {
          for (const write of history) {
            world.settle(); // the writer has seen every earlier write before it writes
            world.write(write.d, ENTITIES[write.entity]!, write.value);
          }
          world.settle();
          for (const device of world.devices) {
            expect(device.store.conflicts({ includeResolved: true })).toEqual([]);
            expect(device.store.stateDigest()).toBe(world.devices[0]!.store.stateDigest());
          }
          // The last write to each entity is what every device holds.
          const last = new Map(history.map((w, i) => [ENTITIES[w.entity]!, world.written[i]!.event_id]));
          expect(new Map(world.devices[0]!.store.state().map((s) => [s.entity, s.eventId]))).toEqual(last);
        } finally {
          world.close();
        }
      }),
      PLAN,
    );
  }, LONG);

});
