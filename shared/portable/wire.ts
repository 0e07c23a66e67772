// What the relay sees of an event: an envelope and an opaque body. The body is the base64url of the
// canonical JSON of a SealedEvent, or of its AES-256-GCM ciphertext when key_id is set; the relay never
// decodes it. Entity names, operations, clocks and payloads are all inside the body.
import { z } from 'zod';
import { DeviceIdSchema, EventIdSchema } from './ids.ts';

export const MAX_BODY_BYTES = 96 * 1024; // a 64 KiB payload plus the event's own fields, encrypted

export const WireEventSchema = z.strictObject({
  event_id: EventIdSchema,
  device_id: DeviceIdSchema,
  device_seq: z.int().min(1).max(Number.MAX_SAFE_INTEGER),
  /** The encryption key that sealed the body, or null for a plaintext body. */
  key_id: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/).nullable(),
  body: z
    .string()
    .regex(/^[A-Za-z0-9_-]*$/, 'the body is base64url')
    .max(Math.ceil((MAX_BODY_BYTES * 4) / 3), `the body is at most ${MAX_BODY_BYTES} bytes`),
});
export type WireEvent = z.infer<typeof WireEventSchema>;

/** An event as the relay stores and serves it: the envelope plus the relay's per-motebit sequence. */
export const StoredWireEventSchema = WireEventSchema.extend({ seq: z.int().min(1) });
export type StoredWireEvent = z.infer<typeof StoredWireEventSchema>;
