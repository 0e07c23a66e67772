// One dispatcher for every way the window reaches main: Electron's ipcMain and the UI harness's socket both
// call it. It validates each input against the contract (an invalid call does nothing and gets a typed
// error), runs the handler, checks the output against the contract, and turns any failure into an IpcError.
import type { z } from 'zod';
import { IPC_CONTRACT, type Channel, type ChannelOutput, type IpcError, type IpcErrorCode, type IpcResult } from '../../shared/portable/ipc-contract.ts';
import { InvalidStateError, errorWords, oneLine, validationWords, type Words, type WordsKind } from './error-words.ts';

export { InvalidStateError };

export type Handlers = {
  [C in Channel]: (input: z.output<(typeof IPC_CONTRACT)[C]['input']>) => Promise<ChannelOutput<C>> | ChannelOutput<C>;
};

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
  return fromWords(validationWords(error));
}

const CODES: Record<WordsKind, IpcErrorCode> = {
  input: 'invalid_argument',
  state: 'invalid_state',
  cancelled: 'cancelled',
  network: 'network',
  auth: 'auth',
  relay: 'relay',
  integrity: 'relay',
  local: 'internal',
};

function fromWords(words: Words): IpcError {
  return {
    code: CODES[words.kind],
    message: oneLine(words),
    ...(words.details ? { details: words.details } : {}),
    ...(words.field ? { field: words.field } : {}),
  };
}

/** What the window is told about a failure: a code it can act on, words a person can read (error-words.ts), the technical text apart. */
export function toIpcError(error: unknown): IpcError {
  return fromWords(errorWords(error));
}
