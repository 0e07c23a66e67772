// The device's config: <home>/.motebit/config.json. Validated strictly (an unknown field is an error, so
// a typo is never silently ignored), and never overwritten while the file on disk is invalid: the person
// who wrote it fixes it, the app does not "repair" it. Writes are atomic (atomic-write.ts).
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { DeviceIdSchema, MotebitIdSchema } from '../../shared/portable/ids.ts';
import { writeFileAtomic } from './atomic-write.ts';
import { configPath, ensurePrivateDir } from './home.ts';
import { RelayUrlError, parseRelayUrl } from './relay-url.ts';

export const DEFAULT_INTERVAL_SECONDS = 30;
export const TRANSPORTS = ['auto', 'websocket', 'http'] as const;
export type TransportPreference = (typeof TRANSPORTS)[number];

export const RelayUrlSchema = z.string().transform((text, ctx) => {
  try {
    return parseRelayUrl(text);
  } catch (error) {
    ctx.addIssue({ code: 'custom', message: error instanceof RelayUrlError ? error.message : String(error) });
    return z.NEVER;
  }
});

export const DeviceNameSchema = z
  .string()
  .trim()
  .min(1, 'a device name is not empty')
  .max(64, 'a device name is at most 64 characters')
  .regex(/^[^\p{Cc}]+$/u, 'a device name has no control characters');

export const ConfigSchema = z
  .strictObject({
    sync_url: RelayUrlSchema.optional(),
    interval_seconds: z.int().min(1).max(86_400).default(DEFAULT_INTERVAL_SECONDS),
    encryption: z.boolean().default(true),
    transport: z.enum(TRANSPORTS).default('auto'),
    motebit_id: MotebitIdSchema.optional(),
    device_id: DeviceIdSchema.optional(),
    device_name: DeviceNameSchema.optional(),
    /**
     * Where this home keeps its secrets when neither --keyring nor MOTEBIT_KEYRING says: set to "file" when
     * the person chose the plain file in the window (no OS keyring on the machine); absent means the OS keyring.
     */
    secret_store: z.enum(['os', 'file']).optional(),
    /**
     * How this device's motebit holds its keys: "per-device" (a membership log; this device's own root
     * secret in the keyring, docs/keys.md) or, when absent, a master token shared by every device (protocol 2).
     */
    keys: z.enum(['per-device']).optional(),
    /**
     * Snapshots (issue 12): this device makes one once the motebit holds this many events beyond the
     * relay's latest (0: only when asked, with "motebit-sync snapshot"); absent: DEFAULT_SNAPSHOT_EVERY.
     */
    snapshot_every_events: z.int().min(0).max(100_000_000).optional(),
    /** …or once those events take this many MB (0: not by size; absent: DEFAULT_SNAPSHOT_EVERY_MB). */
    snapshot_every_mb: z.int().min(0).max(1_000_000).optional(),
  })
  .superRefine((config, ctx) => {
    if ((config.motebit_id === undefined) !== (config.device_id === undefined)) {
      const missing = config.motebit_id === undefined ? 'motebit_id' : 'device_id';
      ctx.addIssue({ code: 'custom', path: [missing], message: 'motebit_id and device_id are set together (the local identity)' });
    }
  });

export type Config = z.output<typeof ConfigSchema>;
export type ConfigInput = z.input<typeof ConfigSchema>;

/** The config file (or a config about to be written) is invalid. Names the file and every bad field. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly path: string;
  /** The fields at fault (dotted paths; unknown fields by name). */
  readonly fields: readonly string[];
  constructor(path: string, message: string, fields: readonly string[] = [], options?: ErrorOptions) {
    super(message, options);
    this.path = path;
    this.fields = fields;
  }
}

/** A device name given for a new device is not valid (the config is not touched). */
export class DeviceNameError extends ConfigError {}

function describeIssues(error: z.ZodError): { text: string; fields: string[] } {
  const fields: string[] = [];
  const lines = error.issues.map((issue) => {
    if (issue.code === 'unrecognized_keys') {
      fields.push(...issue.keys);
      return `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((key) => `"${key}"`).join(', ')}`;
    }
    const field = issue.path.map(String).join('.');
    fields.push(field);
    return field === '' ? issue.message : `${field}: ${issue.message}`;
  });
  return { text: lines.join('; '), fields };
}

/** Validates a config object; `path` is only named in the error. */
export function parseConfig(value: unknown, path: string): Config {
  const result = ConfigSchema.safeParse(value);
  if (!result.success) {
    const { text, fields } = describeIssues(result.error);
    throw new ConfigError(path, `invalid config ${path}: ${text}`, fields, { cause: result.error });
  }
  return result.data;
}

/** The config of a home, or null when it has none yet. Throws ConfigError when the file is invalid. */
export async function readConfig(home: string): Promise<Config | null> {
  const path = configPath(home);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new ConfigError(path, `invalid config ${path}: not valid JSON (${(error as Error).message})`, [], { cause: error });
  }
  return parseConfig(json, path);
}

/** The config of a home, with defaults when it has none yet. */
export async function loadConfig(home: string): Promise<Config> {
  return (await readConfig(home)) ?? parseConfig({}, configPath(home));
}

/**
 * Writes the config atomically. Refuses (ConfigError) when the new config is invalid, and when the file
 * already on disk is invalid: that file is the person's, and is left exactly as it is.
 */
export async function saveConfig(home: string, config: ConfigInput): Promise<Config> {
  const path = configPath(home);
  const valid = parseConfig(config, path);
  try {
    await readConfig(home);
  } catch (error) {
    if (error instanceof ConfigError) {
      throw new ConfigError(path, `${error.message}. Not overwriting it: fix or remove the file first`, error.fields, { cause: error });
    }
    throw error;
  }
  await ensurePrivateDir(home);
  await writeFileAtomic(path, JSON.stringify(valid, null, 2) + '\n');
  return valid;
}

/** Reads, changes and writes back the config (a missing file counts as the defaults). */
export async function updateConfig(home: string, change: Partial<ConfigInput>): Promise<Config> {
  const current = await loadConfig(home);
  return saveConfig(home, { ...current, ...change });
}
