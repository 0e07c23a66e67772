// Which bridge the window uses: window.motebit in Electron (exposed by the preload), else the UI harness's
// socket client (a normal browser opened on the harness URL).
import type { MotebitBridge } from '../shared/portable/ipc-contract.ts';
import { createHarnessBridge } from './harness-bridge.ts';

export interface ConnectedBridge {
  bridge: MotebitBridge;
  /** 'electron' or 'harness', shown nowhere but useful in tests and logs. */
  kind: 'electron' | 'harness';
  onDisconnect(listener: () => void): void;
}

export function connectBridge(): ConnectedBridge {
  const exposed = (window as unknown as { motebit?: MotebitBridge }).motebit;
  if (exposed) return { bridge: exposed, kind: 'electron', onDisconnect: () => {} };
  const harness = createHarnessBridge();
  return { bridge: harness, kind: 'harness', onDisconnect: (listener) => harness.onDisconnect(listener) };
}
