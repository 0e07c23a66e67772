// ipcMain wiring, kept structural (no electron import) so it is tested in Node with fakes: one handler per
// contract channel, each checking that the sender is our own page before it reaches the dispatcher, and
// the controller's status and app-state changes pushed to the window on the one event channel.
import { CHANNELS, IPC_EVENT_CHANNEL, ipcChannelName, type AppState, type EventName, type EventPayload } from '../../shared/portable/ipc-contract.ts';
import type { SyncStatus } from '../../shared/portable/status.ts';
import type { Dispatch } from '../app/ipc-dispatch.ts';
import { isTrustedSenderUrl } from '../app/window-options.ts';

/** What a handler sees of Electron's IpcMainInvokeEvent. */
export interface InvokeEventLike {
  readonly senderFrame?: { readonly url: string; readonly parent?: unknown } | null;
}

/** The part of Electron's IpcMain the wiring uses. */
export interface IpcMainLike {
  handle(channel: string, listener: (event: InvokeEventLike, ...args: unknown[]) => unknown): void;
  removeHandler(channel: string): void;
}

export class UntrustedSenderError extends Error {
  override name = 'UntrustedSenderError';
}

/** Only the top frame of a window showing our own page (app://motebit/…) may call main. */
export function isTrustedSender(event: InvokeEventLike): boolean {
  const frame = event.senderFrame;
  if (!frame) return false; // the frame navigated away or was destroyed
  if (frame.parent !== null && frame.parent !== undefined) return false;
  return isTrustedSenderUrl(frame.url);
}

/**
 * Registers ipcMain.handle for every channel; returns a function that removes them. A call from anywhere
 * but our page is rejected (the promise in the caller rejects) and never reaches the dispatcher.
 */
export function wireIpc(ipcMain: IpcMainLike, dispatch: Dispatch, trusted: (event: InvokeEventLike) => boolean = isTrustedSender): () => void {
  for (const channel of CHANNELS) {
    ipcMain.handle(ipcChannelName(channel), async (event, input) => {
      if (!trusted(event)) throw new UntrustedSenderError(`refused ${channel}: the caller is not the settings window`);
      return dispatch(channel, input);
    });
  }
  return () => {
    for (const channel of CHANNELS) ipcMain.removeHandler(ipcChannelName(channel));
  };
}

export interface EventSourceLike {
  onStatus(listener: (status: SyncStatus) => void): () => void;
  onState(listener: (state: AppState) => void): () => void;
}

export interface EventMessage<E extends EventName = EventName> {
  event: E;
  payload: EventPayload<E>;
}

/** Forwards status and app-state changes as {event, payload} on IPC_EVENT_CHANNEL; returns an unsubscribe. */
export function forwardEvents(source: EventSourceLike, send: (channel: string, message: EventMessage) => void): () => void {
  const offStatus = source.onStatus((payload) => send(IPC_EVENT_CHANNEL, { event: 'status.changed', payload }));
  const offState = source.onState((payload) => send(IPC_EVENT_CHANNEL, { event: 'app.changed', payload }));
  return () => {
    offStatus();
    offState();
  };
}
