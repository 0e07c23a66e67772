// The sync engine: push what the relay has not acknowledged, pull what this device has not seen, apply,
// record conflicts. One cycle at a time; a manual trigger during a cycle joins it; a timer with jitter
// runs the next one; live events are applied as they arrive. Status and progress are published as typed
// events: the CLI, the tray and the settings window all read this one source.
//
// Nothing is lost across a crash at any point: local writes wait in the store (not in memory) until the
// relay acknowledges them, pushes are idempotent by event id, and the pull cursor advances in the same
// transaction that commits the events it covers.
//
// The relay is trusted for nothing (docs/protocol.md §8). Each cycle first reads the relay log's frontier:
// a new epoch (the relay was replaced) or a head behind this device's cursor (restored from an older copy)
// restarts the pull from 0, and whatever the relay lacks of the events this device holds — its own, and
// other devices' in their original sealed form — is sent again. After the pull, a writer the relay claims
// to hold but did not serve, events that failed verification, or events that another device's signed
// clock shows exist but never arrived, each make the cycle fail with what is missing; bad events are
// fetched again on later cycles until they verify.
import { ChainError } from '../../shared/chain.ts';
import type { DeviceCredentials } from '../../shared/event.ts';
import { MAX_BATCH_EVENTS, type FrontierResponse, type PushResult } from '../../shared/portable/relay-api.ts';
import { ARRIVAL_BURST_MS, type Arrival, type SyncError, type SyncErrorKind, type SyncProgress, type SyncState, type SyncStatus } from '../../shared/portable/status.ts';
import type { EventStore, RejectedEvent } from '../store/event-store.ts';
import { DEFAULT_REPAIR_POLICY, PULL_CURSOR, type Recovery, type RecoveryReason, type Repair, type RepairPolicy } from '../store/relay-ledger.ts';
import { errorWords } from '../app/error-words.ts';
import { compactedEvents, describeMissing, describeRepairs, judgeRelayLog, recoveryText, shortDevice, undelivered } from './relay-audit.ts';
import { fromWire, toWire } from './codec.ts';
import { EPOCH_CHANGED, TransportError, type ReceivedEvent, type Transport, type TransportKind } from './transport.ts';
import { Emitter, type Listener } from '../../shared/emitter.ts';

export type TransportPreference = 'auto' | TransportKind;

export interface Logger {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
}

const silent: Logger = { info: () => {}, warn: () => {} };

/** The relay's control plane, over HTTP whatever transport carries the events. */
export interface RelayControl {
  /** The relay log's epoch, head, each writer's highest stored device_seq, and (given `at`) the event at that seq. */
  frontier(at?: number): Promise<FrontierResponse>;
  /** Enrols this device again on a relay that does not know it (one that lost its data). */
  reenrol(): Promise<void>;
}

/**
 * A motebit with a membership log (docs/keys.md): the engine brings this device's verified log up to date
 * at the start of every cycle, and before applying events that name a position beyond it, so that who
 * may write is always judged on the newest log the relay serves and this device verified.
 */
export interface MembershipHook {
  /** The seq of the last entry this device verified (-1: none). */
  head(): number;
  /** Fetches, verifies and keeps what the relay has beyond this device's log (re-seeding a relay that lost it); throws when the relay serves a log this device refuses. */
  refresh(): Promise<void>;
  /** Opens again an event that arrived sealed under a key this device did not have yet (a new epoch), with the keys it has now. */
  reopen(event: ReceivedEvent): ReceivedEvent;
}

/**
 * Snapshots (issue 12, main/sync/snapshot-sync.ts): a device that holds nothing starts from the relay's
 * latest snapshot; after each successful cycle a device acknowledges what it holds (so the relay may
 * compact) and makes a snapshot when one is due.
 */
export interface SnapshotHook {
  /** Adopts the latest snapshot (verified) into an empty store; null when the relay has none. */
  join(progress: (progress: SyncProgress) => void): Promise<{ relay: { epoch: string; seq: number } | null } | null>;
  afterCycle(progress: (progress: SyncProgress) => void): Promise<unknown>;
}

