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
  op: OperationSchema,
  value: JsonValueSchema,
  /** Unix ms when that device wrote it. */
  writtenAt: z.int(),
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
});
export type ConflictView = z.infer<typeof ConflictSchema>;

export const DeviceSchema = z.strictObject({
  deviceId: DeviceIdSchema,
  name: z.string().nullable(),
  enrolledAt: z.int(),
  revokedAt: z.int().nullable(),
  /** This device. */
  current: z.boolean(),
});
export type DeviceView = z.infer<typeof DeviceSchema>;

export const SettingsSchema = z.strictObject({
  relayUrl: z.string().nullable(),
  intervalSeconds: z.int(),
  encryption: z.boolean(),
  transport: z.enum(['auto', 'websocket', 'http']),
  startAtLogin: z.boolean(),
  motebitId: MotebitIdSchema,
  deviceId: DeviceIdSchema,
  deviceName: z.string().nullable(),
});
export type SettingsView = z.infer<typeof SettingsSchema>;

export const CycleSchema = z.strictObject({
  ok: z.boolean(),
  pushed: z.int().min(0),
  pulled: z.int().min(0),
  error: SyncErrorSchema.nullable(),
});
export type CycleView = z.infer<typeof CycleSchema>;

export const MIN_INTERVAL_SECONDS = 5;
export const MAX_INTERVAL_SECONDS = 86_400;

/** Requests from the window to main: channel -> input and output schemas. */
export const IPC_CONTRACT = {
  'app.state': { input: Empty, output: AppStateSchema },
  'setup.create': { input: z.strictObject({ relayUrl: RelayUrlInput, deviceName: DeviceName.optional() }), output: AppStateSchema },
  'setup.join': { input: z.strictObject({ pairingCode: z.string().trim().min(1, 'paste the pairing code').max(4096), deviceName: DeviceName.optional() }), output: AppStateSchema },
  'status.get': { input: Empty, output: SyncStatusSchema },
  'sync.now': { input: Empty, output: CycleSchema },
  'sync.pause': { input: Empty, output: SyncStatusSchema },
  'sync.resume': { input: Empty, output: SyncStatusSchema },
  'conflicts.list': { input: z.strictObject({ includeResolved: z.boolean().optional() }), output: z.array(ConflictSchema) },
  'conflicts.markReviewed': { input: z.strictObject({ id: z.int().min(1) }), output: ConflictSchema },
  /** Resolve by choosing a side: appends a new event with that side's value (no merge), then syncs. */
  'conflicts.keep': { input: z.strictObject({ id: z.int().min(1), eventId: EventIdSchema }), output: ConflictSchema },
  'settings.get': { input: Empty, output: SettingsSchema },
  'settings.setRelayUrl': { input: z.strictObject({ relayUrl: RelayUrlInput }), output: SettingsSchema },
  'settings.setInterval': { input: z.strictObject({ seconds: z.int().min(MIN_INTERVAL_SECONDS).max(MAX_INTERVAL_SECONDS) }), output: SettingsSchema },
  'settings.setStartAtLogin': { input: z.strictObject({ enabled: z.boolean() }), output: SettingsSchema },
  'devices.list': { input: Empty, output: z.array(DeviceSchema) },
  'devices.revoke': { input: z.strictObject({ deviceId: DeviceIdSchema }), output: DeviceSchema },
  /** A pairing code for a new device, as text and as an SVG QR code. */
  'pairing.create': { input: Empty, output: z.strictObject({ code: z.string(), qrSvg: z.string() }) },
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
  /** Something failed in main; the message says what. */
  'internal',
] as const;
export type IpcErrorCode = (typeof IPC_ERROR_CODES)[number];

export const IpcErrorSchema = z.strictObject({
  code: z.enum(IPC_ERROR_CODES),
  message: z.string(),
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
