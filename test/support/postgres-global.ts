// Vitest global setup for the PostgreSQL project: one throwaway cluster for the whole run, its admin URL
// handed to the tests (or null, with the reason, when this machine has no PostgreSQL binaries).
import type { TestProject } from 'vitest/node';
import { findPostgresBin, startPostgres } from './postgres.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    postgres: { adminUrl: string; port: number } | { missing: string };
  }
}

export default async function setup(project: TestProject): Promise<() => void> {
  const bin = findPostgresBin();
  if (!bin) {
    project.provide('postgres', { missing: 'no PostgreSQL binaries on this machine (apt-get install postgresql)' });
    return () => undefined;
  }
  const cluster = await startPostgres(bin);
  project.provide('postgres', { adminUrl: cluster.adminUrl, port: cluster.port });
  return () => cluster.stop();
}