export interface EngineOptions {
  /** Set for a motebit with a membership log. */
  readonly membership?: MembershipHook;
  readonly snapshots?: SnapshotHook;
  readonly store: EventStore;
  readonly relay: RelayControl;
  /** When events that fail verification are set aside (quarantined), and for how long. */
  readonly repairPolicy?: RepairPolicy;
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
  /** What went wrong in the relay's or the system's terms (codes, paths), shown only where details are. */
  readonly details: string | undefined;
  constructor(kind: SyncErrorKind, message: string, nextStep: string, details?: string) {
    super(message);
    this.kind = kind;
    this.nextStep = nextStep;
    this.details = details;
  }
}


const WS_RETRY_FIRST_MS = 15_000;
const WS_RETRY_MAX_MS = 10 * 60_000;
const CURSOR = PULL_CURSOR;
const LAST_SUCCESS = 'last_success_at';

export class SyncEngine {
  private readonly options: EngineOptions;
  private readonly store: EventStore;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly statusListeners: Emitter<SyncStatus>;
  private readonly cycleListeners: Emitter<CycleResult>;

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
  /** Other devices' events received in the running cycle (this device's own, echoed back, are not counted). */
  private pulledThisCycle = 0;
  /**
   * The running cycle's receiving: the relay's head when it started, where this device's cursor was, the
   * compacted events in between (stubs no pull returns), and since when.
   */
  private pull: Pull | null = null;
  /** Other devices' changes that arrived live (outside a cycle), the latest burst. */
  private arrival: Arrival | null = null;
  /** The relay refused this device as revoked. */
  private revoked = false;
  /** What this device holds (entities, database size), counted at most once a second while a cycle runs. */
  private holdings: { at: number; entities: number; databaseBytes: number } | null = null;
  private intervalMs: number;
  /** Writers whose events failed verification during the running cycle. */
  private failedThisCycle = new Set<string>();
  /** What the running cycle found the relay had lost, and how many events it sent again. */
  private recovery: { reason: RecoveryReason; resent: number } | null = null;
  /** Whether the running cycle is this device's first contact with the relay's log (sending it everything is seeding). */
  private firstContact = false;
  /**
   * Each writer's highest event this device held when it asked the relay for its frontier this cycle (and
   * after starting from a snapshot): what it can tell the relay lacks. Events that arrive live while the
   * question is out came from the relay, which has them, whatever its earlier answer says.
   */
  private heldWhenAsked: Readonly<Record<string, number>> = {};

