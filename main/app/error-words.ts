// Errors in words, one place. Every failure a person can meet — a relay's refusal, a network problem, a bad
// input to the window, a config or keyring problem — becomes { message, nextStep, details }: what happened,
// what to do, and the technical text (shown only behind "Details", or with --verbose). The IPC dispatcher,
// the CLI and the sync engine's status all take their words from here, so one failure reads the same in
// the window, in the terminal and in the status.
import type { z } from 'zod';
import { ChainError } from '../../shared/chain.ts';
import { sentence } from '../../shared/portable/words.ts';
import type { SyncError } from '../../shared/portable/status.ts';
import { ConfigError, DeviceNameError } from '../config/config.ts';
import { RelayUrlError } from '../config/relay-url.ts';
import { IdentityExistsError, IdentityMismatchError, IdentityNotSetUpError } from '../identity/local-identity.ts';
import { PairingCodeError } from '../identity/pairing.ts';
import { PairingError, type PairingErrorCode } from '../identity/pairing-flow.ts';
import { PairsByApprovalError } from '../identity/local-identity.ts';
import { CodeTextError } from '../../shared/code-text.ts';
import { MembershipError } from '../../shared/membership/log.ts';
import { SnapshotError } from '../../shared/snapshot/content.ts';
import { keyringHelp } from '../keyring/help.ts';
import { SecretStoreChoiceError } from '../keyring/open.ts';
import { KeyringUnavailableError, SecretStoreError } from '../keyring/secret-store.ts';
import { StoreOpenError } from '../store/database.ts';
import { InvalidWriteError } from '../store/event-store.ts';
import { EPOCH_CHANGED, QUOTA_EXCEEDED, TransportError, quotaWords } from '../sync/transport.ts';

/**
 * What kind of failure, so that each surface can act on it: the IPC error code, the CLI's exit code and
 * the status's SyncErrorKind all follow from it.
 */
export type WordsKind = 'input' | 'state' | 'cancelled' | 'network' | 'auth' | 'relay' | 'integrity' | 'local';

export interface Words {
  readonly kind: WordsKind;
  /** What happened, in words: no paths, codes or schema jargon. */
  readonly message: string;
  /** What the person can do about it. */
  readonly nextStep: string;
  /** The technical text (error codes, the relay's own message); '' when there is nothing more to say. */
  readonly details: string;
  /** For a bad input: the field it is about (e.g. relayUrl). */
  readonly field?: string;
}

/** A request that does not fit the app's state (e.g. sync before setup, setup twice). Its message is in words. */
export class InvalidStateError extends Error {
  override name = 'InvalidStateError';
}

/**
 * A step that syncs first and did not happen because that sync failed (saving a snapshot): what did not
 * happen, then the sync's own words, kind and details.
 */
export class SyncFirstError extends Error {
  override name = 'SyncFirstError';
  readonly failure: Pick<SyncError, 'kind' | 'message' | 'nextStep' | 'details'>;
  /** What to do once the sync works again (e.g. "then save the snapshot again"). */
  readonly again: string;
  constructor(what: string, failure: SyncFirstError['failure'], again: string) {
    super(`${what}: the sync before it failed (${failure.message})`);
    this.failure = failure;
    this.again = again;
  }
}

/**
 * A step that did not happen because of another failure (a move the new relay refused): what did not
 * happen, then the failure's own words and kind, with what to do instead of the failure's next step (which
 * speaks of sync retrying, not of this step).
 */
export class StepNotDoneError extends Error {
  override name = 'StepNotDoneError';
  /** What to do now (e.g. "this device still syncs with …: try the move again later"). */
  readonly instead: string;
  constructor(what: string, cause: unknown, instead: string) {
    super(what, { cause });
    this.instead = instead;
  }
}

/** The person cancelled (e.g. a setup waiting for a relay that does not answer). Nothing was written. */
export class CancelledError extends Error {
  override name = 'CancelledError';
}

const START_RELAY = 'To run your own relay: npx motebit-relay (it prints its address).';
const CHECK_ADDRESS = `Check the relay address and that the relay is running. ${START_RELAY}`;

export { sentence };

