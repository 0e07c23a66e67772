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
  /** resend: events the relay lost, sent to it again (this device's own and other devices' it holds). */
  phase: z.enum(['connect', 'resend', 'push', 'pull']),
  done: z.int().min(0),
  /** null when the total is not known yet. */
  total: z.int().min(0).nullable(),
});
export type SyncProgress = z.infer<typeof SyncProgressSchema>;

export const RecoverySchema = z.strictObject({
  at: z.int(),
  /**
   * relay_replaced: a new, empty log; relay_rolled_back: an older copy; relay_missing_events: events it had
   * lost; relay_skipped_events: events it held but had not sent (the whole log was fetched again).
   */
  reason: z.enum(['relay_replaced', 'relay_rolled_back', 'relay_missing_events', 'relay_skipped_events']),
  /** Events this device sent to the relay again. */
  resent: z.int().min(0),
  /** What happened, in words, for people. */
  message: z.string(),
});
export type Recovery = z.infer<typeof RecoverySchema>;

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
  /** Received events set aside after failing verification over several cycles (shown; retried later). */
  quarantinedEvents: z.int().min(0),
  /** The last time the relay was found to have lost data and this device sent it again. */
  lastRecovery: RecoverySchema.nullable(),
  lastError: SyncErrorSchema.nullable(),
  progress: SyncProgressSchema.nullable(),
});
export type SyncStatus = z.infer<typeof SyncStatusSchema>;
