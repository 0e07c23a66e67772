// Property: for random histories of several devices writing, syncing partially, and receiving events
// duplicated, cut at any point and in any order, every device ends with the same state, digests and
// conflicts; the state is the fold of the log by version clock; the conflicts are exactly the concurrent
// pairs, each settled by the first write made after seeing both. (Delivery model: test/support/world.ts.)
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { openDevice, tempDir } from './support/motebit.ts';
import { World, conflictKeys, expectMatchesReference, runWorldAction, shuffled, worldActionArbs, type WorldAction } from './support/world.ts';
import { assertProperty, propertyPlan } from './support/property.ts';

// At least a few thousand histories in CI across the property files; PROPERTY_RUNS overrides.
const PLAN = propertyPlan('convergence', 2000);
const RUNS = PLAN.runs * PLAN.seeds.length;
const LONG = 15 * 60_000; // a property run is long by design: bounded by count, never by time

let dir: ReturnType<typeof tempDir>;
beforeAll(() => void (dir = tempDir('property', { fast: true })));
afterAll(() => dir.remove());

const actionArb = (devices: number): fc.Arbitrary<WorldAction> => fc.oneof(...worldActionArbs(fc.nat(devices - 1)));

const scenarioArb = fc
  .integer({ min: 2, max: 4 })
  .chain((devices) => fc.record({ devices: fc.constant(devices), actions: fc.array(actionArb(devices), { minLength: 4, maxLength: 60, size: 'large' }), lateSeed: fc.integer() }));

let runId = 0;

describe('convergence (property)', () => {
  it(`every device converges to the same state, digests and conflicts (${RUNS} histories)`, () => {
    assertProperty(
      fc.property(scenarioArb, ({ devices, actions, lateSeed }) => {
        const world = new World(dir.path, devices, runId++);
        try {
          for (const action of actions) runWorldAction(world, action);
          world.settle();
          // A device that joins late receives the whole log as one batch in a random order, so its devices'
          // chains are applied in any order (a settling write before a side of the conflict it settles).
          const late = openDevice(world.motebit, dir.path, `r${runId}-late`);
          world.devices.push(late);
          late.store.applyRemote(shuffled(world.log, lateSeed));

          expectMatchesReference(world);
          // Nothing pruned here: every device holds every event.
          for (const device of world.devices) expect(device.store.eventCount()).toBe(world.written.length);
        } finally {
          world.close();
        }
      }),
      PLAN,
    );
  }, LONG);

  it('truly concurrent writes produce exactly one conflict per pair, recorded identically everywhere', () => {
    const world = new World(dir.path, 3, runId++);
    try {
      world.write(0, 'memory/1', 0);
      world.write(1, 'memory/1', 1);
      world.write(2, 'memory/1', 2);
      world.settle();
      world.settle(); // a second full sync changes nothing
      for (const device of world.devices) {
        expect(device.store.conflicts()).toHaveLength(3); // three devices, three pairs
        expect(conflictKeys(device)).toEqual(conflictKeys(world.devices[0]!));
      }
    } finally {
      world.close();
    }
  });
});