/** Message and next step as one text, for a surface that shows a single line: "What happened: what to do." */
export function oneLine(words: Pick<Words, 'message' | 'nextStep'>): string {
  const message = sentence(words.message);
  if (words.nextStep.trim() === '') return message;
  return `${message.replace(/\.$/, '')}: ${sentence(words.nextStep).replace(/^./, (c) => c.toLowerCase())}`;
}

/** The words of one relay error code (the relay's own code names are only ever in details). */
function relayCodeWords(code: string | undefined, kind: TransportError['kind']): Pick<Words, 'kind' | 'message' | 'nextStep'> | null {
  switch (code) {
    case 'wrong_audience':
      return {
        kind: 'auth',
        message: 'the relay at this address knows itself by another address, so it refused this device',
        nextStep: "use the address the relay prints when it starts (for example http://127.0.0.1:8787), exactly as printed, or ask its operator which address it uses",
      };
    case 'unknown_device':
      return {
        kind: 'auth',
        message: 'the relay does not know this device (it may have lost its data, or this is another relay)',
        nextStep: 'sync again: this device enrols itself again if it can; if it keeps failing, join the motebit again with a pairing code from another device',
      };
    case 'revoked_device':
    case 'device_revoked':
      return { kind: 'auth', message: 'this device was revoked: it can no longer sync this motebit', nextStep: 'a revoked device cannot sync again: join the motebit again with a pairing code from another device' };
    case 'token_expired':
    case 'token_not_yet_valid':
      return { kind: 'auth', message: "the relay refused this device's sign-in because the clocks disagree", nextStep: "check this computer's date, time and time zone, then sync again" };
    case 'wrong_motebit':
    case 'wrong_identity':
    case 'bad_signature':
    case 'bad_cert':
    case 'device_key_mismatch':
      return { kind: 'auth', message: 'the relay does not accept this device for this motebit', nextStep: 'check the relay address, or join the motebit again with a pairing code from another device' };
    case 'malformed_token':
    case 'replayed_nonce':
    case 'body_mismatch':
      return { kind: 'auth', message: "the relay refused this device's sign-in", nextStep: 'sync again; if it keeps failing, check that the relay and this app are up to date' };
    case 'rate_limited':
      return { kind: 'network', message: 'the relay is busy with too many requests from this network', nextStep: 'wait a minute before trying again.' };
    case 'payload_too_large':
    case 'too_many_events':
      return { kind: 'relay', message: 'the relay refused a change as too big', nextStep: "ask the relay's operator about its size limits" };
    case 'snapshot_conflict':
      return { kind: 'relay', message: "the relay already holds another snapshot under this snapshot's name", nextStep: 'sync again: this device makes its snapshot under a new name' };
    case 'snapshot_incomplete':
      return { kind: 'relay', message: 'the relay has not received all of the snapshot yet', nextStep: 'sync again: this device sends the parts still missing' };
    case 'snapshot_mismatch':
      return { kind: 'integrity', message: 'the snapshot the relay received is not the one this device sent, so the relay discarded it', nextStep: 'sync again to send it once more; if it keeps happening, the network or the relay is changing data' };
    case 'internal':
      return { kind: 'network', message: 'the relay had an internal problem', nextStep: 'try again in a while; if it lasts, tell the relay operator.' };
    case EPOCH_CHANGED:
      return { kind: 'relay', message: 'the relay now serves another copy of the log (it was replaced or restored)', nextStep: 'sync again: this device checks it and sends what it lacks' };
    case 'not_found':
    case 'method_not_allowed':
      return { kind: 'relay', message: 'the address answered, but not as a motebit relay', nextStep: CHECK_ADDRESS };
    case undefined:
      if (kind === 'auth' || kind === 'refused') return { kind: 'relay', message: 'the address answered, but not as a motebit relay', nextStep: CHECK_ADDRESS };
      return null;
    default:
      return null;
  }
}

