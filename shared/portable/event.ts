// The event, the unit of the log: what one is (its schema and limits, docs/protocol.md). Portable: any
// runtime may import it (the window, a worker); its hash and seal need Node's crypto (shared/event.ts).
import { z } from 'zod';
import { base64UrlPattern } from './base64url.ts';
import { DeviceIdSchema, EventIdSchema, MotebitIdSchema } from './ids.ts';
import { MAX_PAYLOAD_DEPTH, jsonValueDepth } from './json-bounds.ts';

export const PROTOCOL_VERSION = 1;
export const GENESIS_HASH = '0'.repeat(64);
export const MAX_ENTITY_LENGTH = 256;
export const MAX_PAYLOAD_BYTES = 64 * 1024;

export const HashSchema = z.string().regex(/^[0-9a-f]{64}$/, 'a hash is 64 lowercase hex characters');

// Entities are names like memory/42: printable, no control characters, bounded.
export const EntitySchema = z
  .string()
  .min(1, 'an entity name is not empty')
  .max(MAX_ENTITY_LENGTH, `an entity name is at most ${MAX_ENTITY_LENGTH} characters`)
  .regex(/^[^\p{Cc}\p{Cs}]+$/u, 'an entity name has no control characters');

export const JsonValueSchema = z.json();
export type JsonValue = z.infer<typeof JsonValueSchema>;

/**
 * Whether `value` is a tree z.json() accepts and would return unchanged but for being a copy, checked in
 * one walk without zod's machinery: strings, finite numbers, booleans, null, arrays (Array.prototype, no
 * holes) and objects (Object.prototype, no symbol keys, no own "__proto__" key, which z.json() drops) of
 * them, at most MAX_PAYLOAD_DEPTH deep. Everything JSON.parse produces is such a tree (the events of a
 * sync arrive that way), so for them this is the whole check; anything else is left to z.json().
 * (Differences it leaves, invisible to canonical JSON and JSON.stringify: a non-enumerable property or a
 * non-index array property is kept rather than dropped, and a getter is read again later.)
 */
export function isPlainJsonTree(value: unknown): boolean {
  const stack: unknown[] = [value];
  const depths: number[] = [0];
  while (stack.length > 0) {
    const item = stack.pop();
    const depth = depths.pop()!;
    switch (typeof item) {
      case 'string':
      case 'boolean':
        continue;
      case 'number':
        if (!Number.isFinite(item)) return false;
        continue;
      case 'object': {
        if (item === null) continue;
        if (depth >= MAX_PAYLOAD_DEPTH) return false;
        if (Array.isArray(item)) {
          if (Object.getPrototypeOf(item) !== Array.prototype) return false;
          for (let i = 0; i < item.length; i++) {
            if (!(i in item)) return false;
            stack.push(item[i]);
            depths.push(depth + 1);
          }
          continue;
        }
        if (Object.getPrototypeOf(item) !== Object.prototype || Object.hasOwn(item, '__proto__') || Object.getOwnPropertySymbols(item).length > 0) return false;
        for (const key of Object.keys(item)) {
          stack.push((item as Record<string, unknown>)[key]);
          depths.push(depth + 1);
        }
        continue;
      }
      default:
        return false;
    }
  }
  return true;
}

/**
 * An event's payload: JsonValueSchema's answer, issues included, without its re-walk of a value that is
 * already a plain JSON tree (a received event's payload comes straight out of JSON.parse).
 */
const PayloadSchema = z.unknown().transform((value, ctx): JsonValue => {
  if (isPlainJsonTree(value)) return value as JsonValue;
  const parsed = JsonValueSchema.safeParse(value);
  if (parsed.success) return parsed.data;
  for (const issue of parsed.error.issues) ctx.addIssue(issue as Parameters<typeof ctx.addIssue>[0]);
  return z.NEVER;
});

const SeqSchema = z.int().min(1).max(Number.MAX_SAFE_INTEGER);

export const VersionClockSchema = z.strictObject({
  l: SeqSchema,
  v: z.record(DeviceIdSchema, SeqSchema),
});

export const OperationSchema = z.enum(['set', 'delete']);
export type Operation = z.infer<typeof OperationSchema>;

/** Proof that a device's chain up to this event is its own: see sealEvent. */
export const SealSchema = z.strictObject({
  /** The device's Ed25519 public key; the device id is derived from it. */
  key: z.string().regex(base64UrlPattern(32), 'a public key is 32 bytes of base64url'),
  /**
   * Protocol 2 only: the motebit identity's signature over (motebit, device, key), saying the device belongs
   * to the motebit. A motebit with a membership log (docs/keys.md) has no identity key: its log says who
   * the members are, so its seals carry no cert.
   */
  cert: z.string().regex(base64UrlPattern(64), 'a signature is 64 bytes of base64url').optional(),
  /** The device's signature over (motebit, device, sequence, hash of this event). */
  sig: z.string().regex(base64UrlPattern(64), 'a signature is 64 bytes of base64url'),
});
export type Seal = z.infer<typeof SealSchema>;

const eventFields = {
  v: z.literal(PROTOCOL_VERSION),
  motebit_id: MotebitIdSchema,
  device_id: DeviceIdSchema,
  event_id: EventIdSchema,
  device_seq: SeqSchema,
  /** Hash of the same device's previous event (GENESIS_HASH for the first). */
  prev: HashSchema,
  clock: VersionClockSchema,
  entity: EntitySchema,
  op: OperationSchema,
  /** Opaque to sync: any JSON for set, null for delete. */
  payload: PayloadSchema,
  /** Wall-clock milliseconds when written: shown to people, never used for ordering. */
  ts: z.int().min(0),
  /**
   * The membership log position its writer knew (the seq of the last entry it had verified): present in
   * every event of a motebit with a membership log, absent in protocol 2. Hashed with the event, so the
   * writer's seal commits to it (docs/keys.md, "Events and the log").
   */
  m: z.int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
};

function checkEventInvariants(event: { device_id: string; device_seq: number; clock: { v: Record<string, number> }; op: string; payload: unknown }, ctx: z.RefinementCtx): void {
  if (event.clock.v[event.device_id] !== event.device_seq) {
    ctx.addIssue({ code: 'custom', path: ['clock', 'v'], message: 'the clock must name the writing device at its own sequence' });
  }
  if (event.op === 'delete' && event.payload !== null) {
    ctx.addIssue({ code: 'custom', path: ['payload'], message: 'a delete carries a null payload' });
  }
  if (jsonValueDepth(event.payload, MAX_PAYLOAD_DEPTH) > MAX_PAYLOAD_DEPTH) {
    ctx.addIssue({ code: 'custom', path: ['payload'], message: `a payload is nested at most ${MAX_PAYLOAD_DEPTH} deep` });
  }
}

export const EventSchema = z.strictObject(eventFields).superRefine(checkEventInvariants);
export type Event = z.infer<typeof EventSchema>;

export const SealedEventSchema = z.strictObject({ ...eventFields, seal: SealSchema.optional() }).superRefine(checkEventInvariants);
export type SealedEvent = z.infer<typeof SealedEventSchema>;
