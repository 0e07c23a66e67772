// A snapshot (issue 12, docs/protocol.md §10): what a new device needs to be useful without the motebit's
// whole history, sealed by the device that made it. It holds the events that can still matter — each
// entity's winner, every side and settler of a conflict, and every event some device might still write
// concurrently with (shared/snapshot/retain.ts) — the conflicts, the chain head of every writer (the
// version vector it covers), what the events' clocks claim, and the state digest every device agrees on.
//
// A receiver checks all of it before it keeps any of it (verifySnapshot): the seal (by a current writer of
// the motebit), that every event belongs to a writer's chain at or below its head, that each conflict's
// sides are among the events, and that the state the events fold to hashes to the sealed digest.
import { z } from 'zod';
import { sha256Hex, verifySignature, type SigningKey } from '../crypto.ts';
import { canonicalBytes, canonicalJson, fromBase64Url, toBase64Url } from '../encoding.ts';
import { EntitySchema, HashSchema, SealSchema, SealedEventSchema, type Seal, type SealedEvent } from '../portable/event.ts';
import { hashEvent, type SealProblem } from '../event.ts';
import { DeviceIdSchema, EventIdSchema, LogEpochSchema, MotebitIdSchema, SnapshotIdSchema } from '../portable/ids.ts';
import { compareEvents } from '../clock.ts';
import { stateDigestOf } from './digest.ts';

export const SNAPSHOT_FORMAT = 'motebit/snapshot/v1';

const Seq = z.int().min(1).max(Number.MAX_SAFE_INTEGER);
const VectorSchema = z.record(DeviceIdSchema, Seq);

/** A writer's chain head: the last of its events the snapshot covers, with that event's clock. */
export const SnapshotHeadSchema = z.strictObject({
  device_id: DeviceIdSchema,
  seq: Seq,
  hash: HashSchema,
  lamport: Seq,
  /** The head event's version vector: what its writer had seen, a lower bound on its later events' clocks. */
  v: VectorSchema,
});
export type SnapshotHead = z.infer<typeof SnapshotHeadSchema>;

/** One conflict as every device records it (docs/protocol.md §5): event_a sorts first, b won the pair. */
export const SnapshotConflictSchema = z.strictObject({
  entity: EntitySchema,
  event_a: EventIdSchema,
  event_b: EventIdSchema,
  a_device: DeviceIdSchema,
  a_seq: Seq,
  b_device: DeviceIdSchema,
  b_seq: Seq,
  sides_lamport: Seq,
  a_lamport: Seq,
  b_lamport: Seq,
  resolved_by: EventIdSchema.nullable(),
  resolved_lamport: Seq.nullable(),
  detected_at: z.int().min(0),
});
export type SnapshotConflict = z.infer<typeof SnapshotConflictSchema>;

export const SnapshotContentSchema = z.strictObject({
  t: z.literal(SNAPSHOT_FORMAT),
  motebit_id: MotebitIdSchema,
  /** The device that made and sealed it. */
  device_id: DeviceIdSchema,
  snapshot_id: SnapshotIdSchema,
  created_at: z.int().min(0),
  /** Protocol 3: the membership log position its writer held (absent in protocol 2). */
  m: z.int().min(0).optional(),
  /** Every writer's head, by device id: the version vector the snapshot covers. */
  heads: z.array(SnapshotHeadSchema).max(100_000),
  /** For each device, the highest sequence any covered event's clock says its writer had seen. */
  claims: VectorSchema,
  /** Where in the relay's log the covered events end, for a joining device's first pull (a hint: checked by the audit). */
  relay: z.strictObject({ epoch: LogEpochSchema, seq: z.int().min(0) }).nullable(),
  /** The events kept, each the canonical JSON of the sealed event as its writer sealed it. */
  events: z.array(z.string()),
  conflicts: z.array(SnapshotConflictSchema),
  /** stateDigest of the state the covered events fold to (docs/protocol.md §5). */
  state_digest: HashSchema,
});
export type SnapshotContent = z.infer<typeof SnapshotContentSchema>;

