// A device's snapshots on its relay (issue 12, docs/protocol.md §10): make one and upload it in chunks
// (resuming what the relay already holds), start a new device from the latest one (downloading in chunks,
// checking it end to end before keeping any of it), and acknowledge what this device has applied so the
// relay may compact what every device holds. Progress counts bytes with a total.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { verifyAck } from '../../shared/ack.ts';
import type { DeviceCredentials } from '../../shared/event.ts';
import { SnapshotIdSchema } from '../../shared/portable/ids.ts';
import { newSnapshotId } from '../../shared/ids.ts';
import { z } from 'zod';
import type { Ack, LatestSnapshotResponse, SnapshotInfo } from '../../shared/portable/relay-api.ts';
import { decodeSnapshotBlob, encodeSnapshotBlob } from '../../shared/snapshot/blob.ts';
import { coveredEvents, coversOf, SnapshotError, sealSnapshot, snapshotText, verifySnapshot, type SnapshotSigner } from '../../shared/snapshot/content.ts';
import type { WriterBound } from '../../shared/snapshot/retain.ts';
import type { SyncProgress } from '../../shared/portable/status.ts';
import type { EventStore } from '../store/event-store.ts';
import { PULL_CURSOR } from '../store/relay-ledger.ts';
import type { RelayClient } from './relay-client.ts';
import type { BodyKeyring } from './encrypted-transport.ts';
import { TransportError } from './transport.ts';

/** Raw bytes per chunk: 1 MiB fits the relay's 4 MiB request cap as base64 JSON. */
export const SNAPSHOT_CHUNK_BYTES = 1_048_576;
/** By default a device makes a snapshot once the motebit holds this many events beyond the latest one… */
export const DEFAULT_SNAPSHOT_EVERY = 10_000;
/** …or this many MB of them (their stored bodies), whichever comes first. */
export const DEFAULT_SNAPSHOT_EVERY_MB = 32;
const ACKED = 'acked_total';

interface Upload {
  readonly snapshotId: string;
  readonly sha256: string;
  readonly chunkBytes: number;
  readonly covers: Readonly<Record<string, number>>;
  readonly kept: number;
  readonly blob: Buffer;
}

const PendingUploadSchema = z.strictObject({
  snapshotId: SnapshotIdSchema,
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  chunkBytes: z.int().min(1),
  covers: z.record(z.string(), z.int().min(1)),
  kept: z.int().min(0),
});

export type SnapshotRelay = Pick<RelayClient, 'beginSnapshot' | 'putSnapshotChunk' | 'commitSnapshot' | 'latestSnapshot' | 'snapshotChunk' | 'postAck'>;

export interface SnapshotSyncOptions {
  readonly store: EventStore;
  readonly relay: SnapshotRelay;
  readonly credentials: DeviceCredentials;
  /** This device's content keys; null when the motebit does not encrypt. */
  readonly keys: () => BodyKeyring | null;
  /** Who may seal a snapshot this device accepts, as it knows now. */
  readonly signer: () => SnapshotSigner;
  /** The devices that may still write (members now), with the public key that signs each one's acknowledgements. */
  readonly writers: () => Promise<readonly { deviceId: string; key: Uint8Array }[]>;
  /** Where a download keeps the chunks it has, so an interrupted one resumes (a folder of this device's home). */
  readonly downloadDir?: string;
  /** Where an upload keeps the sealed blob until the relay completes it, so an interrupted one resumes. */
  readonly uploadDir?: string;
  readonly now?: () => number;
  readonly chunkBytes?: number;
  /** Make a snapshot once this many events lie beyond the latest one (0: not by count). */
  readonly every?: number;
  /** …or once their bodies take this many MB (0: not by size). Both 0: only when asked. */
  readonly everyMb?: number;
}

export interface MadeSnapshot {
  readonly snapshotId: string;
  readonly bytes: number;
  /** Events the snapshot keeps, and events it covers in all. */
  readonly kept: number;
  readonly covered: number;
  readonly covers: Readonly<Record<string, number>>;
}

export interface JoinedSnapshot {
  readonly snapshotId: string;
  readonly bytes: number;
  readonly covered: number;
  /** Where in the relay's log its events end (a hint for the first pull; the audit checks what it skips). */
  readonly relay: { epoch: string; seq: number } | null;
}