function transportWords(error: TransportError): Words {
  const details = [error.code, error.message].filter(Boolean).join(': ');
  if (error.code === QUOTA_EXCEEDED) return { kind: 'relay', ...quotaWords(error.quota), details };
  const known = relayCodeWords(error.code, error.kind);
  if (known) return { ...known, details };
  switch (error.kind) {
    case 'network':
      return {
        kind: 'network',
        message: /within \d+ ms|timed out|no answer/i.test(error.message) ? 'the relay did not answer in time' : 'the relay could not be reached',
        nextStep: `check the network, the relay address and that the relay is running. ${START_RELAY}`,
        details,
      };
    case 'auth':
      return { kind: 'auth', message: 'the relay refused this device', nextStep: 'check the relay address, or join the motebit again with a pairing code from another device', details };
    case 'refused':
      return { kind: 'relay', message: 'the relay refused the request', nextStep: 'sync again; if it keeps failing, check that the relay and this app are up to date', details };
    case 'protocol':
      return { kind: 'relay', message: 'the relay answered in a way this app does not understand', nextStep: `check that the address points at a motebit relay of a matching version. ${START_RELAY}`, details };
  }
}

/** Words for the bad field of a request the window sent (zod validation at the IPC boundary). */
const FIELD_NAMES: Record<string, string> = {
  relayUrl: 'the relay address',
  deviceName: 'the device name',
  pairingCode: 'the pairing code',
  seconds: 'the sync interval',
  enabled: 'the start-at-login choice',
};

export function validationWords(error: z.ZodError): Words {
  const issue = error.issues[0];
  const field = issue?.path.map(String).join('.') || undefined;
  const details = issue ? `${field ? `${field}: ` : ''}${issue.message}` : 'invalid input';
  const name = field ? FIELD_NAMES[field] : undefined;
  if (!issue || !name) {
    return { kind: 'input', message: 'the window sent a request this app cannot take', nextStep: 'reload the window and try again', details, ...(field ? { field } : {}) };
  }
  let message: string;
  if (issue.code === 'too_small' || issue.code === 'too_big') {
    const numeric = issue.origin === 'number' || issue.origin === 'int';
    const bound = Number(issue.code === 'too_small' ? issue.minimum : issue.maximum);
    if (numeric && field === 'seconds') message = `${name} is ${issue.code === 'too_small' ? 'at least' : 'at most'} ${bound.toLocaleString('en-US')} seconds`;
    else if (numeric) message = `${name} is ${issue.code === 'too_small' ? 'at least' : 'at most'} ${bound}`;
    else if (issue.code === 'too_small') message = `${name} is empty`;
    else message = `${name} is too long (at most ${bound} characters)`;
  } else {
    message = `${name} is not valid`;
  }
  const nextSteps: Record<string, string> = {
    relayUrl: 'enter the relay address, for example https://relay.example.com',
    deviceName: 'enter a name of 1 to 64 characters, for example "Laptop"',
    pairingCode: 'paste the whole pairing code from your other device (Settings → Add a device)',
    seconds: 'enter a number of seconds from 5 to 86,400 (one day)',
  };
  return { kind: 'input', message, nextStep: nextSteps[field!] ?? 'correct it and try again', details, field: field! };
}

function keyringWords(error: KeyringUnavailableError): Words {
  const help = keyringHelp();
  const start = help.command
    ? `start a keyring with the command below; it opens a shell that has one, where you run this command again${help.instead ? ` (${help.instead})` : ''}:\n  ${help.command}\n`
    : (help.instead ?? 'start a keyring service');
  return {
    kind: 'local',
    message: `there is no OS keyring to keep this device's secrets in. ${help.why}`,
    nextStep: `${start}Or keep the secrets in a plain file instead with --keyring file (anyone who can read that file can use your motebit)`,
    details: error.detail,
  };
}

/** Which kind of failure each pairing failure is (what the CLI's exit code and the window's card say). */
const PAIRING_KINDS: Record<PairingErrorCode, WordsKind> = {
  bad_code: 'input',
  unknown_code: 'state',
  expired: 'state',
  mismatch: 'integrity',
  already_member: 'state',
  full: 'state',
  wrong_motebit: 'integrity',
  bad_log: 'integrity',
  conflict: 'state',
  unreachable: 'network',
  relay: 'relay',
  cancelled: 'cancelled',
};

/** The engine's own failure (main/sync/engine.ts SyncFailure, which imports this module: matched by shape, not class). */
function isSyncFailure(error: unknown): error is Error & { kind: string; nextStep: string } {
  return error instanceof Error && error.name === 'SyncFailure' && typeof (error as { nextStep?: unknown }).nextStep === 'string';
}

