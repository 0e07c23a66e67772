// One dispatcher for every way the window reaches main: Electron's ipcMain and the UI harness's socket both
// call it. It validates each input against the contract (an invalid call does nothing and gets a typed
// error), runs the handler, checks the output against the contract, and turns any failure into an IpcError.
import type { z } from 'zod';
import { IPC_CONTRACT, type Channel, type ChannelOutput, type IpcError, type IpcResult } from '../../shared/ipc-contract.ts';
import { ConfigError } from '../config/config.ts';
import { RelayUrlError } from '../config/relay-url.ts';
import { IdentityExistsError, IdentityNotSetUpError } from '../identity/local-identity.ts';
import { PairingCodeError } from '../identity/pairing.ts';
import { InvalidWriteError } from '../store/event-store.ts';
import { QUOTA_EXCEEDED, TransportError, quotaWords } from '../sync/transport.ts';

export type Handlers = {
  [C in Channel]: (input: z.output<(typeof IPC_CONTRACT)[C]['input']>) => Promise<ChannelOutput<C>> | ChannelOutput<C>;
};

/** A request that does not fit the app's state (e.g. sync before setup, setup twice). */
export class InvalidStateError extends Error {
  override name = 'InvalidStateError';
}

export type Dispatch = (channel: string, input: unknown) => Promise<IpcResult<unknown>>;

export function createDispatcher(handlers: Handlers, onInternalError: (error: unknown, channel: string) => void = () => {}): Dispatch {
  return async (channel, input) => {
    if (!Object.hasOwn(IPC_CONTRACT, channel)) return { ok: false, error: { code: 'unknown_channel', message: `no such channel: ${String(channel).slice(0, 64)}` } };
    const spec = IPC_CONTRACT[channel as Channel];
    const parsed = spec.input.safeParse(input ?? {});
    if (!parsed.success) return { ok: false, error: invalidArgument(parsed.error) };
    try {
      const handler = handlers[channel as Channel] as (input: unknown) => Promise<unknown> | unknown;
      const value = await handler(parsed.data);
      return { ok: true, value: spec.output.parse(value) };
    } catch (error) {
      const mapped = toIpcError(error);
      if (mapped.code === 'internal') onInternalError(error, channel);
      return { ok: false, error: mapped };
    }
  };
}

function invalidArgument(error: z.ZodError): IpcError {
  const issue = error.issues[0];
  const field = issue?.path.join('.') || undefined;
  return { code: 'invalid_argument', message: issue ? `${field ? `${field}: ` : ''}${issue.message}` : 'invalid input', ...(field ? { field } : {}) };
}

/** What the window is told about a failure: a code it can act on and a message a person can read. */
export function toIpcError(error: unknown): IpcError {
  if (error instanceof RelayUrlError) return { code: 'invalid_argument', message: error.message, field: 'relayUrl' };
  if (error instanceof PairingCodeError) return { code: 'invalid_argument', message: error.message, field: 'pairingCode' };
  if (error instanceof InvalidWriteError || error instanceof ConfigError) return { code: 'invalid_argument', message: error.message };
  if (error instanceof InvalidStateError || error instanceof IdentityExistsError || error instanceof IdentityNotSetUpError) {
    return { code: 'invalid_state', message: error.message };
  }
  if (error instanceof TransportError) {
    const code = error.kind === 'network' ? 'network' : error.kind === 'auth' ? 'auth' : 'relay';
    if (error.code === QUOTA_EXCEEDED) return { code, message: `${error.message}; ${quotaWords(error.quota).nextStep}.` };
    const hint = error.kind === 'network' ? ' Check the URL and that the relay is running.' : '';
    return { code, message: `${error.message}.${hint}`.replace('..', '.') };
  }
  return { code: 'internal', message: error instanceof Error ? error.message : String(error) };
}
