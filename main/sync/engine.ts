// The sync engine: push what the relay has not acknowledged, pull what this device has not seen, apply,
// record conflicts. One cycle at a time; a manual trigger during a cycle joins it; a timer with jitter
// runs the next one; live events are applied as they arrive. Status and progress are published as typed
// events: the CLI, the tray and the settings window all read this one source.
//
// Nothing is lost across a crash at any point: local writes wait in the store (not in memory) until the
// relay acknowledges them, pushes are idempotent by event id, and the pull cursor advances only after
// the events it covers are committed.
import { ChainError } from '../../shared/chain.ts';
import type { DeviceCredentials } from '../../shared/event.ts';
import { MAX_BATCH_EVENTS } from '../../shared/relay-api.ts';
import type { SyncError, SyncErrorKind, SyncProgress, SyncState, SyncStatus } from '../../shared/status.ts';
import type { EventStore, RejectedEvent } from '../store/event-store.ts';
import { fromWire, toWire } from './codec.ts';
import { TransportError, type ReceivedEvent, type Transport, type TransportKind } from './transport.ts';

export type TransportPreference = 'auto' | TransportKind;

export interface Logger {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
}

const silent: Logger = { info: () => {}, warn: () => {} };

export interface EngineOptions {
  readonly store: EventStore;
  readonly credentials: DeviceCredentials;
  /** A fresh transport of the given kind, already wrapped for encryption when that is on. */
  readonly connect: (kind: TransportKind) => Transport;
  readonly transport: TransportPreference;
  readonly intervalMs: number;
  /** Each timed cycle starts within ±jitter × interval of its slot, so devices do not stampede the relay. */
  readonly jitter?: number;
  readonly log?: Logger;
  readonly now?: () => number;
  /** After WebSocket fails, how long to stay on HTTP before trying it again (doubles up to 10 min). */
  readonly wsRetryFirstMs?: number;
}

export interface CycleResult {
  readonly ok: boolean;
  readonly pushed: number;
  readonly pulled: number;
  readonly error: SyncError | null;
}

/** A cycle that failed for a reason the engine itself found (not a transport). */
export class SyncFailure extends Error {
  override name = 'SyncFailure';
  readonly kind: SyncErrorKind;
  readonly nextStep: string;
  constructor(kind: SyncErrorKind, message: string, nextStep: string) {
    super(message);
    this.kind = kind;
    this.nextStep = nextStep;
  }
}

type Listener<T> = (value: T) => void;

const WS_RETRY_FIRST_MS = 15_000;
const WS_RETRY_MAX_MS = 10 * 60_000;
const CURSOR = 'relay_seq';
const LAST_SUCCESS = 'last_success_at';

export class SyncEngine {
  private readonly options: EngineOptions;
  private readonly store: EventStore;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly statusListeners = new Set<Listener<SyncStatus>>();
  private readonly cycleListeners = new Set<Listener<CycleResult>>();

  private state: SyncState = 'idle';
  private current: Transport | null = null;
  private running: Promise<CycleResult> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private nextCycleAt: number | null = null;
  private lastError: SyncError | null = null;
  private progress: SyncProgress | null = null;
  private started = false;
  private paused = false;
  private stopped = false;
  private wsRetryAt = 0;
  private wsRetryDelay: number;
  private pulledThisCycle = 0;
  private intervalMs: number;

  constructor(options: EngineOptions) {
    this.options = options;
    this.intervalMs = options.intervalMs;
    this.store = options.store;
    this.log = options.log ?? silent;
    this.now = options.now ?? Date.now;
    this.wsRetryDelay = options.wsRetryFirstMs ?? WS_RETRY_FIRST_MS;
  }

  // ---- control ------------------------------------------------------------------------------------

  /** Runs the first cycle now and then one every interval (with jitter). */
  start(): void {
    if (this.started) return;
    this.started = true;
    void this.syncNow();
  }

