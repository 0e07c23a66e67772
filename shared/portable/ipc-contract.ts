// The one IPC contract between the settings window and the main process. Every channel has a zod schema
// for its input and its output; the preload, the main-side handlers and the UI harness's socket bridge
// are all derived from this table, so adding a channel is one entry here plus its handler.
//
// Every value is plain JSON (no Date, Map, undefined, typed arrays): Electron IPC's structured clone and
// the harness's JSON carry it identically, so a pass through the harness means a pass through Electron.
import { z } from 'zod';
import { DeviceIdSchema, EventIdSchema, MotebitIdSchema } from './ids.ts';
import { JsonValueSchema, OperationSchema } from './event.ts';
import { SyncErrorSchema, SyncStatusSchema } from './status.ts';
import { MAX_INTERVAL_SECONDS, MIN_INTERVAL_SECONDS } from './limits.ts';

const Empty = z.strictObject({});
const DeviceName = z.string().trim().min(1, 'a device name is not empty').max(64, 'a device name is at most 64 characters');
const RelayUrlInput = z.string().trim().min(1, 'enter the relay URL').max(2048);

export const AppStateSchema = z.discriminatedUnion('phase', [
  /** No motebit in this home yet: the window shows the setup screen. */
  z.strictObject({ phase: z.literal('setup') }),
  z.strictObject({
    phase: z.literal('ready'),
    motebitId: MotebitIdSchema,
    deviceId: DeviceIdSchema,
    deviceName: z.string().nullable(),
    relayUrl: z.string(),
  }),
]);
export type AppState = z.infer<typeof AppStateSchema>;

export const ConflictSideSchema = z.strictObject({
  eventId: EventIdSchema,
  deviceId: DeviceIdSchema,
  /** The device's name from the relay's device list, when known. */
  deviceName: z.string().nullable(),
  /** False when this device no longer keeps the side (a settled conflict of an entity deleted since): op, value and writtenAt are null. */
  kept: z.boolean(),
  op: OperationSchema.nullable(),
  value: JsonValueSchema,
  /** Unix ms when that device wrote it. */
  writtenAt: z.int().nullable(),
});

export const ConflictSchema = z.strictObject({
  id: z.int().min(1),
  entity: z.string(),
  /** The side that sorts last (it won the pair); `currentEventId` says what the entity holds now. */
  winner: ConflictSideSchema,
  loser: ConflictSideSchema,
  currentEventId: EventIdSchema,
  detectedAt: z.int(),
  reviewedAt: z.int().nullable(),
  resolvedBy: EventIdSchema.nullable(),
  /** Why the winner wins, in words, from the one total order. */
  why: z.string(),
});
export type ConflictView = z.infer<typeof ConflictSchema>;

/** open: to review; reviewed: marked reviewed here, not settled; settled: a later write settled it. */
export const ConflictFilterSchema = z.enum(['open', 'reviewed', 'settled', 'unsettled', 'all']);
export const ConflictCountsSchema = z.strictObject({ open: z.int().min(0), reviewed: z.int().min(0), settled: z.int().min(0) });
/** The most conflicts one bulk action takes. */
export const MAX_BULK_CONFLICTS = 1000;

export const DeviceSchema = z.strictObject({
  deviceId: DeviceIdSchema,
  name: z.string().nullable(),
  enrolledAt: z.int(),
  revokedAt: z.int().nullable(),
  /** This device. */
  current: z.boolean(),
  /** Unix ms the relay last saw it; null when never (absent when the relay does not say). */
  lastSeenAt: z.int().nullable().optional(),
  /** Changes in the relay's log it has not read yet; null when the relay does not say. */
  behind: z.int().min(0).nullable().optional(),
});
export type DeviceView = z.infer<typeof DeviceSchema>;

/** Another device moved to another relay and left word through this one. */
export const MoveOfferSchema = z.strictObject({ url: z.string(), deviceId: DeviceIdSchema, deviceName: z.string().nullable(), at: z.int() });
export type MoveOfferView = z.infer<typeof MoveOfferSchema>;

