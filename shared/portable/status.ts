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
  /** The technical text (the relay's codes and own message), shown only behind "Details". */
  details: z.string().optional(),
  at: z.int(),
});
export type SyncError = z.infer<typeof SyncErrorSchema>;

export const SyncProgressSchema = z.strictObject({
  /**
   * resend: events the relay lost, sent to it again (this device's own and other devices' it holds).
   * snapshot_download / snapshot_upload: a snapshot (issue 12) coming in or going out, counted in bytes.
   */
  phase: z.enum(['connect', 'resend', 'push', 'pull', 'snapshot_download', 'snapshot_upload']),
  done: z.int().min(0),
  /**
   * null when the total is not known yet. Each phase counts one direction only: push and resend count
   * what this device sends, pull what it receives from other devices (never its own events echoed back).
   */
  total: z.int().min(0).nullable(),
  /** About how long the phase still takes, from its pace so far; null when not known yet. */
  remainingMs: z.int().min(0).nullable().optional(),
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

export const ArrivalSchema = z.strictObject({
  /** Changes received in the burst (arrivals less than ARRIVAL_BURST_MS apart add up). */
  count: z.int().min(1),
  /** Unix ms of the latest arrival. */
  at: z.int(),
});
export type Arrival = z.infer<typeof ArrivalSchema>;
export const ARRIVAL_BURST_MS = 10_000;

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
  /** Entities this device holds (deleted ones not counted). */
  entities: z.int().min(0).optional(),
  /** Size of this device's local database, in bytes. */
  databaseBytes: z.int().min(0).optional(),
  /** Other devices' changes that arrived live (over WebSocket, outside a cycle) in the latest burst. */
  lastArrival: ArrivalSchema.nullable().optional(),
  /** The relay refused this device because it was revoked: it can no longer sync through this relay. */
  revoked: z.boolean().optional(),
});
export type SyncStatus = z.infer<typeof SyncStatusSchema>;