  constructor(options: EngineOptions) {
    this.options = options;
    this.intervalMs = options.intervalMs;
    this.store = options.store;
    this.log = options.log ?? silent;
    // A listener that throws is its own failure: logged, never a failed cycle, never a rejected syncNow.
    const listenerFailed = (error: unknown) => this.log.warn({ err: error instanceof Error ? error.message : String(error) }, 'a sync listener failed');
    this.statusListeners = new Emitter(listenerFailed);
    this.cycleListeners = new Emitter(listenerFailed);
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
    // "sync is paused" was true until now: its cause is gone, so is the error (before anyone sees 'idle').
    if (this.lastError?.message === PAUSED_MESSAGE) this.lastError = null;
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
      quarantinedEvents: this.store.ledger.quarantined().length,
      lastRecovery: recoveryStatus(this.store.ledger.lastRecovery()),
      lastError: this.lastError,
      progress: this.progress,
      ...this.countHoldings(),
      lastArrival: this.arrival,
      revoked: this.revoked,
    };
  }

  /** Entities and database size: counted afresh, except within a second of the last count during a cycle (every page emits a status). */
  private countHoldings(): { entities: number; databaseBytes: number } {
    const now = this.now();
    if (!this.holdings || this.state !== 'syncing' || now - this.holdings.at >= 1000) {
      this.holdings = { at: now, entities: this.store.entityCount(), databaseBytes: this.store.databaseBytes() };
    }
    return { entities: this.holdings.entities, databaseBytes: this.holdings.databaseBytes };
  }

  /** Hears every status change (state, progress, transport, counts). Returns the way to stop hearing. */
  onStatus(listener: Listener<SyncStatus>): () => void {
    return this.statusListeners.on(listener);
  }

  /** Hears the result of every completed cycle. */
  onCycle(listener: Listener<CycleResult>): () => void {
    return this.cycleListeners.on(listener);
  }

  // ---- the cycle ----------------------------------------------------------------------------------

  private async cycle(): Promise<CycleResult> {
    if (this.paused) return this.failed(new SyncFailure('local', PAUSED_MESSAGE, 'resume sync to continue'));
    this.pulledThisCycle = 0;
    this.pull = null;
    this.failedThisCycle = new Set();
    this.recovery = null;
    this.setState('syncing', { phase: 'connect', done: 0, total: null });
    let pushed = 0;
    try {
      const log = await this.inspectRelay();
      await this.options.membership?.refresh();
      await this.joinFromSnapshot(log);
      // The relay's head is known now: what there is to receive is what lies between this device's cursor and it.
      this.pull = startPull(log, this.store.getCursor(CURSOR), null);
      let transport = await this.ensureTransport(log.epoch);
      await this.resend(transport, log);
      pushed = await this.pushAll(transport);
      this.pull.startedAt = this.now();
      this.setProgress(this.pullProgress());
      await transport.catchUp();
      if (undelivered(log, this.store.heldHeads(), this.store.identity.deviceId, this.repairing()).length > 0) {
        // The relay holds events this device never received, before its cursor: fetch the whole log again.
        await this.restart('relay_skipped_events', log.epoch);
        this.pull = startPull(log, 0, this.now());
        this.pulledThisCycle = 0;
        this.setProgress(this.pullProgress());
        transport = await this.ensureTransport(log.epoch);
        await transport.catchUp();
        const still = undelivered(log, this.store.heldHeads(), this.store.identity.deviceId, this.repairing());
        if (still.length > 0) {
          throw new SyncFailure('integrity', `the relay says it holds events it did not send: ${describeMissing(still)}`, 'sync again later; if this keeps happening the relay is faulty or withholding events');
        }
      }
      this.settleRepairs();
      this.checkWithheld();
      // Everything up to the head read at the start is held now or was compacted (the audit above showed it):
      // the next pull starts there, past stubs no pull returns, not again from the last event received.
      if (this.store.getCursor(CURSOR) < log.head) this.store.setCursor(CURSOR, log.head);
      await this.options.snapshots?.afterCycle((progress) => this.setProgress(progress));
      this.store.setCursor(LAST_SUCCESS, this.now());
      this.noteRecovery(log.epoch);
      this.lastError = null;
      this.revoked = false;
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

  /**
   * A device that holds nothing and has never pulled starts from the relay's latest snapshot, then pulls
   * from where the snapshot's events end in this log (when it names this log; the audit after the pull
   * fetches the whole log again if that skipped anything).
   */
  private async joinFromSnapshot(log: FrontierResponse): Promise<void> {
    if (!this.options.snapshots || this.store.getCursor(CURSOR) !== 0 || !this.store.snapshots.isEmpty()) return;
    const joined = await this.options.snapshots.join((progress) => this.setProgress(progress));
    if (!joined) return;
    this.log.info({ relay_seq: joined.relay?.seq ?? null }, 'started from a snapshot');
    this.heldWhenAsked = this.store.frontier().heads;
    if (joined.relay && joined.relay.epoch === log.epoch && joined.relay.seq <= log.head) this.store.setCursor(CURSOR, joined.relay.seq);
  }

  // ---- the relay, checked -------------------------------------------------------------------------

  /**
   * Reads the relay log's frontier, enrolling this device again if the relay no longer knows it, and
   * restarts the pull from 0 when the log is not the one this device synced with.
   */
  private async inspectRelay(): Promise<FrontierResponse> {
    const ledger = this.store.ledger;
    // What this device knew when it asked: a live page that lands while the question is out moves the cursor
    // past the head the relay answered with, which is no rollback.
    const cursor = this.store.getCursor(CURSOR);
    const cursorEvent = ledger.cursorEvent();
    this.heldWhenAsked = this.store.frontier().heads;
    let log: FrontierResponse;
    try {
      log = await this.options.relay.frontier(cursorEvent?.seq);
    } catch (error) {
      if (!(error instanceof TransportError && error.code === 'unknown_device')) throw error;
      this.log.warn({}, 'the relay does not know this device (it may have lost its data); enrolling again');
      await this.options.relay.reenrol();
      log = await this.options.relay.frontier(cursorEvent?.seq);
    }
    ledger.releaseExpired(this.now());
    this.firstContact = ledger.epoch() === null;
    const reason = judgeRelayLog({ epoch: ledger.epoch(), cursor, cursorEvent }, log);
    if (reason) await this.restart(reason, log.epoch);
    else if (ledger.epoch() !== log.epoch) ledger.setEpoch(log.epoch);
    // Fetch again from before the first event being repaired, on a transport bound to this log.
    if (this.current && (ledger.activeRepairs().length > 0 || (this.current.epoch !== null && this.current.epoch !== log.epoch))) await this.dropTransport();
    return log;
  }

  /** Forgets the cursor (and repairs, whose seqs named the old log) and binds this device to `epoch`. */
  private async restart(reason: RecoveryReason, epoch: string): Promise<void> {
    this.log.warn({ reason, epoch }, 'the relay log is not the one this device synced with; fetching all of it again');
    this.store.setCursor(CURSOR, 0);
    this.store.ledger.setCursorEvent(null);
    this.store.ledger.clearRepairs();
    this.store.ledger.setEpoch(epoch);
    this.recovery ??= { reason, resent: 0 };
    await this.dropTransport();
  }

  /**
   * Sends the relay what it lacks of the events this device holds: its own, by moving the outbox back to
   * where the relay's copy ends, and other devices' events in their original sealed form (their writer
   * may be gone for good). A device that comes after another finds nothing left to add.
   */
  private async resend(transport: Transport, log: FrontierResponse): Promise<void> {
    const me = this.store.identity.deviceId;
    const relayHas = new Map(log.devices.map((device) => [device.device_id, device.seq]));
    const own = this.store.lowerPushed(relayHas.get(me) ?? 0);
    const others = Object.entries(this.heldWhenAsked).filter(([deviceId, head]) => deviceId !== me && head > (relayHas.get(deviceId) ?? 0));
    const total = others.reduce((sum, [deviceId, head]) => sum + head - (relayHas.get(deviceId) ?? 0), 0);
    let sent = 0;
    if (total > 0) this.setProgress({ phase: 'resend', done: 0, total });
    for (const [deviceId, head] of others) {
      let after = relayHas.get(deviceId) ?? 0;
      while (after < head) {
        const run = this.store.sealedRun(deviceId, after, MAX_BATCH_EVENTS);
        if (run.length === 0 && this.store.floor(deviceId) > after) {
          throw new SyncFailure(
            'integrity',
            `the relay lost events of device ${shortDevice(deviceId)} (from number ${after + 1}) that this device no longer keeps: it started from a snapshot, or pruned its history below one`,
            'a device that still holds them sends them again when it syncs; until one does, that device\'s later events cannot reach the relay',
          );
        }
        if (run.length === 0) throw new SyncFailure('local', `the events of device ${shortDevice(deviceId)} after ${after} held here have no seal`, 'report it with the output of "motebit-sync status --json"');
        const results = await transport.push(run.map(toWire));
        throwIfRefused(results, run.length, `events of device ${shortDevice(deviceId)} sent again`);
        after = run.at(-1)!.device_seq;
        sent += run.length;
        this.setProgress({ phase: 'resend', done: sent, total });
      }
    }
    if (own + sent > 0 && (this.recovery || !this.firstContact)) {
      this.recovery ??= { reason: 'relay_missing_events', resent: 0 };
      this.recovery.resent += own + sent;
    }
  }

  /** Writers being repaired or quarantined: their gaps are explained already. */
  private repairing(): Set<string> {
    return new Set(this.store.ledger.repairs().map((repair) => repair.deviceId));
  }

  /**
   * After a full pull: repaired writers are forgotten; ones that failed again count a cycle and fail it
   * (the cycle that quarantines them too; later ones no longer fetch them, and show them as quarantined).
   */
  private settleRepairs(): void {
    const ledger = this.store.ledger;
    const failing: Repair[] = ledger.activeRepairs().filter((repair) => this.failedThisCycle.has(repair.deviceId));
    ledger.endCycle(this.failedThisCycle, this.now(), this.options.repairPolicy ?? DEFAULT_REPAIR_POLICY);
    this.store.forgetSettledRejections(); // what was rejected and has since arrived intact
    if (failing.length === 0) return;
    const quarantined = failing.filter((repair) => ledger.isQuarantined(repair.deviceId)).length;
    throw new SyncFailure(
      'integrity',
      describeRepairs(failing),
      quarantined > 0
        ? 'none of those events was applied. They kept failing, so they are now set aside (quarantined) and fetched again in a day; other devices\' events keep flowing. If the relay is faulty or tampered with, move to another relay'
        : 'none of those events was applied; each sync fetches them again. If this keeps happening the relay is faulty or tampered with: move to another relay',
    );
  }

  /** Events another device's signed clock shows exist, but that this device does not hold. */
  private checkWithheld(): void {
    const me = this.store.identity.deviceId;
    const repairing = this.repairing();
    const missing = this.store.missingEvents().filter((gap) => gap.deviceId !== me && !repairing.has(gap.deviceId));
    if (missing.length > 0) {
      throw new SyncFailure(
        'integrity',
        `the relay is missing events: ${describeMissing(missing)}`,
        'another device has seen them, so they exist; sync again later, and bring that device online so it can send them again. If this keeps happening the relay is withholding them',
      );
    }
  }

  private noteRecovery(epoch: string): void {
    if (!this.recovery) return;
    const { reason, resent } = this.recovery;
    this.store.ledger.recordRecovery({ at: this.now(), reason, resent, epoch });
    this.log.warn({ reason, resent }, 'the relay had lost data; this device sent it again');
    this.recovery = null;
  }

  /** Records a failed cycle: the status says what failed and what to do; it is never a success. */
  private failed(error: unknown): CycleResult {
    const syncError = describeFailure(error, this.now());
    this.lastError = syncError;
    if (isRevocation(error)) this.revoked = true;
    this.log.warn({ kind: syncError.kind, error: syncError.message }, 'sync cycle failed');
    this.setState(this.paused ? 'paused' : syncError.kind === 'network' ? 'offline' : 'error');
    return { ok: false, pushed: 0, pulled: this.pulledThisCycle, error: syncError };
  }

  /**
   * Pushes every unacknowledged local event, in sealed batches, however many there are. As many batches as
   * the transport allows (pushesInFlight) are sent before the first answer is awaited; answers are taken in
   * order, and what the relay acknowledged is marked pushed batch by batch. When one fails, the batches
   * after it are left to their fate (the relay refuses them as gaps, or stored them: pushes are idempotent)
   * and the next cycle sends again from the last acknowledged event.
   */
  private async pushAll(transport: Transport): Promise<number> {
    const total = this.store.pendingOutCount();
    let pushed = 0;
    this.setProgress({ phase: 'push', done: 0, total });
    const inFlight: { last: number; count: number; answer: Promise<PushResult[]> }[] = [];
    let sent: number | undefined; // the last device_seq sent this cycle
    for (;;) {
      while (inFlight.length < Math.max(1, transport.pushesInFlight)) {
        const batch = this.store.outboxBatch(MAX_BATCH_EVENTS, this.options.credentials, sent);
        if (batch.length === 0) break;
        sent = batch.at(-1)!.device_seq;
        const answer = transport.push(batch.map(toWire));
        answer.catch(() => undefined); // read in order below; once one fails, those after it are not read
        inFlight.push({ last: sent, count: batch.length, answer });
      }
      const next = inFlight.shift();
      if (!next) return pushed;
      throwIfRefused(await next.answer, next.count, 'events');
      this.store.markPushed(next.last);
      pushed += next.count;
      this.setProgress({ phase: 'push', done: pushed, total: Math.max(total, pushed) });
    }
  }

  /**
   * Where every received page goes, from a cycle's catch-up or live from the socket. Each device's events
   * are applied on their own, so one device's bad chain cannot block the others; what cannot be applied
   * is recorded and reported, never applied. The page's events, what was rejected of it and the cursor
   * past it are committed in one transaction: after a crash either all of it is there or none of it.
   */
  private readonly receive = async (page: readonly ReceivedEvent[]): Promise<void> => {
    if (page.length === 0) return;
    const events = await this.withNewerMembership(page);
    const rejected: RejectedEvent[] = [];
    const failures: { received: ReceivedEvent; code: string; message: string }[] = [];
    const byDevice = new Map<string, { received: ReceivedEvent; event: unknown; text: string }[]>();
    let position = -1;
    for (const received of events) {
      const decoded = fromWire(received);
      if (!decoded.ok) {
        rejected.push(rejection(received, decoded.problem.code, decoded.problem.message));
        failures.push({ received, code: decoded.problem.code, message: decoded.problem.message });
        continue;
      }
      position = Math.max(position, membershipPosition(decoded.event));
      const group = byDevice.get(received.device_id) ?? [];
      group.push({ received, event: decoded.event, text: decoded.text });
      byDevice.set(received.device_id, group);
    }
    // An event written after a membership change this device has not seen yet: read the log first (an
    // event that names a position the relay then does not serve is refused when it is applied).
    const membership = this.options.membership;
    if (membership && position > membership.head()) await this.refreshMembership(membership);
    let newConflicts = 0;
    const last = events.at(-1)!;
    this.store.atomically(() => {
      for (const group of byDevice.values()) {
        try {
          newConflicts += this.store.applyRemote(group.map((g) => g.event), { texts: group.map((g) => g.text) }).newConflicts;
        } catch (error) {
          // A local failure (disk): nothing of the page is committed, the cursor stays, nothing is skipped.
          if (!(error instanceof ChainError)) throw error;
          for (const { received } of group) rejected.push(rejection(received, error.code, error.message));
          const at = group.find((g) => g.received.device_seq === error.deviceSeq)?.received ?? group[0]!.received;
          failures.push({ received: { ...at, seq: Math.min(...group.map((g) => g.received.seq)) }, code: error.code, message: error.message });
        }
      }
      if (rejected.length > 0) this.store.recordRejected(rejected);
      for (const { received, code, message } of failures) {
        this.store.ledger.noteFailure({ deviceId: received.device_id, relaySeq: received.seq, deviceSeq: received.device_seq, code, message }, this.now());
      }
      if (last.seq > this.store.getCursor(CURSOR)) {
        this.store.setCursor(CURSOR, last.seq);
        this.store.ledger.setCursorEvent({ seq: last.seq, eventId: last.event_id });
      }
    });
    if (rejected.length > 0) this.log.warn({ count: rejected.length, code: rejected[0]!.code }, 'received events were rejected and not applied');
    for (const { received } of failures) this.noteFailure(received.device_id);
    this.countReceived(events);
    if (newConflicts > 0) this.log.info({ newConflicts }, 'conflicts recorded');
  };

  /**
   * A page with events sealed under a key this device does not have yet (an epoch started by a membership
   * change it has not read): the log is read first and those events opened again. What still does not open
   * is rejected as before, and fetched again.
   */
  private async withNewerMembership(page: readonly ReceivedEvent[]): Promise<readonly ReceivedEvent[]> {
    const membership = this.options.membership;
    if (!membership || !page.some((event) => event.problem?.code === 'unknown_key')) return page;
    if (!(await this.refreshMembership(membership))) return page;
    return page.map((event) => (event.problem?.code === 'unknown_key' ? membership.reopen(event) : event));
  }

  /** Refreshes the membership log from within a page; a failure is logged (the events it would have admitted are refused and fetched again). */
  private async refreshMembership(membership: MembershipHook): Promise<boolean> {
    try {
      await membership.refresh();
      return true;
    } catch (error) {
      this.log.warn({ error: error instanceof Error ? error.message : String(error) }, 'the membership log could not be read');
      return false;
    }
  }

  /**
   * Counts a received page: only other devices' events are received changes; this device's own, echoed
   * back by the relay, are not (those within the expected range shrink the total instead). Within a cycle
   * the page moves the progress; between cycles it is a live arrival.
   */
  private countReceived(events: readonly ReceivedEvent[]): void {
    const me = this.store.identity.deviceId;
    let others = 0;
    for (const event of events) {
      if (event.device_id !== me) others++;
      else if (this.pull && event.seq > this.pull.base && event.seq <= this.pull.head) this.pull.ownInRange++;
    }
    if (this.running) {
      this.pulledThisCycle += others;
      if (this.pull?.startedAt != null) this.setProgress(this.pullProgress());
      else this.emitStatus();
      return;
    }
    if (others > 0) {
      const at = this.now();
      const previous = this.arrival;
      this.arrival = { count: previous && at - previous.at < ARRIVAL_BURST_MS ? previous.count + others : others, at };
    }
    this.emitStatus(); // a live page between cycles: counts changed
  }

  /** Receiving: how many of how many, and about how long is left at the pace so far. */
  private pullProgress(): SyncProgress {
    const pull = this.pull;
    const done = this.pulledThisCycle;
    if (!pull) return { phase: 'pull', done, total: null, remainingMs: null };
    const total = Math.max(done, pull.head - pull.base - pull.compacted - pull.ownInRange);
    const elapsed = pull.startedAt === null ? 0 : this.now() - pull.startedAt;
    const remainingMs = done > 0 && elapsed > 0 ? Math.round((elapsed / done) * (total - done)) : null;
    return { phase: 'pull', done, total, remainingMs };
  }

  /**
   * A writer's events failed verification (the ledger has noted it, with the page): they are fetched again
   * until they verify, and this cycle fails. A quarantined writer's fail nothing: they are set aside, and
   * the status shows them as quarantined.
   */
  private noteFailure(deviceId: string): void {
    if (this.store.ledger.isQuarantined(deviceId)) return;
    this.failedThisCycle.add(deviceId);
    if (!this.running && this.lastError === null) {
      // A live page between cycles: say so now, not only at the next cycle.
      this.lastError = describeFailure(new SyncFailure('integrity', describeRepairs(this.store.ledger.activeRepairs()), 'sync fetches those events again'), this.now());
      this.setState('error');
    }
  }

  // ---- transports ---------------------------------------------------------------------------------

  /** WebSocket when it works, else HTTP (when allowed); back to WebSocket with backoff while on HTTP. */
  private async ensureTransport(epoch: string): Promise<Transport> {
    const preference = this.options.transport;
    const wantWs = preference !== 'http';
    // After WebSocket failed (to open, or a live socket dropped), auto waits out the backoff on HTTP.
    const wsDue = preference === 'websocket' || this.now() >= this.wsRetryAt;
    if (this.current && (this.current.kind === 'websocket' || !wantWs || !wsDue)) return this.current;

    if (wantWs && wsDue) {
      try {
        const ws = await this.open('websocket', epoch);
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
    const http = await this.open('http', epoch);
    this.current = http;
    this.emitStatus();
    return http;
  }

  private async open(kind: TransportKind, epoch: string): Promise<Transport> {
    const transport = this.options.connect(kind);
    try {
      await transport.open(this.store.ledger.resumePoint(this.store.getCursor(CURSOR)), this.receive, epoch);
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
    if (error.code === EPOCH_CHANGED) {
      // Not a WebSocket problem: the relay serves another log. The next cycle checks it and repairs.
      if (!this.paused && !this.stopped && this.started) void this.syncNow();
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
    // A revoked device is refused for good: no more timed cycles (a manual one may still ask again).
    if (!this.started || this.paused || this.stopped || this.revoked) {
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
    this.statusListeners.emit(status);
  }

  private emitCycle(result: CycleResult): void {
    this.cycleListeners.emit(result);
  }
}

interface Pull {
  readonly head: number;
  readonly base: number;
  readonly compacted: number;
  ownInRange: number;
  startedAt: number | null;
}

/**
 * A cycle's receiving, from `base` to the head the frontier named. From 0 the compacted events are all in
 * between and none is sent (each writer's 1..floor are stubs); from further on, the stubs lie before it.
 */
function startPull(log: FrontierResponse, base: number, startedAt: number | null): Pull {
  return { head: log.head, base, compacted: base === 0 ? compactedEvents(log) : 0, ownInRange: 0, startedAt };
}

/** Whether a failure is the relay refusing this device because it was revoked. */
function isRevocation(error: unknown): boolean {
  return error instanceof TransportError && error.kind === 'auth' && (error.code === 'revoked_device' || error.code === 'device_revoked');
}

function recoveryStatus(recovery: Recovery | null): SyncStatus['lastRecovery'] {
  return recovery && { at: recovery.at, reason: recovery.reason, resent: recovery.resent, message: recoveryText(recovery) };
}

/** A push is done only when the relay stored (or already had) every event of it. */
function throwIfRefused(results: readonly PushResult[], sent: number, what: string): void {
  const refused = results.filter((r) => r.status === 'rejected');
  if (results.length === sent && refused.length === 0) return;
  const reason = refused[0]?.status === 'rejected' ? refused[0].reason : 'an incomplete answer';
  throw new SyncFailure('relay', `the relay refused ${refused.length || sent} of ${sent} ${what} (${reason})`, 'this device\'s log disagrees with the relay; sync again, and if it persists report it with the output of "motebit-sync status --json"');
}

/** The membership log position a decoded (not yet validated) event names, or -1. */
function membershipPosition(event: unknown): number {
  const m = typeof event === 'object' && event !== null ? (event as { m?: unknown }).m : undefined;
  return typeof m === 'number' && Number.isSafeInteger(m) ? m : -1;
}

function rejection(received: ReceivedEvent, code: string, message: string): RejectedEvent {
  return { relaySeq: received.seq, eventId: received.event_id, deviceId: received.device_id, deviceSeq: received.device_seq, code, message };
}

const PAUSED_MESSAGE = 'sync is paused';

/** Turns any failure into what the person sees: a kind, a message and the next step. */
export function describeFailure(error: unknown, at: number): SyncError {
  if (error instanceof SyncFailure) return { kind: error.kind, message: error.message, nextStep: error.nextStep, ...(error.details ? { details: error.details } : {}), at };
  // Everything else in the words of main/app/error-words.ts (the relay's codes only in details).
  const words = errorWords(error);
  const kind: SyncErrorKind = words.kind === 'network' || words.kind === 'auth' || words.kind === 'relay' || words.kind === 'integrity' ? words.kind : 'local';
  // The words are those of any step (a command run once too); a cycle that failed on the network is run again.
  const nextStep = kind === 'network' ? `${words.nextStep} Sync retries by itself.` : words.nextStep;
  return { kind, message: words.message, nextStep, ...(words.details ? { details: words.details } : {}), at };
}