/** Where this device's secrets are kept, and what to do when there is no OS keyring (first run on a server). */
export const SecretsSchema = z.strictObject({
  /** os: the OS keyring; file: a plain file (the person chose it); unavailable: no usable OS keyring here. */
  store: z.enum(['os', 'file', 'unavailable']),
  /** file: the secrets file. */
  filePath: z.string().nullable(),
  /** unavailable: why, in words. */
  why: z.string().nullable(),
  /** unavailable: the exact command that starts a keyring on this machine (null where there is none). */
  command: z.string().nullable(),
  /** unavailable: what to do instead of, or before, the command. */
  instead: z.string().nullable(),
  /** What keeping secrets in a file means, in words. */
  fileMeaning: z.string(),
  /** unavailable: what the platform said. */
  details: z.string().nullable(),
});
export type SecretsView = z.infer<typeof SecretsSchema>;

/** What the window needs before a motebit exists: the secrets, and the name this device gets by default. */
export const EnvironmentSchema = z.strictObject({
  secrets: SecretsSchema,
  /** The host name, the device name a setup uses when none is typed. */
  defaultDeviceName: z.string(),
});
export type EnvironmentView = z.infer<typeof EnvironmentSchema>;

export const SettingsSchema = z.strictObject({
  relayUrl: z.string().nullable(),
  intervalSeconds: z.int(),
  encryption: z.boolean(),
  transport: z.enum(['auto', 'websocket', 'http']),
  startAtLogin: z.boolean(),
  motebitId: MotebitIdSchema,
  deviceId: DeviceIdSchema,
  deviceName: z.string().nullable(),
  /** per-device: each device its own keys, new devices added by approval; shared: one master token (protocol 2), pairing codes. */
  keys: z.enum(['per-device', 'shared']),
});
export type SettingsView = z.infer<typeof SettingsSchema>;

/** The six digits both devices show while pairing by approval ("123 456"). */
const SasSchema = z.string().regex(/^\d{3} \d{3}$/);

/** A new device asking to join, as a member sees it once the new device answered its code. */
export const ApprovalSchema = z.strictObject({ deviceId: DeviceIdSchema, name: z.string().nullable(), sas: SasSchema });
export type ApprovalView = z.infer<typeof ApprovalSchema>;

/** The recovery key made with a new motebit, handed to the window once (then null). */
export const RecoveryKeySchema = z.strictObject({ motebitId: MotebitIdSchema, recoveryKey: z.string(), qrSvg: z.string() });
export type RecoveryKeyView = z.infer<typeof RecoveryKeySchema>;

/** A later upgrade of a master-token device, joining the log by approval: the one-time code to show (text, QR, when it stops working). */
const UpgradeJoinSchema = z.strictObject({ kind: z.literal('join'), code: z.string(), qrSvg: z.string(), expiresAt: z.int() });

export const CycleSchema = z.strictObject({
  ok: z.boolean(),
  pushed: z.int().min(0),
  pulled: z.int().min(0),
  error: SyncErrorSchema.nullable(),
});
export type CycleView = z.infer<typeof CycleSchema>;

export { MAX_INTERVAL_SECONDS, MIN_INTERVAL_SECONDS };

