// Setup file of the PostgreSQL project: without a cluster every test is reported as skipped, with the
// reason, never as passed.
import { beforeEach, inject } from 'vitest';

beforeEach((context) => {
  const postgres = inject('postgres');
  if ('missing' in postgres) context.skip(postgres.missing);
});