  /** Runs a cycle now, or joins the one already running. Never rejects: the result says what failed. */
  syncNow(): Promise<CycleResult> {
    if (this.running) return this.running;
    if (this.stopped) return Promise.resolve(this.failed(new SyncFailure('local', 'sync has been stopped', 'restart the app')));
    this.clearTimer();
    this.running = this.cycle().finally(() => {
      this.running = null;
      this.scheduleNext();
    });
    return this.running;
  }

  /** Stops timed and live sync until resume(); a running cycle finishes. */
  async pause(): Promise<void> {
    this.paused = true;
    this.clearTimer();
    await this.running;
    await this.dropTransport();
    this.setState('paused');
  }

  resume(): Promise<CycleResult> {
    this.paused = false;
    this.setState('idle');
    return this.syncNow();
  }

  /** Changes the interval of timed cycles; the next one is rescheduled at once. */
  setIntervalMs(intervalMs: number): void {
    this.intervalMs = intervalMs;
    if (this.timer && !this.running) {
      this.clearTimer();
      this.scheduleNext();
    }
  }

  get isPaused(): boolean {
    return this.paused;
  }

  /** Finishes the running cycle (or abandons it when the transport closes under it) and closes the transport. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.clearTimer();
    const running = this.running;
    await this.dropTransport(); // a push waiting for an ack is abandoned; its events stay queued in the store
    await running;
    await this.dropTransport(); // one the running cycle opened after the first drop
  }

  // ---- status -------------------------------------------------------------------------------------

  status(): SyncStatus {
    return {
      state: this.state,
      transport: this.current?.kind ?? null,
      lastSuccessAt: this.store.getCursor(LAST_SUCCESS) || null,
      nextCycleAt: this.nextCycleAt,
      pendingOut: this.store.pendingOutCount(),
      openConflicts: this.store.openConflictCount(),
      rejectedEvents: this.store.rejectedCount(),
      lastError: this.lastError,
      progress: this.progress,
    };
  }

  /** Hears every status change (state, progress, transport, counts). Returns the way to stop hearing. */
  onStatus(listener: Listener<SyncStatus>): () => void {
    this.statusListeners.add(listener);
    return () => this.statusListeners.delete(listener);
  }

  /** Hears the result of every completed cycle. */
  onCycle(listener: Listener<CycleResult>): () => void {
    this.cycleListeners.add(listener);
    return () => this.cycleListeners.delete(listener);
  }

  // ---- the cycle ----------------------------------------------------------------------------------

  private async cycle(): Promise<CycleResult> {
    if (this.paused) return this.failed(new SyncFailure('local', 'sync is paused', 'resume sync to continue'));
    this.pulledThisCycle = 0;
    this.setState('syncing', { phase: 'connect', done: 0, total: null });
    let pushed = 0;
    try {
      const transport = await this.ensureTransport();
      pushed = await this.pushAll(transport);
      this.setProgress({ phase: 'pull', done: this.pulledThisCycle, total: null });
      await transport.catchUp();
      this.store.setCursor(LAST_SUCCESS, this.now());
      this.lastError = null;
      const result: CycleResult = { ok: true, pushed, pulled: this.pulledThisCycle, error: null };
      this.log.info({ pushed, pulled: result.pulled, transport: transport.kind }, 'sync cycle done');
      this.setState('idle');
      this.emitCycle(result);
      return result;
    } catch (error) {
      if (error instanceof TransportError && error.kind !== 'auth') await this.dropTransport();
      const result = { ...this.failed(error), pushed };
      this.emitCycle(result);
      return result;
    }
  }

  /** Records a failed cycle: the status says what failed and what to do; it is never a success. */
  private failed(error: unknown): CycleResult {
    const syncError = describeFailure(error, this.now());
    this.lastError = syncError;
    this.log.warn({ kind: syncError.kind, error: syncError.message }, 'sync cycle failed');
    this.setState(this.paused ? 'paused' : syncError.kind === 'network' ? 'offline' : 'error');
    return { ok: false, pushed: 0, pulled: this.pulledThisCycle, error: syncError };
  }