/** Settings → Storage (issue 12): what this device holds, and the relay's latest snapshot (or why it is not known). */
export const StorageSchema = z.strictObject({
  /** Events this device's log holds, and its database file's size in bytes. */
  events: z.int().min(0),
  databaseBytes: z.int().min(0),
  latest: z.discriminatedUnion('kind', [
    /** The relay holds no snapshot yet: a new device downloads the whole history. */
    z.strictObject({ kind: z.literal('none') }),
    z.strictObject({
      kind: z.literal('snapshot'),
      /** Changes (events) it covers. */
      covered: z.int().min(1),
      /** Unix ms the relay completed it. */
      createdAt: z.int().min(0),
      bytes: z.int().min(1),
      deviceId: DeviceIdSchema,
      /** The device that saved it, by name when the relay lists one. */
      deviceName: z.string().nullable(),
      /** This device saved it. */
      current: z.boolean(),
    }),
    /** The relay could not be asked: what happened, in words, and the technical text for "Details". */
    z.strictObject({ kind: z.literal('unknown'), message: z.string(), details: z.string().optional() }),
  ]),
});
export type StorageView = z.infer<typeof StorageSchema>;

/** Requests from the window to main: channel -> input and output schemas. */
export const IPC_CONTRACT = {
  'app.state': { input: Empty, output: AppStateSchema },
  'setup.create': { input: z.strictObject({ relayUrl: RelayUrlInput, deviceName: DeviceName.optional() }), output: AppStateSchema },
  'setup.join': { input: z.strictObject({ pairingCode: z.string().trim().min(1, 'paste the pairing code').max(4096), deviceName: DeviceName.optional() }), output: AppStateSchema },
  /**
   * Joining by approval, in three steps: joinStart answers the one-time code to show (text, QR, when it stops
   * working); joinDigits waits for a member to answer it and answers the six digits; joinFinish waits for the
   * approval and answers the state (ready). setup.cancel stops the wait; nothing is written before approval.
   */
  'setup.joinStart': { input: z.strictObject({ relayUrl: RelayUrlInput, deviceName: DeviceName.optional() }), output: z.strictObject({ code: z.string(), qrSvg: z.string(), expiresAt: z.int() }) },
  'setup.joinDigits': { input: Empty, output: z.strictObject({ motebitId: MotebitIdSchema, sas: SasSchema }) },
  'setup.joinFinish': { input: Empty, output: AppStateSchema },
  /** Cancels a setup still waiting for its relay, or a join waiting for its approval: it fails with "cancelled" and nothing is written. */
  'setup.cancel': { input: Empty, output: z.strictObject({ cancelled: z.boolean() }) },
  /**
   * Every device lost: this device is added to the motebit with its recovery key (typed by the person, never
   * stored); it then syncs the whole motebit, and can remove the lost devices from Settings.
   */
  'setup.recover': {
    input: z.strictObject({
      relayUrl: RelayUrlInput,
      motebitId: z.string().trim().min(1, 'enter the motebit id').max(64),
      recoveryKey: z.string().trim().min(1, 'enter the recovery key').max(256),
      deviceName: DeviceName.optional(),
    }),
    output: AppStateSchema,
  },
  /** The recovery key of the motebit just created here, once: every later call answers null. */
  'recovery.take': { input: Empty, output: RecoveryKeySchema.nullable() },
  'app.environment': { input: Empty, output: EnvironmentSchema },
  /** No keyring: look again (after the person started one); opens the device when it is set up. */
  'secrets.retry': { input: Empty, output: EnvironmentSchema },
  /** No keyring: keep this home's secrets in a plain file from now on (remembered in its config). */
  'secrets.useFile': { input: Empty, output: EnvironmentSchema },
  'status.get': { input: Empty, output: SyncStatusSchema },
  'sync.now': { input: Empty, output: CycleSchema },
  'sync.pause': { input: Empty, output: SyncStatusSchema },
  'sync.resume': { input: Empty, output: SyncStatusSchema },
  'conflicts.list': {
    input: z.strictObject({
      includeResolved: z.boolean().optional(),
      filter: ConflictFilterSchema.optional(),
      entityPrefix: z.string().max(512, 'an entity prefix is at most 512 characters').optional(),
      /** Only conflicts whose entity's current value this device wrote. */
      deviceId: DeviceIdSchema.optional(),
    }),
    output: z.array(ConflictSchema),
  },
  'conflicts.counts': { input: Empty, output: ConflictCountsSchema },
  /** Bulk: keep the current value, or the other side, of each conflict (one event per entity), then sync. */
  'conflicts.keepMany': {
    input: z.strictObject({ ids: z.array(z.int().min(1)).min(1, 'select at least one conflict').max(MAX_BULK_CONFLICTS, `at most ${MAX_BULK_CONFLICTS} conflicts at once`), keep: z.enum(['current', 'other']) }),
    output: z.strictObject({ settled: z.int().min(0) }),
  },
  'conflicts.markReviewed': { input: z.strictObject({ id: z.int().min(1) }), output: ConflictSchema },
  /** Resolve by choosing a side: appends a new event with that side's value (no merge), then syncs. */
  'conflicts.keep': { input: z.strictObject({ id: z.int().min(1), eventId: EventIdSchema }), output: ConflictSchema },
  'settings.get': { input: Empty, output: SettingsSchema },
  'settings.setRelayUrl': { input: z.strictObject({ relayUrl: RelayUrlInput }), output: SettingsSchema },
  /**
   * Moves this device to another relay; with tellOthers, first leaves word of the new address through the
   * old relay (told: sent, or failed with why). The other devices only ever move when their person says so.
   */
  'settings.moveRelay': {
    input: z.strictObject({ relayUrl: RelayUrlInput, tellOthers: z.boolean() }),
    output: z.strictObject({ settings: SettingsSchema, told: z.enum(['sent', 'not_asked', 'failed']), message: z.string().nullable() }),
  },
  /** A move another device announced, not dismissed here, to a relay other than this device's; else null. */
  'relay.moveOffer': { input: Empty, output: MoveOfferSchema.nullable() },
  'relay.dismissMove': { input: z.strictObject({ at: z.int().min(0) }), output: Empty },
  'settings.setInterval': { input: z.strictObject({ seconds: z.int().min(MIN_INTERVAL_SECONDS).max(MAX_INTERVAL_SECONDS) }), output: SettingsSchema },
  'settings.setStartAtLogin': { input: z.strictObject({ enabled: z.boolean() }), output: SettingsSchema },
  'devices.list': { input: Empty, output: z.array(DeviceSchema) },
  'devices.revoke': { input: z.strictObject({ deviceId: DeviceIdSchema }), output: DeviceSchema },
  /** A pairing code for a new device, as text and as an SVG QR code. */
  'pairing.create': { input: Empty, output: z.strictObject({ code: z.string(), qrSvg: z.string() }) },
  /** Per-device keys: the code a new device shows; waits for its answer and answers its name and the six digits. */
  'pairing.check': { input: z.strictObject({ code: z.string().trim().min(1, 'enter the code the new device shows').max(200) }), output: ApprovalSchema },
  /** The person saw the same digits on both devices: the device checked last is added. */
  'pairing.approve': { input: z.strictObject({ deviceId: DeviceIdSchema }), output: z.strictObject({ deviceId: DeviceIdSchema, name: z.string().nullable() }) },
  /** Don't approve (or stop checking): nothing is added, and the code cannot be used again. */
  'pairing.decline': { input: Empty, output: z.strictObject({ declined: z.boolean() }) },
  /**
   * A motebit that shares one master token: this device gets its own keys, keeping every value and the
   * motebit. The first device to upgrade founds the membership log: 'founded', and recovery.take answers its
   * recovery key once. A later one joins that log by approval: 'join' with the one-time code to show; then
   * keys.upgradeDigits (the six digits, once a member answered) and keys.upgradeFinish (approved: ready).
   * keys.upgradeCancel stops the wait. A failure or a cancel changes nothing: the device runs on as it was.
   */
  'keys.upgrade': { input: Empty, output: z.discriminatedUnion('kind', [z.strictObject({ kind: z.literal('founded') }), UpgradeJoinSchema]) },
  /** A later upgrade still waiting for a member (a window opened again meanwhile takes it up): its code; else null. */
  'keys.upgradeWaiting': { input: Empty, output: UpgradeJoinSchema.nullable() },
  'keys.upgradeDigits': { input: Empty, output: z.strictObject({ motebitId: MotebitIdSchema, sas: SasSchema }) },
  'keys.upgradeFinish': { input: Empty, output: AppStateSchema },
  'keys.upgradeCancel': { input: Empty, output: z.strictObject({ cancelled: z.boolean() }) },
  /** Settings → Storage: what this device holds and the relay's latest snapshot. */
  'snapshot.info': { input: Empty, output: StorageSchema },
  /** Save a snapshot now: syncs first (a failed sync saves none), then saves one on the relay; new devices start from it. */
  'snapshot.make': {
    input: Empty,
    output: z.strictObject({ covered: z.int().min(1), kept: z.int().min(0), bytes: z.int().min(1), storage: StorageSchema }),
  },
  /** Free space: drops this device's old history below the relay's latest snapshot (values stay) and shrinks its database. */
  'snapshot.prune': {
    input: Empty,
    output: z.strictObject({ dropped: z.int().min(0), bytesBefore: z.int().min(0), bytesAfter: z.int().min(0), storage: StorageSchema }),
  },
} as const;

