// Pairing by approval for the window (docs/keys.md), as steps the window can ask for one at a time:
//
//   new device (setup): JoinSession — start (the code to show), offered (the six digits), joined (the device)
//   member (settings):  ApprovalDesk — check (the new device's name and digits), approve or decline
//
// Each step is one request; a step that waits (for the other device, for the person) can be stopped with
// cancel, and nothing is written until the member approves. The words of a failure are the PairingError's,
// with the CLI's "run join again" said as the window says it.
import { PairingError } from '../identity/pairing-flow.ts';
import { InvalidStateError } from './error-words.ts';
import type { Device, PendingApproval } from './device.ts';

interface Deferred<T> {
  readonly promise: Promise<T>;
  resolve(value: T): void;
  reject(error: unknown): void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((yes, no) => {
    resolve = yes;
    reject = no;
  });
  promise.catch(() => {}); // a step nobody asked for is no unhandled rejection
  return { promise, resolve, reject };
}

/** The window's words for a failure of the new device's side: there is no "join" command to run again there. */
function windowWords(error: unknown): unknown {
  if (!(error instanceof PairingError) || !/run join again$/.test(error.message)) return error;
  return new PairingError(error.code, error.message.replace(/run join again$/, 'get a new code and try again'), { cause: error.cause });
}

export interface JoinHooks {
  readonly onCode: (code: string, expiresAt: number) => void;
  readonly onOffer: (offered: { motebitId: string; sas: string }) => void;
  readonly signal: AbortSignal;
}

/** A new device joining by approval: its code, then the digits, then the device, each awaited on its own. */
export class JoinSession {
  readonly #code = deferred<{ code: string; expiresAt: number }>();
  readonly #offer = deferred<{ motebitId: string; sas: string }>();
  readonly #abort = new AbortController();
  readonly #joined: Promise<Device>;
  #settled = false;

  /** `run` is Device.joinByApproval with the hooks given; `onJoined` takes the device once approved. */
  constructor(run: (hooks: JoinHooks) => Promise<Device>, onJoined: (device: Device) => Promise<void>) {
    const joined = run({
      onCode: (code, expiresAt) => this.#code.resolve({ code, expiresAt }),
      onOffer: (offered) => this.#offer.resolve(offered),
      signal: this.#abort.signal,
    });
    this.#joined = joined
      .then(async (device) => {
        await onJoined(device);
        return device;
      })
      .catch((error: unknown) => {
        const said = windowWords(error);
        this.#code.reject(said);
        this.#offer.reject(said);
        throw said;
      })
      .finally(() => (this.#settled = true));
    this.#joined.catch(() => {});
  }

  /** The code to show and when it stops working (ms since the epoch). */
  get started(): Promise<{ code: string; expiresAt: number }> {
    return this.#code.promise;
  }

  /** A member answered: the six digits (waits for it). */
  get offered(): Promise<{ motebitId: string; sas: string }> {
    return this.#offer.promise;
  }

  /** Approved, verified and opened (waits for it). */
  get joined(): Promise<Device> {
    return this.#joined;
  }

  get settled(): boolean {
    return this.#settled;
  }

  /** Stops waiting (nothing is written); false when it was over already. */
  cancel(): boolean {
    if (this.#settled || this.#abort.signal.aborted) return false;
    this.#abort.abort();
    return true;
  }
}

/** The new device a member is looking at: shown with its digits, waiting for Approve or Don't approve. */
export interface ApprovalView {
  readonly deviceId: string;
  readonly name: string | null;
  readonly sas: string;
}

/** A member's side: one new device at a time, checked, then approved or declined. */
export class ApprovalDesk {
  #current: { abort: AbortController; pending: PendingApproval | null } | null = null;

  /** Reads the code, offers the motebit and waits for the new device's answer: its name and the digits. */
  async check(device: Device, code: string): Promise<ApprovalView> {
    this.decline();
    const slot = { abort: new AbortController(), pending: null as PendingApproval | null };
    this.#current = slot;
    try {
      const pending = await device.approvalFor(code, { signal: slot.abort.signal });
      if (this.#current !== slot) throw new PairingError('cancelled', 'pairing was stopped; nothing was changed');
      slot.pending = pending;
      return { deviceId: pending.deviceId, name: pending.name, sas: pending.sas };
    } catch (error) {
      if (this.#current === slot) this.#current = null;
      throw error;
    }
  }

  /** The person saw the same digits on both devices: the new device is added. */
  async approve(deviceId: string): Promise<{ deviceId: string; name: string | null }> {
    const pending = this.#current?.pending;
    if (!pending || pending.deviceId !== deviceId) throw new InvalidStateError('no device is waiting for your approval here; enter the code the new device shows again');
    this.#current = null;
    await pending.approve();
    return { deviceId: pending.deviceId, name: pending.name };
  }

  /** Don't approve (or stop checking): nothing is added, and the code cannot be used again. */
  decline(): { declined: boolean } {
    const current = this.#current;
    this.#current = null;
    current?.abort.abort();
    return { declined: current !== null };
  }
}