export const SealedSnapshotSchema = z.strictObject({ content: SnapshotContentSchema, seal: SealSchema });
export type SealedSnapshot = z.infer<typeof SealedSnapshotSchema>;

/** How many events a version vector covers: each writer's events 1..seq. */
export function coveredEvents(covers: Readonly<Record<string, number>>): number {
  return Object.values(covers).reduce((sum, seq) => sum + seq, 0);
}

/** The version vector a snapshot covers: each writer's head sequence. */
export function coversOf(content: Pick<SnapshotContent, 'heads'>): Record<string, number> {
  return Object.fromEntries(content.heads.map((head) => [head.device_id, head.seq]));
}

function sealMessage(content: SnapshotContent): Buffer {
  return canonicalBytes({ t: 'motebit/snapshot-seal/v1', motebit_id: content.motebit_id, device_id: content.device_id, snapshot_id: content.snapshot_id, content: sha256Hex(canonicalBytes(content)) });
}

/** The writer's signature over the content's hash (with its certificate in protocol 2). */
export function sealSnapshot(content: SnapshotContent, device: { deviceKey: SigningKey; cert: string | null }): SealedSnapshot {
  const key = toBase64Url(device.deviceKey.publicKey);
  const sig = toBase64Url(device.deviceKey.sign(sealMessage(content)));
  return { content, seal: device.cert === null ? { key, sig } : { key, cert: device.cert, sig } };
}

/**
 * Who may seal a snapshot this device accepts: a current writer of the motebit (protocol 2: a device the
 * identity key certified; protocol 3: a device that is a member now). Null when `seal` is that writer's key
 * (and certificate); else what is wrong.
 */
export type SnapshotSigner = (deviceId: string, seal: Seal) => SealProblem | 'not_member' | null;

export type SnapshotFault = 'empty' | 'malformed' | 'unreadable' | 'wrong_motebit' | 'not_member' | SealProblem | 'inconsistent' | 'digest';

/** A snapshot this device will not use, and why in words. Nothing of it is kept. */
export class SnapshotError extends Error {
  override name = 'SnapshotError';
  readonly fault: SnapshotFault;
  constructor(fault: SnapshotFault, message: string) {
    super(message);
    this.fault = fault;
  }
}

export interface VerifiedSnapshot {
  readonly content: SnapshotContent;
  /** The kept events, parsed, with their hashes. */
  readonly events: readonly { event: SealedEvent; hash: string; text: string }[];
  /** Each entity's winner among them: the state the snapshot holds. */
  readonly winners: ReadonlyMap<string, SealedEvent>;
}

/**
 * Checks a snapshot as it arrived (untrusted JSON) for `motebitId`, sealed by a writer `signer` accepts.
 * Throws SnapshotError naming the first thing wrong.
 */
