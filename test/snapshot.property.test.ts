// Property (issue 12): random histories with snapshots, new devices joining from them, devices pruning their
// logs below them, a relay compacting what every device has, and devices that stay offline for a long time
// and then write, all interleaved: every device ends with the same state, digests and conflicts as the
// brute-force reference over every event ever written, without snapshots (test/support/world.ts; the
// reference imports nothing from the code it checks).
import { afterAll, beforeAll, describe, it } from 'vitest';
import fc from 'fast-check';
import { newSnapshotId } from '../shared/ids.ts';
import { coversOf, sealSnapshot, verifySnapshot, type SnapshotContent } from '../shared/snapshot/content.ts';
import { identitySnapshotSigner } from '../shared/snapshot/signer.ts';
import type { WriterBound } from '../shared/snapshot/retain.ts';
import { openDevice, tempDir, type TestDevice } from './support/motebit.ts';
import { World, expectMatchesReference, runWorldAction, worldActionArbs, type WorldAction } from './support/world.ts';
import { assertProperty, propertyPlan } from './support/property.ts';

const PLAN = propertyPlan('snapshots', 600);
const RUNS = PLAN.runs * PLAN.seeds.length;
const LONG = 15 * 60_000;
const MAX_JOINERS = 3;

let dir: ReturnType<typeof tempDir>;
beforeAll(() => void (dir = tempDir('snapshot-property', { fast: true })));
afterAll(() => dir.remove());

type Action = WorldAction | { t: 'snapshot'; d: number; acks: number } | { t: 'prune'; d: number; acks: number } | { t: 'join' } | { t: 'compact' };

const actionArb = (devices: number): fc.Arbitrary<Action> => {
  // Joined devices are addressed by index too: an index beyond the devices there are wraps around.
  const d = fc.nat(devices + MAX_JOINERS - 1);
  const world: fc.WeightedArbitrary<Action>[] = worldActionArbs(d);
  return fc.oneof(
    ...world,
    // acks: a bit mask of which devices' acknowledgements the snapshot's writer has (the others: none known).
    { weight: 1, arbitrary: fc.record({ t: fc.constant('snapshot' as const), d, acks: fc.nat(255) }) },
    { weight: 1, arbitrary: fc.record({ t: fc.constant('prune' as const), d, acks: fc.nat(255) }) },
    { weight: 1, arbitrary: fc.record({ t: fc.constant('join' as const) }) },
    { weight: 1, arbitrary: fc.record({ t: fc.constant('compact' as const) }) },
  );
};

const scenarioArb = fc
  .integer({ min: 2, max: 4 })
  .chain((devices) => fc.record({ devices: fc.constant(devices), actions: fc.array(actionArb(devices), { minLength: 4, maxLength: 80, size: 'large' }) }));

let runId = 0;

/** What each device would acknowledge now (its applied heads): the ones in `mask` have said so. */
function acknowledgements(world: World, mask: number): WriterBound[] {
  return world.devices.flatMap((device, i) => ((mask >> i) & 1 ? [{ deviceId: device.deviceId, seen: device.store.frontier().heads }] : []));
}

class SnapshotWorld {
  readonly world: World;
  readonly snapshots: SnapshotContent[] = [];
  joiners = 0;
  constructor(devices: number) {
    this.world = new World(dir.path, devices, runId++);
  }

  device(index: number): number {
    return index % this.world.devices.length;
  }

  snapshot(d: number, acks: number): void {
    const device = this.world.devices[d]!;
    // Every device of the world may still write: those not acknowledged count as knowing nothing.
    const writers = this.world.devices.map((other) => ({ deviceId: other.deviceId, seen: {} }));
    const content = device.store.snapshots.content({ snapshotId: newSnapshotId(), createdAt: Date.now(), writers: [...writers, ...acknowledgements(this.world, acks)], relay: null });
    this.snapshots.push(this.#sealAndVerify(device, content).content);
  }

  #sealAndVerify(device: TestDevice, content: SnapshotContent) {
    const sealed = JSON.parse(JSON.stringify(sealSnapshot(content, device.credentials))) as unknown;
    return verifySnapshot(sealed, this.world.motebit.motebitId, identitySnapshotSigner(this.world.motebit.motebitId, this.world.motebit.identity.publicKey));
  }

  prune(d: number, acks: number): void {
    const latest = this.snapshots.at(-1);
    if (!latest) return;
    const writers = this.world.devices.map((other) => ({ deviceId: other.deviceId, seen: {} }));
    this.world.devices[d]!.store.snapshots.prune(coversOf(latest), [...writers, ...acknowledgements(this.world, acks)]);
  }

  join(): void {
    const latest = this.snapshots.at(-1);
    if (!latest || this.joiners >= MAX_JOINERS) return;
    const joiner = openDevice(this.world.motebit, dir.path, `r${runId}-join${this.joiners++}`);
    const writer = this.world.devices.find((device) => device.deviceId === latest.device_id)!;
    joiner.store.snapshots.adopt(this.#sealAndVerify(writer, latest), Date.now());
    this.world.devices.push(joiner);
    this.world.cursors.push(0);
  }

  /** The relay drops the log's events the latest snapshot covers once every device holds them. */
  compact(): void {
    const latest = this.snapshots.at(-1);
    if (!latest) return;
    const covers = coversOf(latest);
    const everyoneHas = this.world.devices.every((device) => {
      const heads = device.store.frontier().heads;
      return Object.entries(covers).every(([writer, seq]) => (heads[writer] ?? 0) >= seq);
    });
    if (!everyoneHas) return;
    this.world.log.forEach((event, i) => {
      if (event.device_seq <= (covers[event.device_id] ?? 0)) this.world.compacted.add(i);
    });
  }
}

describe('snapshots (property)', () => {
  it(`joins, pruning, compaction and late writers end where the brute-force reference without snapshots does (${RUNS} histories)`, () => {
    assertProperty(
      fc.property(scenarioArb, ({ devices, actions }) => {
        const sw = new SnapshotWorld(devices);
        const world = sw.world;
        try {
          for (const action of actions) {
            if (action.t === 'write' || action.t === 'push' || action.t === 'pull') runWorldAction(world, action, (d) => sw.device(d));
            else if (action.t === 'snapshot') sw.snapshot(sw.device(action.d), action.acks);
            else if (action.t === 'prune') sw.prune(sw.device(action.d), action.acks);
            else if (action.t === 'join') sw.join();
            else sw.compact();
          }
          world.settle();
          expectMatchesReference(world);
        } finally {
          world.close();
        }
      }),
      PLAN,
    );
  }, LONG);
});
