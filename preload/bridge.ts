// window.motebit: the only thing the settings window can reach in main. It forwards contract channels to
// ipcRenderer.invoke and contract events from the one event channel to listeners; anything else is
// refused before ipcRenderer is touched. ipcRenderer itself (and its event objects, whose `sender` is
// ipcRenderer) never reach the page. Pure: takes an ipcRenderer-like object, so it is tested in Node.
import type { Channel, EventName, IpcResult, MotebitBridge } from '../shared/portable/ipc-contract.ts';
import { EVENT_CHANNEL, PRELOAD_CHANNELS, PRELOAD_EVENTS, invokeChannel } from './channels.ts';

/** The part of Electron's IpcRenderer the bridge uses. */
export interface IpcRendererLike {
  invoke(channel: string, ...args: unknown[]): Promise<unknown>;
  on(channel: string, listener: (event: unknown, ...args: unknown[]) => void): unknown;
  removeListener(channel: string, listener: (event: unknown, ...args: unknown[]) => void): unknown;
}

const channelSet: ReadonlySet<string> = new Set(PRELOAD_CHANNELS);
const eventSet: ReadonlySet<string> = new Set(PRELOAD_EVENTS);

export function isContractChannel(channel: unknown): channel is Channel {
  return typeof channel === 'string' && channelSet.has(channel);
}

export function isContractEvent(event: unknown): event is EventName {
  return typeof event === 'string' && eventSet.has(event);
}

export function createBridge(ipc: IpcRendererLike): MotebitBridge {
  const bridge = {
    invoke(channel: unknown, input: unknown): Promise<IpcResult<unknown>> {
      if (!isContractChannel(channel)) {
        return Promise.resolve({ ok: false, error: { code: 'unknown_channel', message: `no such channel: ${String(channel).slice(0, 64)}` } });
      }
      return ipc.invoke(invokeChannel(channel), input ?? {}) as Promise<IpcResult<unknown>>;
    },
    on(event: unknown, listener: unknown): () => void {
      if (!isContractEvent(event)) throw new TypeError(`no such event: ${String(event).slice(0, 64)}`);
      if (typeof listener !== 'function') throw new TypeError('the listener must be a function');
      const handler = (_event: unknown, message: unknown): void => {
        if (typeof message !== 'object' || message === null) return;
        const { event: name, payload } = message as { event?: unknown; payload?: unknown };
        if (name === event) (listener as (payload: unknown) => void)(payload);
      };
      ipc.on(EVENT_CHANNEL, handler);
      let subscribed = true;
      return () => {
        if (!subscribed) return;
        subscribed = false;
        ipc.removeListener(EVENT_CHANNEL, handler);
      };
    },
  };
  return Object.freeze(bridge) as MotebitBridge;
}
