// How every property test picks its seeds (issue 15): a fixed seed, so each run checks the same cases, and
// a random one, so runs keep exploring; each seed gets half of the runs. PROPERTY_SEED replays one seed
// (all runs on it), PROPERTY_RUNS sets the count, PROPERTY_RUNS_SCALE multiplies each property's own. The
// seeds are printed with the file's name, and a failure's message carries fast-check's seed and path as well.
import fc from 'fast-check';

export const FIXED_SEED = 20_261_130;

export interface PropertyPlan {
  /** Runs per seed. */
  readonly runs: number;
  readonly seeds: readonly number[];
}

export function propertyPlan(name: string, defaultRuns: number): PropertyPlan {
  // PROPERTY_RUNS_SCALE shrinks every property's own count in proportion (npm run mutate uses it).
  const total = Number(process.env.PROPERTY_RUNS ?? Math.max(1, Math.ceil(defaultRuns * Number(process.env.PROPERTY_RUNS_SCALE ?? 1))));
  const given = process.env.PROPERTY_SEED;
  const seeds = given !== undefined && given !== '' ? [Number(given)] : [FIXED_SEED, Math.floor(Math.random() * 2 ** 31)];
  console.log(`${name}: property seeds ${seeds.join(' and ')}, ${total} runs (replay one with PROPERTY_SEED=<seed>)`);
  return { runs: Math.max(1, Math.ceil(total / seeds.length)), seeds };
}

export function assertProperty<T>(property: fc.IProperty<T>, plan: PropertyPlan): void {
  for (const seed of plan.seeds) fc.assert(property, { numRuns: plan.runs, seed });
}

export async function assertAsyncProperty<T>(property: fc.IAsyncProperty<T>, plan: PropertyPlan): Promise<void> {
  for (const seed of plan.seeds) await fc.assert(property, { numRuns: plan.runs, seed });
}
