// The engine's status and progress: one source that the CLI, the tray menu and the settings window all
// render. Plain JSON values only, so it crosses Electron IPC and the harness socket unchanged.
import { z } from 'zod';

export const SyncStateSchema = z.enum(['idle', 'syncing', 'offline', 'error', 'paused']);
export type SyncState = z.infer<typeof SyncStateSchema>;

export const TransportKindSchema = z.enum(['websocket', 'http']);

/** What went wrong, classified so the exit code and the next step follow from it. */
export const SyncErrorKindSchema = z.enum(['network', 'auth', 'relay', 'integrity', 'local']);
export type SyncErrorKind = z.infer<typeof SyncErrorKindSchema>;

export const SyncErrorSchema = z.strictObject({
  kind: SyncErrorKindSchema,
  message: z.string(),
  /** What the person can do about it. */
  nextStep: z.string(),
  at: z.int(),
});
export type SyncError = z.infer<typeof SyncErrorSchema>;

export const SyncProgressSchema = z.strictObject({
  phase: z.enum(['connect', 'push', 'pull']),
  done: z.int().min(0),
  /** null when the total is not known yet. */
  total: z.int().min(0).nullable(),
});
export type SyncProgress = z.infer<typeof SyncProgressSchema>;

export const SyncStatusSchema = z.strictObject({
  state: SyncStateSchema,
  transport: TransportKindSchema.nullable(),
  /** Unix ms of the last cycle that completed, or null. */
  lastSuccessAt: z.int().nullable(),
  /** Unix ms when the next timed cycle starts, or null when none is scheduled. */
  nextCycleAt: z.int().nullable(),
  /** Local events the relay has not acknowledged. */
  pendingOut: z.int().min(0),
  /** Conflicts not settled by a later write. */
  openConflicts: z.int().min(0),
  /** Received events that were reported and not applied (bad key, tampered, failed verification). */
  rejectedEvents: z.int().min(0),
  lastError: SyncErrorSchema.nullable(),
  progress: SyncProgressSchema.nullable(),
});
export type SyncStatus = z.infer<typeof SyncStatusSchema>;
