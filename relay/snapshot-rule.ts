// The one rule for snapshot uploads, shared by every RelayStore (as relay/append-rule.ts is for batches):
// what makes a begin the same upload again, how long each chunk must be, what a chunk write does, and the
// hash a commit checks. Stores only look things up and write what these say.
import { createHash } from 'node:crypto';
import { canonicalJson } from '../shared/encoding.ts';
import { snapshotChunks } from '../shared/portable/relay-api.ts';
import type { ChunkPutOutcome, SnapshotBeginInput, SnapshotRecord } from './store.ts';

/** How many complete snapshots each motebit keeps (the newest by commit order). */
export const SNAPSHOTS_KEPT = 2;
/** Unfinished uploads not touched for this long are forgotten. */
export const SNAPSHOT_UPLOAD_TTL_MS = 24 * 60 * 60 * 1000;
/** Chunks hashed per read at commit (at most 16 MiB in memory at once). */
const HASH_PAGE_CHUNKS = 16;

/** The stored form of a version vector: canonical JSON, so equal vectors are equal text. */
export const coversText = (covers: Readonly<Record<string, number>>): string => canonicalJson(covers);

/** A new upload's record. */
export function newUpload(input: SnapshotBeginInput): SnapshotRecord {
  return {
    snapshotId: input.snapshotId,
    deviceId: input.deviceId,
    size: input.size,
    sha256: input.sha256,
    chunkBytes: input.chunkBytes,
    chunks: snapshotChunks(input.size, input.chunkBytes),
    covers: input.covers,
    touchedAt: input.now,
    completedAt: null,
  };
}

/** Whether a begin names the stored upload exactly (then it resumes it); null when it may, else why not. */
export function beginConflict(stored: SnapshotRecord, input: SnapshotBeginInput): 'other_device' | 'other_fields' | null {
  if (stored.deviceId !== input.deviceId) return 'other_device';
  const same = stored.size === input.size && stored.sha256 === input.sha256 && stored.chunkBytes === input.chunkBytes && coversText(stored.covers) === coversText(input.covers);
  return same ? null : 'other_fields';
}

/** The raw length chunk `index` must have: chunk_bytes, except the last, which holds the remainder. */
export function chunkLength(record: Pick<SnapshotRecord, 'size' | 'chunkBytes' | 'chunks'>, index: number): number {
  return index === record.chunks - 1 ? record.size - record.chunkBytes * (record.chunks - 1) : record.chunkBytes;
}

/** Why a chunk cannot be written to `record` by `deviceId` (null: it can; then compare with a stored one). */
export function chunkRefusal(record: SnapshotRecord | null, deviceId: string, index: number, length: number): Exclude<ChunkPutOutcome, { kind: 'stored' } | { kind: 'conflict' }> | null {
  if (!record) return { kind: 'not_found' };
  if (record.deviceId !== deviceId) return { kind: 'other_device' };
  if (index >= record.chunks) return { kind: 'out_of_range', chunks: record.chunks };
  const expected = chunkLength(record, index);
  if (length !== expected) return { kind: 'wrong_length', expected };
  return null;
}

/**
 * The hex SHA-256 of chunks 0..chunks-1 in order, read a page at a time (`readPage(from, count)` answers
 * the chunks held in that range, in order); null when one is missing.
 */
export async function hashChunks(chunks: number, readPage: (from: number, count: number) => Promise<{ idx: number; data: Buffer }[]>): Promise<string | null> {
  const hash = createHash('sha256');
  for (let from = 0; from < chunks; from += HASH_PAGE_CHUNKS) {
    const count = Math.min(HASH_PAGE_CHUNKS, chunks - from);
    const page = await readPage(from, count);
    if (page.length !== count || page.some((chunk, i) => chunk.idx !== from + i)) return null;
    for (const chunk of page) hash.update(chunk.data);
  }
  return hash.digest('hex');
}
