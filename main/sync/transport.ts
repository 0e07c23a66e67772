// One Transport interface for every way a device talks to the relay (docs/architecture: "one path for
// one job"). WebSocket and HTTP implement it; the encrypted transport wraps either and changes only bodies.
// The engine never knows which one it holds, except to say so in its status.
import type { PushResult, QuotaName } from '../../shared/portable/relay-api.ts';
import type { StoredWireEvent, WireEvent } from '../../shared/portable/wire.ts';

export type TransportKind = 'websocket' | 'http';

/** Why an event that reached this device could not be read. It is reported, never applied. */
export interface EventProblem {
  readonly code: 'decrypt_failed' | 'unknown_key' | 'not_encrypted';
  readonly message: string;
}

/** An event as the relay served it; `problem` is set by a wrapper that could not open its body. */
export type ReceivedEvent = StoredWireEvent & { readonly problem?: EventProblem };

/**
 * Where received events go, in relay sequence order, one page at a time. The transport awaits the sink
 * before delivering the next page, so a slow device slows the stream instead of buffering it.
 */
export type EventSink = (events: readonly ReceivedEvent[]) => Promise<void>;

export interface Transport {
  readonly kind: TransportKind;
  /**
   * Starts delivering to `sink` every event after relay sequence `after`. WebSocket: connects and
   * authenticates, streams the backlog, then live events as other devices push them. HTTP: nothing is
   * live; catchUp pulls. Rejects (with a TransportError) when the relay cannot be reached this way.
   *
   * A cursor means something only in the relay log it was taken from: given `epoch`, the transport
   * refuses (TransportError code `epoch_changed`) any answer from a log with another epoch, instead of
   * resuming at `after` in a log where that position holds other events. Without it, the first answer's
   * epoch binds the transport.
   */
  open(after: number, sink: EventSink, epoch?: string | null): Promise<void>;
  /** The epoch of the relay log this transport is bound to (null until the relay first answered). */
  readonly epoch: string | null;
  /** Pushes one batch (at most MAX_BATCH_EVENTS) and resolves with the relay's result for each event. */
  push(events: readonly WireEvent[]): Promise<PushResult[]>;
  /**
   * How many pushes may be unanswered at once: the engine sends that many batches before it waits for the
   * first answer. They are stored in the order they were sent. WebSocket: what the relay's 'limits' message
   * said (revision 5; 1 before it or without it). HTTP: 1 (concurrent requests may be handled in any order).
   */
  readonly pushesInFlight: number;
  /** Resolves with the relay sequence up to which every event has been delivered to the sink. */
  catchUp(): Promise<number>;
  /** Hears when a live transport goes down after open() succeeded (the engine then falls back). */
  onDown(listener: (error: TransportError) => void): void;
  close(): Promise<void>;
}

export type TransportErrorKind = 'network' | 'auth' | 'refused' | 'protocol';

/** The code of the TransportError for an answer from another relay log than the one the transport is bound to. */
export const EPOCH_CHANGED = 'epoch_changed';

/** Binds a transport to one relay log: the first epoch seen (or the one given), then only that one. */
export class EpochBinding {
  #epoch: string | null;
  constructor(epoch: string | null = null) {
    this.#epoch = epoch;
  }
  get epoch(): string | null {
    return this.#epoch;
  }
  /** Throws TransportError(epoch_changed) for an answer from another log than the bound one. */
  check(epoch: string): void {
    if (this.#epoch === null) this.#epoch = epoch;
    else if (epoch !== this.#epoch) {
      throw new TransportError('protocol', 'the relay now serves another log (it was replaced or restored from a copy); this device will check it and send again what it lacks', { code: EPOCH_CHANGED });
    }
  }
}

/** Why talking to the relay failed, classified so status and exit codes can say what to do next. */
export class TransportError extends Error {
  override name = 'TransportError';
  readonly kind: TransportErrorKind;
  /** The relay's error code when it gave one (e.g. revoked_device, token_expired). */
  readonly code: string | undefined;
  /** With quota_exceeded: which of the motebit's quotas on the relay (when the relay named one this device knows). */
  readonly quota: QuotaName | undefined;
  constructor(kind: TransportErrorKind, message: string, options: { code?: string; quota?: QuotaName; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.kind = kind;
    this.code = options.code;
    this.quota = options.quota;
  }
}

/** The relay's code for a refusal because the motebit is at one of its quotas there. */
export const QUOTA_EXCEEDED = 'quota_exceeded';

/**
 * What a quota refusal means to a person: what happened and what to do about it, in words. Not a network
 * problem and not this device's fault: retrying does not help until there is room, so it is a failure
 * the person sees, never a quiet retry.
 */
export function quotaWords(quota: QuotaName | undefined): { message: string; nextStep: string } {
  const operator = "ask the relay's operator to raise the limit";
  switch (quota) {
    case 'stored_events':
    case 'stored_bytes':
      return {
        message: `the relay is full for this motebit (stored data limit: ${quota === 'stored_events' ? 'number of events' : 'bytes stored'})`,
        nextStep: `${operator}; nothing written on this device is lost, it is sent once there is room`,
      };
    case 'devices':
      return { message: 'the relay allows no more devices for this motebit (device limit)', nextStep: `revoke a device no longer used, from another device of this motebit, or ${operator}` };
    case 'sockets':
      return { message: 'the relay has as many live connections open for this motebit as it allows (connection limit)', nextStep: `close the motebit on devices not in use, or ${operator}` };
    case 'snapshot_bytes':
      return { message: "the relay refused this motebit's snapshot as bigger than it keeps (snapshot size limit)", nextStep: `${operator}; nothing is lost: every event stays in the log as before` };
    case undefined:
      return { message: 'the relay refused: this motebit is at one of its limits there', nextStep: operator };
  }
}

/** The TransportError for a quota refusal: kind 'refused', the quota's words as its message. */
export function quotaExceeded(quota: QuotaName | undefined): TransportError {
  return new TransportError('refused', quotaWords(quota).message, { code: QUOTA_EXCEEDED, ...(quota ? { quota } : {}) });
}