/** The one mapping: any error to words. Unknown errors keep their text in details, never a stack on screen. */
export function errorWords(error: unknown): Words {
  if (error instanceof TransportError) return transportWords(error);
  if (error instanceof RelayUrlError) {
    return { kind: 'input', message: error.message, nextStep: `enter the relay address, for example https://relay.example.com. ${START_RELAY}`, details: '', field: 'relayUrl' };
  }
  if (error instanceof PairingCodeError) return { kind: 'input', message: error.message, nextStep: 'copy the whole code again from your other device (Settings → Add a device)', details: '', field: 'pairingCode' };
  if (error instanceof PairingError) return { kind: PAIRING_KINDS[error.code], message: error.message, nextStep: '', details: error.cause instanceof Error ? error.cause.message : '' };
  if (error instanceof CodeTextError) return { kind: 'input', message: error.message, nextStep: 'type it again exactly as shown (letters and digits; dashes and case do not matter)', details: '' };
  if (error instanceof PairsByApprovalError) return { kind: 'state', message: error.message, nextStep: '', details: '' };
  if (error instanceof MembershipError) {
    return { kind: 'integrity', message: "the motebit's list of devices, as the relay served it, does not check out; nothing of it was used", nextStep: 'try again later; if it keeps happening, the relay is faulty or tampered with', details: error.message };
  }
  if (error instanceof StepNotDoneError) {
    const failure = errorWords(error.cause);
    return { ...failure, message: `${error.message}: ${failure.message}`, nextStep: error.instead };
  }
  if (error instanceof SyncFirstError) {
    const nextStep = error.failure.nextStep.trim() === '' ? error.again : `${error.failure.nextStep.trim().replace(/[.;]+$/, '')}; ${error.again}`;
    return { kind: error.failure.kind, message: error.message, nextStep, details: error.failure.details ?? '' };
  }
  if (isSyncFailure(error)) return { kind: error.kind === 'auth' || error.kind === 'network' || error.kind === 'relay' || error.kind === 'integrity' ? error.kind : 'local', message: error.message, nextStep: error.nextStep, details: '' };
  if (error instanceof InvalidWriteError) return { kind: 'input', message: error.message, nextStep: 'correct the value and write it again', details: '' };
  if (error instanceof SecretStoreChoiceError) return { kind: 'input', message: error.message, nextStep: 'use --keyring os (the OS keyring) or --keyring file', details: '' };
  if (error instanceof DeviceNameError) {
    return { kind: 'input', message: error.message, nextStep: 'enter a name of 1 to 64 characters, for example "Laptop"', details: '', field: 'deviceName' };
  }
  if (error instanceof ConfigError) {
    return { kind: 'local', message: `the settings file ${error.path} has a problem`, nextStep: 'fix or remove that file, then try again', details: error.message };
  }
  if (error instanceof CancelledError) return { kind: 'cancelled', message: error.message, nextStep: 'nothing was set up; try again when you are ready', details: '' };
  if (error instanceof InvalidStateError || error instanceof IdentityExistsError) return { kind: 'state', message: error.message, nextStep: '', details: '' };
  if (error instanceof IdentityNotSetUpError) return { kind: 'state', message: error.message, nextStep: '', details: '' };
  if (error instanceof KeyringUnavailableError) return keyringWords(error);
  if (error instanceof SecretStoreError || error instanceof IdentityMismatchError) {
    return { kind: 'local', message: "this device's secrets could not be read", nextStep: 'see the details; fix what they name, then try again', details: error.message };
  }
  if (error instanceof StoreOpenError) return { kind: 'local', message: "this device's database could not be opened", nextStep: 'see the details', details: error.message };
  if (error instanceof SnapshotError) {
    if (error.fault === 'empty') return { kind: 'state', message: error.message, nextStep: 'write something or sync first', details: '' };
    return { kind: 'integrity', message: `the relay's snapshot of this motebit was refused: ${error.message}`, nextStep: 'nothing of it was used. Sync again later; if it keeps happening, make a new snapshot on another device ("motebit-sync snapshot") or move to another relay', details: error.fault };
  }
  if (error instanceof ChainError) {
    return { kind: 'integrity', message: 'the relay served events that fail verification; they were not applied', nextStep: 'sync again later; if it keeps happening, the relay is faulty or tampered with', details: error.message };
  }
  const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return { kind: 'local', message: 'an unexpected error happened', nextStep: 'try again; if it keeps happening, report it with the details', details: text };
}
