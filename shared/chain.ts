// Verifying what another device wrote before anything of it is applied. Each device's events form a hash
// chain (prev = hash of the previous event) and a seal signs a chain head, so a relay can neither forge,
// alter, reorder nor drop an event in the middle of a device's history without the receiver noticing.
import { z } from 'zod';
import { sha256Hex } from './crypto.ts';
import { canonicalJson } from './encoding.ts';
import { GENESIS_HASH, SealedEventSchema, type Seal, type SealedEvent } from './portable/event.ts';
import { checkSeal, unsealed as withoutSeal, type SealProblem } from './event.ts';

export type ChainErrorCode =
  | 'malformed'
  | 'wrong_motebit'
  | 'missing_event'
  | 'broken_chain'
  | 'fork'
  | 'clock_regressed'
  | 'not_member'
  | SealProblem;

/** A batch that cannot be trusted. Nothing of it may be applied. */
export class ChainError extends Error {
  readonly code: ChainErrorCode;
  readonly deviceId: string | undefined;
  readonly deviceSeq: number | undefined;
  constructor(code: ChainErrorCode, message: string, at?: { deviceId?: string; deviceSeq?: number }) {
    super(message);
    this.name = 'ChainError';
    this.code = code;
    this.deviceId = at?.deviceId;
    this.deviceSeq = at?.deviceSeq;
  }
}

export interface HashedEvent {
  readonly event: SealedEvent;
  readonly hash: string;
  /** The canonical JSON the hash was computed over (the event without its seal). */
  readonly canonical: string;
}

export interface ChainHead {
  readonly seq: number;
  readonly hash: string;
  readonly lamport: number;
}

/**
 * Who may write a motebit's events, and how their seals are checked: the identity key's certificates
 * (protocol 2, identityAuthority) or the membership log this device verified
 * (shared/membership/event-authority.ts).
 */
export interface EventAuthority {
  /** Null when the event's writer may have written it at the position it names; else why not, in words. Asked for every event (`hash`: its hash). */
  admit(event: SealedEvent, hash: string): string | null;
  /** Null when the event's seal holds; else what is wrong. */
  seal(event: SealedEvent, hash: string): SealProblem | null;
}

/** Protocol 2: every device is certified by the motebit's identity key; events name no membership position. */
export function identityAuthority(identityPublicKey: Uint8Array): EventAuthority {
  return {
    admit: (event) => (event.m === undefined ? null : 'it names a membership log position, but this motebit has no membership log'),
    seal: (event, hash) => checkSeal(event, hash, identityPublicKey),
  };
}

export interface ChainContext {
  readonly motebitId: string;
  readonly authority: EventAuthority;
  /** The last applied event of a device, if any. */
  head(deviceId: string): ChainHead | undefined;
  /**
   * The hash of an applied event, for recognising duplicates; null for an event below a snapshot that is
   * not kept here (a copy of it arriving again is skipped as a duplicate: the snapshot's seal vouched for it).
   */
  appliedHash(deviceId: string, deviceSeq: number): string | undefined | null;
}

export interface ChainPlan {
  /** Events that extend each device's head and are covered by a valid seal: apply them, in this order. */
  readonly verified: HashedEvent[];
  /** Events that extend a chain but that no seal covers yet: keep them until one does. */
  readonly unsealed: HashedEvent[];
  /** Events that were already applied. */
  readonly duplicates: number;
}

function describe(event: { device_id: string; device_seq: number }): string {
  return `event ${event.device_seq} of device ${event.device_id}`;
}

/** Validates untrusted input into events; the first invalid one fails the whole batch. */
export function parseEvents(input: readonly unknown[]): SealedEvent[] {
  return input.map((raw, index) => {
    const parsed = SealedEventSchema.safeParse(raw);
    if (!parsed.success) {
      throw new ChainError('malformed', `event #${index} of the batch is malformed: ${z.prettifyError(parsed.error)}`);
    }
    return parsed.data;
  });
}

/**
 * Decide what of a set of candidate events (a pulled batch plus any held back earlier) can be applied.
 * Delivery order does not matter; a gap, a broken link, a fork or a bad seal fails the whole set.
 *
 * `texts` may give, for unsealed events, the exact JSON text they arrived as. The sender hashed its
 * canonical form and sent exactly that, so hashing the text skips re-encoding; a text that is not the
 * canonical form only makes its hash wrong, which fails the chain: it can never make a forgery pass.
 */