type Progress = (progress: SyncProgress) => void;

export class SnapshotSync {
  readonly #o: SnapshotSyncOptions;

  constructor(options: SnapshotSyncOptions) {
    this.#o = options;
  }

  #now(): number {
    return (this.#o.now ?? Date.now)();
  }

  /**
   * The acknowledgements the relay serves that verify under the key of a device that may still write, as
   * bounds on what those devices write from now on; every such device counts, acknowledged or not.
   */
  async #bounds(acks: readonly Ack[]): Promise<WriterBound[]> {
    const motebitId = this.#o.store.identity.motebitId;
    const writers = await this.#o.writers();
    const bounds: WriterBound[] = writers.map((writer) => ({ deviceId: writer.deviceId, seen: {} }));
    for (const ack of acks) {
      const writer = writers.find((w) => w.deviceId === ack.device_id);
      if (!writer || !verifyAck(writer.key, { motebitId, deviceId: ack.device_id, covers: ack.covers, at: ack.at }, ack.sig)) continue;
      bounds.push({ deviceId: ack.device_id, seen: ack.covers });
    }
    return bounds;
  }

  /** Whether this device holds `every` events, or `everyMb` MB of them, beyond what `covers` (the relay's latest snapshot) covers. */
  #dueBeyond(covers: Readonly<Record<string, number>>): boolean {
    const every = this.#o.every ?? DEFAULT_SNAPSHOT_EVERY;
    const everyMb = this.#o.everyMb ?? DEFAULT_SNAPSHOT_EVERY_MB;
    const beyond = coveredEvents(this.#o.store.frontier().heads) - coveredEvents(covers);
    if (every > 0 && beyond >= every) return true;
    return everyMb > 0 && beyond > 0 && this.#o.store.snapshots.bytesBeyond(covers) >= everyMb * 1_000_000;
  }

  /** Whether a snapshot is due, against the relay's latest one. */
  due(latest: LatestSnapshotResponse): boolean {
    return this.#dueBeyond(latest.snapshot?.covers ?? {});
  }

  /**
   * Makes a snapshot of what this device holds, seals it, and uploads it in chunks. An upload that was
   * interrupted (kept in `uploadDir`) is finished first, sending only the chunks the relay lacks, and is the
   * snapshot returned.
   */
  make(progress: Progress = () => {}, latest?: LatestSnapshotResponse): Promise<MadeSnapshot> {
    // One at a time: a snapshot asked for while another is being made (a person's click during a policy
    // snapshot) is that one.
    this.#making ??= this.#make(progress, latest).finally(() => (this.#making = null));
    return this.#making;
  }

  #making: Promise<MadeSnapshot> | null = null;

  async #make(progress: Progress, latest: LatestSnapshotResponse | undefined): Promise<MadeSnapshot> {
    const pending = this.#pendingUpload();
    if (pending) {
      try {
        return await this.#upload(pending, progress);
      } catch (error) {
        // The relay will not take that upload any more (it forgot it, or holds other bytes under its id): make a new one.
        if (!(error instanceof TransportError && ['snapshot_conflict', 'snapshot_mismatch', 'not_found'].includes(error.code ?? ''))) throw error;
        if (this.#o.uploadDir) rmSync(this.#o.uploadDir, { recursive: true, force: true });
      }
    }
    const { store, relay, credentials } = this.#o;
    const motebitId = store.identity.motebitId;
    const current = latest ?? (await relay.latestSnapshot());
    const writers = await this.#bounds(current.acks);
    const snapshotId = newSnapshotId();
    const content = store.snapshots.content({ snapshotId, createdAt: this.#now(), writers, relay: this.#relayHint() });
    const covers = coversOf(content);
    if (Object.keys(covers).length === 0) throw new SnapshotError('empty', 'this device holds no events yet: there is nothing to make a snapshot of');
    const keyring = this.#o.keys();
    const blob = encodeSnapshotBlob(snapshotText(sealSnapshot(content, credentials)), { motebitId, snapshotId }, keyring ? keyring.current : null);
    const upload: Upload = { snapshotId, sha256: createHash('sha256').update(blob).digest('hex'), chunkBytes: this.#o.chunkBytes ?? SNAPSHOT_CHUNK_BYTES, covers, kept: content.events.length, blob };
    this.#keepUpload(upload);
    return this.#upload(upload, progress);
  }

  /** Sends what the relay lacks of an upload and completes it; then forgets the kept copy. */
  async #upload(upload: Upload, progress: Progress): Promise<MadeSnapshot> {
    const { relay } = this.#o;
    const { snapshotId, blob, chunkBytes } = upload;
    const begun = await relay.beginSnapshot({ snapshot_id: snapshotId, size: blob.byteLength, sha256: upload.sha256, chunk_bytes: chunkBytes, covers: upload.covers });
    if (!begun.complete) {
      const have = new Set(begun.received);
      const chunks = Math.ceil(blob.byteLength / chunkBytes);
      let done = [...have].reduce((sum, i) => sum + Math.min(chunkBytes, blob.byteLength - i * chunkBytes), 0);
      progress({ phase: 'snapshot_upload', done, total: blob.byteLength });
      for (let i = 0; i < chunks; i++) {
        if (have.has(i)) continue;
        const chunk = blob.subarray(i * chunkBytes, Math.min(blob.byteLength, (i + 1) * chunkBytes));
        await relay.putSnapshotChunk(snapshotId, i, chunk);
        done += chunk.byteLength;
        progress({ phase: 'snapshot_upload', done, total: blob.byteLength });
      }
      await relay.commitSnapshot(snapshotId);
    }
    if (this.#o.uploadDir) rmSync(this.#o.uploadDir, { recursive: true, force: true });
    return { snapshotId, bytes: blob.byteLength, kept: upload.kept, covered: coveredEvents(upload.covers), covers: upload.covers };
  }

  /** Keeps an upload until it completes, so an interrupted one resumes (0600 files in this device's home). */
  #keepUpload(upload: Upload): void {
    const dir = this.#o.uploadDir;
    if (!dir) return;
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    writeFileSync(join(dir, 'blob'), upload.blob, { mode: 0o600 });
    const { blob: _blob, ...about } = upload;
    writeFileSync(join(dir, 'upload.json'), JSON.stringify(about), { mode: 0o600 });
  }

  /** An upload that did not complete, when its files are whole; anything else kept is dropped. */
  #pendingUpload(): Upload | null {
    const dir = this.#o.uploadDir;
    if (!dir || !existsSync(join(dir, 'upload.json'))) return null;
    try {
      const about = PendingUploadSchema.parse(JSON.parse(readFileSync(join(dir, 'upload.json'), 'utf8')));
      const blob = readFileSync(join(dir, 'blob'));
      if (createHash('sha256').update(blob).digest('hex') !== about.sha256) throw new Error('the kept upload is damaged');
      return { ...about, blob };
    } catch {
      rmSync(dir, { recursive: true, force: true });
      return null;
    }
  }

  /** Where this device's applied events end in the relay's log, when nothing below that is held back or refused. */
  #relayHint(): { epoch: string; seq: number } | null {
    const { store } = this.#o;
    const epoch = store.ledger.epoch();
    if (epoch === null || store.heldCount() > 0 || store.rejectedCount() > 0 || store.ledger.repairs().length > 0) return null;
    return { epoch, seq: store.getCursor(PULL_CURSOR) };
  }

  /**
   * Starts this device from the relay's latest snapshot, when it holds nothing yet and the relay has one:
   * downloads it (resuming chunks already here), checks the bytes, opens it, verifies it (seal, events,
   * conflicts, digest) and adopts it. Null when there is none. Throws SnapshotError when it does not verify:
   * nothing of it is kept.
   */
  async join(progress: Progress = () => {}): Promise<JoinedSnapshot | null> {
    const { store, relay } = this.#o;
    if (!store.snapshots.isEmpty()) return null;
    const { snapshot } = await relay.latestSnapshot();
    if (!snapshot) return null;
    const blob = await this.#download(snapshot, progress);
    // Kept chunks serve a resumed download only; once the whole blob is here they go, whether it verifies or not.
    if (this.#o.downloadDir) rmSync(join(this.#o.downloadDir, snapshot.snapshot_id), { recursive: true, force: true });
    const motebitId = store.identity.motebitId;
    const keyring = this.#o.keys();
    const text = decodeSnapshotBlob(blob, { motebitId, snapshotId: snapshot.snapshot_id }, { encrypted: keyring !== null, keyById: (id) => keyring?.byId(id) });
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new SnapshotError('malformed', 'the snapshot is not JSON');
    }
    const verified = verifySnapshot(parsed, motebitId, this.#o.signer(), snapshot.snapshot_id);
    store.snapshots.adopt(verified, this.#now());
    return { snapshotId: snapshot.snapshot_id, bytes: blob.byteLength, covered: coveredEvents(coversOf(verified.content)), relay: verified.content.relay };
  }

  async #download(info: SnapshotInfo, progress: Progress): Promise<Buffer> {
    const dir = this.#o.downloadDir ? join(this.#o.downloadDir, info.snapshot_id) : null;
    if (dir) mkdirSync(dir, { recursive: true, mode: 0o700 });
    const parts: Buffer[] = [];
    let done = 0;
    progress({ phase: 'snapshot_download', done, total: info.size });
    for (let i = 0; i < info.chunks; i++) {
      const expected = Math.min(info.chunk_bytes, info.size - i * info.chunk_bytes);
      const file = dir ? join(dir, String(i)) : null;
      const kept: Buffer | null = file && existsSync(file) ? readFileSync(file) : null;
      let chunk: Buffer;
      if (kept && kept.byteLength === expected) chunk = kept;
      else {
        chunk = await this.#o.relay.snapshotChunk(info.snapshot_id, i);
        if (chunk.byteLength !== expected) throw new SnapshotError('unreadable', `the relay served part ${i + 1} of the snapshot with ${chunk.byteLength} bytes instead of ${expected}`);
        if (file) writeFileSync(file, chunk, { mode: 0o600 });
      }
      parts.push(chunk);
      done += chunk.byteLength;
      progress({ phase: 'snapshot_download', done, total: info.size });
    }
    const blob = Buffer.concat(parts);
    if (createHash('sha256').update(blob).digest('hex') !== info.sha256) {
      if (dir) rmSync(dir, { recursive: true, force: true }); // a kept chunk may be the bad one: fetch all again next time
      throw new SnapshotError('unreadable', 'the snapshot the relay served is not the one that was uploaded (its bytes differ)');
    }
    return blob;
  }

  /**
   * Drops this device's own history below `covers` (a snapshot on the relay) where it no longer matters,
   * by the same rule and the same acknowledgements a snapshot uses, and shrinks the database file.
   */
  async prune(covers: Readonly<Record<string, number>>): Promise<{ dropped: number; bytesBefore: number; bytesAfter: number }> {
    const { store, relay } = this.#o;
    const bounds = await this.#bounds((await relay.latestSnapshot()).acks);
    const bytesBefore = store.databaseBytes();
    const dropped = store.snapshots.prune(covers, bounds);
    store.snapshots.vacuum();
    return { dropped, bytesBefore, bytesAfter: store.databaseBytes() };
  }

  /** Tells the relay, signed, what this device has applied, when that changed since it last did. */
  async acknowledge(): Promise<boolean> {
    const { store, relay } = this.#o;
    const heads = store.frontier().heads;
    const sum = coveredEvents(heads);
    if (sum === 0 || sum === store.getCursor(ACKED)) return false;
    await relay.postAck(heads, this.#now());
    store.setCursor(ACKED, sum);
    return true;
  }

  /**
   * After a successful cycle: acknowledge, and make a snapshot when one is due. The relay's latest is asked
   * for only when this device holds enough events beyond the latest it last heard of to make one due.
   */
  async afterCycle(progress: Progress = () => {}): Promise<MadeSnapshot | null> {
    await this.acknowledge();
    if ((this.#o.every ?? DEFAULT_SNAPSHOT_EVERY) <= 0 && (this.#o.everyMb ?? DEFAULT_SNAPSHOT_EVERY_MB) <= 0) return null;
    if (this.#latestCovers !== null && !this.#dueBeyond(this.#latestCovers)) return null;
    const latest = await this.#o.relay.latestSnapshot();
    this.#latestCovers = latest.snapshot?.covers ?? {};
    if (!this.due(latest)) return null;
    const made = await this.make(progress, latest);
    this.#latestCovers = made.covers;
    return made;
  }

  /** What the relay's latest snapshot covered when this device last asked (null: not asked yet). */
  #latestCovers: Readonly<Record<string, number>> | null = null;
}