  /** Pushes every unacknowledged local event, in sealed batches, however many there are. */
  private async pushAll(transport: Transport): Promise<number> {
    const total = this.store.pendingOutCount();
    let pushed = 0;
    this.setProgress({ phase: 'push', done: 0, total });
    for (;;) {
      const batch = this.store.outboxBatch(MAX_BATCH_EVENTS, this.options.credentials);
      if (batch.length === 0) return pushed;
      const results = await transport.push(batch.map(toWire));
      const refused = results.filter((r) => r.status === 'rejected');
      if (results.length !== batch.length || refused.length > 0) {
        const reason = refused[0]?.status === 'rejected' ? refused[0].reason : 'an incomplete answer';
        throw new SyncFailure('relay', `the relay refused ${refused.length || batch.length} of ${batch.length} events (${reason})`, 'this device\'s log disagrees with the relay; report it with the output of "motebit-sync status --json"');
      }
      this.store.markPushed(batch.at(-1)!.device_seq);
      pushed += batch.length;
      this.setProgress({ phase: 'push', done: pushed, total: Math.max(total, pushed) });
    }
  }

  /**
   * Where every received page goes, from a cycle's catch-up or live from the socket. Each device's events
   * are applied on their own, so one device's bad chain cannot block the others; what cannot be applied
   * is recorded and reported, never applied. The cursor moves only after the page is committed.
   */
  private readonly receive = async (events: readonly ReceivedEvent[]): Promise<void> => {
    if (events.length === 0) return;
    const rejected: RejectedEvent[] = [];
    const byDevice = new Map<string, { received: ReceivedEvent; event: unknown; text: string }[]>();
    for (const received of events) {
      const decoded = fromWire(received);
      if (!decoded.ok) {
        rejected.push(rejection(received, decoded.problem.code, decoded.problem.message));
        continue;
      }
      const group = byDevice.get(received.device_id) ?? [];
      group.push({ received, event: decoded.event, text: decoded.text });
      byDevice.set(received.device_id, group);
    }
    let newConflicts = 0;
    for (const group of byDevice.values()) {
      try {
        newConflicts += this.store.applyRemote(group.map((g) => g.event), { texts: group.map((g) => g.text) }).newConflicts;
      } catch (error) {
        if (!(error instanceof ChainError)) throw error; // a local failure (disk): the cursor stays, nothing is skipped
        for (const { received } of group) rejected.push(rejection(received, error.code, error.message));
      }
    }
    if (rejected.length > 0) {
      this.store.recordRejected(rejected);
      this.log.warn({ count: rejected.length, code: rejected[0]!.code }, 'received events were rejected and not applied');
    }
    this.store.setCursor(CURSOR, Math.max(this.store.getCursor(CURSOR), events.at(-1)!.seq));
    this.pulledThisCycle += events.length;
    if (this.running) this.setProgress({ phase: 'pull', done: this.pulledThisCycle, total: null });
    else this.emitStatus(); // a live page between cycles: counts changed
    if (newConflicts > 0) this.log.info({ newConflicts }, 'conflicts recorded');
  };

  // ---- transports ---------------------------------------------------------------------------------

  /** WebSocket when it works, else HTTP (when allowed); back to WebSocket with backoff while on HTTP. */
  private async ensureTransport(): Promise<Transport> {
    const preference = this.options.transport;
    const wantWs = preference !== 'http';
    if (this.current && (this.current.kind === 'websocket' || !wantWs || this.now() < this.wsRetryAt)) return this.current;

    if (wantWs) {
      try {
        const ws = await this.open('websocket');
        await this.dropTransport();
        this.current = ws;
        this.wsRetryDelay = this.options.wsRetryFirstMs ?? WS_RETRY_FIRST_MS;
        ws.onDown((error) => void this.onTransportDown(ws, error));
        this.emitStatus();
        return ws;
      } catch (error) {
        if (preference === 'websocket' || (error instanceof TransportError && error.kind === 'auth')) throw error;
        this.wsRetryAt = this.now() + this.wsRetryDelay;
        this.wsRetryDelay = Math.min(this.wsRetryDelay * 2, WS_RETRY_MAX_MS);
        this.log.info({ error: (error as Error).message, retryInMs: this.wsRetryAt - this.now() }, 'WebSocket unavailable, using HTTP');
        if (this.current) return this.current; // already on HTTP
      }
    }
    const http = await this.open('http');
    this.current = http;
    this.emitStatus();
    return http;
  }