export function planChains(candidates: readonly SealedEvent[], ctx: ChainContext, texts?: ReadonlyMap<SealedEvent, string>): ChainPlan {
  const byDevice = new Map<string, Map<number, HashedEvent>>();
  const otherSeals: { copy: HashedEvent; of: HashedEvent }[] = [];
  for (const event of candidates) {
    if (event.motebit_id !== ctx.motebitId) {
      throw new ChainError('wrong_motebit', `${describe(event)} belongs to motebit ${event.motebit_id}, not ${ctx.motebitId}`, atEvent(event));
    }
    const canonical = (!event.seal && texts?.get(event)) || canonicalJson(withoutSeal(event));
    const hash = sha256Hex(canonical);
    let chain = byDevice.get(event.device_id);
    if (!chain) byDevice.set(event.device_id, (chain = new Map()));
    const twin = chain.get(event.device_seq);
    if (twin && twin.hash !== hash) {
      throw new ChainError('fork', `${describe(event)} arrived in two different versions`, atEvent(event));
    }
    // Keep a sealed copy over an unsealed one of the same event: the seal is what lets it be applied.
    if (!twin || (!twin.event.seal && event.seal)) chain.set(event.device_seq, { event, hash, canonical });
    // A second sealed copy whose seal differs from the kept one is checked with the run: every seal present must hold.
    else if (event.seal && !sameSeal(twin.event.seal, event.seal)) otherSeals.push({ copy: { event, hash, canonical }, of: twin });
  }

  const verified: HashedEvent[] = [];
  const unsealed: HashedEvent[] = [];
  let duplicates = 0;
  for (const [deviceId, chain] of byDevice) {
    let last: ChainHead = ctx.head(deviceId) ?? { seq: 0, hash: GENESIS_HASH, lamport: 0 };
    const run: HashedEvent[] = [];
    for (const item of [...chain.values()].sort((a, b) => a.event.device_seq - b.event.device_seq)) {
      const { event, hash } = item;
      // Sorted and one per seq: once the run has begun, every later event is above `last`.
      if (event.device_seq <= last.seq) {
        const applied = ctx.appliedHash(deviceId, event.device_seq);
        if (applied !== null && applied !== hash) {
          throw new ChainError('fork', `${describe(event)} differs from the one already applied`, atEvent(event));
        }
        duplicates++;
        continue;
      }
      if (event.device_seq !== last.seq + 1) {
        throw new ChainError('missing_event', `event ${last.seq + 1} of device ${deviceId} is missing before ${event.device_seq}`, atEvent(event));
      }
      if (event.prev !== last.hash) {
        throw new ChainError('broken_chain', `${describe(event)} does not follow event ${last.seq}: altered, reordered or forged`, atEvent(event));
      }
      if (event.clock.l <= last.lamport) {
        throw new ChainError('clock_regressed', `${describe(event)} has a Lamport time that does not increase`, atEvent(event));
      }
      const refusal = ctx.authority.admit(event, hash);
      if (refusal !== null) throw new ChainError('not_member', `${describe(event)} is refused: ${refusal}`, atEvent(event));
      run.push(item);
      last = { seq: event.device_seq, hash, lamport: event.clock.l };
    }
    // Every seal present must hold (a forged one is an attack even where a later seal covers it); the
    // last seal decides how far the run is authenticated.
    let covered = 0;
    run.forEach((item, index) => {
      if (!item.event.seal) return;
      const problem = ctx.authority.seal(item.event, item.hash);
      if (problem) throw new ChainError(problem, `${describe(item.event)} has an invalid seal (${problem})`, atEvent(item.event));
      covered = index + 1;
    });
    verified.push(...run.slice(0, covered));
    unsealed.push(...run.slice(covered));
  }
  // The other seals of events taken above (a copy of an applied event, a duplicate, is not taken).
  if (otherSeals.length > 0) {
    const taken = new Set(verified);
    for (const { copy, of } of otherSeals) {
      if (!taken.has(of)) continue;
      const problem = ctx.authority.seal(copy.event, copy.hash);
      if (problem) throw new ChainError(problem, `${describe(copy.event)} arrived twice, once with an invalid seal (${problem})`, atEvent(copy.event));
    }
  }
  return { verified, unsealed, duplicates };
}

function sameSeal(a: Seal | undefined, b: Seal): boolean {
  return a !== undefined && a.key === b.key && a.sig === b.sig && a.cert === b.cert;
}

function atEvent(event: { device_id: string; device_seq: number }): { deviceId: string; deviceSeq: number } {
  return { deviceId: event.device_id, deviceSeq: event.device_seq };
}
