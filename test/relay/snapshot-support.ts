// What the snapshot relay tests share: an opaque sealed snapshot as the relay sees it, publishing one, and
// pushing a device's events (test/relay/snapshots.test.ts, test/relay/pg/snapshots-copy.test.ts).
import { createHash, randomBytes } from 'node:crypto';
import { expect } from 'vitest';
import type { RelayClient } from '../../main/sync/relay-client.ts';
import { newSnapshotId } from '../../shared/ids.ts';
import { MIN_SNAPSHOT_CHUNK_BYTES, type SnapshotBegin } from '../../shared/portable/relay-api.ts';
import type { TestDevice } from './support.ts';

export const CHUNK = MIN_SNAPSHOT_CHUNK_BYTES;

/** A sealed snapshot as the relay sees it: opaque bytes, their hash, and what they cover. */
export function blob(size: number, covers: Record<string, number>, chunkBytes = CHUNK): { bytes: Buffer; begin: SnapshotBegin; chunks: Buffer[] } {
  const bytes = randomBytes(size);
  const chunks = Array.from({ length: Math.ceil(size / chunkBytes) }, (_, i) => bytes.subarray(i * chunkBytes, (i + 1) * chunkBytes));
  return { bytes, chunks, begin: { snapshot_id: newSnapshotId(), size, sha256: createHash('sha256').update(bytes).digest('hex'), chunk_bytes: chunkBytes, covers } };
}

/** Uploads and commits a whole snapshot. */
export async function publish(client: RelayClient, snapshot: ReturnType<typeof blob>) {
  await client.beginSnapshot(snapshot.begin);
  for (const [i, chunk] of snapshot.chunks.entries()) await client.putSnapshotChunk(snapshot.begin.snapshot_id, i, chunk);
  return client.commitSnapshot(snapshot.begin.snapshot_id);
}

/** Pushes `count` events of `device` (opaque bodies) through its own client. */
export async function push(client: RelayClient, device: TestDevice, count: number) {
  const events = device.events(count, 200);
  expect((await client.push(events)).stored).toBe(count);
  return events;
}