  private async open(kind: TransportKind): Promise<Transport> {
    const transport = this.options.connect(kind);
    try {
      await transport.open(this.store.getCursor(CURSOR), this.receive);
      return transport;
    } catch (error) {
      await transport.close().catch(() => {});
      throw error;
    }
  }

  private async onTransportDown(transport: Transport, error: TransportError): Promise<void> {
    if (this.current !== transport) return;
    this.log.warn({ kind: error.kind, error: error.message }, 'live connection lost');
    await this.dropTransport();
    if (error.kind === 'auth') {
      this.failed(error);
      return;
    }
    // Fall back at once; WebSocket is tried again after the backoff.
    this.wsRetryAt = this.now() + this.wsRetryDelay;
    this.wsRetryDelay = Math.min(this.wsRetryDelay * 2, WS_RETRY_MAX_MS);
    if (!this.paused && !this.stopped && this.started) void this.syncNow();
    else this.emitStatus();
  }

  private async dropTransport(): Promise<void> {
    const transport = this.current;
    this.current = null;
    if (transport) await transport.close().catch(() => {});
  }

  // ---- timer and events ---------------------------------------------------------------------------

  private scheduleNext(): void {
    if (!this.started || this.paused || this.stopped) {
      this.nextCycleAt = null;
      this.emitStatus();
      return;
    }
    const jitter = this.options.jitter ?? 0.1;
    const delay = Math.max(0, this.intervalMs * (1 + jitter * (Math.random() * 2 - 1)));
    this.nextCycleAt = this.now() + Math.round(delay);
    this.timer = setTimeout(() => void this.syncNow(), delay);
    this.timer.unref?.();
    this.emitStatus();
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.nextCycleAt = null;
  }

  private setState(state: SyncState, progress: SyncProgress | null = null): void {
    this.state = state;
    this.progress = progress;
    this.emitStatus();
  }

  private setProgress(progress: SyncProgress): void {
    this.progress = progress;
    this.emitStatus();
  }

  private emitStatus(): void {
    if (this.statusListeners.size === 0) return;
    const status = this.status();
    for (const listener of this.statusListeners) listener(status);
  }

  private emitCycle(result: CycleResult): void {
    for (const listener of this.cycleListeners) listener(result);
  }
}

function rejection(received: ReceivedEvent, code: string, message: string): RejectedEvent {
  return { relaySeq: received.seq, eventId: received.event_id, deviceId: received.device_id, deviceSeq: received.device_seq, code, message };
}

/** Turns any failure into what the person sees: a kind, a message and the next step. */
export function describeFailure(error: unknown, at: number): SyncError {
  if (error instanceof SyncFailure) return { kind: error.kind, message: error.message, nextStep: error.nextStep, at };
  if (error instanceof TransportError) {
    switch (error.kind) {
      case 'network':
        return { kind: 'network', message: error.message, nextStep: 'check the network and the relay URL; sync retries by itself', at };
      case 'auth':
        return {
          kind: 'auth',
          message: error.message,
          nextStep:
            error.code === 'revoked_device'
              ? 'this device was revoked; join the motebit again with a pairing code from another device'
              : error.code === 'token_not_yet_valid' || error.code === 'token_expired'
                ? "check this computer's clock, then sync again"
                : 'the relay does not accept this device; check the relay URL or join again',
          at,
        };
      default:
        return { kind: 'relay', message: error.message, nextStep: 'the relay answered unexpectedly; check that the relay URL points at a motebit relay', at };
    }
  }
  if (error instanceof ChainError) return { kind: 'integrity', message: error.message, nextStep: 'the relay served events that fail verification; they were not applied', at };
  const message = error instanceof Error ? error.message : String(error);
  return { kind: 'local', message, nextStep: 'check the disk and the device home folder, then sync again', at };
}
