// The MotebitBridge in a normal browser: the UI harness serves this window and carries the same IPC
// contract over a WebSocket on its own origin. The token comes from the page URL (?token=…); without it
// the harness refuses the socket. Requests are {id, channel, input}; answers {id, result}; pushed events
// {event, payload}. Main validates every input and output against the contract; this client only checks
// the envelope's shape.
import type { Channel, ChannelInput, ChannelOutput, EventName, EventPayload, IpcResult, MotebitBridge } from '../shared/portable/ipc-contract.ts';

type Pending = (result: IpcResult<unknown>) => void;
type AnyListener = (payload: unknown) => void;

const LOST: IpcResult<never> = { ok: false, error: { code: 'internal', message: 'the connection to the Motebit Sync harness was lost; restart it and reload this page' } };

export interface HarnessBridge extends MotebitBridge {
  /** Called once if the socket closes (the harness stopped or refused this page). */
  onDisconnect(listener: () => void): void;
}

export function createHarnessBridge(location: Location = window.location): HarnessBridge {
  const token = new URLSearchParams(location.search).get('token') ?? '';
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const socket = new WebSocket(`${scheme}//${location.host}/bridge?token=${encodeURIComponent(token)}`);
  const pending = new Map<number, Pending>();
  const listeners = new Map<string, Set<AnyListener>>();
  const disconnectListeners = new Set<() => void>();
  const queue: string[] = [];
  let nextId = 1;
  let closed = false;

  socket.addEventListener('open', () => {
    for (const message of queue.splice(0)) socket.send(message);
  });
  socket.addEventListener('message', (event) => {
    if (typeof event.data !== 'string') return;
    let message: unknown;
    try {
      message = JSON.parse(event.data);
    } catch {
      return;
    }
    if (typeof message !== 'object' || message === null) return;
    const m = message as { id?: unknown; result?: unknown; event?: unknown; payload?: unknown };
    if (typeof m.id === 'number' && isResult(m.result)) {
      const resolve = pending.get(m.id);
      pending.delete(m.id);
      resolve?.(m.result);
    } else if (typeof m.event === 'string') {
      for (const listener of listeners.get(m.event) ?? []) listener(m.payload);
    }
  });
  socket.addEventListener('close', () => {
    closed = true;
    for (const resolve of pending.values()) resolve(LOST);
    pending.clear();
    for (const listener of disconnectListeners) listener();
  });

  return {
    invoke<C extends Channel>(channel: C, input: ChannelInput<C>): Promise<IpcResult<ChannelOutput<C>>> {
      if (closed) return Promise.resolve(LOST);
      const id = nextId++;
      const message = JSON.stringify({ id, channel, input });
      return new Promise((resolve) => {
        pending.set(id, resolve as Pending);
        if (socket.readyState === WebSocket.OPEN) socket.send(message);
        else queue.push(message);
      });
    },
    on<E extends EventName>(event: E, listener: (payload: EventPayload<E>) => void): () => void {
      const set = listeners.get(event) ?? new Set<AnyListener>();
      listeners.set(event, set);
      set.add(listener as AnyListener);
      return () => set.delete(listener as AnyListener);
    },
    onDisconnect(listener: () => void): void {
      disconnectListeners.add(listener);
    },
  };
}

function isResult(value: unknown): value is IpcResult<unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as { ok?: unknown; error?: unknown };
  if (v.ok === true) return 'value' in v;
  return v.ok === false && typeof v.error === 'object' && v.error !== null && typeof (v.error as { message?: unknown }).message === 'string';
}
