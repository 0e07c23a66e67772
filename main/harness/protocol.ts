// The harness's socket protocol: the IPC contract carried as JSON messages. The window sends
// {id, channel, input}; the harness answers {id, result} (an IpcResult from the same dispatcher Electron
// uses) and pushes {event, payload} for status.changed and app.changed. Every incoming message is checked
// here; a malformed one is answered with an error (id null when it had none), never a crash.
import { z } from 'zod';
import type { EventName, IpcResult } from '../../shared/portable/ipc-contract.ts';

export const MAX_MESSAGE_BYTES = 1 << 20;

export const RequestSchema = z.strictObject({
  id: z.int().min(0).max(Number.MAX_SAFE_INTEGER),
  channel: z.string().min(1).max(128),
  input: z.unknown().optional(),
});
export type Request = z.infer<typeof RequestSchema>;

export type Response = { id: number | null; result: IpcResult<unknown> };
export type Push = { event: EventName; payload: unknown };

/** Parses one socket message; a bad one yields the error answer to send back. */
export function parseRequest(data: string): { ok: true; request: Request } | { ok: false; response: Response } {
  let json: unknown;
  try {
    json = JSON.parse(data);
  } catch {
    return { ok: false, response: malformed(null, 'the message is not JSON') };
  }
  const parsed = RequestSchema.safeParse(json);
  if (parsed.success) return { ok: true, request: parsed.data };
  const id = RequestSchema.shape.id.safeParse(typeof json === 'object' && json !== null ? (json as { id?: unknown }).id : undefined).data ?? null;
  const issue = parsed.error.issues[0];
  const where = issue && issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
  return { ok: false, response: malformed(id, `a request is {id, channel, input}: ${where}${issue?.message ?? 'invalid'}`) };
}

export function malformed(id: number | null, message: string): Response {
  return { id, result: { ok: false, error: { code: 'invalid_argument', message } } };
}