export type Channel = keyof typeof IPC_CONTRACT;
export type ChannelInput<C extends Channel> = z.input<(typeof IPC_CONTRACT)[C]['input']>;
export type ChannelOutput<C extends Channel> = z.output<(typeof IPC_CONTRACT)[C]['output']>;
export const CHANNELS = Object.keys(IPC_CONTRACT) as Channel[];

/** Pushed from main to the window. */
export const IPC_EVENTS = {
  'status.changed': SyncStatusSchema,
  'app.changed': AppStateSchema,
} as const;
export type EventName = keyof typeof IPC_EVENTS;
export type EventPayload<E extends EventName> = z.output<(typeof IPC_EVENTS)[E]>;
export const EVENT_NAMES = Object.keys(IPC_EVENTS) as EventName[];

export const IPC_ERROR_CODES = [
  /** The input failed its schema: nothing was done. */
  'invalid_argument',
  /** No such channel. */
  'unknown_channel',
  /** The channel needs a motebit and there is none yet (or the reverse, for setup). */
  'invalid_state',
  /** The relay could not be reached. */
  'network',
  /** The relay refused this device. */
  'auth',
  /** The relay answered unexpectedly. */
  'relay',
  /** The person cancelled (a setup waiting on a relay that does not answer); nothing was written. */
  'cancelled',
  /** Something failed in main; the message says what. */
  'internal',
] as const;
export type IpcErrorCode = (typeof IPC_ERROR_CODES)[number];

export const IpcErrorSchema = z.strictObject({
  code: z.enum(IPC_ERROR_CODES),
  /** What happened and what to do, in words (main/app/error-words.ts). */
  message: z.string(),
  /** The technical text behind the words (codes, the relay's own message), for a "Details" disclosure. */
  details: z.string().optional(),
  /** For invalid_argument: the path of the bad field, e.g. "relayUrl". */
  field: z.string().optional(),
});
export type IpcError = z.infer<typeof IpcErrorSchema>;

/** What every request resolves to, over Electron IPC and over the harness socket alike. */
export type IpcResult<T> = { ok: true; value: T } | { ok: false; error: IpcError };

/** The API the preload exposes as window.motebit (and the harness client provides in a browser). */
export interface MotebitBridge {
  invoke<C extends Channel>(channel: C, input: ChannelInput<C>): Promise<IpcResult<ChannelOutput<C>>>;
  on<E extends EventName>(event: E, listener: (payload: EventPayload<E>) => void): () => void;
}

/** The Electron IPC channel names (one invoke channel per contract channel, one event channel). */
export const ipcChannelName = (channel: Channel): string => `motebit:${channel}`;
export const IPC_EVENT_CHANNEL = 'motebit:event';