export function verifySnapshot(input: unknown, motebitId: string, signer: SnapshotSigner, expectedId?: string): VerifiedSnapshot {
  const parsed = SealedSnapshotSchema.safeParse(input);
  if (!parsed.success) throw new SnapshotError('malformed', `the snapshot is malformed: ${z.prettifyError(parsed.error)}`);
  const { content, seal } = parsed.data;
  if (content.motebit_id !== motebitId) throw new SnapshotError('wrong_motebit', `the snapshot belongs to motebit ${content.motebit_id}, not ${motebitId}`);
  if (expectedId !== undefined && content.snapshot_id !== expectedId) throw new SnapshotError('inconsistent', `the relay served snapshot ${content.snapshot_id} as ${expectedId}`);
  const problem = signer(content.device_id, seal);
  if (problem === 'not_member') throw new SnapshotError('not_member', `the snapshot was sealed by ${content.device_id}, which is not a device of this motebit now`);
  if (problem) throw new SnapshotError(problem, `the snapshot's seal does not hold (${problem})`);
  if (!verifySignature(fromBase64Url(seal.key), sealMessage(content), fromBase64Url(seal.sig))) throw new SnapshotError('bad_signature', "the snapshot's seal does not hold (bad_signature): it was altered after it was sealed");

  const heads = new Map<string, SnapshotHead>();
  for (const head of content.heads) {
    if (heads.has(head.device_id)) throw new SnapshotError('inconsistent', `the snapshot names two heads for ${head.device_id}`);
    heads.set(head.device_id, head);
  }
  const events: { event: SealedEvent; hash: string; text: string }[] = [];
  const byId = new Map<string, SealedEvent>();
  for (const text of content.events) {
    let event: SealedEvent;
    try {
      const result = SealedEventSchema.safeParse(JSON.parse(text));
      if (!result.success) throw new SnapshotError('malformed', `an event of the snapshot is malformed: ${z.prettifyError(result.error)}`);
      event = result.data;
    } catch (error) {
      if (error instanceof SnapshotError) throw error;
      throw new SnapshotError('malformed', 'an event of the snapshot is not JSON');
    }
    if (event.motebit_id !== motebitId) throw new SnapshotError('wrong_motebit', `event ${event.event_id} of the snapshot belongs to another motebit`);
    const head = heads.get(event.device_id);
    if (!head || event.device_seq > head.seq) throw new SnapshotError('inconsistent', `event ${event.device_seq} of ${event.device_id} lies beyond what the snapshot covers`);
    // An unsealed event's text is its canonical form, which is what its hash is over; a text that is not
    // canonical only makes the hash wrong, and a wrong head hash is refused just below.
    const hash = event.seal ? hashEvent(event) : sha256Hex(text);
    if (event.device_seq === head.seq && (hash !== head.hash || event.clock.l !== head.lamport)) throw new SnapshotError('inconsistent', `the head of ${event.device_id} is not the event the snapshot holds at that number`);
    if (byId.has(event.event_id)) throw new SnapshotError('inconsistent', `the snapshot holds event ${event.event_id} twice`);
    byId.set(event.event_id, event);
    events.push({ event, hash, text });
  }
  // The state the kept events fold to (each entity's highest event) must be the state that was sealed.
  const winners = new Map<string, SealedEvent>();
  for (const { event } of events) {
    const current = winners.get(event.entity);
    if (!current || compareEvents(event, current) > 0) winners.set(event.entity, event);
  }
  // A conflict's sides and settler are among the events, as the conflict names them; only a settled
  // conflict may have lost them (its entity was deleted when its maker pruned or made it: retain.ts), and
  // then its settler with them: the settler saw both sides, so whatever had seen it had seen them.
  for (const c of content.conflicts) {
    const gone = c.resolved_by !== null;
    const a = byId.get(c.event_a);
    const b = byId.get(c.event_b);
    const matches = (event: SealedEvent | undefined, device: string, seq: number, lamport: number) =>
      event ? event.entity === c.entity && event.device_id === device && event.device_seq === seq && event.clock.l === lamport : gone;
    if (!matches(a, c.a_device, c.a_seq, c.a_lamport) || !matches(b, c.b_device, c.b_seq, c.b_lamport) || (a && b && compareEvents(a, b) >= 0)) {
      throw new SnapshotError('inconsistent', `conflict ${c.event_a} / ${c.event_b} of ${c.entity} does not match the snapshot's events`);
    }
    if (c.resolved_by !== null && a && b && !byId.has(c.resolved_by)) throw new SnapshotError('inconsistent', `the event that settled a conflict of ${c.entity} is not in the snapshot`);
  }
  const digest = stateDigestOf([...winners].map(([entity, event]) => ({ entity, eventId: event.event_id })));
  if (digest !== content.state_digest) throw new SnapshotError('digest', 'the state in the snapshot does not hash to its sealed digest');
  return { content, events, winners };
}

/** The canonical JSON a sealed snapshot is stored and sent as (before compression and encryption). */
export function snapshotText(sealed: SealedSnapshot): string {
  return canonicalJson(sealed);
}
